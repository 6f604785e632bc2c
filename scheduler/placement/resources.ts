/**
 * Per-agent resource accounting for one plan: the free scalars in each pool
 * (unreserved `*` and each role's static reservation), the host ports in
 * use, and how many instances of each app the agent holds. A ledger is
 * private to one `plan()` call; the view's records are never changed.
 *
 * Pools. An agent's `reservations` set part of its total aside per role
 * (clamped so the pools never add up to more than the total); the rest is
 * `*`. A task of role R draws each scalar from R's reservation first, then
 * from `*` (Mesos: a role may use its reservations and unreserved
 * resources). The stored Task does not say which pool it drew from, so
 * existing tasks are charged by that same rule; the sum over pools, which
 * is what an agent can actually run, is exact either way.
 */
import type { PortRange } from '../../control-plane/model/schemas.ts';
import { SCALAR_NAMES, type Missing, type PlacementAgent, type PlacementApp, type Scalars } from './types.ts';

/**
 * Scalars are accounted in thousandths (milli-cpus, thousandths of a MB),
 * as integers: Mesos rounds scalar resources to three decimals, and integer
 * sums are exact whatever the order (0.1 + 0.2 cpus fit in 0.3, and a view
 * listing its tasks in another order gives the same plan).
 */
export const SCALE = 1000;
export const toMilli = (r: Scalars): MutableScalars => ({
  cpus: Math.round(r.cpus * SCALE),
  memMb: Math.round(r.memMb * SCALE),
  diskMb: Math.round(r.diskMb * SCALE),
  gpus: Math.round(r.gpus * SCALE),
});
export const fromMilli = (x: number): number => x / SCALE;

export type MutableScalars = { -readonly [K in keyof Scalars]: number };

export const zeroScalars = (): MutableScalars => ({ cpus: 0, memMb: 0, diskMb: 0, gpus: 0 });

export function addScalars(into: MutableScalars, add: Scalars, sign = 1): void {
  for (const name of SCALAR_NAMES) into[name] += sign * add[name];
}

/** An app's per-instance resources in the model's units. */
export function appResources(app: PlacementApp): Scalars {
  return { cpus: app.cpus, memMb: app.mem, diskMb: app.disk, gpus: app.gpus };
}

/**
 * The host ports one instance needs, in port order: a number is a fixed
 * port, 0 is "any port from the agent's ranges". Host networking uses
 * `portDefinitions` (fixed only with `requirePorts` and a non-zero port);
 * bridge and container networking use the `portMappings` that have a
 * `hostPort` (0 = any). Mappings without `hostPort` need no host port.
 */
export function hostPortRequests(app: PlacementApp): readonly number[] {
  const mode = app.networks[0]?.mode ?? 'host';
  if (mode === 'host') return app.portDefinitions.map((p) => (app.requirePorts && p.port > 0 ? p.port : 0));
  return (app.container?.portMappings ?? []).flatMap((m) => (m.hostPort === undefined ? [] : [m.hostPort]));
}

/** Sorted, merged, valid port ranges. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = ranges.filter((r) => r.begin <= r.end).sort((a, b) => a.begin - b.begin || a.end - b.end);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.begin <= last.end + 1) out[out.length - 1] = { begin: last.begin, end: Math.max(last.end, r.end) };
    else out.push({ begin: r.begin, end: r.end });
  }
  return out;
}

export class AgentLedger {
  readonly agent: PlacementAgent;
  /** Only healthy agents out of maintenance get new tasks. */
  readonly placeable: boolean;
  /** Counted in the cluster total for DRF (every agent that is not unreachable). */
  readonly counted: boolean;
  /** The agent's total scalars, in thousandths. */
  readonly total: MutableScalars;
  /** Free scalars per pool (`*` and reserved roles), in thousandths; negative when existing tasks over-commit it. */
  readonly pools = new Map<string, MutableScalars>();
  readonly used: MutableScalars = zeroScalars();
  readonly usedPorts = new Set<number>();
  readonly ranges: readonly PortRange[];
  freePorts: number;
  /** Instances (non-terminal tasks and new placements) per app id. */
  readonly appCounts = new Map<string, number>();

  constructor(agent: PlacementAgent) {
    this.agent = agent;
    this.placeable = agent.health.status === 'healthy' && agent.maintenance === 'none';
    this.counted = agent.health.status !== 'unreachable';
    this.total = toMilli(agent.resources);
    const unreserved: MutableScalars = { ...this.total };
    for (const r of agent.reservations) {
      const pool = this.pools.get(r.role) ?? zeroScalars();
      const reserved = toMilli(r);
      for (const name of SCALAR_NAMES) {
        const take = Math.max(0, Math.min(reserved[name], unreserved[name]));
        pool[name] += take;
        unreserved[name] -= take;
      }
      if (r.role !== '*') this.pools.set(r.role, pool);
      else addScalars(unreserved, pool);
    }
    this.pools.set('*', unreserved);
    this.ranges = mergeRanges(agent.resources.ports);
    this.freePorts = this.ranges.reduce((n, r) => n + r.end - r.begin + 1, 0);
  }

  inRanges(port: number): boolean {
    for (const r of this.ranges) if (port >= r.begin && port <= r.end) return true;
    return false;
  }

  /** Charge a task (existing or new; `resources` in thousandths), drawing from `pools` in order; the last pool takes any excess. */
  charge(resources: Scalars, pools: readonly string[], ports: readonly number[], appId: string): void {
    for (const name of SCALAR_NAMES) {
      let need = resources[name];
      for (let i = 0; i < pools.length && need > 0; i++) {
        const pool = this.pools.get(pools[i]!);
        if (!pool) continue;
        const take = i === pools.length - 1 ? need : Math.max(0, Math.min(need, pool[name]));
        pool[name] -= take;
        need -= take;
      }
      if (need > 0) this.pools.get('*')![name] -= need;
    }
    addScalars(this.used, resources);
    for (const p of ports) {
      if (this.usedPorts.has(p)) continue;
      this.usedPorts.add(p);
      if (this.inRanges(p)) this.freePorts--;
    }
    this.appCounts.set(appId, (this.appCounts.get(appId) ?? 0) + 1);
  }

  /**
   * Free amount (thousandths) of one scalar across `pools`, never more than the agent's
   * total minus everything in use (so no view, however odd its tasks or
   * reservations, lets a placement over-commit the agent).
   */
  free(name: keyof Scalars, pools: readonly string[]): number {
    const headroom = Math.max(0, this.total[name] - this.used[name]);
    // Only `*` here (no reservations): its free amount is the headroom.
    if (this.pools.size === 1) return pools.includes('*') ? headroom : 0;
    let sum = 0;
    for (const p of pools) sum += Math.max(0, this.pools.get(p)?.[name] ?? 0);
    return Math.min(sum, headroom);
  }

  /** Does one instance (`resources` in thousandths) fit? Cheap; no allocation. */
  fits(resources: Scalars, pools: readonly string[], portRequests: readonly number[]): boolean {
    const { total, used } = this;
    // Headroom first (no lookups), then the pools.
    if (resources.cpus > 0 && resources.cpus > total.cpus - used.cpus) return false;
    if (resources.memMb > 0 && resources.memMb > total.memMb - used.memMb) return false;
    if (resources.diskMb > 0 && resources.diskMb > total.diskMb - used.diskMb) return false;
    if (resources.gpus > 0 && resources.gpus > total.gpus - used.gpus) return false;
    if (this.pools.size > 1) {
      for (const name of SCALAR_NAMES) {
        const need = resources[name];
        if (need > 0 && need > this.free(name, pools)) return false;
      }
    } else if (!pools.includes('*') && (resources.cpus > 0 || resources.memMb > 0 || resources.diskMb > 0 || resources.gpus > 0)) return false;
    if (portRequests.length === 0) return true;
    if (portRequests.length > this.freePorts) return false;
    const fixed = new Set<number>();
    for (const p of portRequests) {
      if (p === 0) continue;
      if (fixed.has(p) || this.usedPorts.has(p) || !this.inRanges(p)) return false;
      fixed.add(p);
    }
    return true;
  }

  /** What one instance (`resources` in thousandths) lacks here, in the model's units (empty when it fits). */
  missing(resources: Scalars, pools: readonly string[], portRequests: readonly number[]): Missing {
    const out: { -readonly [K in keyof Missing]: Missing[K] } = {};
    for (const name of SCALAR_NAMES) {
      const short = resources[name] - this.free(name, pools);
      if (resources[name] > 0 && short > 0) out[name] = fromMilli(short);
    }
    const taken: number[] = [];
    const fixed = new Set<number>();
    for (const p of portRequests) {
      if (p === 0) continue;
      if (fixed.has(p) || this.usedPorts.has(p) || !this.inRanges(p)) taken.push(p);
      else fixed.add(p);
    }
    if (taken.length > 0) out.hostPorts = taken;
    const dynamic = portRequests.filter((p) => p === 0).length;
    const shortPorts = dynamic - (this.freePorts - fixed.size);
    if (shortPorts > 0) out.ports = shortPorts;
    return out;
  }

  /** Choose host ports for one instance that {@link fits}: fixed ones as asked, dynamic ones lowest-first. */
  choosePorts(portRequests: readonly number[]): number[] {
    const fixed = new Set(portRequests.filter((p) => p !== 0));
    const chosen: number[] = [];
    let range = 0;
    let next = this.ranges[0]?.begin ?? 0;
    for (const p of portRequests) {
      if (p !== 0) {
        chosen.push(p);
        continue;
      }
      for (;;) {
        const r = this.ranges[range]!;
        if (next > r.end) {
          range++;
          next = this.ranges[range]!.begin;
          continue;
        }
        if (!this.usedPorts.has(next) && !fixed.has(next)) break;
        next++;
      }
      chosen.push(next++);
    }
    return chosen;
  }

  /** Highest fraction used over the scalars the agent has, if `extra` (thousandths) were added. */
  loadWith(extra: Scalars): number {
    const { total, used } = this;
    let load = 0;
    if (total.cpus > 0) load = (used.cpus + extra.cpus) / total.cpus;
    if (total.memMb > 0) load = Math.max(load, (used.memMb + extra.memMb) / total.memMb);
    if (total.diskMb > 0) load = Math.max(load, (used.diskMb + extra.diskMb) / total.diskMb);
    if (total.gpus > 0) load = Math.max(load, (used.gpus + extra.gpus) / total.gpus);
    return load;
  }
}

/** The pools an app may draw from, in order: its role's reservations, then `*` (Marathon: `acceptedResourceRoles` ⊆ {role, `*`}; absent = both). */
export function acceptedPools(app: PlacementApp): string[] {
  const accepted = app.acceptedResourceRoles ?? [app.role, '*'];
  const pools: string[] = [];
  if (app.role !== '*' && accepted.includes(app.role)) pools.push(app.role);
  if (accepted.includes('*')) pools.push('*');
  return pools;
}

/** The pools an existing task of `role` is charged to. */
export function taskPools(role: string): readonly string[] {
  return role === '*' ? ['*'] : [role, '*'];
}

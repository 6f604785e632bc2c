/**
 * `plan(view, options)`: placement as a pure function. It reads a
 * {@link ClusterStateView}, changes nothing, and returns a {@link Plan}:
 * the tasks to launch and, for every wanted instance it could not place,
 * why. The same view and options always give the same plan.
 *
 * One round, repeated until no demand is left or every app is blocked:
 *   1. DRF picks the role with the lowest weighted dominant share that
 *      still has placeable demand; within it, the app with the fewest
 *      instances placed in this plan (then the lower id).
 *   2. Quota: the role's limit must hold with one more instance.
 *   3. Feasibility: each placeable agent (healthy, no maintenance), in id
 *      order, must meet every constraint of the app.
 *   4. Fit: its accepted pools must hold the instance's scalars and ports.
 *   5. Score: `spread` takes the agent with fewest instances of the app,
 *      then the lowest load after placing (highest fraction used of any
 *      scalar), then the lowest id. `binpack` takes the highest load, then
 *      the lowest id.
 *   6. Plan: the instance is charged to the agent and role, and the loop goes on.
 * (The scan tests fit before the constraints because it is cheaper; an
 * agent must pass both, and a reason reports constraints first.)
 * An app that cannot place an instance stops there (the state only fills
 * up within a plan, so a later attempt would fail too) and gets one
 * {@link Unplaced} entry for all its remaining instances.
 *
 * Why spread by default: Mesos offers whole agents in shuffled order and
 * Marathon takes a few instances per offer, so in practice an app's
 * instances land on many agents; spreading makes that deterministic and
 * keeps one agent's loss from taking several instances.
 */
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';
import { canonicalField, compileConstraint, fieldValue, meetsConstraint, type CompiledConstraint, type FieldContext } from './constraints.ts';
import { dominantShare, drfCompare } from './drf.ts';
import { AgentLedger, SCALE, acceptedPools, addScalars, appResources, fromMilli, hostPortRequests, taskPools, toMilli, zeroScalars, type MutableScalars } from './resources.ts';
import {
  SCALAR_NAMES,
  type ClusterStateView,
  type Missing,
  type Placement,
  type PlacementApp,
  type PlacementRole,
  type Plan,
  type PlanOptions,
  type RoleShare,
  type Scalars,
  type Unplaced,
  type UnplacedReason,
} from './types.ts';

interface AppState {
  readonly app: PlacementApp;
  /** Per instance, as the app states it (what a placement reports). */
  readonly resources: Scalars;
  /** Per instance, in thousandths (what the ledgers count). */
  readonly need: Scalars;
  readonly pools: readonly string[];
  readonly ports: readonly number[];
  /** The app's constraints, each with its field's live counts (the same map object as in `counts`). */
  readonly checks: { readonly constraint: CompiledConstraint; readonly field: string; readonly ctx: FieldContext }[];
  /** Canonical field → value → instances (only values with instances). */
  readonly counts: Map<string, Map<string, number>>;
  readonly target: number;
  remaining: number;
  placedNow: number;
}

interface RoleState {
  readonly name: string;
  readonly weight: number;
  readonly quota: PlacementRole['quota'];
  /** Thousandths, on agents that are not unreachable. */
  readonly allocated: MutableScalars;
  tasks: number;
  share: number;
  /** Apps of this role that still want instances and are not blocked, by id. */
  readonly active: AppState[];
}

const byId = <T extends { readonly id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Compute a placement plan. Pure: never mutates `view`, never throws for expected outcomes. */
export function plan(view: ClusterStateView, options: PlanOptions = {}): Plan {
  const strategy = options.strategy ?? 'spread';

  // --- Ledgers: agents in id order (first record wins on a duplicate id).
  const ledgers = new Map<string, AgentLedger>();
  for (const agent of [...view.agents].sort(byId)) if (!ledgers.has(agent.id)) ledgers.set(agent.id, new AgentLedger(agent));
  const placeable = [...ledgers.values()].filter((l) => l.placeable);
  const totals = zeroScalars();
  for (const l of ledgers.values()) if (l.counted) addScalars(totals, l.total);

  // --- Roles.
  const roleDefs = new Map<string, PlacementRole>();
  for (const r of view.roles) if (!roleDefs.has(r.name)) roleDefs.set(r.name, r);
  const roles = new Map<string, RoleState>();
  const role = (name: string): RoleState => {
    let r = roles.get(name);
    if (!r) {
      const def = roleDefs.get(name);
      const weight = def && def.weight > 0 ? def.weight : 1;
      r = { name, weight, quota: def?.quota, allocated: zeroScalars(), tasks: 0, share: 0, active: [] };
      roles.set(name, r);
    }
    return r;
  };

  // --- Existing tasks: charge agents and roles; remember where each app runs.
  const appAgents = new Map<string, (AgentLedger | undefined)[]>();
  for (const task of view.tasks) {
    if (TERMINAL_TASK_STATES.has(task.state)) continue;
    const ledger = ledgers.get(task.agentId);
    let where = appAgents.get(task.appId);
    if (!where) appAgents.set(task.appId, (where = []));
    where.push(ledger);
    if (!ledger) continue;
    const held = toMilli(task.resources);
    ledger.charge(held, taskPools(task.role), task.ports, task.appId);
    if (ledger.counted) {
      const r = role(task.role);
      addScalars(r.allocated, held);
      r.tasks++;
    }
  }
  for (const r of roles.values()) r.share = dominantShare(r.allocated, totals, r.weight);
  const before = new Map([...roles.values()].map((r) => [r.name, r.share]));

  // GROUP_BY without a count: distinct values among placeable agents, per field (lazily).
  const distinct = new Map<string, number>();
  const distinctValues = (field: string): number => {
    let n = distinct.get(field);
    if (n === undefined) {
      const values = new Set<string>();
      for (const l of placeable) {
        const v = fieldValue(l.agent, field);
        if (v !== undefined) values.add(v);
      }
      distinct.set(field, (n = values.size));
    }
    return n;
  };

  // --- Apps and their demand.
  const unplaced: Unplaced[] = [];
  const seenApps = new Set<string>();
  for (const app of [...view.apps].sort(byId)) {
    if (seenApps.has(app.id)) continue;
    seenApps.add(app.id);
    const where = appAgents.get(app.id) ?? [];
    const asked = options.launch?.[app.id];
    const wanted = asked ?? app.instances - where.length;
    const remaining = Number.isFinite(wanted) ? Math.max(0, Math.floor(wanted)) : 0;
    if (remaining === 0) continue;
    const state: AppState = {
      app,
      resources: appResources(app),
      need: toMilli(appResources(app)),
      pools: acceptedPools(app),
      ports: hostPortRequests(app),
      checks: [],
      counts: new Map(),
      target: Math.max(app.instances, where.length + remaining),
      remaining,
      placedNow: 0,
    };
    for (const constraint of app.constraints.map(compileConstraint)) {
      const field = canonicalField(constraint.field);
      let counts = state.counts.get(field);
      if (!counts) {
        counts = new Map<string, number>();
        for (const ledger of where) {
          const v = ledger ? fieldValue(ledger.agent, field) : undefined;
          if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
        }
        state.counts.set(field, counts);
      }
      const needsDistinct = constraint.operator === 'GROUP_BY' && constraint.count === undefined;
      state.checks.push({ constraint, field, ctx: { counts, instances: state.target, distinctValues: needsDistinct ? distinctValues(field) : 0 } });
    }
    const r = role(app.role);
    if (placeable.length === 0) unplaced.push({ appId: app.id, instances: remaining, reason: { kind: 'no-agents' } });
    else if (state.pools.length === 0)
      unplaced.push({ appId: app.id, instances: remaining, reason: { kind: 'no-resources-for-roles', acceptedResourceRoles: app.acceptedResourceRoles ?? [] } });
    else r.active.push(state);
  }

  const placements: Placement[] = [];
  const block = (r: RoleState, state: AppState, reason: UnplacedReason): void => {
    unplaced.push({ appId: state.app.id, instances: state.remaining, reason });
    r.active.splice(r.active.indexOf(state), 1);
  };

  // --- The DRF loop (roles scanned in name order, so ties never depend on the view's order).
  const roleList = [...roles.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (;;) {
    let next: RoleState | undefined;
    for (const r of roleList) if (r.active.length > 0 && (!next || drfCompare(r, next) < 0)) next = r;
    if (!next) break;
    const r = next;
    let state = r.active[0]!;
    for (const s of r.active) if (s.placedNow < state.placedNow || (s.placedNow === state.placedNow && s.app.id < state.app.id)) state = s;

    const exceeded = quotaExceeded(r, state.need);
    if (exceeded) {
      block(r, state, { kind: 'quota', role: r.name, exceeded });
      continue;
    }

    let best: AgentLedger | undefined;
    let bestCount = 0;
    let bestLoad = 0;
    const spread = strategy === 'spread';
    const appId = state.app.id;
    for (const ledger of placeable) {
      const count = spread ? (ledger.appCounts.get(appId) ?? 0) : 0;
      if (best && count > bestCount) continue;
      if (!ledger.fits(state.need, state.pools, state.ports)) continue;
      if (state.checks.length > 0 && failedConstraint(state, ledger) >= 0) continue;
      const load = ledger.loadWith(state.need);
      const better = !best || (spread ? count < bestCount || load < bestLoad : load > bestLoad);
      if (better) {
        best = ledger;
        bestCount = count;
        bestLoad = load;
      }
    }
    if (!best) {
      block(r, state, explain(state, placeable));
      continue;
    }

    const ports = best.choosePorts(state.ports);
    best.charge(state.need, state.pools, ports, state.app.id);
    for (const [field, counts] of state.counts) {
      const v = fieldValue(best.agent, field);
      if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    placements.push({ appId: state.app.id, agentId: best.agent.id, hostname: best.agent.hostname, role: r.name, resources: state.resources, ports });
    addScalars(r.allocated, state.need);
    r.tasks++;
    r.share = dominantShare(r.allocated, totals, r.weight);
    state.placedNow++;
    if (--state.remaining === 0) r.active.splice(r.active.indexOf(state), 1);
  }

  unplaced.sort((a, b) => (a.appId < b.appId ? -1 : a.appId > b.appId ? 1 : 0));
  const shares: RoleShare[] = roleList.map((x) => ({ role: x.name, weight: x.weight, before: before.get(x.name) ?? 0, after: x.share }));
  return { placements, unplaced, shares };
}

function quotaExceeded(r: RoleState, add: Scalars): Partial<Scalars> | undefined {
  if (!r.quota) return undefined;
  let out: Partial<Record<keyof Scalars, number>> | undefined;
  for (const name of SCALAR_NAMES) {
    const limit = r.quota[name];
    if (limit === undefined || add[name] <= 0) continue;
    const over = r.allocated[name] + add[name] - Math.round(limit * SCALE);
    if (over > 0) (out ??= {})[name] = fromMilli(over);
  }
  return out;
}

/** Why no placeable agent took the instance: the constraint that turned most agents away, or the closest agent's shortfall. */
/** Index of the first check the agent fails, or -1. */
function failedConstraint(state: AppState, ledger: AgentLedger): number {
  const checks = state.checks;
  for (let i = 0; i < checks.length; i++) {
    const { constraint, field, ctx } = checks[i]!;
    if (!meetsConstraint(constraint, fieldValue(ledger.agent, field), ctx)) return i;
  }
  return -1;
}

function explain(state: AppState, placeable: readonly AgentLedger[]): UnplacedReason {
  const turnedAway = new Array<number>(state.checks.length).fill(0);
  let closest: { ledger: AgentLedger; missing: Missing; kinds: number } | undefined;
  for (const ledger of placeable) {
    const failed = failedConstraint(state, ledger);
    if (failed >= 0) {
      turnedAway[failed]!++;
      continue;
    }
    const missing = ledger.missing(state.need, state.pools, state.ports);
    const kinds = Object.keys(missing).length;
    if (!closest || kinds < closest.kinds) closest = { ledger, missing, kinds };
  }
  if (closest) return { kind: 'insufficient', agentId: closest.ledger.agent.id, missing: closest.missing };
  let worst = 0;
  for (let i = 1; i < turnedAway.length; i++) if (turnedAway[i]! > turnedAway[worst]!) worst = i;
  return { kind: 'constraint', constraint: [...state.checks[worst]!.constraint.source], agents: turnedAway[worst]! };
}

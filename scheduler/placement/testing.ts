/**
 * Builders for placement tests: minimal records with the model's defaults,
 * and `checkPlan`, an independent checker of a plan's safety invariants
 * (written directly from the rules, not by calling the planner's code).
 */
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';
import type { ClusterStateView, Placement, PlacementAgent, PlacementApp, PlacementTask, Plan } from './types.ts';

export function agent(id: string, extra: Partial<PlacementAgent> & { cpus?: number; memMb?: number; diskMb?: number; gpus?: number } = {}): PlacementAgent {
  const { cpus = 4, memMb = 4096, diskMb = 10000, gpus = 0, ...rest } = extra;
  return {
    id,
    hostname: `${id}.example`,
    attributes: {},
    resources: { cpus, memMb, diskMb, gpus, ports: [{ begin: 10000, end: 10100 }] },
    reservations: [],
    health: { status: 'healthy', lastSeenAt: '2026-01-01T00:00:00.000Z' },
    maintenance: 'none',
    ...rest,
  };
}

export function app(id: string, extra: Partial<PlacementApp> = {}): PlacementApp {
  return {
    id,
    instances: 1,
    cpus: 1,
    mem: 128,
    disk: 0,
    gpus: 0,
    role: '*',
    constraints: [],
    portDefinitions: [],
    requirePorts: false,
    networks: [{ mode: 'host' }],
    ...extra,
  };
}

let taskSeq = 0;
export function task(appId: string, agentId: string, extra: Partial<PlacementTask> = {}): PlacementTask {
  return {
    id: `t${++taskSeq}`,
    appId,
    agentId,
    state: 'RUNNING',
    ports: [],
    resources: { cpus: 1, memMb: 128, diskMb: 0, gpus: 0 },
    role: '*',
    ...extra,
  };
}

export function view(parts: Partial<ClusterStateView>): ClusterStateView {
  return { agents: [], tasks: [], apps: [], roles: [], ...parts };
}

/** The tasks a plan's placements would become (to feed a later view). */
export function tasksOf(placements: readonly Placement[], prefix = 'p'): PlacementTask[] {
  return placements.map((p, i) => ({
    id: `${prefix}${i}`,
    appId: p.appId,
    agentId: p.agentId,
    state: 'RUNNING',
    ports: [...p.ports],
    resources: p.resources,
    role: p.role,
  }));
}

const EPS = 1e-6;

function value(a: PlacementAgent | undefined, field: string): string | undefined {
  if (!a) return undefined;
  if (field === 'hostname' || field === '@hostname') return a.hostname;
  if (field === '@region') return a.region;
  if (field === '@zone') return a.zone;
  return Object.hasOwn(a.attributes, field) ? a.attributes[field] : undefined;
}

const same = (a: string, b: string): boolean =>
  a === b || (/^-?\d+(\.\d+)?$/.test(a) && /^-?\d+(\.\d+)?$/.test(b) && Math.round(Number(a) * 1000) === Math.round(Number(b) * 1000));

/**
 * Every broken safety invariant of `plan` against `v`, as messages (empty = sound):
 * placements only on healthy agents out of maintenance; no scalar over the
 * agent's total (existing non-terminal tasks included, when they fit before);
 * host ports inside the agent's ranges, unique on the agent, fixed ones as
 * asked; every placement meets its app's constraints, replayed in order;
 * never more placements than asked.
 */
export function checkPlan(v: ClusterStateView, plan: Plan, launch?: Readonly<Record<string, number>>): string[] {
  const problems: string[] = [];
  const agents = new Map(v.agents.map((a) => [a.id, a]));
  const apps = new Map(v.apps.map((a) => [a.id, a]));
  const live = v.tasks.filter((t) => !TERMINAL_TASK_STATES.has(t.state));
  const used = new Map<string, { cpus: number; memMb: number; diskMb: number; gpus: number; ports: Set<number> }>();
  const use = (agentId: string) => {
    let u = used.get(agentId);
    if (!u) used.set(agentId, (u = { cpus: 0, memMb: 0, diskMb: 0, gpus: 0, ports: new Set() }));
    return u;
  };
  for (const t of live) {
    const u = use(t.agentId);
    u.cpus += t.resources.cpus;
    u.memMb += t.resources.memMb;
    u.diskMb += t.resources.diskMb;
    u.gpus += t.resources.gpus;
    for (const p of t.ports) u.ports.add(p);
  }
  const overBefore = new Set<string>();
  for (const [id, u] of used) {
    const a = agents.get(id);
    if (a && (['cpus', 'memMb', 'diskMb', 'gpus'] as const).some((k) => u[k] > a.resources[k] + EPS)) overBefore.add(id);
  }
  const instances = new Map<string, (PlacementAgent | undefined)[]>();
  for (const t of live) {
    let list = instances.get(t.appId);
    if (!list) instances.set(t.appId, (list = []));
    list.push(agents.get(t.agentId));
  }
  const perApp = new Map<string, number>();
  for (const [i, p] of plan.placements.entries()) {
    const a = agents.get(p.agentId);
    const ap = apps.get(p.appId);
    const at = `placement ${i} (${p.appId} on ${p.agentId})`;
    if (!a || !ap) {
      problems.push(`${at}: unknown agent or app`);
      continue;
    }
    if (a.health.status !== 'healthy' || a.maintenance !== 'none') problems.push(`${at}: agent not placeable`);
    const u = use(a.id);
    u.cpus += p.resources.cpus;
    u.memMb += p.resources.memMb;
    u.diskMb += p.resources.diskMb;
    u.gpus += p.resources.gpus;
    if (!overBefore.has(a.id))
      for (const k of ['cpus', 'memMb', 'diskMb', 'gpus'] as const) if (u[k] > a.resources[k] + EPS) problems.push(`${at}: ${k} over-committed`);
    if (p.resources.cpus !== ap.cpus || p.resources.memMb !== ap.mem || p.resources.diskMb !== ap.disk || p.resources.gpus !== ap.gpus)
      problems.push(`${at}: resources differ from the app's`);
    for (const port of p.ports) {
      if (u.ports.has(port)) problems.push(`${at}: host port ${port} assigned twice`);
      u.ports.add(port);
      if (!a.resources.ports.some((r) => port >= r.begin && port <= r.end)) problems.push(`${at}: port ${port} outside the agent's ranges`);
    }
    const mode = ap.networks[0]?.mode ?? 'host';
    const wanted = mode === 'host' ? ap.portDefinitions.map((d) => (ap.requirePorts ? d.port : 0)) : (ap.container?.portMappings ?? []).flatMap((m) => (m.hostPort === undefined ? [] : [m.hostPort]));
    if (wanted.length !== p.ports.length) problems.push(`${at}: ${p.ports.length} ports for ${wanted.length} asked`);
    wanted.forEach((w, j) => {
      if (w !== 0 && p.ports[j] !== w) problems.push(`${at}: port ${j} is ${p.ports[j]}, fixed ${w}`);
    });
    let prior = instances.get(ap.id);
    if (!prior) instances.set(ap.id, (prior = []));
    const target = Math.max(ap.instances, (launch?.[ap.id] ?? 0) + prior.length - (perApp.get(ap.id) ?? 0));
    for (const c of ap.constraints) {
      const [field = '', op, arg] = c;
      const mine = value(a, field);
      const values = prior.map((x) => value(x, field)).filter((x): x is string => x !== undefined);
      const here = values.filter((x) => x === mine).length;
      let ok: boolean;
      if (mine === undefined) ok = op === 'UNLIKE';
      else if (op === 'UNIQUE') ok = here === 0;
      else if (op === 'CLUSTER') ok = arg !== undefined ? same(mine, arg) : values.every((x) => x === mine);
      else if (op === 'LIKE') ok = new RegExp(`^(?:${arg})$`).test(mine);
      else if (op === 'UNLIKE') ok = !new RegExp(`^(?:${arg})$`).test(mine);
      else if (op === 'MAX_PER') ok = here < Number(arg);
      else if (op === 'IS') ok = same(mine, arg!);
      else if (op === 'GROUP_BY') {
        const groups = new Set(values).size;
        const k = arg !== undefined ? Number(arg) : new Set(v.agents.filter((x) => x.health.status === 'healthy' && x.maintenance === 'none').map((x) => value(x, field)).filter((x) => x !== undefined)).size;
        ok = k > 0 && (here > 0 || groups < k) && here < Math.ceil(Math.max(target, 1) / k);
      } else ok = false;
      if (!ok) problems.push(`${at}: breaks ${JSON.stringify(c)}`);
    }
    prior.push(a);
    perApp.set(ap.id, (perApp.get(ap.id) ?? 0) + 1);
  }
  for (const [id, n] of perApp) {
    const ap = apps.get(id)!;
    const existing = live.filter((t) => t.appId === id).length;
    const asked = launch?.[id] ?? Math.max(0, ap.instances - existing);
    if (n > asked) problems.push(`${id}: ${n} placed, ${asked} asked`);
  }
  return problems;
}

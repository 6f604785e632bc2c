/**
 * Property tests (fast-check) of the placement core's invariants over random
 * clusters. Each run places twice: once on a fresh cluster, then again after
 * agents went unreachable, unhealthy or into maintenance, tasks ended and
 * apps changed, so the second round starts from tasks the first placed.
 * `STRATA_SLOW=1` runs many more and larger cases.
 */
import test from 'ava';
import fc from 'fast-check';
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';
import { dominantShare } from './drf.ts';
import { plan } from './plan.ts';
import { checkPlan, tasksOf } from './testing.ts';
import type { ClusterStateView, PlacementAgent, PlacementApp, PlacementRole, PlacementTask, Plan } from './types.ts';

const SLOW = process.env.STRATA_SLOW === '1';
const RUNS = SLOW ? 20000 : 400;
const MAX_AGENTS = SLOW ? 40 : 10;
const MAX_APPS = SLOW ? 12 : 6;
const SEEN = '2026-01-01T00:00:00.000Z';
const ROLE_NAMES = ['*', 'r1', 'r2', 'r3'] as const;

/** Usually the value, sometimes absent. */
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 4 });
/** Usually absent, sometimes the value. */
const rarely = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: arb, weight: 1 });

const agentArb = (i: number): fc.Arbitrary<PlacementAgent> =>
  fc
    .record({
      cpus: fc.constantFrom(0, 0.5, 1, 2, 4, 8, 8, 16),
      memMb: fc.constantFrom(0, 256, 1024, 4096, 8192),
      diskMb: fc.constantFrom(0, 100, 1000),
      gpus: fc.constantFrom(0, 0, 0, 1, 2),
      ports: fc.array(fc.record({ begin: fc.integer({ min: 10000, max: 10008 }), len: fc.integer({ min: -1, max: 10 }) }), { minLength: 1, maxLength: 2 }),
      region: maybe(fc.constantFrom('east', 'west')),
      zone: maybe(fc.constantFrom('z1', 'z2', 'z3')),
      rack: maybe(fc.constantFrom('a', 'b', 'c')),
      speed: maybe(fc.constantFrom('0.8', '1.5', '2')),
      status: fc.constantFrom('healthy', 'healthy', 'healthy', 'healthy', 'healthy', 'unhealthy', 'unreachable'),
      maintenance: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'draining', 'drained'),
      reservation: rarely(fc.record({ role: fc.constantFrom('r1', 'r2'), cpus: fc.constantFrom(0.5, 1, 4), memMb: fc.constantFrom(0, 512) })),
    })
    .map(
      (g): PlacementAgent => ({
        id: `a${i}`,
        hostname: `h${i}.example`,
        region: g.region,
        zone: g.zone,
        attributes: { ...(g.rack ? { rack: g.rack } : {}), ...(g.speed ? { speed: g.speed } : {}) },
        resources: { cpus: g.cpus, memMb: g.memMb, diskMb: g.diskMb, gpus: g.gpus, ports: g.ports.map((r) => ({ begin: r.begin, end: r.begin + r.len })) },
        reservations: g.reservation ? [{ ...g.reservation, diskMb: 0, gpus: 0 }] : [],
        health: { status: g.status as PlacementAgent['health']['status'], lastSeenAt: SEEN },
        maintenance: g.maintenance as PlacementAgent['maintenance'],
      }),
    );

const FIELDS = ['hostname', '@hostname', '@region', '@zone', 'rack', 'speed'] as const;
/** Values that some agents have for each field, and patterns that match some of them. */
const VALUES: Record<(typeof FIELDS)[number], string[]> = {
  hostname: ['h1.example', 'h[0-4].*'],
  '@hostname': ['h2.example', 'h[13579].example'],
  '@region': ['east', 'west', 'e.*'],
  '@zone': ['z1', 'z2', 'z[12]'],
  rack: ['a', 'b', 'a|b'],
  speed: ['0.8001', '2.000', '1.5'],
};
const constraintArb: fc.Arbitrary<string[]> = fc.constantFrom(...FIELDS).chain((field) =>
  fc.oneof(
    fc.constantFrom<string[]>([field, 'UNIQUE'], [field, 'CLUSTER'], [field, 'GROUP_BY']),
    fc.tuple(fc.constantFrom('CLUSTER', 'LIKE', 'UNLIKE', 'IS'), fc.constantFrom(...VALUES[field])).map(([op, value]) => [field, op, value]),
    fc.tuple(fc.constantFrom('MAX_PER', 'GROUP_BY'), fc.constantFrom('1', '2', '3')).map(([op, n]) => [field, op, n]),
  ),
);

const appArb = (i: number): fc.Arbitrary<PlacementApp> =>
  fc
    .record({
      instances: fc.integer({ min: 0, max: 8 }),
      cpus: fc.constantFrom(0, 0.1, 0.5, 1, 2),
      mem: fc.constantFrom(0, 64, 128, 512),
      disk: fc.constantFrom(0, 0, 50),
      gpus: fc.constantFrom(0, 0, 0, 0, 0, 0, 1),
      role: fc.constantFrom(...ROLE_NAMES),
      accepted: rarely(fc.subarray(['*', 'r1', 'r2', 'r3'], { minLength: 1 })),
      constraints: fc.array(constraintArb, { maxLength: 2 }),
      ports: fc.array(fc.constantFrom(0, 0, 0, 0, 10001, 10003, 10012), { maxLength: 3 }),
      requirePorts: fc.constantFrom(false, false, true),
      bridge: fc.boolean(),
    })
    .map((g): PlacementApp => {
      const base = {
        id: `/app${i}`,
        instances: g.instances,
        cpus: g.cpus,
        mem: g.mem,
        disk: g.disk,
        gpus: g.gpus,
        role: g.role,
        constraints: g.constraints,
        requirePorts: g.requirePorts,
        ...(g.accepted ? { acceptedResourceRoles: g.accepted } : {}),
      };
      if (!g.bridge) return { ...base, networks: [{ mode: 'host' }], portDefinitions: [...new Set(g.ports)].map((port) => ({ port, protocol: 'tcp', labels: {} })) };
      return {
        ...base,
        networks: [{ mode: 'container/bridge' }],
        portDefinitions: [],
        container: {
          type: 'DOCKER',
          portMappings: [...new Set(g.ports)].map((hostPort, j) => ({ containerPort: 80 + j, servicePort: 0, protocol: 'tcp', labels: {}, ...(j === 2 ? {} : { hostPort }) })),
        },
      };
    });

const roleArb: fc.Arbitrary<PlacementRole[]> = fc
  .array(fc.record({ name: fc.constantFrom(...ROLE_NAMES), weight: fc.constantFrom(0.5, 1, 2, 3), quota: rarely(fc.record({ cpus: fc.constantFrom(1, 4, 10) })) }), { maxLength: 4 })
  .map((rs) => rs.map((r) => ({ name: r.name, weight: r.weight, ...(r.quota ? { quota: r.quota } : {}) })));

const clusterArb = fc
  .tuple(fc.integer({ min: 1, max: MAX_AGENTS }), fc.integer({ min: 1, max: MAX_APPS }))
  .chain(([na, np]) =>
    fc.record({
      agents: fc.tuple(...Array.from({ length: na }, (_, i) => agentArb(i))),
      apps: fc.tuple(...Array.from({ length: np }, (_, i) => appArb(i))),
      roles: roleArb,
      strategy: fc.constantFrom('spread' as const, 'binpack' as const),
      // Second round: which agents change, which tasks end, new instance counts.
      agentChanges: fc.array(fc.constantFrom('same', 'same', 'unreachable', 'unhealthy', 'draining', 'healthy'), { minLength: na, maxLength: na }),
      taskEnds: fc.array(fc.constantFrom('RUNNING', 'RUNNING', 'STAGING', 'UNREACHABLE', 'FINISHED', 'KILLED', 'LOST'), { maxLength: 200 }),
      newInstances: fc.array(fc.integer({ min: 0, max: 10 }), { minLength: np, maxLength: np }),
      dropApp: fc.boolean(),
    }),
  );

type Cluster = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never;

function secondRound(v1: ClusterStateView, p1: Plan, c: Cluster): ClusterStateView {
  const agents = v1.agents.map((a, i): PlacementAgent => {
    switch (c.agentChanges[i]) {
      case 'unreachable':
        return { ...a, health: { status: 'unreachable', lastSeenAt: SEEN } };
      case 'unhealthy':
        return { ...a, health: { status: 'unhealthy', lastSeenAt: SEEN } };
      case 'draining':
        return { ...a, maintenance: 'draining' };
      case 'healthy':
        return { ...a, health: { status: 'healthy', lastSeenAt: SEEN }, maintenance: 'none' };
      default:
        return a;
    }
  });
  const tasks: PlacementTask[] = tasksOf(p1.placements).map((t, i) => ({ ...t, state: (c.taskEnds[i] ?? 'RUNNING') as PlacementTask['state'] }));
  const apps = v1.apps.map((a, i) => ({ ...a, instances: c.newInstances[i] ?? a.instances })).slice(c.dropApp ? 1 : 0);
  return { agents, tasks, apps, roles: v1.roles };
}

/** Every app's wanted instances are either placed or reported unplaced. */
function accountedFor(v: ClusterStateView, p: Plan): string[] {
  const problems: string[] = [];
  for (const app of v.apps) {
    const live = v.tasks.filter((t) => t.appId === app.id && !TERMINAL_TASK_STATES.has(t.state)).length;
    const wanted = Math.max(0, app.instances - live);
    const placed = p.placements.filter((x) => x.appId === app.id).length;
    const unplaced = p.unplaced.filter((u) => u.appId === app.id).reduce((n, u) => n + u.instances, 0);
    if (placed + unplaced !== wanted) problems.push(`${app.id}: wanted ${wanted}, placed ${placed}, unplaced ${unplaced}`);
  }
  return problems;
}

/** Quota limits hold after the plan for every role whose limit held before. */
function quotasHold(v: ClusterStateView, p: Plan): string[] {
  const problems: string[] = [];
  const counted = new Set(v.agents.filter((a) => a.health.status !== 'unreachable').map((a) => a.id));
  for (const role of v.roles) {
    const limit = role.quota?.cpus;
    if (limit === undefined || v.roles.find((r) => r.name === role.name) !== role) continue;
    const before = v.tasks.filter((t) => t.role === role.name && !TERMINAL_TASK_STATES.has(t.state) && counted.has(t.agentId)).reduce((n, t) => n + t.resources.cpus, 0);
    const added = p.placements.filter((x) => x.role === role.name).reduce((n, x) => n + x.resources.cpus, 0);
    if (added > 0 && before + added > limit + 1e-9) problems.push(`role ${role.name}: ${before + added} cpus over quota ${limit}`);
  }
  return problems;
}

test('safety: no over-commit, ports in range and unique, constraints met, never more than asked; twice, across agent failures', (t) => {
  const seen = { placements: 0, fixedPorts: 0, constrained: 0, reasons: {} as Record<string, number> };
  const tally = (v: ClusterStateView, p: Plan) => {
    seen.placements += p.placements.length;
    for (const x of p.placements) {
      const app = v.apps.find((a) => a.id === x.appId)!;
      if (app.constraints.length > 0) seen.constrained++;
      if ((app.requirePorts && app.portDefinitions.some((d) => d.port > 0)) || app.container?.portMappings.some((m) => (m.hostPort ?? 0) > 0)) seen.fixedPorts++;
    }
    for (const u of p.unplaced) seen.reasons[u.reason.kind] = (seen.reasons[u.reason.kind] ?? 0) + 1;
  };
  fc.assert(
    fc.property(clusterArb, (c) => {
      const v1: ClusterStateView = { agents: c.agents, apps: c.apps, roles: c.roles, tasks: [] };
      const p1 = plan(v1, { strategy: c.strategy });
      const v2 = secondRound(v1, p1, c);
      const p2 = plan(v2, { strategy: c.strategy });
      tally(v1, p1);
      tally(v2, p2);
      const problems = [
        ...checkPlan(v1, p1),
        ...accountedFor(v1, p1),
        ...quotasHold(v1, p1),
        ...checkPlan(v2, p2).map((x) => `round 2: ${x}`),
        ...accountedFor(v2, p2).map((x) => `round 2: ${x}`),
        ...quotasHold(v2, p2).map((x) => `round 2: ${x}`),
      ];
      if (problems.length > 0) throw new Error(problems.join('\n'));
    }),
    { numRuns: RUNS },
  );
  // What the runs exercised (so a generator that stops producing interesting cases shows).
  t.log(JSON.stringify(seen));
  t.true(seen.placements > RUNS && seen.constrained > 0 && seen.fixedPorts > 0);
});

test('determinism: the order of agents, apps, tasks and roles in the view does not change the plan', (t) => {
  fc.assert(
    fc.property(clusterArb, fc.integer(), (c, seed) => {
      const v1: ClusterStateView = { agents: c.agents, apps: c.apps, roles: c.roles, tasks: [] };
      const v2 = secondRound(v1, plan(v1), c);
      const shuffle = <T>(xs: readonly T[]): T[] => {
        const out = [...xs];
        let s = seed >>> 0;
        for (let i = out.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          const j = s % (i + 1);
          [out[i], out[j]] = [out[j]!, out[i]!];
        }
        return out;
      };
      const v3: ClusterStateView = { agents: shuffle(v2.agents), apps: shuffle(v2.apps), tasks: shuffle(v2.tasks), roles: shuffle(v2.roles) };
      // Duplicate role names are resolved first-wins, so keep role order when names repeat.
      const rolesUnique = new Set(v2.roles.map((r) => r.name)).size === v2.roles.length;
      const a = plan(v2, { strategy: c.strategy });
      const b = plan(rolesUnique ? v3 : { ...v3, roles: v2.roles }, { strategy: c.strategy });
      // Exactly, shares included: scalars are summed as integer thousandths.
      t.deepEqual(a, b);
    }),
    { numRuns: SLOW ? 1000 : 60 },
  );
});

// DRF fairness. Precondition: every role's tasks have the same shape and
// pools (no constraints, reservations, quotas or ports), and demand exceeds
// the cluster, so a task that does not fit for one role fits for none.
// Then, whenever role X received its last task it had the lowest share, so
// after the plan X's share minus one of its tasks' share is at most any
// other role's share.
const fairArb = fc.record({
  agents: fc.array(fc.record({ cpus: fc.constantFrom(1, 2, 4, 8, 16), memMb: fc.constantFrom(1024, 4096, 16384) }), { minLength: 1, maxLength: SLOW ? 50 : 12 }),
  shape: fc.record({ cpus: fc.constantFrom(0.25, 0.5, 1, 2), mem: fc.constantFrom(128, 256, 1024) }),
  roles: fc.uniqueArray(fc.record({ name: fc.constantFrom('*', 'r1', 'r2', 'r3', 'r4'), weight: fc.constantFrom(0.5, 1, 1.5, 2, 4) }), { minLength: 2, maxLength: 5, selector: (r) => r.name }),
  appsPerRole: fc.integer({ min: 1, max: 3 }),
  existing: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 20 }),
});

test('DRF fairness: weighted dominant shares after placement differ by at most one task\'s share', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fairArb, (c) => {
      const agents: PlacementAgent[] = c.agents.map((a, i) => ({
        id: `a${i}`,
        hostname: `h${i}`,
        attributes: {},
        resources: { cpus: a.cpus, memMb: a.memMb, diskMb: 0, gpus: 0, ports: [] },
        reservations: [],
        health: { status: 'healthy', lastSeenAt: SEEN },
        maintenance: 'none',
      }));
      const apps: PlacementApp[] = c.roles.flatMap((r, ri) =>
        Array.from({ length: c.appsPerRole }, (_, k) => ({
          id: `/r${ri}/app${k}`,
          instances: 1000,
          cpus: c.shape.cpus,
          mem: c.shape.mem,
          disk: 0,
          gpus: 0,
          role: r.name,
          constraints: [],
          portDefinitions: [],
          requirePorts: false,
          networks: [{ mode: 'host' as const }],
        })),
      );
      // Some existing tasks (of any shape that fits) so roles start unequal.
      const free = new Map(agents.map((a) => [a.id, a.resources.cpus]));
      const tasks: PlacementTask[] = [];
      for (const [i, [ri, ai]] of c.existing.entries()) {
        const role = c.roles[ri % c.roles.length]!;
        const agentId = agents[ai % agents.length]!.id;
        if (free.get(agentId)! < 1) continue;
        free.set(agentId, free.get(agentId)! - 1);
        tasks.push({ id: `e${i}`, appId: `/old${i}`, agentId, state: 'RUNNING', ports: [], resources: { cpus: 1, memMb: 0, diskMb: 0, gpus: 0 }, role: role.name });
      }
      const v: ClusterStateView = { agents, apps, tasks, roles: c.roles };
      const p = plan(v);
      const totals = { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 };
      for (const a of agents) {
        totals.cpus += a.resources.cpus;
        totals.memMb += a.resources.memMb;
      }
      const share = new Map<string, number>();
      const placedBy = new Map<string, number>();
      for (const r of c.roles) {
        const alloc = { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 };
        for (const x of [...tasks, ...p.placements]) {
          if (x.role !== r.name) continue;
          alloc.cpus += x.resources.cpus;
          alloc.memMb += x.resources.memMb;
        }
        share.set(r.name, dominantShare(alloc, totals, r.weight));
        placedBy.set(r.name, p.placements.filter((x) => x.role === r.name).length);
      }
      const taskShape = { cpus: c.shape.cpus, memMb: c.shape.mem, diskMb: 0, gpus: 0 };
      for (const x of c.roles) {
        if (placedBy.get(x.name) === 0) continue;
        const delta = dominantShare(taskShape, totals, x.weight);
        for (const y of c.roles) {
          if (share.get(x.name)! - delta > share.get(y.name)! + 1e-9) {
            throw new Error(`role ${x.name} at ${share.get(x.name)} (one task ${delta}) is ahead of ${y.name} at ${share.get(y.name)}`);
          }
        }
      }
      // Also: the plan's reported shares are these.
      for (const s of p.shares) if (share.has(s.role) && Math.abs(s.after - share.get(s.role)!) > 1e-9) throw new Error(`reported share of ${s.role} differs`);
    }),
    { numRuns: SLOW ? 2000 : 100 },
  ));
});

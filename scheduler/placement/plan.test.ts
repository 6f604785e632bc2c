import test from 'ava';
import { plan } from './plan.ts';
import { RecordingPlanSink } from './recorder.ts';
import { agent, app, checkPlan, task, tasksOf, view } from './testing.ts';
import type { ClusterStateView, PlacementAgent } from './types.ts';

const count = (ids: readonly string[]) => ids.reduce<Record<string, number>>((m, id) => ({ ...m, [id]: (m[id] ?? 0) + 1 }), {});
const deepFreeze = <T>(o: T): T => {
  if (o && typeof o === 'object') {
    Object.values(o).forEach(deepFreeze);
    Object.freeze(o);
  }
  return o;
};

// ---------------------------------------------------------------------------
// Purity and determinism

test('plan is pure: a deep-frozen view is read, not changed', (t) => {
  const v = deepFreeze(view({ agents: [agent('a'), agent('b')], apps: [app('/x', { instances: 3, portDefinitions: [{ port: 0, protocol: 'tcp', labels: {} }] })], tasks: [task('/x', 'a')] }));
  const copy = structuredClone(v);
  const p = plan(v);
  t.deepEqual(v, copy);
  t.is(p.placements.length, 2);
});

test('same input, same plan, whatever the order of the records', (t) => {
  const agents = Array.from({ length: 8 }, (_, i) => agent(`a${i}`, { cpus: 2 + (i % 3), zone: `z${i % 2}` }));
  const apps = [app('/a', { instances: 5, role: 'r1' }), app('/b', { instances: 4, role: 'r2', constraints: [['@zone', 'GROUP_BY']] }), app('/c', { instances: 3 })];
  const tasks = [task('/a', 'a1'), task('/c', 'a3', { state: 'FINISHED' })];
  const v1 = view({ agents, apps, tasks });
  const v2 = view({ agents: [...agents].reverse(), apps: [...apps].reverse(), tasks: [...tasks].reverse() });
  t.deepEqual(plan(v1), plan(v1));
  t.deepEqual(plan(v1), plan(v2));
});

// ---------------------------------------------------------------------------
// Scoring

test('spread (default): instances go one per agent before doubling up', (t) => {
  const v = view({ agents: [agent('a'), agent('b'), agent('c')], apps: [app('/x', { instances: 5 })] });
  t.deepEqual(count(plan(v).placements.map((p) => p.agentId)), { a: 2, b: 2, c: 1 });
});

test('spread prefers the less loaded agent among equals', (t) => {
  const v = view({ agents: [agent('a'), agent('b')], apps: [app('/x'), app('/y')], tasks: [task('/other', 'a', { resources: { cpus: 2, memMb: 0, diskMb: 0, gpus: 0 } })] });
  t.is(plan(v).placements.find((p) => p.appId === '/x')?.agentId, 'b');
});

test('binpack fills the most loaded agent that fits', (t) => {
  const v = view({ agents: [agent('a'), agent('b'), agent('c')], apps: [app('/x', { instances: 5 })], tasks: [task('/other', 'b')] });
  t.deepEqual(count(plan(v, { strategy: 'binpack' }).placements.map((p) => p.agentId)), { b: 3, a: 2 });
});

// ---------------------------------------------------------------------------
// Which agents are placeable

test('unreachable, unhealthy, draining and drained agents get nothing', (t) => {
  const seen = '2026-01-01T00:00:00.000Z';
  const agents: PlacementAgent[] = [
    agent('down', { health: { status: 'unreachable', lastSeenAt: seen } }),
    agent('sick', { health: { status: 'unhealthy', lastSeenAt: seen } }),
    agent('drain', { maintenance: 'draining' }),
    agent('drained', { maintenance: 'drained' }),
    agent('ok'),
  ];
  const p = plan(view({ agents, apps: [app('/x', { instances: 10, cpus: 0.1 })] }));
  t.deepEqual(new Set(p.placements.map((x) => x.agentId)), new Set(['ok']));
  t.is(p.placements.length, 10);
});

test('no placeable agent: every instance is unplaced with reason no-agents', (t) => {
  const p = plan(view({ agents: [agent('d', { maintenance: 'draining' })], apps: [app('/x', { instances: 3 })] }));
  t.deepEqual(p, { placements: [], unplaced: [{ appId: '/x', instances: 3, reason: { kind: 'no-agents' } }], shares: [{ role: '*', weight: 1, before: 0, after: 0 }] });
  t.deepEqual(plan(view({ apps: [app('/y')] })).unplaced, [{ appId: '/y', instances: 1, reason: { kind: 'no-agents' } }]);
});

// ---------------------------------------------------------------------------
// Resources and reasons

test('insufficient: the reason gives what the closest agent lacks', (t) => {
  const v = view({ agents: [agent('a', { cpus: 2, memMb: 1024 }), agent('b', { cpus: 1, memMb: 512 })], apps: [app('/big', { cpus: 3, mem: 1024 })] });
  t.deepEqual(plan(v).unplaced, [{ appId: '/big', instances: 1, reason: { kind: 'insufficient', agentId: 'a', missing: { cpus: 1 } } }]);
});

test('instances are placed until the cluster is full, the rest are unplaced', (t) => {
  const v = view({ agents: [agent('a', { cpus: 2 }), agent('b', { cpus: 2 })], apps: [app('/x', { instances: 6 })] });
  const p = plan(v);
  t.is(p.placements.length, 4);
  t.is(p.unplaced[0]?.instances, 2);
  t.is(p.unplaced[0]?.reason.kind, 'insufficient');
  t.deepEqual(checkPlan(v, p), []);
});

test('existing tasks hold resources; terminal ones do not; tasks already running count as instances', (t) => {
  const v = view({
    agents: [agent('a', { cpus: 2 })],
    apps: [app('/x', { instances: 2 }), app('/y', { instances: 1 })],
    tasks: [task('/x', 'a'), task('/old', 'a', { state: 'KILLED' }), task('/gone', 'a', { state: 'FAILED' })],
  });
  const p = plan(v);
  t.deepEqual(p.placements.map((x) => x.appId).sort(), ['/x']);
  t.deepEqual(p.unplaced, [{ appId: '/y', instances: 1, reason: { kind: 'insufficient', agentId: 'a', missing: { cpus: 1 } } }]);
});

test('gpus and disk are scalars like cpus', (t) => {
  const v = view({ agents: [agent('cpu'), agent('gpu', { gpus: 2, diskMb: 100 })], apps: [app('/ml', { instances: 3, gpus: 1, disk: 50 })] });
  const p = plan(v);
  t.deepEqual(p.placements.map((x) => x.agentId), ['gpu', 'gpu']);
  // The closest agent is the one lacking the fewest kinds of resource.
  t.deepEqual(p.unplaced[0]?.reason, { kind: 'insufficient', agentId: 'cpu', missing: { gpus: 1 } });
});

test('launch overrides the count: a rolling upgrade places new instances beside old ones, constraints counting both', (t) => {
  const v = view({ agents: [agent('a'), agent('b'), agent('c')], apps: [app('/x', { instances: 2, constraints: [['hostname', 'UNIQUE']] })], tasks: [task('/x', 'a'), task('/x', 'b')] });
  t.is(plan(v).placements.length, 0);
  const p = plan(v, { launch: { '/x': 2 } });
  t.deepEqual(p.placements.map((x) => x.agentId), ['c']);
  t.deepEqual(p.unplaced, [{ appId: '/x', instances: 1, reason: { kind: 'constraint', constraint: ['hostname', 'UNIQUE'], agents: 3 } }]);
});

// ---------------------------------------------------------------------------
// Ports

const portDef = (port = 0) => ({ port, protocol: 'tcp' as const, labels: {} });

test('dynamic host ports: lowest free first, skipping ports in use', (t) => {
  const v = view({ agents: [agent('a')], apps: [app('/x', { portDefinitions: [portDef(), portDef()] })], tasks: [task('/y', 'a', { ports: [10000, 10002] })] });
  t.deepEqual(plan(v).placements[0]?.ports, [10001, 10003]);
});

test('requirePorts: the defined ports are the host ports; a taken port is a reason', (t) => {
  const x = app('/x', { instances: 2, requirePorts: true, portDefinitions: [portDef(10050), portDef(0)] });
  const p = plan(view({ agents: [agent('a'), agent('b')], apps: [x] }));
  t.deepEqual(p.placements.map((q) => [q.agentId, q.ports]), [['a', [10050, 10000]], ['b', [10050, 10000]]]);
  const full = plan(view({ agents: [agent('a')], apps: [x] }));
  t.deepEqual(full.unplaced, [{ appId: '/x', instances: 1, reason: { kind: 'insufficient', agentId: 'a', missing: { hostPorts: [10050] } } }]);
  const outside = plan(view({ agents: [agent('a')], apps: [app('/z', { requirePorts: true, portDefinitions: [portDef(80)] })] }));
  t.deepEqual(outside.unplaced[0]?.reason, { kind: 'insufficient', agentId: 'a', missing: { hostPorts: [80] } });
});

test('without requirePorts a service port is not a host port', (t) => {
  const p = plan(view({ agents: [agent('a')], apps: [app('/x', { portDefinitions: [portDef(10050)] })] }));
  t.deepEqual(p.placements[0]?.ports, [10000]);
});

test('bridge mode: hostPort 0 is any port, a number is fixed, absent needs none', (t) => {
  const x = app('/x', {
    networks: [{ mode: 'container/bridge' }],
    portDefinitions: [],
    container: {
      type: 'DOCKER',
      portMappings: [
        { containerPort: 80, hostPort: 0, servicePort: 0, protocol: 'tcp', labels: {} },
        { containerPort: 81, servicePort: 0, protocol: 'tcp', labels: {} },
        { containerPort: 82, hostPort: 10000, servicePort: 0, protocol: 'tcp', labels: {} },
      ],
    },
  });
  t.deepEqual(plan(view({ agents: [agent('a')], apps: [x] })).placements[0]?.ports, [10001, 10000]);
});

test('port ranges run out: missing ports', (t) => {
  const a = agent('a', { resources: { cpus: 8, memMb: 8192, diskMb: 0, gpus: 0, ports: [{ begin: 5000, end: 5002 }] } });
  const p = plan(view({ agents: [a], apps: [app('/x', { instances: 2, cpus: 0.5, portDefinitions: [portDef(), portDef()] })] }));
  t.deepEqual(p.placements.map((q) => q.ports), [[5000, 5001]]);
  t.deepEqual(p.unplaced[0]?.reason, { kind: 'insufficient', agentId: 'a', missing: { ports: 1 } });
});

// ---------------------------------------------------------------------------
// DRF, weights, reservations, quota

const shareOf = (v: ClusterStateView, role: string, options = {}) => plan(v, options).shares.find((s) => s.role === role)?.after;

test('DRF: two roles with equal weights and more demand than room split the cluster evenly', (t) => {
  const v = view({ agents: [agent('a', { cpus: 10 }), agent('b', { cpus: 10 })], apps: [app('/r1', { instances: 50, role: 'r1' }), app('/r2', { instances: 50, role: 'r2' })] });
  const p = plan(v);
  t.deepEqual(count(p.placements.map((x) => x.role)), { r1: 10, r2: 10 });
  t.is(shareOf(v, 'r1'), 0.5);
});

test('DRF: a role with weight 3 gets three times the dominant share', (t) => {
  const v = view({
    agents: [agent('a', { cpus: 8 })],
    apps: [app('/r1', { instances: 50, role: 'heavy' }), app('/r2', { instances: 50, role: 'light' })],
    roles: [{ name: 'heavy', weight: 3 }],
  });
  t.deepEqual(count(plan(v).placements.map((x) => x.role)), { heavy: 6, light: 2 });
});

test('DRF: dominant share is per resource; a memory-heavy role and a cpu-heavy role balance', (t) => {
  const v = view({
    agents: [agent('a', { cpus: 9, memMb: 18 * 1024 })],
    apps: [app('/cpu', { instances: 50, role: 'c', cpus: 3, mem: 1024 }), app('/mem', { instances: 50, role: 'm', cpus: 1, mem: 4 * 1024 })],
  });
  // Ghodsi et al.'s example shape: A (1 cpu, 4 GB) gets 3, B (3 cpus, 1 GB) gets 2.
  t.deepEqual(count(plan(v).placements.map((x) => x.role)), { m: 3, c: 2 });
});

test('DRF: a role already holding resources waits until the others catch up', (t) => {
  const v = view({
    agents: [agent('a', { cpus: 10 })],
    apps: [app('/r1', { instances: 50, role: 'r1' }), app('/r2', { instances: 50, role: 'r2' })],
    tasks: [task('/r1', 'a', { role: 'r1', resources: { cpus: 4, memMb: 0, diskMb: 0, gpus: 0 } })],
  });
  t.deepEqual(count(plan(v).placements.map((x) => x.role)), { r2: 5, r1: 1 });
});

test('DRF: tasks on unreachable agents count neither in the total nor in the shares', (t) => {
  const seen = '2026-01-01T00:00:00.000Z';
  const v = view({
    agents: [agent('gone', { cpus: 10, health: { status: 'unreachable', lastSeenAt: seen } }), agent('a', { cpus: 4 })],
    apps: [app('/r1', { instances: 50, role: 'r1' }), app('/r2', { instances: 50, role: 'r2' })],
    tasks: [task('/r1', 'gone', { role: 'r1', resources: { cpus: 10, memMb: 0, diskMb: 0, gpus: 0 } })],
  });
  t.deepEqual(count(plan(v).placements.map((x) => x.role)), { r1: 2, r2: 2 });
});

test('within a role, apps take turns', (t) => {
  const v = view({ agents: [agent('a', { cpus: 4 })], apps: [app('/a', { instances: 10 }), app('/b', { instances: 10 })] });
  t.deepEqual(plan(v).placements.map((x) => x.appId), ['/a', '/b', '/a', '/b']);
});

test('reservations: a role uses its own reservation and *; others only *', (t) => {
  const a = agent('a', { cpus: 4, reservations: [{ role: 'ads', cpus: 3, memMb: 0, diskMb: 0, gpus: 0 }] });
  const v = view({ agents: [a], apps: [app('/web', { instances: 4 }), app('/ads', { instances: 4, role: 'ads' })] });
  const p = plan(v);
  t.deepEqual(count(p.placements.map((x) => x.appId)), { '/web': 1, '/ads': 3 });
});

test('acceptedResourceRoles: ["*"] keeps an app off its role\'s reservation; [role] keeps it on it', (t) => {
  const a = agent('a', { cpus: 4, reservations: [{ role: 'ads', cpus: 3, memMb: 1024, diskMb: 0, gpus: 0 }] });
  const unreserved = plan(view({ agents: [a], apps: [app('/x', { instances: 4, role: 'ads', acceptedResourceRoles: ['*'] })] }));
  t.is(unreserved.placements.length, 1);
  const reserved = plan(view({ agents: [a], apps: [app('/x', { instances: 4, role: 'ads', acceptedResourceRoles: ['ads'] })] }));
  t.is(reserved.placements.length, 3);
  const none = plan(view({ agents: [a], apps: [app('/x', { role: 'ads', acceptedResourceRoles: ['other'] })] }));
  t.deepEqual(none.unplaced[0]?.reason, { kind: 'no-resources-for-roles', acceptedResourceRoles: ['other'] });
});

test('quota: a role never goes over its limit', (t) => {
  const v = view({
    agents: [agent('a', { cpus: 16 })],
    apps: [app('/x', { instances: 10, role: 'dev' })],
    roles: [{ name: 'dev', weight: 1, quota: { cpus: 3.5 } }],
    tasks: [task('/y', 'a', { role: 'dev' })],
  });
  const p = plan(v);
  t.is(p.placements.length, 2);
  t.deepEqual(p.unplaced, [{ appId: '/x', instances: 8, reason: { kind: 'quota', role: 'dev', exceeded: { cpus: 0.5 } } }]);
});

test('shares report before and after for every role involved', (t) => {
  const v = view({ agents: [agent('a', { cpus: 4, memMb: 4096 })], apps: [app('/x', { role: 'r', cpus: 1, mem: 2048 })], tasks: [task('/y', 'a', { role: 'q' })] });
  t.deepEqual(plan(v).shares, [
    { role: 'q', weight: 1, before: 0.25, after: 0.25 },
    { role: 'r', weight: 1, before: 0, after: 0.5 },
  ]);
});

// ---------------------------------------------------------------------------
// Unreachable agents that held tasks

test('an agent that became unreachable: its instances still count, its replacement goes elsewhere', (t) => {
  const v1 = view({ agents: [agent('a'), agent('b'), agent('c')], apps: [app('/x', { instances: 2, constraints: [['hostname', 'UNIQUE']] })] });
  const first = plan(v1);
  t.deepEqual(first.placements.map((p) => p.agentId), ['a', 'b']);
  const seen = '2026-01-01T00:00:00.000Z';
  const v2 = view({ ...v1, agents: [agent('a', { health: { status: 'unreachable', lastSeenAt: seen } }), agent('b'), agent('c')], tasks: tasksOf(first.placements) });
  t.deepEqual(plan(v2).placements, []);
  const replaced = plan(v2, { launch: { '/x': 1 } });
  t.deepEqual(replaced.placements.map((p) => p.agentId), ['c']);
  t.deepEqual(checkPlan(v2, replaced, { '/x': 1 }), []);
});

// ---------------------------------------------------------------------------
// The PlanSink fake

test('RecordingPlanSink records plans and what it applied or refused', async (t) => {
  const sink = new RecordingPlanSink({ refuse: (p) => (p.agentId === 'b' ? 'agent b moved on' : undefined) });
  const p = plan(view({ agents: [agent('a'), agent('b')], apps: [app('/x', { instances: 2 })] }));
  const result = await sink.submitPlan(p);
  t.is(sink.plans.length, 1);
  t.is(sink.plans[0], p);
  t.deepEqual(result.applied.map((x) => x.agentId), ['a']);
  t.deepEqual(result.refused.map((x) => [x.placement.agentId, x.reason]), [['b', 'agent b moved on']]);
  t.deepEqual(sink.applied.map((x) => x.agentId), ['a']);
});

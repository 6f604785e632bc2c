/**
 * Deployment status beyond Marathon, in the pure reconcile: why a
 * deployment waits (wait reasons), readiness gating a rolling upgrade, the
 * deadline that marks a deployment failed (and asks for its rollback), the
 * rollback plan, and UNIQUE meeting minimumHealthCapacity 1 on a small
 * cluster.
 */
import test from 'ava';
import fc from 'fast-check';
import { TERMINAL_TASK_STATES, type App, type Deployment, type Task } from '../../control-plane/model/schemas.ts';
import { validateRecord } from '../../control-plane/model/validate.ts';
import { planDeployment } from '../deployments/plan.ts';
import { planRollback } from '../deployments/rollback.ts';
import { freeingHelps, isEmpty, ready, reconcile, type BackoffState, type ReconcileActions, type ReconcileView } from './reconcile.ts';
import { T0, agentStep, applyActions, counterUuid, mkAgent, mkApp, mkDeployment, view } from './testing.ts';

const iso = (ms: number): string => new Date(ms).toISOString();
const run = (v: ReconcileView, now = T0, backoff?: ReadonlyMap<string, BackoffState>): ReconcileActions => reconcile(v, { now, newUuid: counterUuid, ...(backoff ? { backoff } : {}) });
const live = (v: ReconcileView, appId: string): Task[] => v.tasks.filter((t) => t.appId === appId && !TERMINAL_TASK_STATES.has(t.state));
const deploymentFor = (current: App[], target: App[], id = 'd1'): Deployment => {
  const p = planDeployment(current, target, { version: target[0]!.version });
  return { ...mkDeployment(id, p.steps, p.affectedApps), version: p.version, previous: p.affectedApps.map((app) => ({ app, ...(current.find((a) => a.id === app) ? { version: current.find((a) => a.id === app)!.version } : {}) })) };
};
const step = (v: ReconcileView, now = T0): ReconcileView => agentStep(applyActions(v, run(v, now), iso(now)), iso(now));
const reasons = (a: ReconcileActions, id = 'd1'): string[] => (a.updateDeployments.find((d) => d.id === id)?.waitReasons ?? []).map((r) => `${r.app} ${r.reason}`);

test('wait reasons: no capacity names what the closest agent lacks; an unmet constraint names the constraint', (t) => {
  const big = mkApp('/big', { instances: 1, cpus: 64 });
  const picky = mkApp('/picky', { instances: 2, constraints: [['rack', 'LIKE', 'r9']] });
  const d = deploymentFor([], [big, picky]);
  const a = run(view({ apps: [big, picky], agents: [mkAgent('a1', { attributes: { rack: 'r1' } })], deployments: [d] }));
  t.deepEqual(a.launch, []);
  const stored = a.updateDeployments[0]!;
  t.deepEqual(validateRecord('deployment', stored), [], 'a valid deployment record');
  t.deepEqual(stored.waitReasons!.map((r) => [r.app, r.reason, r.instances]), [['/big', 'no-capacity', 1], ['/picky', 'constraint-unmet', 2]]);
  t.regex(stored.waitReasons![0]!.message, /the closest \(a1\) lacks cpus 60/);
  t.regex(stored.waitReasons![1]!.message, /constraint rack:LIKE:r9 turned away 1 agent/);
  t.is(stored.waitReasons![0]!.since, iso(T0));
  // The reasons are stable: the next round (later) writes nothing, and `since` stays.
  const v = applyActions(view({ apps: [big, picky], agents: [mkAgent('a1', { attributes: { rack: 'r1' } })], deployments: [d] }), a, iso(T0));
  const again = run(v, T0 + 5000);
  t.true(isEmpty(again), JSON.stringify(again.updateDeployments));
});

test('wait reasons: an app held by its dependency, tasks starting, health failing', (t) => {
  const db = mkApp('/db', { instances: 1, healthChecks: [{ protocol: 'COMMAND', command: { value: 'true' }, gracePeriodSeconds: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 0, delaySeconds: 0, ignoreHttp1xx: false }] });
  const web = mkApp('/web', { instances: 1, dependencies: ['/db'] });
  const d = deploymentFor([], [db, web]);
  let v = view({ apps: [db, web], agents: [mkAgent('a1')], deployments: [d] });
  const first = run(v);
  t.deepEqual(first.launch.map((x) => x.appId), ['/db']);
  t.deepEqual(reasons(first), ['/db tasks-starting', '/web dependency-not-ready']);
  t.regex(first.updateDeployments[0]!.waitReasons![1]!.message, /waits for step 2 of 3: \/db not yet ready/);
  v = agentStep(applyActions(v, first, iso(T0)), iso(T0));
  const running = run(v);
  t.deepEqual(reasons(running), ['/db health-failing', '/web dependency-not-ready']);
  t.regex(running.updateDeployments[0]!.waitReasons![0]!.message, /no passing health check yet/);
  v = applyActions(v, running, iso(T0));
  v = { ...v, tasks: v.tasks.map((x) => ({ ...x, healthCheckResults: [{ alive: false, consecutiveFailures: 1, lastFailure: iso(T0), lastFailureCause: 'exit code 1' }] })) };
  t.regex(run(v).updateDeployments[0]!.waitReasons![0]!.message, /last failure: exit code 1/);
  v = { ...v, tasks: v.tasks.map((x) => ({ ...x, healthCheckResults: [{ alive: true, consecutiveFailures: 0 }] })) };
  const released = run(v);
  t.deepEqual(released.launch.map((x) => x.appId), ['/web'], 'the dependency is healthy: the app starts');
});

const READINESS = { name: 'ready', protocol: 'HTTP' as const, path: '/ready', portName: 'http', intervalSeconds: 2, timeoutSeconds: 1, httpStatusCodesForReady: [200], preserveLastResponse: true };
const withPort = { portDefinitions: [{ port: 0, protocol: 'tcp' as const, name: 'http', labels: {} }] };

test('readiness gates a rolling upgrade: old tasks stay until the new ones are healthy AND ready', (t) => {
  const v1 = mkApp('/r', { instances: 2, ...withPort, readinessChecks: [READINESS] });
  let v = view({ apps: [v1], agents: [mkAgent('a1', { cpus: 16 })] });
  v = step(v);
  v = { ...v, tasks: v.tasks.map((x) => ({ ...x, readinessCheckResults: [{ taskId: x.id, name: 'ready', ready: true }] })) };
  t.true(v.tasks.every((x) => ready(x, v1)));
  const v2: App = { ...v1, cmd: 'new', version: '2026-01-02T00:00:00.000Z' };
  const d = deploymentFor([v1], [v2]);
  v = { ...v, apps: [v2], deployments: [d] };
  const a = run(v);
  t.is(a.launch.length, 2);
  t.is(a.kill.length, 0);
  v = agentStep(applyActions(v, a, iso(T0)), iso(T0));
  const notReady = (x: Task): Task => (x.version === v2.version ? { ...x, readinessCheckResults: [{ taskId: x.id, name: 'ready', ready: false, lastResponse: { status: 503, contentType: 'text/plain', body: 'warming up' } }] } : x);
  v = { ...v, tasks: v.tasks.map(notReady) };
  const waiting = run(v);
  t.is(waiting.kill.length, 0, 'RUNNING and healthy but not ready: no old task is killed');
  t.deepEqual(reasons(waiting), ['/r readiness-failing']);
  t.regex(waiting.updateDeployments[0]!.waitReasons![0]!.message, /last response HTTP 503/);
  t.deepEqual(waiting.updateDeployments[0]!.currentActions[0]!.readinessCheckResults.map((r) => r.ready), [false, false], 'Marathon\'s currentActions[].readinessCheckResults');
  v = { ...v, tasks: v.tasks.map((x) => (x.version === v2.version ? { ...x, readinessCheckResults: [{ taskId: x.id, name: 'ready', ready: true }] } : x)) };
  const go = run(v);
  t.is(go.kill.length, 2);
  t.true(go.kill.every((k) => k.reason === 'upgrade'));
});

test('a deployment past its deadline is marked failed, goes no further, and asks for its rollback', (t) => {
  const a1 = mkApp('/a', { instances: 1 });
  const b1 = mkApp('/b', { instances: 1, dependencies: ['/a'] });
  let v = view({ apps: [a1, b1], agents: [mkAgent('a1')] });
  for (let i = 0; i < 3; i++) v = step(v);
  const a2: App = { ...a1, constraints: [['hostname', 'LIKE', 'nowhere']], version: '2026-01-02T00:00:00.000Z' };
  const b2: App = { ...b1, cmd: 'b2', version: '2026-01-02T00:00:00.000Z' };
  const d = { ...deploymentFor([a1, b1], [a2, b2]), deadline: iso(T0 + 60_000), rollbackOnFailure: true };
  v = { ...v, apps: [a2, b2], deployments: [d] };
  const before = run(v, T0 + 1000);
  t.is(before.wakeAt, T0 + 60_000, 'the controller wakes at the deadline');
  t.like(before.updateDeployments[0], { state: 'running' });
  v = applyActions(v, before, iso(T0 + 1000));
  const late = run(v, T0 + 60_000);
  const failed = late.updateDeployments[0]!;
  t.like(failed, { state: 'failed', failedAt: iso(T0 + 60_000), currentStep: 1 });
  t.regex(failed.failureMessage!, /deadline .* passed at step 1 of 2: \/a: 1 instance\(s\) fit on no agent: constraint hostname:LIKE:nowhere/);
  t.deepEqual(late.rollbacks, [], 'the failure is written first');
  t.deepEqual(validateRecord('deployment', failed), []);
  v = applyActions(v, late, iso(T0 + 60_000));
  const next = run(v, T0 + 61_000);
  t.deepEqual(next.rollbacks, ['d1']);
  t.false(next.launch.some((x) => x.appId === '/b'), '/b (a later step) stays held');
  // Without rollbackOnFailure the failed deployment simply stays (and locks) until a rollback or a forced change.
  const kept = run({ ...v, deployments: [{ ...v.deployments[0]!, rollbackOnFailure: false }] }, T0 + 61_000);
  t.deepEqual(kept.rollbacks, []);
  t.deepEqual(kept.completeDeployments, []);
});

test('planRollback restores the previous versions, removes new apps, and plans the rollback deployment', (t) => {
  const a1 = mkApp('/a', { instances: 2 });
  const a2: App = { ...a1, cmd: 'v2', version: '2026-01-02T00:00:00.000Z' };
  const n = mkApp('/new', {}, '2026-01-02T00:00:00.000Z');
  const failed: Deployment = { ...deploymentFor([a1], [a2, n]), state: 'failed' };
  const plan = planRollback(failed, new Map([[a2.id, a2], [n.id, n]]), new Map([[`/a@${a1.version}`, a1]]), { now: Date.parse('2026-01-03T00:00:00.000Z'), id: 'rb' });
  if ('error' in plan) return t.fail(plan.error);
  t.deepEqual(plan.put.map((x) => [x.id, x.cmd, x.version]), [['/a', a1.cmd, '2026-01-03T00:00:00.000Z']]);
  t.deepEqual(plan.remove, ['/new']);
  t.like(plan.deployment, { id: 'rb', rollbackOf: 'd1', affectedApps: ['/a', '/new'] });
  t.deepEqual(validateRecord('deployment', plan.deployment), []);
  t.deepEqual(planRollback(failed, new Map([[a2.id, a2]]), new Map(), { now: T0, id: 'x' }), { error: `cannot roll back /a: its version ${a1.version} is no longer stored` });
});

test('UNIQUE with minimumHealthCapacity 1 on a cluster with no spare agent: the upgrade ends, never more than one instance below', (t) => {
  // What Strata chose: when no new instance fits anywhere and nothing is in flight, one old instance is
  // killed to free its place (capacity dips by one, at most one at a time), rather than a deployment that never ends.
  t.notThrows(() => fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 2 }), (n, spare) => {
      const agents = Array.from({ length: n + spare }, (_, i) => mkAgent(`a${i}`));
      const v1 = mkApp('/u', { instances: n, constraints: [['hostname', 'UNIQUE']], upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 1 } });
      let v = view({ apps: [v1], agents });
      for (let i = 0; i < 3; i++) v = step(v);
      const v2: App = { ...v1, cmd: 'v2', version: '2026-01-02T00:00:00.000Z' };
      v = { ...v, apps: [v2], deployments: [deploymentFor([v1], [v2])] };
      for (let i = 0; i < 4 * n + 4 && v.deployments.length > 0; i++) {
        v = step(v);
        const running = live(v, '/u').filter((x) => x.state === 'RUNNING');
        if (running.length < n - 1) return false;
        if (new Set(live(v, '/u').map((x) => x.agentId)).size !== live(v, '/u').length) return false;
      }
      return v.deployments.length === 0 && live(v, '/u').every((x) => x.version === v2.version) && live(v, '/u').length === n;
    }),
  ));
});

test('an upgrade whose new tasks meet no agent\'s constraint keeps every old task (killing one frees nothing)', (t) => {
  t.true(freeingHelps({ kind: 'constraint', constraint: ['hostname', 'UNIQUE'], agents: 2 }));
  t.true(freeingHelps({ kind: 'constraint', constraint: ['rack', 'MAX_PER', '1'], agents: 2 }));
  t.true(freeingHelps({ kind: 'insufficient', agentId: 'a1', missing: { cpus: 1 } }));
  t.false(freeingHelps({ kind: 'constraint', constraint: ['hostname', 'LIKE', 'nowhere'], agents: 2 }));
  t.false(freeingHelps({ kind: 'constraint', constraint: ['rack', 'CLUSTER', 'r1'], agents: 2 }));
  t.false(freeingHelps({ kind: 'no-agents' }));
  const v1 = mkApp('/k', { instances: 2 });
  let v = view({ apps: [v1], agents: [mkAgent('a1')] });
  for (let i = 0; i < 3; i++) v = step(v);
  const v2: App = { ...v1, constraints: [['hostname', 'LIKE', 'nowhere']], version: '2026-01-02T00:00:00.000Z' };
  v = { ...v, apps: [v2], deployments: [deploymentFor([v1], [v2])] };
  for (let i = 0; i < 5; i++) v = step(v);
  t.deepEqual(live(v, '/k').map((x) => [x.version, x.state]), [[v1.version, 'RUNNING'], [v1.version, 'RUNNING']]);
  t.deepEqual(v.deployments[0]!.waitReasons!.map((r) => r.reason), ['constraint-unmet']);
});

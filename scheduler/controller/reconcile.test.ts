import test from 'ava';
import fc from 'fast-check';
import { TERMINAL_TASK_STATES, type App, type Task } from '../../control-plane/model/schemas.ts';
import { validateRecord } from '../../control-plane/model/validate.ts';
import { planDeployment } from '../deployments/plan.ts';
import { backoffDelayMs, healthExceeded, isEmpty, maxCapacity, ready, minHealthy, reconcile, taskIdFor, type BackoffState, type ReconcileActions, type ReconcileView } from './reconcile.ts';
import { T0, agentStep, applyActions, counterUuid, mkAgent, mkApp, mkDeployment, view } from './testing.ts';

const iso = (ms: number): string => new Date(ms).toISOString();
const run = (v: ReconcileView, now = T0, backoff?: ReadonlyMap<string, BackoffState>): ReconcileActions =>
  reconcile(v, { now, newUuid: counterUuid, ...(backoff ? { backoff } : {}) });

/** Reconcile, apply, let the fake agent act; until nothing is left to do (or `rounds` pass). */
function converge(v: ReconcileView, rounds = 30, now = T0): { view: ReconcileView; rounds: number } {
  let backoff: ReadonlyMap<string, BackoffState> | undefined;
  for (let i = 0; i < rounds; i++) {
    const a = run(v, now, backoff);
    backoff = a.backoff;
    if (isEmpty(a) && v.tasks.every((t) => t.state !== 'STAGING' && t.state !== 'KILLING')) return { view: v, rounds: i };
    v = agentStep(applyActions(v, a, iso(now)), iso(now));
  }
  return { view: v, rounds };
}

const live = (v: ReconcileView, appId: string): Task[] => v.tasks.filter((t) => t.appId === appId && !TERMINAL_TASK_STATES.has(t.state));

test('task ids have Marathon\'s form', (t) => {
  t.is(taskIdFor('/group/web', 'abc'), 'group_web.instance-abc._app.1');
  t.is(taskIdFor('/web', 'abc'), 'web.instance-abc._app.1');
});

test('capacity and backoff arithmetic', (t) => {
  const app = mkApp('/a', { instances: 3, upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.5 } });
  t.is(maxCapacity(app), 4);
  t.is(minHealthy(app), 2);
  const b = mkApp('/b', { backoffSeconds: 1, backoffFactor: 2, maxLaunchDelaySeconds: 5 });
  t.deepEqual([1, 2, 3, 4, 5].map((n) => backoffDelayMs(b, n)), [1000, 2000, 4000, 5000, 5000]);
});

test('launches the missing instances as valid STAGING task records', (t) => {
  const app = mkApp('/group/web', { instances: 3, portDefinitions: [{ port: 10001 }] });
  const a = run(view({ apps: [app], agents: [mkAgent('a1'), mkAgent('a2')] }));
  t.is(a.launch.length, 3);
  for (const task of a.launch) {
    t.deepEqual(validateRecord('task', task), []);
    t.regex(task.id, /^group_web\.instance-.+\._app\.1$/);
    t.is(task.state, 'STAGING');
    t.is(task.version, app.version);
    t.is(task.ports.length, 1);
    t.deepEqual(task.servicePorts, [10001]);
    t.is(task.host, `${task.agentId}.example`);
  }
  t.deepEqual(new Set(a.launch.map((x) => x.agentId)), new Set(['a1', 'a2']), 'spread');
});

test('never places onto unreachable agents', (t) => {
  const app = mkApp('/a', { instances: 2 });
  const a = run(view({ apps: [app], agents: [mkAgent('bad', { status: 'unreachable' }), mkAgent('ok')] }));
  t.true(a.launch.every((x) => x.agentId === 'ok'));
  const none = run(view({ apps: [app], agents: [mkAgent('bad', { status: 'unreachable' })] }));
  t.is(none.launch.length, 0);
  t.is(none.unplaced[0]?.reason.kind, 'no-agents');
});

test('scale down kills the surplus by killSelection; removed apps lose every task', (t) => {
  const app = mkApp('/a', { instances: 3 });
  let v = converge(view({ apps: [app], agents: [mkAgent('a1')] })).view;
  t.is(live(v, '/a').length, 3);
  // Make stagedAt distinct: the youngest is the one staged last.
  v = { ...v, tasks: v.tasks.map((x, i) => ({ ...x, stagedAt: iso(T0 + i * 1000) })) };
  const youngest = [...v.tasks].sort((x, y) => Date.parse(y.stagedAt) - Date.parse(x.stagedAt))[0]!;
  const down = run({ ...v, apps: [{ ...app, instances: 2 }] });
  t.deepEqual(down.kill.map((k) => [k.taskId, k.state, k.reason]), [[youngest.id, 'KILLING', 'scale-down']]);
  const oldest = [...v.tasks].sort((x, y) => Date.parse(x.stagedAt) - Date.parse(y.stagedAt))[0]!;
  const downOld = run({ ...v, apps: [{ ...app, instances: 2, killSelection: 'OLDEST_FIRST' }] });
  t.deepEqual(downOld.kill.map((k) => k.taskId), [oldest.id]);
  const gone = run({ ...v, apps: [] });
  t.is(gone.kill.length, 3);
  t.true(gone.kill.every((k) => k.reason === 'app-removed' && k.state === 'KILLING'));
  t.is(gone.launch.length, 0);
});

test('a scale-only change (new version, same config) keeps the running tasks', (t) => {
  const v1 = mkApp('/a', { instances: 3 });
  const v = converge(view({ apps: [v1], agents: [mkAgent('a1')] })).view;
  const v2: App = { ...v1, instances: 4, version: '2026-01-02T00:00:00.000Z' };
  const withVersions = { ...v, apps: [v2], appVersions: [v1, v2] };
  const a = run(withVersions);
  t.is(a.kill.length, 0);
  t.is(a.launch.length, 1);
  const restart = run({ ...v, apps: [v2], appVersions: [v2] });
  t.is(restart.launch.length, 4, 'without the old version stored it is a restart: 4 new beside the 3 old (minimumHealthCapacity 1)');
  t.is(restart.kill.length, 0);
});

test('a restart (same definition, new version) replaces the running tasks', (t) => {
  const v1 = mkApp('/a', { instances: 2 });
  const v = converge(view({ apps: [v1], agents: [mkAgent('a1')] })).view;
  const v2: App = { ...v1, version: '2026-01-02T00:00:00.000Z' };
  const restart = { ...mkDeployment('d-restart', [{ actions: [{ action: 'RestartApplication', app: '/a' }] }], ['/a']), version: v2.version };
  const a = run({ ...v, apps: [v2], appVersions: [v1, v2], deployments: [restart] });
  t.true(a.launch.length > 0, 'new instances start for the restart');
  t.true(a.launch.every((task) => task.version === v2.version));
  const calm = run({ ...v, apps: [v2], appVersions: [v1, v2] });
  t.is(calm.launch.length, 0, 'without the restart deployment the same change is scale-only: nothing to do');
});

test('tasks on a vanished agent are marked KILLED at once when they must go', (t) => {
  const task: Task = { ...run(view({ apps: [mkApp('/a')], agents: [mkAgent('a1')] })).launch[0]!, state: 'RUNNING' };
  const a = run(view({ apps: [], tasks: [task], agents: [] }));
  t.deepEqual(a.kill.map((k) => [k.state, k.reason]), [['KILLED', 'agent-gone']]);
});

test('a version change replaces tasks within minimumHealthCapacity and maximumOverCapacity', (t) => {
  const v1 = mkApp('/a', { instances: 4, upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.25 } });
  let v = converge(view({ apps: [v1], agents: [mkAgent('a1', { cpus: 16 })] })).view;
  const v2: App = { ...v1, cmd: 'sleep 2000', version: '2026-01-02T00:00:00.000Z' };
  v = { ...v, apps: [v2] };
  const first = run(v);
  // minHealthy 2 of 4 ready old: kill 2 at once; maxCapacity 5 - 4 counted: launch 1.
  t.is(first.kill.length, 2);
  t.is(first.launch.length, 1);
  for (let i = 0; i < 30; i++) {
    const a = run(v);
    const next = applyActions(v, a, iso(T0));
    const counted = live(next, '/a').length;
    t.true(counted <= Math.max(live(v, '/a').length, maxCapacity(v2)), `round ${i}: ${counted} counted`);
    const ready = next.tasks.filter((x) => x.state === 'RUNNING').length;
    t.true(ready >= minHealthy(v2), `round ${i}: ${ready} running`);
    v = agentStep(next, iso(T0));
    if (isEmpty(a)) break;
  }
  const end = live(v, '/a');
  t.is(end.length, 4);
  t.true(end.every((x) => x.version === v2.version && x.state === 'RUNNING'));
});

test('minimumHealthCapacity 1 with maximumOverCapacity 0 does not stall: one old instance goes first', (t) => {
  const v1 = mkApp('/a', { instances: 2, upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 0 } });
  let v = converge(view({ apps: [v1], agents: [mkAgent('a1')] })).view;
  const v2: App = { ...v1, cmd: 'other', version: '2026-01-02T00:00:00.000Z' };
  const r = converge({ ...v, apps: [v2] });
  v = r.view;
  t.true(r.rounds < 30);
  t.true(live(v, '/a').every((x) => x.version === v2.version && x.state === 'RUNNING'));
  t.is(live(v, '/a').length, 2);
});

test('UNIQUE on a cluster with no spare agent still upgrades', (t) => {
  const v1 = mkApp('/a', { instances: 2, constraints: [['hostname', 'UNIQUE']] });
  let v = converge(view({ apps: [v1], agents: [mkAgent('a1'), mkAgent('a2')] })).view;
  const v2: App = { ...v1, cmd: 'other', version: '2026-01-02T00:00:00.000Z' };
  const r = converge({ ...v, apps: [v2] });
  v = r.view;
  t.true(r.rounds < 30, `${r.rounds} rounds`);
  t.deepEqual(live(v, '/a').map((x) => x.version), [v2.version, v2.version]);
});

test('a deployment is deleted once its apps run exactly their instances at their version', (t) => {
  const app = mkApp('/a', { instances: 2 });
  const d = mkDeployment('d1', [{ actions: [{ action: 'StartApplication', app: '/a' }] }, { actions: [{ action: 'ScaleApplication', app: '/a' }] }], ['/a']);
  let v = view({ apps: [app], agents: [mkAgent('a1')], deployments: [d] });
  const first = run(v);
  t.is(first.launch.length, 2);
  t.deepEqual(first.completeDeployments, []);
  t.like(first.updateDeployments[0], { id: 'd1', state: 'running', currentStep: 2 });
  v = applyActions(v, first, iso(T0));
  t.deepEqual(run(v).completeDeployments, [], 'STAGING is not done');
  v = agentStep(v, iso(T0));
  const done = run(v);
  t.deepEqual(done.completeDeployments, ['d1']);
  t.is(done.launch.length + done.kill.length, 0);
});

const HC = { protocol: 'MESOS_HTTP' as const, path: '/', portIndex: 0, maxConsecutiveFailures: 3 };
const alive = (): Task['healthCheckResults'][number] => ({ alive: true, consecutiveFailures: 0, firstSuccess: iso(T0), lastSuccess: iso(T0) });
const failing = (n: number): Task['healthCheckResults'][number] => ({ alive: false, consecutiveFailures: n, lastFailure: iso(T0), lastFailureCause: 'HTTP 503' });
const withHealth = (v: ReconcileView, appId: string, results: () => Task['healthCheckResults']): ReconcileView => ({
  ...v,
  tasks: v.tasks.map((x) => (x.appId === appId && x.state === 'RUNNING' ? { ...x, healthCheckResults: results() } : x)),
});

test('ready: RUNNING, and alive on every one of the app\'s checks when it has some', (t) => {
  const app = mkApp('/h', { instances: 1, healthChecks: [HC, { ...HC, protocol: 'MESOS_TCP', path: undefined } as never] });
  const v = agentStep(applyActions(view({ apps: [app], agents: [mkAgent('a1')] }), run(view({ apps: [app], agents: [mkAgent('a1')] })), iso(T0)), iso(T0));
  const task = v.tasks[0]!;
  t.false(ready(task, app), 'no result yet');
  t.false(ready({ ...task, healthCheckResults: [alive()] }, app), 'one check of two reported');
  t.false(ready({ ...task, healthCheckResults: [alive(), failing(1)] }, app));
  t.true(ready({ ...task, healthCheckResults: [alive(), alive()] }, app));
  t.true(ready(task, mkApp('/plain')), 'no checks: RUNNING is enough');
  t.false(healthExceeded({ ...task, healthCheckResults: [failing(2), alive()] }, app));
  t.true(healthExceeded({ ...task, healthCheckResults: [alive(), failing(3)] }, app));
  t.false(healthExceeded({ ...task, healthCheckResults: [failing(99)] }, mkApp('/z', { healthChecks: [{ ...HC, maxConsecutiveFailures: 0 }] })), '0 never kills');
});

test('a deployment of an app with health checks completes only once its new tasks are healthy', (t) => {
  const app = mkApp('/h', { instances: 2, healthChecks: [HC] });
  const d = mkDeployment('d1', [{ actions: [{ action: 'StartApplication', app: '/h' }] }, { actions: [{ action: 'ScaleApplication', app: '/h' }] }], ['/h']);
  let v = view({ apps: [app], agents: [mkAgent('a1')], deployments: [d] });
  v = agentStep(applyActions(v, run(v), iso(T0)), iso(T0));
  t.deepEqual(run(v).completeDeployments, [], 'RUNNING without health results is not done');
  t.deepEqual(run(withHealth(v, '/h', () => [failing(1)])).completeDeployments, [], 'failing is not done');
  const done = run(withHealth(v, '/h', () => [alive()]));
  t.deepEqual(done.completeDeployments, ['d1']);
});

test('an upgrade keeps old healthy tasks until new ones are healthy', (t) => {
  const v1 = mkApp('/h', { instances: 2, healthChecks: [HC], upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 1 } });
  let v = agentStep(applyActions(view({ apps: [v1], agents: [mkAgent('a1', { cpus: 16 })] }), run(view({ apps: [v1], agents: [mkAgent('a1', { cpus: 16 })] })), iso(T0)), iso(T0));
  v = withHealth(v, '/h', () => [alive()]);
  const v2: App = { ...v1, cmd: 'other', version: '2026-01-02T00:00:00.000Z' };
  v = { ...v, apps: [v2] };
  const a = run(v);
  t.is(a.launch.length, 2);
  t.is(a.kill.length, 0);
  v = agentStep(applyActions(v, a, iso(T0)), iso(T0));
  t.is(run(v).kill.length, 0, 'new tasks RUNNING but not yet healthy: old ones stay');
  v = { ...v, tasks: v.tasks.map((x) => (x.version === v2.version ? { ...x, healthCheckResults: [alive()] } : x)) };
  const b = run(v);
  t.is(b.kill.length, 2);
  t.true(b.kill.every((k) => k.reason === 'upgrade'));
});

test('a task whose health exceeded maxConsecutiveFailures is killed and replaced', (t) => {
  const app = mkApp('/h', { instances: 1, healthChecks: [HC] });
  let v = view({ apps: [app], agents: [mkAgent('a1')] });
  v = agentStep(applyActions(v, run(v), iso(T0)), iso(T0));
  t.is(run(withHealth(v, '/h', () => [failing(2)])).kill.length, 0, 'below the limit');
  v = withHealth(v, '/h', () => [failing(3)]);
  const a = run(v);
  t.is(a.kill.length, 1);
  t.like(a.kill[0], { state: 'KILLING', reason: 'unhealthy' });
  t.is(a.launch.length, 1, 'replaced within maxCapacity');
  v = agentStep(applyActions(v, a, iso(T0)), iso(T0));
  t.is(live(v, '/h').length, 1);
});

test('apps in a later deployment step wait for the earlier steps (dependencies)', (t) => {
  const db = mkApp('/db', { instances: 1 });
  const web = mkApp('/web', { instances: 1, dependencies: ['/db'] });
  const d = mkDeployment('d1', [
    { actions: [{ action: 'StartApplication', app: '/db' }, { action: 'StartApplication', app: '/web' }] },
    { actions: [{ action: 'ScaleApplication', app: '/db' }] },
    { actions: [{ action: 'ScaleApplication', app: '/web' }] },
  ], ['/db', '/web']);
  let v = view({ apps: [db, web], agents: [mkAgent('a1')], deployments: [d] });
  const a = run(v);
  t.deepEqual(a.launch.map((x) => x.appId), ['/db']);
  v = agentStep(applyActions(v, a, iso(T0)), iso(T0));
  const b = run(v);
  t.deepEqual(b.launch.map((x) => x.appId), ['/web']);
  const end = converge(v).view;
  t.deepEqual(end.deployments, []);
});

for (const end of ['FAILED', 'FINISHED', 'ERROR'] as const) test(`${end} tasks are replaced after a backoff that grows by backoffFactor up to maxLaunchDelaySeconds`, (t) => {
  const app = mkApp('/a', { instances: 1, backoffSeconds: 2, backoffFactor: 2, maxLaunchDelaySeconds: 5 });
  const agents = [mkAgent('a1')];
  let memory: ReadonlyMap<string, BackoffState> | undefined;
  let tasks: Task[] = [];
  let now = T0;
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    // Launch when allowed.
    let a = reconcile(view({ apps: [app], agents, tasks }), { now, newUuid: counterUuid, ...(memory ? { backoff: memory } : {}) });
    memory = a.backoff;
    if (a.launch.length === 0) {
      t.truthy(a.wakeAt);
      delays.push(a.wakeAt! - now);
      now = a.wakeAt!;
      a = reconcile(view({ apps: [app], agents, tasks }), { now, newUuid: counterUuid, backoff: memory });
      memory = a.backoff;
    }
    t.is(a.launch.length, 1, `round ${i}`);
    // It ends at once (even exit 0 counts, as in Marathon).
    tasks = [...tasks, { ...a.launch[0]!, state: end, stateChangedAt: iso(now) }];
  }
  t.deepEqual(delays, [2000, 4000, 5000]);
});

test('a crash loop backs off even when each task is seen RUNNING before it fails; the delay starts over maxLaunchDelaySeconds after it ended without a failure', (t) => {
  const app = mkApp('/a', { instances: 1, backoffSeconds: 2, backoffFactor: 2, maxLaunchDelaySeconds: 5 });
  const agents = [mkAgent('a1')];
  let memory: ReadonlyMap<string, BackoffState> | undefined;
  let tasks: Task[] = [];
  let now = T0;
  const step = (): ReturnType<typeof reconcile> => {
    const a = reconcile(view({ apps: [app], agents, tasks }), { now, newUuid: counterUuid, ...(memory ? { backoff: memory } : {}) });
    memory = a.backoff;
    return a;
  };
  const delays: number[] = [];
  const crash = (): void => {
    let a = step();
    if (a.launch.length === 0) {
      delays.push(a.wakeAt! - now);
      now = a.wakeAt!;
      a = step();
    }
    t.is(a.launch.length, 1);
    const launched = a.launch[0]!;
    // The controller sees it RUNNING (all instances up), then it fails.
    tasks = [...tasks, { ...launched, state: 'RUNNING', stateChangedAt: iso(now) }];
    now += 10;
    step();
    tasks = tasks.map((x) => (x.id === launched.id ? { ...x, state: 'FAILED', stateChangedAt: iso(now) } : x));
  };
  for (let i = 0; i < 4; i++) crash();
  t.deepEqual(delays, [2000, 4000, 5000]);
  // Up for maxLaunchDelaySeconds after the delay ended: the next failure waits backoffSeconds again.
  let a = step();
  now = a.wakeAt!;
  a = step();
  tasks = [...tasks, { ...a.launch[0]!, state: 'RUNNING', stateChangedAt: iso(now) }];
  now += 6000;
  step();
  tasks = tasks.map((x) => (x.state === 'RUNNING' ? { ...x, state: 'FAILED', stateChangedAt: iso(now) } : x));
  a = step();
  t.is(a.launch.length, 0);
  t.is(a.wakeAt! - now, 2000);
});

test('a task killed by the scheduler grows no backoff: its replacement launches at once', (t) => {
  const app = mkApp('/a', { instances: 1, backoffSeconds: 2 });
  const agents = [mkAgent('a1')];
  const first = reconcile(view({ apps: [app], agents }), { now: T0, newUuid: counterUuid });
  const killed: Task = { ...first.launch[0]!, state: 'KILLED', stateChangedAt: iso(T0 + 10) };
  const next = reconcile(view({ apps: [app], agents, tasks: [killed] }), { now: T0 + 20, newUuid: counterUuid, backoff: first.backoff });
  t.is(next.launch.length, 1);
});

test('the backoff starts over after maxLaunchDelaySeconds without a failure past the delay', (t) => {
  const app = mkApp('/a', { instances: 1, backoffSeconds: 2, backoffFactor: 2, maxLaunchDelaySeconds: 5, constraints: [['hostname', 'LIKE', 'nowhere']] });
  const agents = [mkAgent('a1')];
  const failed: Task = { ...run(view({ apps: [mkApp('/a')], agents })).launch[0]!, state: 'FAILED', stateChangedAt: iso(T0) };
  const v = view({ apps: [app], agents, tasks: [failed] });
  const first = reconcile(v, { now: T0, newUuid: counterUuid });
  t.like(first.backoff.get('/a'), { failures: 1, delayUntil: T0 + 2000 });
  t.like(reconcile(v, { now: T0 + 6_999, newUuid: counterUuid, backoff: first.backoff }).backoff.get('/a'), { failures: 1 }, 'still counted within maxLaunchDelaySeconds after the delay');
  t.like(reconcile(v, { now: T0 + 7_000, newUuid: counterUuid, backoff: first.backoff }).backoff.get('/a'), { failures: 0, delayUntil: 0 });
});

test('terminal tasks are expunged after the retention', (t) => {
  const app = mkApp('/a', { instances: 0 });
  const task: Task = { ...run(view({ apps: [mkApp('/a')], agents: [mkAgent('a1')] })).launch[0]!, state: 'KILLED', stateChangedAt: iso(T0) };
  const v = view({ apps: [app], agents: [mkAgent('a1')], tasks: [task] });
  const early = reconcile(v, { now: T0 + 1000, newUuid: counterUuid, terminalRetentionMs: 60_000 });
  t.deepEqual(early.expunge, []);
  t.is(early.wakeAt, T0 + 60_000);
  t.deepEqual(reconcile(v, { now: T0 + 60_000, newUuid: counterUuid, terminalRetentionMs: 60_000 }).expunge, [task.id]);
});

test('unreachable instances are replaced after inactiveAfterSeconds', (t) => {
  const app = mkApp('/a', { instances: 1, unreachableStrategy: { inactiveAfterSeconds: 60, expungeAfterSeconds: 120 } });
  const placed = run(view({ apps: [app], agents: [mkAgent('a1')] })).launch[0]!;
  const task: Task = { ...placed, state: 'UNREACHABLE', stateChangedAt: iso(T0) };
  const v = view({ apps: [app], agents: [mkAgent('a1', { status: 'unreachable' }), mkAgent('a2')], tasks: [task] });
  const before = run(v, T0 + 30_000);
  t.is(before.launch.length, 0);
  t.is(before.wakeAt, T0 + 60_000);
  const after = run(v, T0 + 60_000);
  t.deepEqual(after.launch.map((x) => x.agentId), ['a2']);
  t.deepEqual(run(v, T0 + 120_000).expunge, [task.id]);
});

test('live tasks of an unreachable agent are written UNREACHABLE; the strategy counts from then; disabled never replaces', (t) => {
  const strategy = { inactiveAfterSeconds: 60, expungeAfterSeconds: 120 };
  const app = mkApp('/a', { instances: 1, unreachableStrategy: strategy });
  const placed = run(view({ apps: [app], agents: [mkAgent('a1')] })).launch[0]!;
  const running: Task = { ...placed, state: 'RUNNING', stateChangedAt: iso(T0) };
  const killing: Task = { ...placed, id: `${placed.id}-k`, state: 'KILLING', stateChangedAt: iso(T0) };
  const v = view({ apps: [app], agents: [mkAgent('a1', { status: 'unreachable' }), mkAgent('a2')], tasks: [running, killing] });
  const marked = run(v, T0 + 5_000);
  t.deepEqual(marked.unreachable, [running.id], 'the live task is marked; the one being killed is written KILLED instead');
  t.deepEqual(marked.kill.map((k) => [k.taskId, k.state]), [[killing.id, 'KILLED']]);
  t.deepEqual(marked.launch, [], 'not replaced before inactiveAfterSeconds');
  t.is(marked.wakeAt, T0 + 65_000, 'inactive 60 s after it was marked');
  const after = applyActions(v, marked, iso(T0 + 5_000));
  t.is(after.tasks.find((x) => x.id === running.id)?.state, 'UNREACHABLE');
  t.true(isEmpty(run(after, T0 + 5_000)), 'marking is done once');
  t.deepEqual(run(after, T0 + 65_000).launch.map((x) => x.agentId), ['a2'], 'replaced once inactive');
  t.deepEqual(run(after, T0 + 125_000).expunge, [running.id]);

  const disabled = mkApp('/a', { instances: 1, unreachableStrategy: 'disabled' });
  const d = applyActions({ ...v, apps: [disabled] }, run({ ...v, apps: [disabled] }, T0), iso(T0));
  t.is(d.tasks.find((x) => x.id === running.id)?.state, 'UNREACHABLE');
  const later = run(d, T0 + 3_600_000);
  t.deepEqual(later.launch, [], 'never replaced');
  t.false(later.expunge.includes(running.id), 'never expunged');
});

// ---------------------------------------------------------------------------
// Properties

const arbApp = (i: number) =>
  fc.record({
    instances: fc.integer({ min: 0, max: 5 }),
    minimumHealthCapacity: fc.constantFrom(0, 0.5, 1),
    maximumOverCapacity: fc.constantFrom(0, 0.5, 1),
    cpus: fc.constantFrom(0.5, 1, 2),
    unique: fc.boolean(),
  }).map((r) => mkApp(`/app${i}`, {
    instances: r.instances,
    cpus: r.cpus,
    upgradeStrategy: { minimumHealthCapacity: r.minimumHealthCapacity, maximumOverCapacity: r.maximumOverCapacity },
    ...(r.unique ? { constraints: [['hostname', 'UNIQUE']] } : {}),
  }));

let deploymentSeq = 0;
/** The apps change as the API changes them: a deployment (superseding those of the same apps, as `?force`). */
function deploy(v: ReconcileView, apps: App[]): ReconcileView {
  const p = planDeployment([...v.apps], apps, { version: iso(T0) });
  if (p.steps.length === 0) return { ...v, apps };
  const kept = v.deployments.filter((d) => !d.affectedApps.some((a) => p.affectedApps.includes(a)));
  return { ...v, apps, deployments: [...kept, mkDeployment(`d${++deploymentSeq}`, p.steps, p.affectedApps)] };
}

const arbEvent = fc.oneof(
  fc.record({ kind: fc.constant('agent' as const), agent: fc.nat(3), status: fc.constantFrom('healthy' as const, 'unreachable' as const) }),
  fc.record({ kind: fc.constant('fail' as const), pick: fc.nat(50) }),
  fc.record({ kind: fc.constant('scale' as const), app: fc.nat(2), instances: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('upgrade' as const), app: fc.nat(2) }),
  fc.record({ kind: fc.constant('delete' as const), app: fc.nat(2) }),
  fc.record({ kind: fc.constant('agentStep' as const) }),
);

test('properties: launches stay within maxCapacity and off unreachable agents; reconcile is idempotent; a calm cluster converges', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.tuple(arbApp(0), arbApp(1), arbApp(2)), fc.array(arbEvent, { minLength: 2, maxLength: 30, size: 'medium' }), (apps, events) => {
      let v = view({ apps, agents: [0, 1, 2, 3].map((i) => mkAgent(`a${i}`)) });
      let version = 1;
      const step = (): void => {
        const a = reconcile(v, { now: T0, newUuid: counterUuid, backoff: new Map() });
        const unreachable = new Set(v.agents.filter((x) => x.health.status !== 'healthy').map((x) => x.id));
        for (const l of a.launch) if (unreachable.has(l.agentId)) throw new Error(`placed ${l.id} on unreachable ${l.agentId}`);
        const next = applyActions(v, a, iso(T0));
        for (const app of v.apps) {
          const before = live(v, app.id).length;
          const after = live(next, app.id).length;
          const launched = a.launch.filter((x) => x.appId === app.id).length;
          if (launched > 0 && after > maxCapacity(app)) throw new Error(`${app.id}: ${after} non-terminal tasks > ${maxCapacity(app)} (before ${before})`);
        }
        // Idempotent: the state after its own actions asks for nothing more.
        const again = reconcile(next, { now: T0, newUuid: counterUuid, backoff: a.backoff });
        if (again.launch.length + again.kill.length + again.updateDeployments.length + again.completeDeployments.length > 0) {
          throw new Error(`not idempotent: ${JSON.stringify({ launch: again.launch.map((x) => x.appId), kill: again.kill, upd: again.updateDeployments.length, done: again.completeDeployments })}`);
        }
        v = next;
      };
      for (const e of events) {
        step();
        if (e.kind === 'agent') v = { ...v, agents: v.agents.map((x, i) => (i === e.agent ? { ...x, health: { ...x.health, status: e.status } } : x)) };
        else if (e.kind === 'fail') {
          const liveTasks = v.tasks.filter((x) => x.state === 'RUNNING');
          const victim = liveTasks[e.pick % Math.max(1, liveTasks.length)];
          if (victim) v = { ...v, tasks: v.tasks.map((x) => (x.id === victim.id ? { ...x, state: 'FAILED', stateChangedAt: iso(T0 - 1) } : x)) };
        } else if (e.kind === 'scale') v = deploy(v, v.apps.map((x) => (x.id === `/app${e.app}` ? { ...x, instances: e.instances } : x)));
        else if (e.kind === 'upgrade') v = deploy(v, v.apps.map((x) => (x.id === `/app${e.app}` ? { ...x, cmd: `v${version}`, version: iso(T0 + 1000 * version++) } : x)));
        else if (e.kind === 'delete') v = deploy(v, v.apps.filter((x) => x.id !== `/app${e.app}`));
        else v = agentStep(v, iso(T0));
      }
      // Calm: every agent healthy, the fake agent runs everything: reconcile converges.
      v = { ...v, agents: v.agents.map((x) => ({ ...x, health: { ...x.health, status: 'healthy' as const } })) };
      // An hour later: every backoff is over.
      const later = T0 + 3_600_000;
      const { view: end, rounds } = converge(v, 40, later);
      if (rounds >= 40) throw new Error('did not converge');
      if (end.apps.every((app) => live(end, app.id).length === app.instances) && end.deployments.length > 0) throw new Error(`deployments left: ${JSON.stringify(end.deployments)}`);
      for (const app of end.apps) {
        const mine = live(end, app.id);
        if (mine.length < app.instances) {
          // Not enough room is allowed (reported as unplaced), never too many.
          const a = reconcile(end, { now: later, newUuid: counterUuid, backoff: new Map() });
          if (!a.unplaced.some((u) => u.appId === app.id)) throw new Error(`${app.id}: ${mine.length} of ${app.instances} without a reason`);
        }
        if (mine.length > app.instances) throw new Error(`${app.id}: ${mine.length} > ${app.instances} at rest`);
        if (mine.some((x) => x.version !== app.version || x.state !== 'RUNNING')) throw new Error(`${app.id}: not all RUNNING at ${app.version}`);
      }
      for (const x of end.tasks) if (!TERMINAL_TASK_STATES.has(x.state) && !end.apps.some((a) => a.id === x.appId)) throw new Error(`task ${x.id} of a removed app lives`);
      return true;
    }),
    { numRuns: process.env.STRATA_SLOW ? 2000 : 150, includeErrorInReport: true },
  ));
});

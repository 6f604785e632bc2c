/**
 * The agent task endpoints through `app.inject`: the blocking task query
 * (answers at once without an index, wakes on a change of this agent's
 * tasks, ignores other agents', times out), status reports (state rules,
 * timestamps, wrong agent 404, out of terminal 409).
 */
import test from 'ava';
import type { LightMyRequestResponse } from 'fastify';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Task } from '../../model/schemas.ts';
import { applyStatus } from './agent-tasks.ts';

function mkTask(id: string, agentId: string, extra: Partial<Task> = {}): Task {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    id,
    appId: '/web',
    agentId,
    host: `${agentId}.example`,
    state: 'STAGING',
    stagedAt: now,
    stateChangedAt: now,
    ports: [],
    servicePorts: [],
    ipAddresses: [],
    healthCheckResults: [],
    version: now,
    resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 },
    role: '*',
    ...extra,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ h: TestMaster; call: (method: 'GET' | 'PUT', url: string, body?: object) => Promise<LightMyRequestResponse> }> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  return { h, call: (method, url, body) => h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) }) };
}

test('applyStatus: KILLING holds against RUNNING, startedAt once, terminal is final', (t) => {
  const at = '2026-01-01T00:00:05.000Z';
  const running = applyStatus(mkTask('t1', 'a1'), { state: 'RUNNING' }, at);
  t.like(running, { state: 'RUNNING', startedAt: at, stateChangedAt: at });
  const again = applyStatus(running, { state: 'RUNNING', timestamp: '2026-01-01T00:00:09.000Z' }, at);
  t.is(again.startedAt, at);
  t.is(again.stateChangedAt, at, 'no state change, no new stateChangedAt');
  t.is(applyStatus({ ...running, state: 'KILLING' }, { state: 'RUNNING' }, at).state, 'KILLING');
  const failed = applyStatus(running, { state: 'FAILED', exitCode: 3, message: 'boom' }, at);
  t.like(failed, { state: 'FAILED', message: 'boom (exit code 3)' });
  t.is(applyStatus(failed, { state: 'FAILED' }, at), failed, 'same terminal state again: unchanged');
  t.throws(() => applyStatus(failed, { state: 'RUNNING' }, at), { message: /terminal/ });
});

test('applyStatus: healthCheckResults replace the task\'s; absent keeps them', (t) => {
  const at = '2026-01-01T00:00:05.000Z';
  const results = [{ alive: true, consecutiveFailures: 0, firstSuccess: at, lastSuccess: at }];
  const healthy = applyStatus(mkTask('t1', 'a1', { state: 'RUNNING' }), { state: 'RUNNING', healthCheckResults: results }, at);
  t.deepEqual(healthy.healthCheckResults, results);
  t.deepEqual(applyStatus(healthy, { state: 'RUNNING' }, at).healthCheckResults, results);
  t.deepEqual(applyStatus(healthy, { state: 'KILLING', reason: 'REASON_HEALTH_CHECK_FAILED', healthCheckResults: [] }, at).healthCheckResults, []);
});

test('GET /v1/agents/{id}/tasks lists the agent\'s non-terminal tasks and an index', async (t) => {
  const { h, call } = await setup(t);
  await h.master.records.put('task', mkTask('mine', 'a1'));
  await h.master.records.put('task', mkTask('done', 'a1', { state: 'FINISHED' }));
  await h.master.records.put('task', mkTask('other', 'a2'));
  const res = await call('GET', '/v1/agents/a1/tasks');
  t.is(res.statusCode, 200, res.body);
  const body = res.json() as { index: number; tasks: Task[] };
  t.deepEqual(body.tasks.map((x) => x.id), ['mine']);
  t.true(body.index > 0);
});

test('the blocking query wakes on a change to the agent\'s tasks, not on other agents\'', async (t) => {
  const { h, call } = await setup(t);
  await h.master.records.put('task', mkTask('mine', 'a1'));
  const { index } = (await call('GET', '/v1/agents/a1/tasks')).json() as { index: number };
  const started = Date.now();
  let answered = false;
  const pending = call('GET', `/v1/agents/a1/tasks?index=${index}&wait=10`).then((r) => {
    answered = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 150));
  await h.master.records.put('task', mkTask('theirs', 'a2'));
  await new Promise((r) => setTimeout(r, 150));
  t.false(answered, 'another agent\'s task does not wake it');
  const current = (await h.master.records.get('task', 'mine'))!;
  await h.master.records.put('task', { ...current.value, state: 'KILLING' }, { casIndex: current.modifyIndex });
  const res = await pending;
  t.is(res.statusCode, 200);
  const body = res.json() as { index: number; tasks: Task[] };
  t.deepEqual(body.tasks.map((x) => [x.id, x.state]), [['mine', 'KILLING']]);
  t.true(body.index > index);
  t.true(Date.now() - started < 5000);
});

test('the blocking query answers after wait seconds when nothing changes', async (t) => {
  const { call } = await setup(t);
  const { index } = (await call('GET', '/v1/agents/a1/tasks')).json() as { index: number };
  const started = Date.now();
  const res = await call('GET', `/v1/agents/a1/tasks?index=${index}&wait=0.3`);
  t.is(res.statusCode, 200);
  t.true(Date.now() - started >= 250);
  t.deepEqual(res.json().tasks, []);
});

test('status reports: updated task, wrong agent 404, out of terminal 409', async (t) => {
  const { h, call } = await setup(t);
  await h.master.records.put('task', mkTask('t1', 'a1'));
  const ok = await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'RUNNING', timestamp: '2026-01-01T00:01:00.000Z' });
  t.is(ok.statusCode, 200, ok.body);
  t.like(ok.json(), { id: 't1', state: 'RUNNING', startedAt: '2026-01-01T00:01:00.000Z', stateChangedAt: '2026-01-01T00:01:00.000Z' });
  t.is((await h.master.records.get('task', 't1'))!.value.state, 'RUNNING');

  const wrong = await call('PUT', '/v1/agents/a2/tasks/t1/status', { state: 'FAILED' });
  t.is(wrong.statusCode, 404);
  t.is(wrong.json().code, 'RECORD_NOT_FOUND');
  t.is((await call('PUT', '/v1/agents/a1/tasks/nope/status', { state: 'FAILED' })).statusCode, 404);

  t.is((await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'KILLED', message: 'bye' })).statusCode, 200);
  const back = await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'RUNNING' });
  t.is(back.statusCode, 409);
  t.is(back.json().code, 'RECORD_CONFLICT');
  t.is((await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'KILLED' })).statusCode, 200, 'repeating the terminal state is fine');
  t.is((await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'BOGUS' })).statusCode, 400);
});

test('status reports carry healthCheckResults, stored on the task; absent leaves them as they were', async (t) => {
  const { h, call } = await setup(t);
  await h.master.records.put('task', mkTask('t1', 'a1', { state: 'RUNNING' }));
  const results = [{ alive: false, consecutiveFailures: 2, firstSuccess: '2026-01-01T00:01:00.000Z', lastFailure: '2026-01-01T00:02:00.000Z', lastFailureCause: 'HTTP 503' }];
  const ok = await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'RUNNING', healthCheckResults: results });
  t.is(ok.statusCode, 200, ok.body);
  t.deepEqual((await h.master.records.get('task', 't1'))!.value.healthCheckResults, results);
  await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'RUNNING', message: 'no health in this one' });
  t.deepEqual((await h.master.records.get('task', 't1'))!.value.healthCheckResults, results);
  const bad = await call('PUT', '/v1/agents/a1/tasks/t1/status', { state: 'RUNNING', healthCheckResults: [{ alive: 'yes' }] });
  t.is(bad.statusCode, 400);
});

test('an agent reads the app its task runs under its own permission, and only for its own tasks', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const admin = await h.superuserToken();
  const created = await h.master.app.inject({
    method: 'POST', url: '/v2/apps', headers: { authorization: `token=${admin}` }, payload: { id: '/web', cmd: 'sleep 100', instances: 0 },
  });
  t.is(created.statusCode, 201, created.body);
  const version = (created.json() as { version: string }).version;
  await h.master.records.put('task', mkTask('mine', 'a1', { version }));
  await h.master.records.put('task', mkTask('gone-version', 'a1', { version: '2020-01-01T00:00:00.000Z' }));
  const agentToken = await h.tokenFor('agent-1', [{ rid: 'dcos:mesos:master:agent', actions: ['full'] }]);
  const call = (url: string): Promise<LightMyRequestResponse> => h.master.app.inject({ method: 'GET', url, headers: { authorization: `token=${agentToken}` } });
  const res = await call('/v1/agents/a1/tasks/mine/app');
  t.is(res.statusCode, 200, res.body);
  t.like(res.json(), { id: '/web', cmd: 'sleep 100', version });
  t.is((await call('/v1/agents/a2/tasks/mine/app')).statusCode, 404, 'not another agent\'s task');
  t.is((await call('/v1/agents/a1/tasks/gone-version/app')).statusCode, 404, 'a version no longer stored');
  t.is((await call('/v2/apps/web')).statusCode, 403, 'the agent still cannot read the Marathon app tree');
});

test('the blocking query follows tasks by agent: a reassigned or deleted task wakes its old agent; many waiting agents', async (t) => {
  const { h, call } = await setup(t);
  await h.master.records.put('task', mkTask('moving', 'a1'));
  const first = (await call('GET', '/v1/agents/a1/tasks')).json() as { index: number; tasks: Task[] };
  t.deepEqual(first.tasks.map((x) => x.id), ['moving']);
  // Fifty agents wait; one change wakes only the two it concerns.
  const waiting = Array.from({ length: 50 }, (_, i) => call('GET', `/v1/agents/w${i}/tasks?index=${first.index}&wait=2`));
  const a1 = call('GET', `/v1/agents/a1/tasks?index=${first.index}&wait=10`);
  const a2 = call('GET', `/v1/agents/a2/tasks?index=${first.index}&wait=10`);
  const started = Date.now();
  const current = await h.master.records.get('task', 'moving');
  await h.master.records.put('task', { ...current!.value, agentId: 'a2' }, { casIndex: current!.modifyIndex });
  const [r1, r2] = await Promise.all([a1, a2]);
  t.true(Date.now() - started < 5000, 'woken by the change, not the wait');
  t.deepEqual((r1.json() as { tasks: Task[] }).tasks, [], 'gone from its old agent');
  t.deepEqual((r2.json() as { tasks: Task[] }).tasks.map((x) => x.id), ['moving']);
  for (const r of await Promise.all(waiting)) t.deepEqual((r.json() as { tasks: Task[] }).tasks, []);
  const index = (r2.json() as { index: number }).index;
  const again = call('GET', `/v1/agents/a2/tasks?index=${index}&wait=10`);
  await h.master.records.delete('task', 'moving');
  t.deepEqual(((await again).json() as { tasks: Task[] }).tasks, [], 'a deletion wakes the agent too');
});

/**
 * In-process integration: a test master with the deployment controller as
 * its leader loop and a fake agent (test/harness/fake-agent.ts).
 */
import test from 'ava';
import { startTestMaster } from '../../test/harness/master.ts';
import { eventually, fakeAgent, startControlledCluster } from '../../test/harness/fake-agent.ts';
import type { Task } from '../../control-plane/model/schemas.ts';
import { batches, deploymentController } from './controller.ts';

test('batches keep every transaction within 60 operations', (t) => {
  const ops = Array.from({ length: 65 }, (_, i) => i);
  t.deepEqual(batches(ops).map((b) => b.length), [30, 30, 5]);
});

test('POST, scale and DELETE an app: the controller launches, kills and finishes deployments with a fake agent', async (t) => {
  const { h, api, agent } = await startControlledCluster(t);
  const tasks = async (): Promise<Task[]> => (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => x.appId === '/web');
  const deployments = async (): Promise<number> => (await h.master.records.list('deployment')).records.length;

  const created = await api('POST', '/v2/apps', { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 3 });
  t.is(created.statusCode, 201, created.body);
  await eventually(async () => (await tasks()).filter((x) => x.state === 'RUNNING').length === 3 && (await deployments()) === 0, '3 RUNNING and no deployment');
  const running = await tasks();
  t.true(running.every((x) => x.agentId === 'agent-1' && /^web\.instance-.+\._app\.1$/.test(x.id) && x.startedAt !== undefined));
  const listed = (await api('GET', '/v2/apps/web/tasks')).json() as { tasks: { state: string }[] };
  t.deepEqual(listed.tasks.map((x) => x.state), ['TASK_RUNNING', 'TASK_RUNNING', 'TASK_RUNNING']);
  t.is(((await api('GET', '/v2/tasks?status=running')).json() as { tasks: unknown[] }).tasks.length, 3);

  const scaled = await api('PUT', '/v2/apps/web', { instances: 1 });
  t.is(scaled.statusCode, 200, scaled.body);
  await eventually(async () => {
    const all = await tasks();
    return all.filter((x) => x.state === 'RUNNING').length === 1 && all.filter((x) => x.state === 'KILLED').length === 2 && (await deployments()) === 0;
  }, 'scaled to 1').catch(async (err: unknown) => {
    t.log(JSON.stringify((await tasks()).map((x) => [x.id, x.state, x.version])), JSON.stringify((await h.master.records.list('deployment')).records.map((r) => r.value)), (await h.master.records.get('app', '/web'))?.value.version, agent.reports);
    throw err;
  });
  t.is(agent.reports.filter((r) => r.endsWith('KILLED')).length, 2, 'the agent was asked to kill two tasks (KILLING) and reported KILLED');

  const removed = await api('DELETE', '/v2/apps/web');
  t.is(removed.statusCode, 200, removed.body);
  await eventually(async () => (await tasks()).every((x) => x.state === 'KILLED') && (await deployments()) === 0, 'all killed');
  t.is((await tasks()).length, 3);
  const metrics = (await api('GET', '/metrics')).body;
  t.regex(metrics, /strata_scheduler_tasks_launched_total 3\b/);
  t.regex(metrics, /strata_scheduler_tasks_killed_total\{reason="scale-down"\} 2\b/);
  t.regex(metrics, /strata_scheduler_tasks_killed_total\{reason="app-removed"\} 1\b/);
});

test('after a lost leadership the controller stops, and the next leadership runs a new one', async (t) => {
  const rounds: number[] = [];
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 5, onRound: (a) => rounds.push(a.launch.length) })] });
  t.teardown(() => h.close());
  const first = await h.master.whenLeader();
  const token = await h.superuserToken();
  const agent = await fakeAgent(h, token, 'agent-1');
  t.teardown(async () => {
    agent.stop();
    await agent.done.catch(() => undefined);
  });
  await first.resign();
  t.true(first.signal.aborted);
  const second = await h.master.whenLeader();
  t.not(second.token, first.token);
  const res = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/again', cmd: 'x', cpus: 0.1, mem: 16, instances: 2 } });
  t.is(res.statusCode, 201);
  await eventually(async () => (await h.master.records.list('task')).records.filter((r) => r.value.state === 'RUNNING').length === 2, '2 RUNNING under the new leadership');
  t.is(rounds.reduce((a, b) => a + b, 0), 2, 'exactly two launches: the stopped controller launched nothing');
});

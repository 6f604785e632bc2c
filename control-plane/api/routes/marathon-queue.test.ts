import test from 'ava';
import type { Task } from '../../model/schemas.ts';
import { deploymentController } from '../../../scheduler/controller/controller.ts';
import { eventually } from '../../../test/harness/fake-agent.ts';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';

test('GET /v2/queue lists an app with no tasks (no controller runs here) in Marathon\'s shape, only for callers who may read it', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 2 } });
  t.is(created.statusCode, 201, created.body);
  const res = await h.master.app.inject({ method: 'GET', url: '/v2/queue', headers: { authorization: `token=${token}` } });
  t.is(res.statusCode, 200, res.body);
  const body = res.json() as { queue: { count: number; delay: unknown; since: string; app: { id: string; instances: number; tasksRunning: number } }[] };
  t.is(body.queue.length, 1);
  t.like(body.queue[0], { count: 2, delay: { timeLeftSeconds: 0, overdue: true }, app: { id: '/web', instances: 2, tasksRunning: 0 } });
  const other = await h.tokenFor('viewer', [{ rid: 'dcos:adminrouter:service:marathon', actions: ['full'] }]);
  const hidden = await h.master.app.inject({ method: 'GET', url: '/v2/queue', headers: { authorization: `token=${other}` } });
  t.is(hidden.statusCode, 200, hidden.body);
  t.deepEqual(hidden.json(), { queue: [] });
});

/** A fake agent whose every task fails at once (a crash loop). */
function failingAgent(h: TestMaster, token: string, id: string): () => void {
  const call = (method: 'GET' | 'PUT', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  let stopped = false;
  void (async () => {
    await call('PUT', `/v1/agents/${id}`, { hostname: `${id}.example`, address: { ip: '127.0.0.1', port: 5051 }, attributes: {}, resources: { cpus: 4, memMb: 4096, diskMb: 1000, gpus: 0, ports: [{ begin: 20000, end: 20100 }] } });
    while (!stopped) {
      const res = await call('GET', `/v1/agents/${id}/tasks`);
      for (const task of (res.json() as { tasks?: Task[] }).tasks ?? []) {
        if (task.state === 'STAGING') await call('PUT', `/v1/agents/${id}/tasks/${task.id}/status`, { state: 'FAILED', message: 'crashed' });
        if (task.state === 'KILLING') await call('PUT', `/v1/agents/${id}/tasks/${task.id}/status`, { state: 'KILLED' });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return () => (stopped = true);
}

test('the launch delay is stored, shown in /v2/queue, survives a leader failover, and DELETE /v2/queue/{id}/delay resets it', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(() => h.close());
  const leadership = await h.master.whenLeader();
  const token = await h.superuserToken();
  t.teardown(failingAgent(h, token, 'agent-1'));
  const api = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const tasks = async (): Promise<Task[]> => (await h.master.records.list('task')).records.map((r) => r.value);
  t.is((await api('POST', '/v2/apps', { id: '/crash', cmd: 'exit 1', cpus: 0.1, mem: 16, instances: 1, portDefinitions: [], backoffSeconds: 30 })).statusCode, 201);

  await eventually(async () => (await h.master.records.get('launchDelay', '/crash'))?.value.failures === 1, 'one failure counted and stored');
  const queued = (await api('GET', '/v2/queue')).json().queue as { count: number; delay: { timeLeftSeconds: number; overdue: boolean } }[];
  t.is(queued.length, 1);
  t.false(queued[0]!.delay.overdue);
  t.true(queued[0]!.delay.timeLeftSeconds > 25 && queued[0]!.delay.timeLeftSeconds <= 30, `timeLeftSeconds ${queued[0]!.delay.timeLeftSeconds}`);
  t.is((await tasks()).length, 1, 'no relaunch during the delay');

  // Failover: a new leadership (fresh controller memory) keeps the delay.
  await leadership.resign();
  const next = await h.master.whenLeader();
  t.not(next.token, leadership.token);
  await new Promise((r) => setTimeout(r, 500));
  t.is((await tasks()).length, 1, 'the new leader does not relaunch before the stored delay ends');
  t.is((await h.master.records.get('launchDelay', '/crash'))?.value.failures, 1);

  const forbidden = await h.master.app.inject({ method: 'DELETE', url: '/v2/queue/crash/delay', headers: { authorization: `token=${await h.tokenFor('reader', [{ rid: 'dcos:service:marathon:marathon:services:/crash', actions: ['read'] }])}` } });
  t.is(forbidden.statusCode, 403, 'resetting needs update on the app');
  t.is((await api('DELETE', '/v2/queue/nothere/delay')).statusCode, 404);
  const reset = await api('DELETE', '/v2/queue/crash/delay');
  t.is(reset.statusCode, 204, reset.body);
  t.regex((await api('GET', '/metrics')).body, /strata_scheduler_launch_delay_resets_total 1/);
  await eventually(async () => (await tasks()).length >= 2, 'relaunched at once after the reset');
  await eventually(async () => (await h.master.records.get('launchDelay', '/crash'))?.value.failures === 1, 'the new failure counted from zero again');
  const again = (await api('GET', '/v2/queue')).json().queue[0] as { delay: { timeLeftSeconds: number } };
  t.true(again.delay.timeLeftSeconds <= 30, 'the delay starts again at backoffSeconds, not grown');
});

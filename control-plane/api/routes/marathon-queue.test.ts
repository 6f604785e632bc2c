import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';

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

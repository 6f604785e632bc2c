/**
 * Killing tasks and restarting apps through Marathon's routes:
 * `DELETE /v2/apps/<id>/tasks/<task>`, `POST /v2/tasks/delete`,
 * `POST /v2/apps/<id>/restart`, in Marathon's shapes.
 */
import test from 'ava';
import type { LightMyRequestResponse } from 'fastify';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Deployment, Task } from '../../model/schemas.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function mkTask(id: string, appId: string, version: string, extra: Partial<Task> = {}): Task {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    id, appId, agentId: 'a1', host: 'a1.example', state: 'RUNNING', stagedAt: now, stateChangedAt: now,
    ports: [], servicePorts: [], ipAddresses: [], healthCheckResults: [], version,
    resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 }, role: '*', ...extra,
  };
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ h: TestMaster; call: (method: 'GET' | 'POST' | 'DELETE', url: string, body?: object) => Promise<LightMyRequestResponse>; version: string }> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body === undefined ? {} : { payload: body }) });
  const created = await call('POST', '/v2/apps', { id: '/web', cmd: 'sleep 100', instances: 3 });
  const version = created.json().version as string;
  // The app's first deployment is done (no controller runs here): drop it so nothing locks the app.
  for (const d of (await call('GET', '/v2/deployments')).json() as Deployment[]) await call('DELETE', `/v2/deployments/${d.id}?force=true`);
  for (const n of [1, 2, 3]) await h.master.records.put('task', mkTask(`web.instance-${n}._app.1`, '/web', version));
  return { h, call, version };
}

test('DELETE /v2/apps/<id>/tasks/<task> sets the task KILLING ({task}); ?scale=true also lowers instances (a deployment)', async (t) => {
  const { h, call } = await setup(t);
  const res = await call('DELETE', '/v2/apps/web/tasks/web.instance-1._app.1');
  t.is(res.statusCode, 200, res.body);
  t.like(res.json().task, { id: 'web.instance-1._app.1', appId: '/web', state: 'TASK_KILLING' });
  t.is((await h.master.records.get('task', 'web.instance-1._app.1'))!.value.state, 'KILLING');
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 3, 'without scale the app keeps its instances');

  const scaled = await call('DELETE', '/v2/apps/web/tasks/web.instance-2._app.1?scale=true');
  t.is(scaled.statusCode, 200, scaled.body);
  t.truthy(scaled.json().deploymentId);
  t.is(scaled.headers['marathon-deployment-id'], scaled.json().deploymentId);
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 2);
  t.is((await h.master.records.get('task', 'web.instance-2._app.1'))!.value.state, 'KILLING');

  t.is((await call('DELETE', '/v2/apps/web/tasks/web.instance-9._app.1')).statusCode, 404);
  t.is((await call('DELETE', '/v2/apps/other/tasks/web.instance-3._app.1')).statusCode, 404, 'a task of another app');
  const locked = await call('DELETE', '/v2/apps/web/tasks/web.instance-3._app.1?scale=true');
  t.is(locked.statusCode, 409, 'the scale-down deployment locks the app');
  t.is((await h.master.records.get('task', 'web.instance-3._app.1'))!.value.state, 'RUNNING', 'nothing was killed');
});

test('POST /v2/tasks/delete kills several tasks ({tasks}); ?scale=true lowers instances by the killed ones', async (t) => {
  const { h, call } = await setup(t);
  const res = await call('POST', '/v2/tasks/delete', { ids: ['web.instance-1._app.1'] });
  t.is(res.statusCode, 200, res.body);
  t.deepEqual(res.json().tasks.map((x: Json) => [x.id, x.state]), [['web.instance-1._app.1', 'TASK_KILLING']]);
  const scaled = await call('POST', '/v2/tasks/delete?scale=true', { ids: ['web.instance-2._app.1', 'web.instance-3._app.1', 'web.instance-1._app.1'] });
  t.is(scaled.statusCode, 200, scaled.body);
  t.truthy(scaled.json().deploymentId);
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 1, 'already KILLING tasks do not count twice');
  t.is((await call('POST', '/v2/tasks/delete', { ids: ['nope._app.1'] })).statusCode, 404);
  t.is((await call('POST', '/v2/tasks/delete', { ids: [] })).statusCode, 400);
  const running = (await call('GET', '/v2/tasks?status=killing')).json().tasks as Json[];
  t.is(running.length, 3);
  t.is((await h.master.records.get('task', 'web.instance-3._app.1'))!.value.state, 'KILLING');
});

test('POST /v2/apps/<id>/restart stores a deployment with a RestartApplication step at a new version', async (t) => {
  const { call, version } = await setup(t);
  const res = await call('POST', '/v2/apps/web/restart');
  t.is(res.statusCode, 200, res.body);
  const { deploymentId, version: next } = res.json();
  t.true(Date.parse(next) > Date.parse(version));
  const [d] = (await call('GET', '/v2/deployments')).json() as Deployment[];
  t.like(d, { id: deploymentId, affectedApps: ['/web'] });
  t.deepEqual(d!.steps, [{ actions: [{ action: 'RestartApplication', app: '/web' }] }]);
  const app = (await call('GET', '/v2/apps/web')).json().app;
  t.like(app, { version: next, instances: 3, cmd: 'sleep 100' });
  t.is((await call('POST', '/v2/apps/web/restart')).statusCode, 409, 'locked by the restart');
  t.is((await call('POST', '/v2/apps/web/restart?force=true')).statusCode, 200);
  t.is((await call('POST', '/v2/apps/nope/restart')).statusCode, 404);
  t.is((await call('POST', '/v2/apps/web/other')).statusCode, 404);
});

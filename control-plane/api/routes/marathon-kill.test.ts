/**
 * Killing tasks through the deployment controller with a fake agent: a
 * killed task is replaced; with scale=true it is not and instances drop.
 */
import test from 'ava';
import { eventually, startControlledCluster } from '../../../test/harness/fake-agent.ts';
import type { Task } from '../../model/schemas.ts';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const { h, api } = await startControlledCluster(t);
  const tasks = async (): Promise<Task[]> => (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => x.appId === '/web');
  const deployments = async (): Promise<number> => (await h.master.records.list('deployment')).records.length;
  const created = await api('POST', '/v2/apps', { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 2 });
  if (created.statusCode !== 201) throw new Error(created.body);
  await eventually(async () => (await tasks()).filter((x) => x.state === 'RUNNING').length === 2 && (await deployments()) === 0, '2 RUNNING');
  return { h, api, tasks, deployments };
}

test('a killed task is replaced; killed with scale=true it is not, and instances drop', async (t) => {
  const { api, tasks, deployments } = await setup(t);
  const [first, second] = await tasks();
  const killed = await api('DELETE', `/v2/apps/web/tasks/${first!.id}`);
  t.is(killed.statusCode, 200, killed.body);
  await eventually(async () => {
    const all = await tasks();
    return all.find((x) => x.id === first!.id)?.state === 'KILLED' && all.filter((x) => x.state === 'RUNNING').length === 2;
  }, 'replaced');
  const scaled = await api('POST', '/v2/tasks/delete?scale=true', { ids: [second!.id] });
  t.is(scaled.statusCode, 200, scaled.body);
  await eventually(async () => (await tasks()).filter((x) => x.state === 'RUNNING').length === 1 && (await deployments()) === 0, 'scaled down');
  t.is((await api('GET', '/v2/apps/web')).json().app.instances, 1);
  t.is((await tasks()).find((x) => x.id === second!.id)?.state, 'KILLED');
});

test('POST /v2/apps/{id}/restart replaces every running task and finishes its deployment', async (t) => {
  const { api, tasks, deployments } = await setup(t);
  const before = new Set((await tasks()).filter((x) => x.state === 'RUNNING').map((x) => x.id));
  const restarted = await api('POST', '/v2/apps/web/restart');
  t.is(restarted.statusCode, 200, restarted.body);
  const { version } = restarted.json() as { version: string };
  await eventually(async () => {
    const running = (await tasks()).filter((x) => x.state === 'RUNNING');
    return running.length === 2 && running.every((x) => !before.has(x.id) && x.version === version) && (await deployments()) === 0;
  }, 'two new tasks at the restart version');
  for (const id of before) t.is((await tasks()).find((x) => x.id === id)?.state, 'KILLED', `old task ${id} was killed`);
});

test('DELETE /v2/apps/{id}/tasks kills every task (or those on ?host=); the controller replaces them', async (t) => {
  const { api, tasks, deployments } = await setup(t);
  const before = (await tasks()).map((x) => x.id);
  const none = await api('DELETE', '/v2/apps/web/tasks?host=elsewhere.example');
  t.is(none.statusCode, 200, none.body);
  t.deepEqual(none.json(), { tasks: [] });
  const killed = await api('DELETE', '/v2/apps/web/tasks?host=agent-1.example');
  t.is(killed.statusCode, 200, killed.body);
  const body = killed.json() as { tasks: { id: string; state: string }[] };
  t.deepEqual(body.tasks.map((x) => x.id).sort(), [...before].sort());
  t.true(body.tasks.every((x) => x.state === 'TASK_KILLING'));
  await eventually(async () => {
    const all = await tasks();
    return before.every((id) => all.find((x) => x.id === id)?.state === 'KILLED') && all.filter((x) => x.state === 'RUNNING').length === 2 && (await deployments()) === 0;
  }, 'both replaced');
  t.is((await api('DELETE', '/v2/apps/nothere/tasks')).statusCode, 404);
});

test('DELETE /v2/apps/{id}/tasks?scale=true scales the app to 0; scale with wipe is refused', async (t) => {
  const { api, tasks, deployments } = await setup(t);
  const refused = await api('DELETE', '/v2/apps/web/tasks?scale=true&wipe=true');
  t.is(refused.statusCode, 400, refused.body);
  t.regex(refused.json().message, /scale and wipe/);
  t.is((await tasks()).filter((x) => x.state === 'RUNNING').length, 2, 'nothing was killed');
  const scaled = await api('DELETE', '/v2/apps/web/tasks?scale=true');
  t.is(scaled.statusCode, 200, scaled.body);
  t.truthy(scaled.json().deploymentId);
  t.truthy(scaled.headers['marathon-deployment-id']);
  await eventually(async () => (await tasks()).every((x) => x.state === 'KILLED') && (await deployments()) === 0, 'all killed');
  t.is((await api('GET', '/v2/apps/web')).json().app.instances, 0);
});

test('wipe=true expunges a killed task\'s record once it is terminal; it is still replaced', async (t) => {
  const { api, tasks } = await setup(t);
  const [first] = await tasks();
  const killed = await api('DELETE', `/v2/apps/web/tasks/${first!.id}?wipe=true`);
  t.is(killed.statusCode, 200, killed.body);
  await eventually(async () => {
    const all = await tasks();
    return all.every((x) => x.id !== first!.id) && all.filter((x) => x.state === 'RUNNING').length === 2;
  }, 'the wiped task gone and replaced');
});

test('killing tasks needs update on the app (Marathon), removing it needs delete', async (t) => {
  const { h, api, tasks } = await setup(t);
  const rid = 'dcos:service:marathon:marathon:services:/web';
  const updater = await h.tokenFor('updater', [{ rid, actions: ['update'] }]);
  const deleter = await h.tokenFor('deleter', [{ rid, actions: ['delete'] }]);
  const as = (token: string, url: string) => h.master.app.inject({ method: 'DELETE', url, headers: { authorization: `token=${token}` } });
  const [first] = await tasks();
  const denied = await as(deleter, `/v2/apps/web/tasks/${first!.id}`);
  t.is(denied.statusCode, 403, denied.body);
  t.deepEqual(denied.json().details, { rid, action: 'update' });
  t.is((await as(deleter, '/v2/apps/web/tasks')).statusCode, 403);
  t.is((await as(updater, `/v2/apps/web/tasks/${first!.id}`)).statusCode, 200);
  t.is((await as(updater, '/v2/apps/web')).statusCode, 403, 'update does not remove the app');
  const removed = await as(deleter, '/v2/apps/web?force=true');
  t.is(removed.statusCode, 200, removed.body);
  t.is((await api('GET', '/v2/apps/web')).statusCode, 404);
});

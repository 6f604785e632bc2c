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

/**
 * Killing tasks through the deployment controller with a fake agent: a
 * killed task is replaced; with scale=true it is not and instances drop.
 * (A restart's replacement is not tested here: the controller counts tasks
 * at an older version with the same definition as current, so a restart's
 * version bump alone replaces nothing yet; see scheduler/controller/.)
 */
import test from 'ava';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Task } from '../../model/schemas.ts';
import { deploymentController } from '../../../scheduler/controller/controller.ts';

interface FakeAgent {
  readonly reports: string[];
  stop(): void;
  readonly done: Promise<void>;
}

async function fakeAgent(h: TestMaster, token: string, id: string): Promise<FakeAgent> {
  const call = (method: 'GET' | 'PUT', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const reg = await call('PUT', `/v1/agents/${id}`, {
    hostname: `${id}.example`,
    address: { ip: '127.0.0.1', port: 5051 },
    attributes: {},
    resources: { cpus: 8, memMb: 8192, diskMb: 10000, gpus: 0, ports: [{ begin: 20000, end: 20100 }] },
  });
  if (reg.statusCode !== 200) throw new Error(`register: ${reg.body}`);
  const reports: string[] = [];
  let stopped = false;
  const done = (async () => {
    let index = 0;
    while (!stopped) {
      const res = await call('GET', `/v1/agents/${id}/tasks?index=${index}&wait=1`);
      if (res.statusCode !== 200) throw new Error(`tasks: ${res.body}`);
      const body = res.json() as { index: number; tasks: Task[] };
      index = body.index;
      for (const task of body.tasks) {
        const next = task.state === 'STAGING' || task.state === 'STARTING' ? 'RUNNING' : task.state === 'KILLING' ? 'KILLED' : undefined;
        if (!next || stopped) continue;
        const r = await call('PUT', `/v1/agents/${id}/tasks/${task.id}/status`, { state: next });
        if (r.statusCode !== 200) throw new Error(`status: ${r.body}`);
        reports.push(`${task.id} ${next}`);
      }
    }
  })();
  return { reports, stop: () => (stopped = true), done };
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const agent = await fakeAgent(h, token, 'agent-1');
  t.teardown(async () => {
    agent.stop();
    await agent.done.catch(() => undefined);
  });
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

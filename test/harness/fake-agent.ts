/**
 * A master with the deployment controller as its leader loop, plus a fake
 * agent that registers through `PUT /v1/agents/{id}`, follows its tasks with
 * the blocking `GET /v1/agents/{id}/tasks` and "runs" them by reporting
 * RUNNING (and KILLED when asked to kill) through the status endpoint. For
 * in-process tests of the controller and the /v2 routes that drive it.
 */
import type { LightMyRequestResponse } from 'fastify';
import type { Task } from '../../control-plane/model/schemas.ts';
import { deploymentController } from '../../scheduler/controller/controller.ts';
import { startTestMaster, type TestMaster } from './master.ts';

export interface FakeAgent {
  /** `<task id> <state>` for every report the agent sent, in order. */
  readonly reports: string[];
  stop(): void;
  readonly done: Promise<void>;
}

export async function fakeAgent(h: TestMaster, token: string, id: string): Promise<FakeAgent> {
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

export async function eventually(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export type ApiCall = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: object) => Promise<LightMyRequestResponse>;

/** A leading test master running the controller, a superuser API caller, and one fake agent; all torn down with the test. */
export async function startControlledCluster(t: { teardown(fn: () => Promise<void> | void): void }): Promise<{ h: TestMaster; api: ApiCall; agent: FakeAgent }> {
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const api: ApiCall = (method, url, body) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const agent = await fakeAgent(h, token, 'agent-1');
  t.teardown(async () => {
    agent.stop();
    await agent.done.catch(() => undefined);
  });
  return { h, api, agent };
}

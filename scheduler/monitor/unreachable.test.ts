/**
 * The UNREACHABLE task state end to end in one process: a master running
 * the agent monitor (short timeout) and the deployment controller, and fake
 * agents that heartbeat, run tasks, and can go silent and come back. An
 * agent marked unreachable has its tasks written UNREACHABLE; the app's
 * unreachableStrategy decides: replaced after inactiveAfterSeconds (and the
 * old task killed when its agent comes back), or kept and RUNNING again.
 */
import test, { type ExecutionContext } from 'ava';
import type { Task } from '../../control-plane/model/schemas.ts';
import { eventually } from '../../test/harness/fake-agent.ts';
import { startTestMaster, type TestMaster } from '../../test/harness/master.ts';
import { deploymentController } from '../controller/controller.ts';
import { agentMonitor } from './agent-monitor.ts';

interface PausableAgent {
  paused: boolean;
  stop(): void;
}

/** A fake agent: heartbeats every 100 ms and reports its tasks' states like the real runner; `paused` silences it. */
function pausableAgent(h: TestMaster, token: string, id: string): PausableAgent {
  const call = (method: 'GET' | 'PUT', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const self: PausableAgent = { paused: false, stop: () => (stopped = true) };
  let stopped = false;
  const running = new Set<string>();
  void (async () => {
    while (!stopped) {
      if (!self.paused) {
        await call('PUT', `/v1/agents/${id}`, {
          hostname: `${id}.example`, address: { ip: '127.0.0.1', port: 5051 }, attributes: {},
          resources: { cpus: 4, memMb: 4096, diskMb: 1000, gpus: 0, ports: [{ begin: 20000, end: 20100 }] },
        });
        const res = await call('GET', `/v1/agents/${id}/tasks`);
        for (const task of (res.json() as { tasks: Task[] }).tasks ?? []) {
          // What the real runner does: run STAGING tasks, kill KILLING ones, and tell the master the state of ours when it shows another.
          const next = task.state === 'KILLING' ? 'KILLED' : task.state === 'STAGING' || task.state === 'STARTING' || (task.state === 'UNREACHABLE' && running.has(task.id)) ? 'RUNNING' : undefined;
          if (!next) continue;
          if (next === 'RUNNING') running.add(task.id);
          else running.delete(task.id);
          await call('PUT', `/v1/agents/${id}/tasks/${task.id}/status`, { state: next });
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return self;
}

async function cluster(t: ExecutionContext, strategy: object) {
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 10 }), agentMonitor({ unreachableAfterSeconds: 0.5 })] });
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const a1 = pausableAgent(h, token, 'agent-1');
  t.teardown(() => a1.stop());
  await eventually(async () => (await h.master.records.get('agent', 'agent-1')) !== undefined, 'agent-1 registered');
  const created = await h.master.app.inject({
    method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` },
    payload: { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 16, instances: 1, portDefinitions: [], unreachableStrategy: strategy },
  });
  if (created.statusCode !== 201) throw new Error(created.body);
  const tasks = async (): Promise<Task[]> => (await h.master.records.list('task')).records.map((r) => r.value);
  await eventually(async () => (await tasks()).some((x) => x.state === 'RUNNING'), 'a RUNNING task on agent-1');
  const [first] = await tasks();
  const a2 = pausableAgent(h, token, 'agent-2');
  t.teardown(() => a2.stop());
  return { h, a1, tasks, first: first! };
}

test('replaced after inactiveAfterSeconds; the old task is killed when its agent comes back', async (t) => {
  const { h, a1, tasks, first } = await cluster(t, { inactiveAfterSeconds: 0, expungeAfterSeconds: 3600 });
  a1.paused = true;
  await eventually(async () => (await tasks()).find((x) => x.id === first.id)?.state === 'UNREACHABLE', 'the task UNREACHABLE');
  const marked = (await tasks()).find((x) => x.id === first.id)!;
  t.true(Date.parse(marked.stateChangedAt) > Date.parse(first.stateChangedAt), 'with the time it became unreachable');
  t.regex(marked.message ?? '', /agent agent-1 is unreachable/);
  t.regex((await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${await h.superuserToken()}` } })).body, /strata_scheduler_tasks_unreachable_total 1/);
  await eventually(async () => (await tasks()).some((x) => x.agentId === 'agent-2' && x.state === 'RUNNING'), 'a replacement on agent-2');
  a1.paused = false;
  await eventually(async () => (await tasks()).find((x) => x.id === first.id)?.state === 'KILLED', 'the returning old task killed');
  const live = (await tasks()).filter((x) => x.state === 'RUNNING');
  t.deepEqual(live.map((x) => x.agentId), ['agent-2'], 'one instance: the replacement');
});

test('not yet inactive: kept, and RUNNING again when its agent comes back, with no replacement', async (t) => {
  const { a1, tasks, first } = await cluster(t, { inactiveAfterSeconds: 3600, expungeAfterSeconds: 7200 });
  a1.paused = true;
  await eventually(async () => (await tasks()).find((x) => x.id === first.id)?.state === 'UNREACHABLE', 'the task UNREACHABLE');
  await new Promise((r) => setTimeout(r, 300));
  t.is((await tasks()).length, 1, 'no replacement while it is not inactive');
  a1.paused = false;
  await eventually(async () => (await tasks()).find((x) => x.id === first.id)?.state === 'RUNNING', 'RUNNING again');
  t.is((await tasks()).length, 1);
});

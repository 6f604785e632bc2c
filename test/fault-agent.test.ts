/**
 * Agent faults with real processes: a `strata master` and two `strata agent`
 * processes; the agent holding most of an app's tasks is SIGKILLed while the
 * app's deployment waits for their health. Its task processes live on (they
 * are their own process groups, as on Mesos).
 *
 * - With an `unreachableStrategy`, the master marks the agent unreachable,
 *   the tasks go inactive and are replaced on the other agent, and the
 *   deployment completes there. When the agent comes back, its recovery
 *   re-attaches the old processes; the master no longer lists them (they
 *   were expunged), so the agent kills them as orphans.
 * - Back before its tasks were expunged, they count again: the surplus is
 *   killed (Marathon's killSelection) and the app runs its 4 instances.
 * - With `"disabled"`, nothing is replaced: the deployment waits for the
 *   agent; when it comes back, recovery reports the same tasks RUNNING, their
 *   health checks resume, and the deployment completes with no new launch.
 *
 * Each task appends `<pid> <task id>` to a file when it starts and turns
 * healthy (a COMMAND check on a file it touches) 3 seconds later.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { readProcStat } from '../scheduler/executor/proc.ts';
import { startProcessCluster, until, type ClusterAgent, type ProcessCluster } from './harness/cluster.ts';

interface V2Task {
  id: string;
  state: string;
  slaveId: string;
  healthCheckResults: { alive: boolean }[];
}
interface V2App {
  tasksRunning: number;
  tasksHealthy: number;
  deployments: { id: string }[];
  tasks: V2Task[];
}

const alive = (pid: number): boolean => {
  const s = readProcStat(pid);
  return s !== undefined && s.state !== 'Z';
};

async function starts(file: string): Promise<{ pid: number; taskId: string }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').filter((l) => l !== '').map((l) => {
    const [pid, taskId] = l.split(' ');
    return { pid: Number(pid), taskId: taskId! };
  });
}

async function appOf(c: ProcessCluster, id: string): Promise<V2App> {
  const res = await c.api('GET', `/v2/apps${id}?embed=apps.tasks`);
  if (res.status !== 200) throw new Error(`GET app: ${res.status}`);
  return (res.body as { app: V2App }).app;
}

async function deploymentsOf(c: ProcessCluster): Promise<unknown[]> {
  const res = await c.api('GET', '/v2/deployments');
  if (res.status !== 200) throw new Error(`GET deployments: ${res.status}`);
  return res.body as unknown[];
}

/** A master that marks agents unreachable after 2 s, two agents, and an app of 4 whose tasks turn healthy 3 s after they start. */
async function setUp(t: ExecutionContext, name: string, unreachableStrategy: unknown) {
  const c = await startProcessCluster(t, name);
  const master = await c.startMaster('m1', { flags: ['--agent-unreachable-after-seconds', '2'] });
  await c.login(master);
  const agentFlags = ['--agent-orphan-grace-seconds', '1'];
  const agents = [await c.startAgent('a1', master, { flags: agentFlags }), await c.startAgent('a2', master, { flags: agentFlags })];
  const id = '/faults/spread';
  const startsFile = join(c.dir, 'starts');
  const created = await c.api('POST', '/v2/apps', {
    id,
    instances: 4,
    cpus: 0.05,
    mem: 16,
    portDefinitions: [],
    cmd: `echo "$$ $MESOS_TASK_ID" >> ${startsFile}; sleep 3; touch ready; exec sleep 1000`,
    healthChecks: [{ protocol: 'COMMAND', command: { value: 'test -f ready' }, gracePeriodSeconds: 60, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 0 }],
    unreachableStrategy,
    taskKillGracePeriodSeconds: 1,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  await until('4 task processes started', async () => (await starts(startsFile)).length === 4, 30_000);
  const app = await appOf(c, id);
  const onAgent = (a: ClusterAgent): V2Task[] => app.tasks.filter((x) => x.slaveId === a.id);
  const victim = onAgent(agents[0]!).length >= onAgent(agents[1]!).length ? agents[0]! : agents[1]!;
  const survivor = victim === agents[0] ? agents[1]! : agents[0]!;
  return { c, id, startsFile, victim, survivor, victimTasks: onAgent(victim).map((x) => x.id) };
}

test('an agent SIGKILLed mid-deployment: its tasks are replaced on the other agent per unreachableStrategy; back, it kills its orphaned processes', async (t) => {
  const { c, id, startsFile, victim, survivor, victimTasks } = await setUp(t, 'fault-agent', { inactiveAfterSeconds: 1, expungeAfterSeconds: 3 });
  t.true(victimTasks.length > 0);
  t.true((await deploymentsOf(c)).length > 0, 'the deployment waits for health');
  await victim.kill();
  const orphans = (await starts(startsFile)).filter((s) => victimTasks.includes(s.taskId));
  t.is(orphans.length, victimTasks.length);
  t.true(orphans.every((o) => alive(o.pid)), "the agent's SIGKILL leaves its tasks running");

  await until('the deployment to complete on the surviving agent', async () => {
    const app = await appOf(c, id);
    const healthy = app.tasks.filter((x) => x.state === 'TASK_RUNNING' && x.healthCheckResults.every((h) => h.alive) && x.healthCheckResults.length > 0);
    return (await deploymentsOf(c)).length === 0 && healthy.length === 4 && healthy.every((x) => x.slaveId === survivor.id);
  }, 60_000);
  const all = await starts(startsFile);
  t.is(all.length, 4 + victimTasks.length, 'each lost instance was replaced once');
  await until('the unreachable tasks to be expunged', async () => (await appOf(c, id)).tasks.every((x) => !victimTasks.includes(x.id)), 20_000);
  t.true(orphans.every((o) => alive(o.pid)), 'the orphans still run while their agent is away');

  await victim.restart();
  await until('the returning agent to kill its orphaned processes', () => orphans.every((o) => !alive(o.pid)), 60_000).catch((err: Error) => {
    throw new Error(`${err.message}; live: ${JSON.stringify(orphans.filter((o) => alive(o.pid)))}; agent output:\n${victim.process.output()}`);
  });
  t.regex(victim.process.output(), /killing a task the master no longer assigns to this agent/);
  const app = await appOf(c, id);
  t.is(app.tasks.filter((x) => x.state === 'TASK_RUNNING').length, 4, 'the app keeps its 4 instances');
  t.true(app.tasks.every((x) => x.slaveId === survivor.id));
  t.is((await starts(startsFile)).length, 4 + victimTasks.length, 'nothing more was launched');
  t.is((await c.liveTaskGroups()).length, 4, 'only the 4 instances run');
});

test('an agent back after its tasks were replaced but before they were expunged: the surplus instances are killed, 4 remain', async (t) => {
  const { c, id, startsFile, victim, victimTasks } = await setUp(t, 'fault-agent-back', { inactiveAfterSeconds: 1, expungeAfterSeconds: 600 });
  t.true(victimTasks.length > 0);
  await victim.kill();
  await until('the replacements to be healthy', async () => (await deploymentsOf(c)).length === 0 && (await appOf(c, id)).tasksHealthy === 4, 60_000);
  t.is((await starts(startsFile)).length, 4 + victimTasks.length, 'each lost instance was replaced once');

  // Back within expungeAfterSeconds: its tasks count again, so the app has more instances than it wants.
  await victim.restart();
  await until('4 instances again', async () => {
    const app = await appOf(c, id);
    const live = app.tasks.filter((x) => ['TASK_STAGING', 'TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLING'].includes(x.state));
    return live.length === 4 && live.every((x) => x.state === 'TASK_RUNNING') && (await c.liveTaskGroups()).length === 4;
  }, 60_000);
  t.is((await starts(startsFile)).length, 4 + victimTasks.length, 'nothing more was launched');
  const app = await appOf(c, id);
  t.is(app.tasksRunning, 4);
  t.deepEqual(await deploymentsOf(c), []);
});

test('an agent SIGKILLed mid-deployment with unreachableStrategy "disabled": nothing is replaced; back, it recovers its tasks and the deployment completes', async (t) => {
  const { c, id, startsFile, victim, victimTasks } = await setUp(t, 'fault-agent-disabled', 'disabled');
  t.true(victimTasks.length > 0);
  await victim.kill();
  const pids = (await starts(startsFile)).filter((s) => victimTasks.includes(s.taskId)).map((s) => s.pid);
  // Long enough for the agent to be marked unreachable (2 s) and its tasks' health files to appear (3 s).
  await new Promise((r) => setTimeout(r, 5000));
  t.is((await starts(startsFile)).length, 4, 'no replacement was launched');
  t.true((await deploymentsOf(c)).length > 0, 'the deployment waits for the agent');
  const { agents } = (await c.api('GET', '/v1/agents')).body as { agents: { id: string; health: { status: string } }[] };
  t.is(agents.find((a) => a.id === victim.id)?.health.status, 'unreachable');

  await victim.restart();
  await until('the deployment to complete with the recovered tasks', async () => {
    const app = await appOf(c, id);
    return (await deploymentsOf(c)).length === 0 && app.tasksHealthy === 4;
  }, 60_000);
  const app = await appOf(c, id);
  t.deepEqual(app.tasks.filter((x) => x.slaveId === victim.id).map((x) => x.id).sort(), [...victimTasks].sort(), 'the same tasks, re-attached');
  t.true(pids.every(alive), 'the same processes');
  t.is((await starts(startsFile)).length, 4, 'nothing was launched again');
});

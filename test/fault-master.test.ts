/**
 * Master faults with real processes: `strata master` and `strata agent`
 * run as separate processes; the master is SIGKILLed in the middle of a
 * rolling upgrade and started again on the same store (or, on etcd, a
 * standby takes over). The deployment resumes and completes: the app ends
 * at its new version with exactly its instances, each launched once, the
 * old tasks' processes are gone and the deployment record is deleted.
 *
 * Each task appends `<pid> <version> <task id>` to a file when it starts;
 * its COMMAND health check passes a few seconds later (a file it touches),
 * and the upgrade replaces one instance at a time (minimumHealthCapacity 1,
 * maximumOverCapacity 0.25), so the SIGKILL lands between waves. With
 * STRATA_SLOW=1 the embedded-store case kills the master at every wave.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { readProcStat } from '../scheduler/executor/proc.ts';
import { startProcessCluster, until, type ClusterMaster, type ProcessCluster } from './harness/cluster.ts';
import { startEtcdCluster } from './harness/etcd-cluster.ts';

interface V2App {
  version: string;
  instances: number;
  tasksRunning: number;
  tasksHealthy: number;
  deployments: { id: string }[];
  tasks: { id: string; state: string; version: string; slaveId: string }[];
}

const alive = (pid: number): boolean => {
  const s = readProcStat(pid);
  return s !== undefined && s.state !== 'Z';
};

function rollingApp(id: string, startsFile: string, env: Record<string, string>): Record<string, unknown> {
  return {
    id,
    instances: 4,
    cpus: 0.05,
    mem: 16,
    portDefinitions: [],
    env,
    cmd: `echo "$$ $MARATHON_APP_VERSION $MESOS_TASK_ID" >> ${startsFile}; sleep 2; touch ready; exec sleep 1000`,
    healthChecks: [{ protocol: 'COMMAND', command: { value: 'test -f ready' }, gracePeriodSeconds: 60, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 0 }],
    upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 0.25 },
    taskKillGracePeriodSeconds: 1,
  };
}

interface Start {
  readonly pid: number;
  readonly version: string;
  readonly taskId: string;
}

async function starts(file: string): Promise<Start[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').filter((l) => l !== '').map((l) => {
    const [pid, version, taskId] = l.split(' ');
    return { pid: Number(pid), version: version!, taskId: taskId! };
  });
}

async function appOf(c: ProcessCluster, id: string): Promise<V2App> {
  const res = await c.api('GET', `/v2/apps${id}?embed=apps.tasks`);
  if (res.status !== 200) throw new Error(`GET app: ${res.status}`);
  return (res.body as { app: V2App }).app;
}

/**
 * Starts the app (4 healthy instances), upgrades it, kills the leading
 * master once the upgrade has replaced one instance and not all, runs
 * `recover` (which brings a leader back), then checks the outcome.
 */
async function upgradeAcrossMasterKill(t: ExecutionContext, c: ProcessCluster, leader: ClusterMaster, recover: () => Promise<void>, options: { kills: number } = { kills: 1 }): Promise<void> {
  const id = '/faults/roll';
  const startsFile = join(c.dir, 'starts');
  const created = await c.api('POST', '/v2/apps', rollingApp(id, startsFile, { WAVE: '1' }));
  t.is(created.status, 201, JSON.stringify(created.body));
  await until('4 healthy instances of the first version', async () => {
    const app = await appOf(c, id);
    return app.tasksHealthy === 4 && app.deployments.length === 0;
  }, 60_000);
  const v1 = (await appOf(c, id)).version;
  t.is((await starts(startsFile)).length, 4);

  const updated = await c.api('PUT', `/v2/apps${id}`, { env: { WAVE: '2' } });
  t.is(updated.status, 200, JSON.stringify(updated.body));
  const { deploymentId, version: v2 } = updated.body as { deploymentId: string; version: string };

  // Mid-deployment: at least one new instance started, some old one still alive.
  await until('the upgrade to be under way', async () => {
    const s = await starts(startsFile);
    const oldAlive = s.filter((x) => x.version === v1 && alive(x.pid)).length;
    return s.some((x) => x.version === v2) && oldAlive >= 2;
  }, 60_000);
  await leader.kill();
  const atKill = await starts(startsFile);
  t.log(`master SIGKILLed with ${atKill.filter((x) => x.version === v2).length} new instance(s) started, ${atKill.filter((x) => x.version === v1 && alive(x.pid)).length} old alive`);
  t.true(atKill.filter((x) => x.version === v1 && alive(x.pid)).length >= 2, 'the deployment was not finished when the master died');

  await recover();
  // More kills (the slow variant): again each time one more new instance has started.
  for (let k = 1; k < options.kills; k++) {
    const before = (await starts(startsFile)).filter((x) => x.version === v2).length;
    if (before >= 4) break;
    await until('one more new instance', async () => (await starts(startsFile)).filter((x) => x.version === v2).length > before, 60_000);
    await leader.kill();
    t.log(`master SIGKILLed again with ${before + 1} new instance(s) started`);
    await recover();
  }

  await until('the deployment to complete after the failover', async () => {
    const deployments = await c.api('GET', '/v2/deployments');
    const app = await appOf(c, id);
    return deployments.status === 200 && (deployments.body as unknown[]).length === 0 && app.tasksHealthy === 4;
  }, 90_000);

  const app = await appOf(c, id);
  t.is(app.version, v2, 'the app is at the new version');
  t.is(app.instances, 4);
  const live = app.tasks.filter((x) => x.state === 'TASK_RUNNING');
  t.is(live.length, 4, 'exactly the planned instances run');
  t.true(live.every((x) => x.version === v2), 'every task runs the new version');
  const left = (await c.api('GET', '/v2/deployments')).body as { id: string }[];
  t.false(left.some((d) => d.id === deploymentId), 'the deployment record is gone');

  const all = await starts(startsFile);
  const newStarts = all.filter((x) => x.version === v2);
  t.is(newStarts.length, 4, 'each new instance was launched once: none lost, none duplicated');
  t.deepEqual(newStarts.map((x) => x.taskId).sort(), live.map((x) => x.id).sort(), 'the running tasks are the ones launched');
  await until('the old processes to be gone', () => all.filter((x) => x.version === v1).every((x) => !alive(x.pid)), 20_000);
  t.true(newStarts.every((x) => alive(x.pid)), 'the new processes run');
  const groups = await c.liveTaskGroups();
  t.is(groups.length, 4, `no other task process runs: ${JSON.stringify(groups)}`);
}

// STRATA_SLOW=1: the master is SIGKILLed at every wave of the upgrade, not once.
const kills = process.env['STRATA_SLOW'] === '1' ? 4 : 1;

test(`master SIGKILLed mid rolling upgrade (${kills}×), restarted on the same embedded store: the deployment resumes and completes, nothing lost or duplicated`, async (t) => {
  const c = await startProcessCluster(t, 'fault-master');
  const master = await c.startMaster('m1');
  await c.login(master);
  await c.startAgent('a1', master);
  await upgradeAcrossMasterKill(t, c, master, async () => {
    await master.restart();
  }, { kills });
});

test('two masters on etcd: the leader is SIGKILLed mid rolling upgrade; the standby takes over and completes it, the agent following it', async (t) => {
  const etcd = await startEtcdCluster({ members: 1, fastElection: true });
  t.teardown(() => etcd.stop());
  const c = await startProcessCluster(t, 'fault-takeover');
  const prefix = `fault-takeover-${process.pid}/`;
  const m1 = await c.startMaster('m1', { etcd: { endpoints: etcd.endpoints, prefix } });
  await until('m1 to lead', async () => ((await (await fetch(`${m1.apiUrl}/health`)).json()) as { role?: string }).role === 'leader', 20_000);
  const m2 = await c.startMaster('m2', { etcd: { endpoints: etcd.endpoints, prefix } });
  await c.login(m1);
  // The agent knows both masters and talks to the leader first; when it dies, the agent moves to
  // the standby (which serves the agent endpoints from the shared store), and so do the API calls.
  await c.startAgent('a1', [m1, m2]);
  c.useMaster(m2);
  await upgradeAcrossMasterKill(t, c, m1, async () => {
    await until('m2 to lead', async () => ((await (await fetch(`${m2.apiUrl}/health`)).json()) as { role?: string }).role === 'leader', 20_000);
  });
});

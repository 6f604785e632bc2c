/**
 * The task runner with container networking (a fake `TaskNetworking`
 * recording what it is asked) against the fake master: a task of an app
 * on a container network is attached before it starts, spawned through
 * `within` its namespace, reports its container IP, sees its container
 * port as PORT0; its end detaches it; a failed attach is the task's ERROR
 * with the reason; an agent restart leaves a running task's networking
 * alone and detaches the one that died meanwhile; host-mode tasks are
 * never attached.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { StrataError } from '../../common/errors.ts';
import { noCgroups } from '../executor/cgroups.ts';
import { Executor } from '../executor/executor.ts';
import { gone, reap, tempDir, waitFor } from '../executor/test-helpers.ts';
import { FAKE_TOKEN, FakeMaster } from './fake-master.ts';
import type { TaskNetworking } from './task-networking.ts';
import { TaskRunner } from './task-runner.ts';

const logger = pino({ level: process.env.STRATA_TEST_LOG ?? 'silent' });
const VERSION = '2026-01-02T03:04:05.678Z';
const AGENT = 'agent-1-S0';
let seq = 0;

class FakeNetworking implements TaskNetworking {
  readonly calls: string[] = [];
  fail: string | undefined;
  async attach(taskId: string, network: string) {
    this.calls.push(`attach ${taskId} ${network}`);
    if (this.fail) throw new StrataError('OVERLAY_EXHAUSTED', this.fail);
    return { netnsPath: `/fake/netns/${taskId}`, ipAddresses: [{ ipAddress: `9.0.0.${2 + this.calls.length}`, protocol: 'IPv4' as const }] };
  }
  async detach(taskId: string) {
    this.calls.push(`detach ${taskId}`);
  }
  within<T>(path: string, fn: () => T): T {
    this.calls.push(`within ${path}`);
    return fn();
  }
}

function setup(t: ExecutionContext, master: FakeMaster, workDir: string, networking: FakeNetworking): { executor: Executor; start(): Promise<TaskRunner> } {
  const executor = new Executor({ workDir, host: 'agent.test', pollIntervalMs: 50, cgroups: noCgroups('tests'), enterNetns: (p, fn) => networking.within(p, fn) });
  reap(t, executor);
  return {
    executor,
    async start() {
      const r = new TaskRunner({ agentId: AGENT, masterUrl: master.url, token: () => Promise.resolve(FAKE_TOKEN), executor, logger, networking, waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, orphanGraceMs: 300, minPollIntervalMs: 20 });
      t.teardown(() => r.close());
      await r.start();
      return r;
    },
  };
}

function containerTask(master: FakeMaster, out: string, network = 'dcos', extra: Record<string, unknown> = {}): string {
  const appId = `/net/app${++seq}`;
  master.addApp({ id: appId, version: VERSION, cmd: `echo "$PORT0 $$" > ${out}; exec sleep 300`, networks: [{ mode: 'container', name: network }], container: { type: 'MESOS', portMappings: [{ containerPort: 8080, servicePort: 0, protocol: 'tcp', labels: {} }] }, taskKillGracePeriodSeconds: 1, ...extra } as never);
  const id = `net_app${seq}.instance-${process.pid}-${seq}._app.1`;
  master.addTask({ id, appId, agentId: AGENT, version: VERSION, ports: [] });
  return id;
}

async function pidIn(file: string): Promise<{ port: string; pid: number }> {
  let text = '';
  await waitFor(`${file} written`, async () => /^\S+ \d+\n/.test((text = await readFile(file, 'utf8').catch(() => ''))));
  const [port, pid] = text.trim().split(' ');
  return { port: port!, pid: Number(pid) };
}

test('a container-network task: attached, spawned within its namespace, its IP reported, PORT0 its container port; detached when it ends', async (t) => {
  const dir = await tempDir(t);
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  const net = new FakeNetworking();
  await setup(t, master, join(dir, 'sandboxes'), net).start();
  const id = containerTask(master, join(dir, 'out'));
  const { port } = await pidIn(join(dir, 'out'));
  t.is(port, '8080', 'the task sees its container port');
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  t.deepEqual(net.calls, [`attach ${id} dcos`, `within /fake/netns/${id}`]);
  t.deepEqual(master.reports.find((r) => r.taskId === id && r.state === 'RUNNING')!.ipAddresses, [{ ipAddress: '9.0.0.3', protocol: 'IPv4' }]);

  master.setState(id, 'KILLING');
  await waitFor('KILLED reported', () => master.tasks.get(id)!.state === 'KILLED');
  await waitFor('detached', () => net.calls.includes(`detach ${id}`));
});

test('a failed attach is the task\'s ERROR with the reason; nothing is spawned', async (t) => {
  const dir = await tempDir(t);
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  const net = new FakeNetworking();
  net.fail = 'network "tiny": agent agent-1-S0\'s subnet 10.250.0.0/30 has no free container IP (1 assigned, 0 released and still in their 300 s quarantine)';
  await setup(t, master, join(dir, 'sandboxes'), net).start();
  const id = containerTask(master, join(dir, 'out'), 'tiny');
  await waitFor('ERROR reported', () => master.tasks.get(id)!.state === 'ERROR');
  t.like(master.reports.find((r) => r.taskId === id), { state: 'ERROR', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
  t.regex(master.reports.find((r) => r.taskId === id)!.message!, /^Cannot join network "tiny": network "tiny": .*has no free container IP/);
  t.false(net.calls.some((c) => c.startsWith('within')));
});

test('agent restart: a running task\'s networking is left alone, the one that died meanwhile is detached; host-mode tasks are never attached', async (t) => {
  const dir = await tempDir(t);
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  const workDir = join(dir, 'sandboxes');
  const net = new FakeNetworking();
  const first = setup(t, master, workDir, net);
  const r1 = await first.start();
  const keep = containerTask(master, join(dir, 'keep'));
  const dies = containerTask(master, join(dir, 'dies'));
  const hostAppId = `/net/host${++seq}`;
  master.addApp({ id: hostAppId, version: VERSION, cmd: 'exec sleep 300', portDefinitions: [], taskKillGracePeriodSeconds: 1 } as never);
  const hostTask = `net_host${seq}.instance-${process.pid}-${seq}._app.1`;
  master.addTask({ id: hostTask, appId: hostAppId, agentId: AGENT, version: VERSION, ports: [] });
  const { pid: keepPid } = await pidIn(join(dir, 'keep'));
  const { pid: diesPid } = await pidIn(join(dir, 'dies'));
  t.teardown(() => {
    for (const pid of [keepPid, diesPid]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  await waitFor('all RUNNING', () => [keep, dies, hostTask].every((id) => master.tasks.get(id)!.state === 'RUNNING'));
  t.false(net.calls.some((c) => c.includes(hostTask) && c.startsWith('attach')), 'a host-mode task is not attached');
  await r1.close();
  await first.executor.close();
  process.kill(-diesPid, 'SIGKILL');
  await waitFor('the task to die', () => gone(diesPid));
  const before = net.calls.length;

  await setup(t, master, workDir, net).start();
  await waitFor('LOST reported', () => master.tasks.get(dies)!.state === 'LOST');
  await waitFor('the dead task detached', () => net.calls.slice(before).includes(`detach ${dies}`));
  t.false(net.calls.slice(before).some((c) => c.includes(keep)), 'the running task\'s networking is untouched');
  t.false(gone(keepPid));
});

test('COMMAND health checks of a container-network task are spawned within its namespace', async (t) => {
  const dir = await tempDir(t);
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  const net = new FakeNetworking();
  await setup(t, master, join(dir, 'sandboxes'), net).start();
  const check = { protocol: 'COMMAND', command: { value: 'true' }, gracePeriodSeconds: 5, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 3, delaySeconds: 0, ignoreHttp1xx: false };
  const id = containerTask(master, join(dir, 'out'), 'dcos', { healthChecks: [check] });
  await waitFor('a healthy report', () => master.reports.some((r) => r.taskId === id && r.healthCheckResults?.[0]?.alive === true));
  t.true(net.calls.filter((c) => c === `within /fake/netns/${id}`).length >= 2, net.calls.join('\n'));
});

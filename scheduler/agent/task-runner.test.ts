/**
 * The task runner against an in-test fake master implementing the agent
 * task contract: real processes launched from a STAGING listing, kills,
 * exits, a master that goes down and comes back, an agent restart, orphans
 * and tasks unknown here; and `startAgent` wiring it all up.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../../control-plane/config/load.ts';
import { noCgroups } from '../executor/cgroups.ts';
import { Executor } from '../executor/executor.ts';
import { gone, reap, tempDir, waitFor } from '../executor/test-helpers.ts';
import { startAgent } from './agent.ts';
import { FAKE_TOKEN, FakeMaster } from './fake-master.ts';
import { REASON_HEALTH_CHECK_FAILED, TaskRunner } from './task-runner.ts';

const logger = pino({ level: process.env.STRATA_TEST_LOG ?? 'silent' });
const VERSION = '2026-01-02T03:04:05.678Z';
const AGENT = 'agent-1-S0';
let seq = 0;

async function fakeMaster(t: ExecutionContext): Promise<FakeMaster> {
  const master = await FakeMaster.start();
  t.teardown(() => master.close());
  return master;
}

function executorFor(t: ExecutionContext, workDir: string): Executor {
  const executor = new Executor({ workDir, host: 'agent.test', pollIntervalMs: 50, cgroups: noCgroups('tests') });
  reap(t, executor);
  return executor;
}

async function runner(t: ExecutionContext, master: FakeMaster, executor: Executor, extra: Partial<ConstructorParameters<typeof TaskRunner>[0]> = {}): Promise<TaskRunner> {
  const r = new TaskRunner({
    agentId: AGENT, masterUrl: master.url, token: () => Promise.resolve(FAKE_TOKEN), executor, logger,
    waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, orphanGraceMs: 300, minPollIntervalMs: 20, ...extra,
  });
  t.teardown(() => r.close());
  await r.start();
  return r;
}

/** An app whose task writes `$PORT0 <pid>` to `out`, then runs `then`. */
function appTask(master: FakeMaster, out: string, then: string, app: Record<string, unknown> = {}): string {
  const appId = `/group/app${++seq}`;
  master.addApp({ id: appId, version: VERSION, cmd: `echo "$PORT0 $$" > ${out}; ${then}`, portDefinitions: [{ port: 0, protocol: 'tcp', labels: {} }], taskKillGracePeriodSeconds: 1, ...app } as never);
  const id = `group_app${seq}.instance-${process.pid}-${seq}._app.1`;
  master.addTask({ id, appId, agentId: AGENT, version: VERSION, ports: [31000 + seq] });
  return id;
}

async function pidIn(file: string): Promise<{ port: string; pid: number }> {
  let text = '';
  await waitFor(`${file} written`, async () => /^\S+ \d+\n/.test((text = await readFile(file, 'utf8').catch(() => ''))));
  const [port, pid] = text.trim().split(' ');
  return { port: port!, pid: Number(pid) };
}

test('STAGING: the task runs as a real process, STARTING and RUNNING are reported; KILLING kills it and KILLED is reported', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  const out = join(dir, 'out');
  const id = appTask(master, out, 'exec sleep 300');
  const { port, pid } = await pidIn(out);
  t.is(port, String(master.tasks.get(id)!.ports[0]), 'PORT0 is the host port the master allocated');
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  t.deepEqual(master.statesOf(id), ['STARTING', 'RUNNING']);
  t.false(gone(pid));

  master.setState(id, 'KILLING');
  await waitFor('KILLED reported', () => master.tasks.get(id)!.state === 'KILLED');
  t.true(gone(pid), 'the process is gone');
  t.deepEqual(master.statesOf(id), ['STARTING', 'RUNNING', 'KILLING', 'KILLED']);
  t.truthy(master.reports.at(-1)!.timestamp);
});

test('a process that exits 0 is FINISHED (with its exit code); a missing app version is ERROR', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  const id = appTask(master, join(dir, 'out'), 'exit 0');
  await waitFor('FINISHED reported', () => master.tasks.get(id)!.state === 'FINISHED');
  t.like(master.reports.at(-1), { taskId: id, state: 'FINISHED', exitCode: 0, message: 'Command exited with status 0' });

  const bad = `nope.instance-${process.pid}._app.1`;
  master.addTask({ id: bad, appId: '/nope', agentId: AGENT, version: VERSION });
  await waitFor('ERROR reported', () => master.tasks.get(bad)!.state === 'ERROR');
  t.regex(master.reports.at(-1)!.message!, /Cannot launch: .*404/);
});

test('app fetch: a transient failure is retried until the task launches; a 403 is an ERROR saying why', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  master.appStatus = 503;
  const id = appTask(master, join(dir, 'out'), 'exec sleep 300');
  await waitFor('a few failed reads', () => master.appReads >= 3);
  t.is(master.tasks.get(id)!.state, 'STAGING');
  t.is(executor.get(id), undefined);
  master.appStatus = undefined;
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');

  master.appStatus = 403;
  const denied = appTask(master, join(dir, 'out2'), 'exec sleep 300');
  await waitFor('ERROR reported', () => master.tasks.get(denied)!.state === 'ERROR');
  t.regex(master.reports.at(-1)!.message!, /Cannot launch: .* 403 /);
});

test('master down, then up: the statuses reached meanwhile are delivered (the latest, never lost)', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  const r = await runner(t, master, executor);
  const out = join(dir, 'out');
  const id = appTask(master, out, `while [ ! -e ${join(dir, 'go')} ]; do sleep 0.05; done; exit 3`);
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  master.down = true;
  master.bump(); // the pending long poll answers into a dead connection
  await readFile(out); // the task runs
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(dir, 'go'), '');
  await executor.get(id)!.terminated;
  await new Promise((resolve) => setTimeout(resolve, 400)); // a few failed attempts
  t.is(master.tasks.get(id)!.state, 'RUNNING', 'nothing got through while down');
  t.true(master.attempts.length === master.reports.length);
  master.down = false;
  await waitFor('FAILED delivered', () => master.tasks.get(id)!.state === 'FAILED');
  t.like(master.reports.at(-1), { state: 'FAILED', exitCode: 3, reason: 'REASON_COMMAND_EXECUTOR_FAILED' });
  await r.reportsIdle();
});

test('agent restart: recovery reports RUNNING for a task still running and LOST for one that died meanwhile', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const workDir = join(dir, 'sandboxes');
  const first = executorFor(t, workDir);
  const r1 = await runner(t, master, first);
  const keep = appTask(master, join(dir, 'keep'), 'exec sleep 300');
  const dies = appTask(master, join(dir, 'dies'), 'exec sleep 300');
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
  await waitFor('both RUNNING', () => master.tasks.get(keep)!.state === 'RUNNING' && master.tasks.get(dies)!.state === 'RUNNING');
  await r1.close();
  await first.close(); // the agent stops; its tasks keep running
  t.false(gone(keepPid));
  process.kill(-diesPid, 'SIGKILL');
  await waitFor('the task to die', () => gone(diesPid));
  const reportsBefore = master.reports.length;

  const second = executorFor(t, workDir);
  await runner(t, master, second);
  await waitFor('LOST reported', () => master.tasks.get(dies)!.state === 'LOST');
  await waitFor('RUNNING re-reported', () => master.reports.slice(reportsBefore).some((r) => r.taskId === keep && r.state === 'RUNNING'));
  t.regex(master.reports.slice(reportsBefore).find((r) => r.taskId === keep)!.message!, /Re-attached/);
  t.like(master.reports.slice(reportsBefore).find((r) => r.taskId === dies), { state: 'LOST', reason: 'REASON_EXECUTOR_TERMINATED' });
  t.is(second.get(keep)!.pid, keepPid);

  master.setState(keep, 'KILLING');
  await waitFor('KILLED reported', () => master.tasks.get(keep)!.state === 'KILLED');
  t.true(gone(keepPid), 'a re-attached task can be killed');
});

test('a task the master no longer lists is killed after the grace; listed tasks unknown here are LOST, or KILLED when KILLING', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor, { orphanGraceMs: 300, waitSeconds: 0.5 });
  const id = appTask(master, join(dir, 'out'), 'exec sleep 300');
  const { pid } = await pidIn(join(dir, 'out'));
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  const removedAt = Date.now();
  master.removeTask(id);
  const end = await executor.get(id)!.terminated;
  t.is(end.state, 'KILLED');
  t.true(Date.now() - removedAt >= 300, 'not before the grace');
  t.true(gone(pid));
  await waitFor('the KILLED report refused (404) and dropped', () => master.attempts.some((a) => a.taskId === id && a.state === 'KILLED' && a.status === 404));

  const appId = '/ghost';
  master.addTask({ id: `ghost.instance-1-${process.pid}._app.1`, appId, agentId: AGENT, version: VERSION, state: 'RUNNING' });
  master.addTask({ id: `ghost.instance-2-${process.pid}._app.1`, appId, agentId: AGENT, version: VERSION, state: 'KILLING' });
  await waitFor('LOST', () => master.tasks.get(`ghost.instance-1-${process.pid}._app.1`)!.state === 'LOST');
  await waitFor('KILLED', () => master.tasks.get(`ghost.instance-2-${process.pid}._app.1`)!.state === 'KILLED');
});

test('an orphan is killed once its grace is over even when the listings block for long (nothing else changes)', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  // Listings block up to 60 s; only the orphan's own removal changes anything.
  await runner(t, master, executor, { orphanGraceMs: 500, waitSeconds: 60 });
  const id = appTask(master, join(dir, 'out'), 'exec sleep 300');
  const { pid } = await pidIn(join(dir, 'out'));
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  master.removeTask(id);
  // Without a shorter listing wait the second listing, and so the kill, would come 60 s later.
  await waitFor('the orphan killed', () => gone(pid), 15_000);
  t.is((await executor.get(id)!.terminated).state, 'KILLED');
});

test('startAgent: registers, runs assigned tasks in <dataDir>/sandboxes, and leaves them running on close', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const dataDir = join(dir, 'data');
  const config = loadConfig({ flags: { 'data-dir': dataDir, 'agent-port': '0', 'agent-id': AGENT }, env: {} });
  const agent = await startAgent({
    config, logger, masterUrl: master.url, token: () => Promise.resolve(FAKE_TOKEN), cgroups: noCgroups('tests'),
    taskRunner: { waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, minPollIntervalMs: 20 },
  });
  t.teardown(() => agent.close());
  t.deepEqual(master.registrations.slice(0, 1), [AGENT]);
  const out = join(dir, 'out');
  const id = appTask(master, out, 'exec sleep 300');
  const { pid } = await pidIn(out);
  t.teardown(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  await waitFor('task.json in <dataDir>/sandboxes', async () => /"RUNNING"/.test(await readFile(join(dataDir, 'sandboxes', id, 'task.json'), 'utf8')));
  await agent.close();
  t.false(gone(pid), 'tasks outlive their agent; the next start recovers them');
});

test('health checks: results reported on change only; failures beyond maxConsecutiveFailures kill the task (REASON_HEALTH_CHECK_FAILED)', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  const free = createNetServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as AddressInfo).port;
  await new Promise((resolve) => free.close(resolve));
  // A real HTTP server on $PORT0 that answers 200 while the file `healthy` exists in its sandbox, 503 otherwise.
  const server = `require('http').createServer((q,s)=>{s.writeHead(require('fs').existsSync('healthy')?200:503);s.end()}).listen(process.env.PORT0,'127.0.0.1')`;
  const check = { gracePeriodSeconds: 60, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 2, delaySeconds: 0, ignoreHttp1xx: false };
  const appId = `/group/app${++seq}`;
  master.addApp({
    id: appId, version: VERSION, cmd: `exec ${process.execPath} -e "${server}"`, portDefinitions: [{ port: 0, protocol: 'tcp', labels: {} }], taskKillGracePeriodSeconds: 1,
    healthChecks: [{ protocol: 'MESOS_HTTP', path: '/', portIndex: 0, ...check }, { protocol: 'COMMAND', command: { value: 'test -f healthy && test "$MESOS_TASK_ID" != ""' }, ...check }],
  } as never);
  const id = `group_app${seq}.instance-${process.pid}-${seq}._app.1`;
  master.addTask({ id, appId, agentId: AGENT, version: VERSION, ports: [port] });
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  const health = (): NonNullable<(typeof master.reports)[number]['healthCheckResults']>[] => master.reports.filter((r) => r.taskId === id && r.healthCheckResults).map((r) => r.healthCheckResults!);
  await new Promise((r) => setTimeout(r, 1500));
  t.is(health().length, 0, 'failures within the grace period change nothing worth a report');

  const sandbox = executor.get(id)!.sandbox;
  await writeFile(join(sandbox, 'healthy'), 'ok');
  await waitFor('alive reported for both checks', () => health().some((h) => h.length === 2 && h.every((r) => r.alive)), 8000);
  const reportsWhenHealthy = health().length;
  await new Promise((r) => setTimeout(r, 2500));
  t.is(health().length, reportsWhenHealthy, 'a steady healthy task does not report every interval');
  t.is(master.tasks.get(id)!.state, 'RUNNING');

  await rm(join(sandbox, 'healthy'));
  await waitFor('KILLED reported', () => master.tasks.get(id)!.state === 'KILLED', 10_000);
  const killed = master.reports.filter((r) => r.taskId === id).at(-1)!;
  t.is(killed.reason, REASON_HEALTH_CHECK_FAILED);
  t.regex(killed.message ?? '', /health check \d .* failed 2 times/);
  t.true(killed.healthCheckResults!.some((r) => !r.alive && r.consecutiveFailures >= 2 && r.lastFailureCause !== undefined && r.firstSuccess !== undefined));
  t.deepEqual(master.statesOf(id).slice(-2), ['KILLING', 'KILLED']);
});

test('health checks resume after an agent restart (the app fetched again) and still kill an unhealthy task', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const workDir = join(dir, 'sandboxes');
  const first = executorFor(t, workDir);
  const r1 = await runner(t, master, first);
  const flag = join(dir, 'healthy');
  await writeFile(flag, 'ok');
  const check = { protocol: 'COMMAND', command: { value: `test -f ${flag}` }, gracePeriodSeconds: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 1, delaySeconds: 0, ignoreHttp1xx: false };
  const id = appTask(master, join(dir, 'out'), 'exec sleep 300', { healthChecks: [check] });
  const { pid } = await pidIn(join(dir, 'out'));
  t.teardown(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const alive = (): boolean => master.reports.some((r) => r.taskId === id && r.healthCheckResults?.[0]?.alive === true);
  await waitFor('alive reported', alive, 8000);
  await r1.close();
  await first.close();
  const appReads = master.appReads;

  const second = executorFor(t, workDir);
  await runner(t, master, second);
  await waitFor('the app fetched again for its health checks', () => master.appReads > appReads, 8000);
  await rm(flag);
  await waitFor('KILLED reported', () => master.tasks.get(id)!.state === 'KILLED', 10_000);
  t.is(master.reports.filter((r) => r.taskId === id).at(-1)!.reason, REASON_HEALTH_CHECK_FAILED);
  t.true(gone(pid));
});

test('a task whose app has no health checks: the app is read once, reports carry no healthCheckResults', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  const id = appTask(master, join(dir, 'out'), 'exec sleep 300');
  await pidIn(join(dir, 'out'));
  await waitFor('RUNNING reported', () => master.tasks.get(id)!.state === 'RUNNING');
  master.bump();
  await new Promise((r) => setTimeout(r, 300));
  t.is(master.appReads, 1);
  t.true(master.reports.every((r) => r.healthCheckResults === undefined));
  master.setState(id, 'KILLING');
  await waitFor('KILLED reported', () => master.tasks.get(id)!.state === 'KILLED');
});

test('secrets: env and file secrets fetched at launch reach the task (never its arguments); a refusal is ERROR with REASON_SECRET_GENERATION_FAILED', async (t) => {
  const dir = await tempDir(t);
  const master = await fakeMaster(t);
  const executor = executorFor(t, join(dir, 'sandboxes'));
  await runner(t, master, executor);
  master.secretValues.set('db', 'db-secret-value');
  master.secretValues.set('cert', 'cert-secret-value');
  const out = join(dir, 'out');
  const seen = join(dir, 'seen');
  const id = appTask(master, out, `printf "%s|%s|%s" "$DB_PASS" "$(cat "$MESOS_SANDBOX/certs/tls.pem")" "$(stat -c %a "$MESOS_SANDBOX/certs/tls.pem")" > ${seen}; exec sleep 300`, {
    env: { DB_PASS: { secret: 'db' } },
    secrets: { db: { source: 'group/db' }, cert: { source: 'group/cert' } },
    container: { type: 'MESOS', portMappings: [], volumes: [{ containerPath: 'certs/tls.pem', secret: 'cert' }] },
  });
  const { pid } = await pidIn(out);
  let text = '';
  await waitFor('the task to write what it saw', async () => (text = await readFile(seen, 'utf8').catch(() => '')).includes('|4'));
  t.is(text, 'db-secret-value|cert-secret-value|400');
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  t.false(cmdline.includes('secret-value'), 'not in the process arguments');
  t.is(master.secretReads, 1);
  const record = await readFile(join(executor.get(id)!.sandbox, 'task.json'), 'utf8');
  t.false(record.includes('secret-value'), 'not in the task record');

  master.secretsRefusal = 'secret other/x is outside the space of app /group/appN';
  const refused = appTask(master, join(dir, 'out2'), 'exec sleep 300', { env: { X: { secret: 's' } }, secrets: { s: { source: 'other/x' } } });
  await waitFor('ERROR reported', () => master.tasks.get(refused)!.state === 'ERROR');
  t.like(master.reports.at(-1), { state: 'ERROR', reason: 'REASON_SECRET_GENERATION_FAILED' });
  t.regex(master.reports.at(-1)!.message!, /outside the space/);
});

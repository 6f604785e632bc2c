/**
 * The executor with real processes: environment, cmd and args, exit codes,
 * kills with their grace period, the task's children, log rotation, launch
 * errors, cgroup requests (through the fake). Every test kills every process
 * group it started in its teardown.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { DEFAULT_KILL_GRACE_PERIOD_SECONDS, Executor, type ExecutorOptions, type TaskStatus } from './executor.ts';
import { FakeCgroupManager } from './fake-cgroups.ts';
import { sandboxName } from './spec.ts';
import { fileText, gone, reap, reapGroup, taskSpec, tempDir, waitFor } from './test-helpers.ts';

async function executor(t: Parameters<typeof reap>[0], options: Partial<ExecutorOptions> = {}): Promise<Executor> {
  const ex = new Executor({ workDir: join(await tempDir(t), 'work'), host: 'agent-1.test', ...options });
  reap(t, ex);
  return ex;
}

const states = (history: readonly TaskStatus[]): string[] => history.map((s) => s.state);

test('cmd runs via /bin/sh -c in its sandbox (0700) with the task environment; exit 0 is FINISHED', async (t) => {
  const ex = await executor(t);
  const seen: TaskStatus[] = [];
  ex.on('status', (s) => seen.push(s));
  const handle = ex.launch(
    taskSpec({
      cmd: 'echo "id=$MESOS_TASK_ID app=$MARATHON_APP_ID ver=$MARATHON_APP_VERSION port=$PORT0 http=$PORT_HTTP ports=$PORTS host=$HOST foo=$FOO"; echo "sandbox=$MESOS_SANDBOX pwd=$(pwd) label=$MARATHON_APP_LABEL_TIER"; echo oops >&2',
      env: { FOO: 'bar baz' },
      labels: { tier: 'web' },
      portDefinitions: [{ port: 0, name: 'http' }, { port: 0 }],
      ports: [31005, 31006],
    }),
  );
  const ownSeen: TaskStatus[] = [];
  handle.on('status', (s) => ownSeen.push(s));
  const end = await handle.terminated;
  t.is(end.state, 'FINISHED', end.message);
  t.is(end.exitCode, 0);
  t.deepEqual(states(handle.history), ['STAGING', 'STARTING', 'RUNNING', 'FINISHED']);
  t.deepEqual(states(ownSeen), states(handle.history), 'listeners attached right after launch() see every state');
  t.deepEqual(states(seen), states(handle.history), 'the executor emits them too');
  for (const s of handle.history) t.false(Number.isNaN(Date.parse(s.timestamp)));
  t.is(handle.sandbox, join(ex.workDir, sandboxName(handle.taskId)));
  t.is(statSync(handle.sandbox).mode & 0o777, 0o700);
  const out = await fileText(join(handle.sandbox, 'stdout'));
  t.true(out.includes(`id=${handle.taskId} app=/group/web ver=2026-01-02T03:04:05.678Z port=31005 http=31005 ports=31005,31006 host=agent-1.test foo=bar baz`), out);
  t.true(out.includes(`sandbox=${handle.sandbox} pwd=${handle.sandbox} label=web`), out);
  t.is(await fileText(join(handle.sandbox, 'stderr')), 'oops\n');
  t.is((await ex.tailLog(handle.taskId, { stream: 'stderr' })).data, 'oops\n', 'logs are readable through the executor');
  const record = JSON.parse(readFileSync(join(handle.sandbox, 'task.json'), 'utf8')) as { pid: number; history: TaskStatus[] };
  t.is(record.pid as number | undefined, handle.pid);
  t.deepEqual(states(record.history), states(handle.history), 'the sandbox record holds the history');
});

test('args run as argv without a shell; non-zero exit is FAILED with the status; a signal death is FAILED with the signal', async (t) => {
  const ex = await executor(t);
  const argv = ex.launch(taskSpec({ args: ['/bin/echo', '$HOME', 'two words', '*'] }));
  t.is((await argv.terminated).state, 'FINISHED');
  t.is(await fileText(join(argv.sandbox, 'stdout')), '$HOME two words *\n', 'no shell expansion');

  const failed = ex.launch(taskSpec({ cmd: 'exit 3' }));
  t.like(await failed.terminated, { state: 'FAILED', exitCode: 3, reason: 'REASON_COMMAND_EXECUTOR_FAILED', message: 'Command exited with status 3' });

  const signalled = ex.launch(taskSpec({ args: ['/bin/sh', '-c', 'kill -SEGV $$'] }));
  const end = await signalled.terminated;
  t.like(end, { state: 'FAILED', signal: 'SIGSEGV' });
  t.is(end.exitCode, undefined);

  const notFound = ex.launch(taskSpec({ cmd: 'no-such-command-strata' }));
  t.like(await notFound.terminated, { state: 'FAILED', exitCode: 127 }, 'with cmd the shell starts, so a missing command is its exit 127 (as on Mesos)');
});

test('ERROR for launches that cannot start: missing executable, sandbox not creatable, missing secret', async (t) => {
  const ex = await executor(t);
  const missing = ex.launch(taskSpec({ args: ['/nonexistent/strata-binary', 'x'] }));
  const end = await missing.terminated;
  t.like(end, { state: 'ERROR', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
  t.regex(end.message!, /ENOENT/);
  t.is(missing.pid, undefined);
  t.deepEqual(states(missing.history), ['STAGING', 'STARTING', 'ERROR']);

  const secret = ex.launch(taskSpec({ cmd: 'true', env: { PASS: { secret: 'db' } } }));
  t.like(await secret.terminated, { state: 'ERROR', reason: 'REASON_SECRET_GENERATION_FAILED' });

  const fileDir = join(await tempDir(t), 'not-a-dir');
  writeFileSync(fileDir, 'x');
  const broken = await executor(t, { workDir: fileDir });
  const h = broken.launch(taskSpec({ cmd: 'true' }));
  t.like(await h.terminated, { state: 'ERROR', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
  t.deepEqual(states(h.history), ['STAGING', 'ERROR']);
});

test('kill: a task that handles SIGTERM ends within the grace and is KILLED, even exiting 0', async (t) => {
  const ex = await executor(t);
  const handle = ex.launch(taskSpec({ cmd: "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done", taskKillGracePeriodSeconds: 10 }));
  await waitFor('ready', async () => (await fileText(join(handle.sandbox, 'stdout'))).includes('ready'));
  const started = Date.now();
  const end = await handle.kill();
  t.true(Date.now() - started < 5000, 'did not wait for the 10 s grace');
  t.like(end, { state: 'KILLED', exitCode: 0 });
  t.deepEqual(states(handle.history), ['STAGING', 'STARTING', 'RUNNING', 'KILLING', 'KILLED']);
  t.true((await fileText(join(handle.sandbox, 'stdout'))).includes('got-term'));
  t.true(gone(handle.pid!));
});

test('kill: a task that ignores SIGTERM gets SIGKILL after taskKillGracePeriodSeconds', async (t) => {
  const ex = await executor(t);
  const handle = ex.launch(taskSpec({ cmd: "trap '' TERM; echo ready; while :; do sleep 0.05; done", taskKillGracePeriodSeconds: 0.6 }));
  t.is(handle.killGracePeriodSeconds, 0.6);
  await waitFor('ready', async () => (await fileText(join(handle.sandbox, 'stdout'))).includes('ready'));
  const started = Date.now();
  const end = await ex.kill(handle.taskId);
  const took = Date.now() - started;
  t.like(end, { state: 'KILLED', signal: 'SIGKILL' });
  t.true(took >= 550, `SIGKILL came after the grace (${took} ms)`);
  t.true(took < 4000, `and not much later (${took} ms)`);
  t.true(gone(handle.pid!));
  t.is(DEFAULT_KILL_GRACE_PERIOD_SECONDS, 3);
  const unset = ex.launch(taskSpec({ cmd: 'true' }));
  t.is(unset.killGracePeriodSeconds, 3, 'unset: the executor default, 3 s');
  await unset.terminated;
});

test("kill reaches the task's children (also ones ignoring SIGTERM); children die when the task's main process ends", async (t) => {
  const ex = await executor(t);
  const handle = ex.launch(
    taskSpec({ cmd: "(trap '' TERM; while :; do sleep 0.05; done) & echo $! > child.pid; echo ready; wait", taskKillGracePeriodSeconds: 30 }),
  );
  await waitFor('ready', async () => (await fileText(join(handle.sandbox, 'stdout'))).includes('ready'));
  const child = Number(await fileText(join(handle.sandbox, 'child.pid')));
  reapGroup(t, handle.pid!);
  t.false(gone(child));
  const end = await handle.kill();
  t.like(end, { state: 'KILLED', signal: 'SIGTERM' }, 'the main process took the SIGTERM');
  await waitFor('the child to die', () => gone(child), 3000);
  t.true(gone(child), 'the child that ignored SIGTERM is gone too');

  const orphaning = ex.launch(taskSpec({ cmd: 'sleep 300 & echo $! > child.pid; exit 0' }));
  t.is((await orphaning.terminated).state, 'FINISHED');
  const orphan = Number(await fileText(join(orphaning.sandbox, 'child.pid')));
  await waitFor('the background child to die with its task', () => gone(orphan), 3000);
});

test('kill during launch ends KILLED without starting a process; duplicate ids and unknown tasks are refused', async (t) => {
  const ex = await executor(t);
  const spec = taskSpec({ cmd: 'sleep 300' });
  const handle = ex.launch(spec);
  const end = await handle.kill();
  t.like(end, { state: 'KILLED', reason: 'REASON_TASK_KILLED_DURING_LAUNCH' });
  t.is(handle.pid, undefined);
  t.true(isStrataError(t.throws(() => ex.launch(spec)), 'EXECUTOR_TASK_EXISTS'));
  t.true(isStrataError(t.throws(() => ex.kill('nope')), 'EXECUTOR_TASK_NOT_FOUND'));
  await t.throwsAsync(ex.tailLog('nope', { stream: 'stdout' }), { code: 'EXECUTOR_TASK_NOT_FOUND' } as never);
  await ex.close();
  t.true(isStrataError(t.throws(() => ex.launch(taskSpec({ cmd: 'true' }))), 'EXECUTOR_CLOSED'));
});

test('logs of a running task rotate by size, keeping maxFiles files, lines contiguous', async (t) => {
  const ex = await executor(t, { logRotation: { maxBytes: 2048, maxFiles: 2 }, logCheckIntervalMs: 15 });
  const handle = ex.launch(
    taskSpec({ cmd: "PAD=$(printf '%0100d' 0); i=0; while [ $i -lt 120 ]; do echo \"line $i $PAD\"; i=$((i+1)); sleep 0.01; done" }),
  );
  t.is((await handle.terminated).state, 'FINISHED');
  const file = (n: number): string => join(handle.sandbox, n === 0 ? 'stdout' : `stdout.${n}`);
  t.true(existsSync(file(1)) && existsSync(file(2)), 'rotated files exist');
  t.false(existsSync(file(3)), 'no more than maxFiles');
  for (const n of [0, 1, 2]) t.true(statSync(file(n)).size <= 2048 + 30 * 110, `${file(n)} stays near the limit (${statSync(file(n)).size} bytes)`);
  const kept = [2, 1, 0].map((n) => readFileSync(file(n), 'utf8')).join('');
  const numbers = kept
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split(' ')[1]));
  t.is(numbers.at(-1), 119);
  t.true(numbers.length >= 20);
  t.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), 'no line lost or repeated');
  t.is((await handle.tailLog({ stream: 'stdout', lines: 30 })).data.split('\n').filter(Boolean).length, 30);
});

test('cgroups: limits asked for from the task resources, the process attached, the group removed at the end', async (t) => {
  const cgroups = new FakeCgroupManager();
  const ex = await executor(t, { cgroups });
  const handle = ex.launch(taskSpec({ cmd: 'sleep 300', resources: { cpus: 0.25, memMb: 96, diskMb: 0, gpus: 0 } }));
  await waitFor('RUNNING', () => handle.state === 'RUNNING');
  const group = cgroups.groups.get(sandboxName(handle.taskId))!;
  t.deepEqual(group.limits, { cpus: 0.25, memMb: 96 });
  t.like(group.values, { memoryBytes: 96 * 1024 * 1024, cpuShares: 256, cfsQuotaUs: 25_000 });
  t.deepEqual(group.pids.map((p) => p.pid), [handle.pid]);
  t.regex(handle.status.message ?? '', /cgroup limits/);
  await handle.kill(5);
  t.true(group.destroyed);

  cgroups.oomKilled.add(sandboxName('oom-task'));
  const oom = ex.launch(taskSpec({ taskId: 'oom-task', cmd: 'kill -KILL $$' }));
  t.like(await oom.terminated, { state: 'FAILED', signal: 'SIGKILL', reason: 'REASON_CONTAINER_LIMITATION_MEMORY' });

  const none = await executor(t, { cgroups: new FakeCgroupManager({ unavailable: 'no memory hierarchy' }) });
  const plain = none.launch(taskSpec({ cmd: 'exit 0' }));
  await plain.terminated;
  const running = plain.history.find((s) => s.state === 'RUNNING')!;
  t.regex(running.message!, /cgroups unavailable \(no memory hierarchy\); running without limits/, 'the task runs and its status says why unlimited');
});

test('an unexpected failure inside the launch (a cgroup manager that throws) ends the task in ERROR instead of crashing the agent', async (t) => {
  const cgroups = new FakeCgroupManager();
  cgroups.prepare = () => Promise.reject(new Error('boom'));
  const ex = await executor(t, { cgroups });
  const end = await ex.launch(taskSpec({ cmd: 'sleep 300' })).terminated;
  t.like(end, { state: 'ERROR', reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: 'Launch failed: boom' });
});

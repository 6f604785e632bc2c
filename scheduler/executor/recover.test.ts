/**
 * Agent restart: an "agent" process launches tasks and is SIGKILLed; a new
 * executor recovers the sandboxes: re-attaches to tasks still running (and
 * can kill them, or sees them exit), reports LOST for the dead ones, and
 * never trusts a pid that now names another process.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { Executor, recover, type TaskStatus } from './executor.ts';
import { bootId, readProcStat, signalGroup } from './proc.ts';
import { fileText, gone, reap, reapGroup, taskSpec, tempDir, waitFor } from './test-helpers.ts';

const FIXTURE = new URL('./recover-fixture.ts', import.meta.url).pathname;

/** Runs the fixture "agent", returns the task pids once they run, and SIGKILLs the agent. */
async function crashedAgent(t: Parameters<typeof reap>[0], workDir: string, specs: unknown[]): Promise<Record<string, number>> {
  const agent = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', FIXTURE, workDir, JSON.stringify(specs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  t.teardown(async () => {
    agent.kill('SIGKILL');
    await exited;
  });
  let out = '';
  agent.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const pids = await new Promise<Record<string, number>>((resolve, reject) => {
    agent.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /READY (\{.*\})\n/.exec(out);
      if (m) resolve(JSON.parse(m[1]!) as Record<string, number>);
    });
    agent.once('exit', () => reject(new Error(`fixture agent exited: ${out}`)));
  });
  for (const pid of Object.values(pids)) reapGroup(t, pid);
  agent.kill('SIGKILL');
  await exited;
  return pids;
}

test('an agent killed right after a spawn (nothing awaited since) leaves the pid on disk: recovery re-attaches the task, and can kill it', async (t) => {
  const workDir = join(await tempDir(t), 'work');
  const spec = taskSpec({ cmd: 'sleep 300', taskKillGracePeriodSeconds: 1 });
  const agent = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', FIXTURE, workDir, JSON.stringify([spec]), 'die-at-running'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  agent.stdout.on('data', (c: Buffer) => (out += c.toString()));
  agent.stderr.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  const m = /RUNNING (\d+)/.exec(out);
  t.truthy(m, out);
  const pid = Number(m![1]);
  reapGroup(t, pid);
  t.false(gone(pid), 'the task outlives its agent');

  const { executor, recovered, lost } = await recover(workDir, { host: 'agent-1.test', pollIntervalMs: 50 });
  reap(t, executor);
  t.deepEqual(lost, [], 'not LOST: its record has its pid');
  t.deepEqual(recovered.map((h) => h.taskId), [spec.taskId]);
  t.is(recovered[0]!.pid, pid);
  const end = recovered[0]!.kill();
  t.is((await end).state, 'KILLED');
  t.true(gone(pid));
});

test('after an agent crash: running tasks are re-attached (RUNNING), then killed or seen exiting; dead ones are LOST', async (t) => {
  const workDir = join(await tempDir(t), 'work');
  const keep = taskSpec({ cmd: "trap 'exit 0' TERM; while :; do echo tick; sleep 0.05; done", taskKillGracePeriodSeconds: 10 });
  const exits = taskSpec({ cmd: 'while [ ! -e go ]; do sleep 0.05; done; exit 4' });
  const dies = taskSpec({ cmd: 'sleep 300' });
  const pids = await crashedAgent(t, workDir, [keep, exits, dies]);
  t.false(gone(pids[keep.taskId]!), 'tasks outlive their agent (own session and process group)');
  const keepLog = join(workDir, keep.taskId, 'stdout');
  const before = (await fileText(keepLog)).length;
  await waitFor('log lines written with no agent running', async () => (await fileText(keepLog)).length > before + 20);
  signalGroup(pids[dies.taskId]!, 'SIGKILL');
  await waitFor('the task to die', () => gone(pids[dies.taskId]!));

  const { executor, recovered, lost, terminated } = await recover(workDir, { host: 'agent-1.test', pollIntervalMs: 50 });
  reap(t, executor);
  t.deepEqual(recovered.map((h) => h.taskId).sort(), [keep.taskId, exits.taskId].sort());
  t.deepEqual(terminated, []);
  t.is(lost.length, 1);
  t.like(lost[0], { taskId: dies.taskId, state: 'LOST', reason: 'REASON_EXECUTOR_TERMINATED', pid: pids[dies.taskId] });
  const lostRecord = JSON.parse(await readFile(join(executor.sandboxPath(dies.taskId), 'task.json'), 'utf8')) as { history: TaskStatus[] };
  t.is(lostRecord.history.at(-1)!.state, 'LOST', 'LOST is recorded, so the next recovery does not report it again');

  const kept = executor.get(keep.taskId)!;
  t.is(kept.state, 'RUNNING');
  t.is(kept.pid, pids[keep.taskId]);
  t.regex(kept.status.message!, /Re-attached/);
  t.deepEqual(
    kept.history.map((s) => s.state),
    ['STAGING', 'STARTING', 'RUNNING', 'RUNNING'],
    'the history from before the restart is kept',
  );

  const exiting = executor.get(exits.taskId)!;
  await writeFile(join(exiting.sandbox, 'go'), '');
  const exitEnd = await exiting.terminated;
  t.is(exitEnd.state, 'FAILED', exitEnd.message);
  if (exitEnd.exitCode !== undefined) t.is(exitEnd.exitCode, 4, 'when the zombie was seen, its status is read from /proc');

  const started = Date.now();
  const killEnd = await kept.kill();
  t.is(killEnd.state, 'KILLED');
  t.true(Date.now() - started < 5000, 'SIGTERM reached the re-attached task (no 10 s grace wait)');
  t.true(gone(pids[keep.taskId]!));

  const again = new Executor({ workDir, host: 'agent-1.test' });
  const second = await again.recover();
  t.deepEqual(second.recovered, []);
  t.deepEqual(second.lost, []);
  t.deepEqual(second.terminated.map((s) => s.state).sort(), ['FAILED', 'KILLED', 'LOST']);
  await again.close();
});

test('recovery never trusts a reused pid, and reports tasks that never started or ended before the restart', async (t) => {
  const workDir = join(await tempDir(t), 'work');
  const write = async (name: string, record: object): Promise<void> => {
    await mkdir(join(workDir, name), { recursive: true });
    await writeFile(join(workDir, name, 'task.json'), JSON.stringify(record));
  };
  const base = { format: 1, appId: '/a', version: 'v', killGracePeriodSeconds: 3, bootId: bootId() };
  const at = new Date().toISOString();
  // The pid of this very test process, with another start time: a reused pid.
  await write('reused', { ...base, taskId: 'reused', pid: process.pid, procStartTime: `${readProcStat(process.pid)!.startTime}9`, history: [{ taskId: 'reused', state: 'RUNNING', timestamp: at }] });
  await write('unstarted', { ...base, taskId: 'unstarted', history: [{ taskId: 'unstarted', state: 'STARTING', timestamp: at }] });
  await write('rebooted', { ...base, bootId: 'another-boot', taskId: 'rebooted', pid: process.pid, procStartTime: readProcStat(process.pid)!.startTime, history: [{ taskId: 'rebooted', state: 'RUNNING', timestamp: at }] });
  await write('done', { ...base, taskId: 'done', history: [{ taskId: 'done', state: 'FINISHED', timestamp: at }] });
  await mkdir(join(workDir, 'junk'));

  const executor = new Executor({ workDir });
  reap(t, executor);
  const report = await executor.recover();
  t.deepEqual(report.recovered, []);
  const lost = Object.fromEntries(report.lost.map((s) => [s.taskId, s]));
  t.like(lost.reused, { state: 'LOST', reason: 'REASON_EXECUTOR_TERMINATED' });
  t.like(lost.unstarted, { state: 'LOST', message: 'The agent restarted before the task was started' });
  t.like(lost.rebooted, { state: 'LOST', reason: 'REASON_AGENT_RESTARTED' });
  t.deepEqual(report.terminated.map((s) => s.taskId), ['done']);
  t.false(gone(process.pid), 'and this process, which owns the reused pid, was not signalled');
  t.is(await fileText(join(workDir, 'junk', 'task.json')), '');
});

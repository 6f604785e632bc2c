/**
 * End to end through `strata up` as a process, plus a second `strata agent`
 * process registered with it (a remote agent: its own port, data dir and
 * token): `strata task log` reads tasks' stdout and stderr on both agents
 * through the master, `--lines`, `--stderr`, `--follow` (until Ctrl-C), part
 * of an id, and a clear error for an unknown task; then `strata queue list`
 * shows a crash loop's backoff and `strata queue reset` ends it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { waitFor } from '../scheduler/executor/test-helpers.ts';
import { runStrata, startStrata, startUpLoggedIn } from './harness/process.ts';

interface ListedTask {
  id: string;
  slaveId: string;
  state: string;
}

test('strata task log reads tasks on the local and on a remote agent: tail, --stderr, --follow, errors', async (t) => {
  const { dir, env, apiUrl, token, portBase } = await startUpLoggedIn(t, 'up-task-log');
  await writeFile(join(dir, 'agent-token'), token, { mode: 0o600 });
  const remote = startStrata([
    'agent', '--agent-master-url', apiUrl, '--agent-token-file', join(dir, 'agent-token'),
    '--data-dir', join(dir, 'remote-agent'), '--agent-port', '0', '--agent-port-ranges', `${portBase + 50}-${portBase + 99}`,
    '--agent-heartbeat-seconds', '1',
  ], { env });
  t.teardown(async () => {
    remote.kill('SIGKILL');
    await remote.exited();
  });
  const [, remoteId] = await remote.waitFor(/strata agent (\S+) registered/, 30_000);

  const app = {
    id: '/e2e/talker',
    cmd: 'for i in $(seq 1 20); do echo "out $i"; done; echo "err $MESOS_TASK_ID" >&2; i=20; while true; do i=$((i+1)); echo "out $i"; sleep 0.1; done',
    instances: 4,
    cpus: 0.05,
    mem: 16,
    portDefinitions: [],
    taskKillGracePeriodSeconds: 1,
  };
  await writeFile(join(dir, 'app.json'), JSON.stringify(app));
  const added = await runStrata(['app', 'add', join(dir, 'app.json')], { env });
  t.is(added.code, 0, added.output);

  let tasks: ListedTask[] = [];
  await waitFor('4 RUNNING tasks', async () => {
    const listed = await runStrata(['task', 'list', '--app', 'e2e/talker', '--json'], { env });
    tasks = listed.code === 0 ? (JSON.parse(listed.output) as ListedTask[]).filter((x) => x.state === 'TASK_RUNNING') : [];
    return tasks.length === 4;
  }, 60_000);
  t.true(tasks.some((x) => x.slaveId === remoteId), 'some task runs on the remote agent');
  t.true(tasks.some((x) => x.slaveId !== remoteId), 'some task runs on the local agent');

  for (const task of tasks) {
    await waitFor(`the stderr line of ${task.id}`, async () => (await runStrata(['task', 'log', task.id, '--stderr'], { env })).output === `err ${task.id}\n`, 20_000);
    const three = await runStrata(['task', 'log', task.id, '--lines', '3'], { env });
    t.is(three.code, 0, three.output);
    const lines = three.output.split('\n').filter((l) => l !== '');
    t.is(lines.length, 3, three.output);
    t.true(lines.every((l) => /^out \d+$/.test(l)), three.output);
  }

  // Part of an id is enough when it names one task; --follow prints new lines until Ctrl-C.
  const target = tasks.find((x) => x.slaveId === remoteId)!;
  const part = target.id.split('.instance-')[1]!.slice(0, 12);
  const follow = startStrata(['task', 'log', part, '--follow', '--lines', '1'], { env });
  const [, first] = await follow.waitFor(/out (\d+)\n/, 20_000);
  const later = Number(first) + 10;
  await follow.waitFor(new RegExp(`out ${later}\\n`), 20_000);
  follow.kill('SIGINT');
  t.is(await follow.exited(), 0, follow.output());
  const numbers = [...follow.output().matchAll(/out (\d+)\n/g)].map((m) => Number(m[1]));
  t.deepEqual(numbers.slice(0, 11), Array.from({ length: 11 }, (_, i) => Number(first) + i), 'followed lines arrive in order, none lost');

  const unknown = await runStrata(['task', 'log', 'no-such-task'], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.output, /no task matches "no-such-task"/);
  const ambiguous = await runStrata(['task', 'log', 'e2e_talker'], { env });
  t.is(ambiguous.code, 2);
  t.regex(ambiguous.output, /matches 4 tasks/);

  const removed = await runStrata(['app', 'remove', 'e2e/talker', '--force'], { env });
  t.is(removed.code, 0, removed.output);

  // A crash loop waits in the launch queue with its backoff; `strata queue reset` lets it launch again.
  await writeFile(join(dir, 'crash.json'), JSON.stringify({ id: '/e2e/crash', cmd: 'echo bye; exit 3', cpus: 0.05, mem: 16, portDefinitions: [], backoffSeconds: 60 }));
  t.is((await runStrata(['app', 'add', join(dir, 'crash.json')], { env })).code, 0);
  let listed = '';
  await waitFor('the crash loop to wait in the queue', async () => /\/e2e\/crash\s+1\s+\d+s/.test((listed = (await runStrata(['queue', 'list'], { env })).output)), 30_000);
  const failedCount = async (): Promise<number> => (JSON.parse((await runStrata(['task', 'list', '--app', 'e2e/crash', '--json'], { env })).output) as ListedTask[]).filter((x) => x.state === 'TASK_FAILED').length;
  t.is(await failedCount(), 1, listed);
  const reset = await runStrata(['queue', 'reset', 'e2e/crash'], { env });
  t.is(reset.code, 0, reset.output);
  await waitFor('a new launch after the reset', async () => (await failedCount()) >= 2, 30_000);
  t.is((await runStrata(['app', 'remove', 'e2e/crash', '--force'], { env })).code, 0);
});

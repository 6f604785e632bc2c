/**
 * Task faults through the scheduler, with a `strata master` and a `strata
 * agent` as processes:
 *
 * - A command that exits at once (non-zero, and also 0: Marathon counts a
 *   FINISHED task for the launch backoff too), or a second after it started
 *   (seen RUNNING first, which must not reset the delay), is relaunched after a delay
 *   that grows by `backoffFactor` up to `maxLaunchDelaySeconds`; the app sits
 *   in `/v2/queue` between launches. (Its deployment ends when an instance is
 *   seen RUNNING, as in Marathon for an app without health checks, so whether
 *   it is still open depends on timing and is not asserted.)
 * - A task that ignores SIGTERM is SIGKILLed after the app's
 *   `taskKillGracePeriodSeconds` when its app is scaled down, and ends
 *   `TASK_KILLED`.
 *
 * Each launch appends `<epoch ms>` (or its pid) to a file. The timing
 * assertions are lower bounds (a delay is never shorter than the backoff),
 * which load on the machine cannot break.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { backoffDelayMs } from '../scheduler/controller/reconcile.ts';
import { readProcStat } from '../scheduler/executor/proc.ts';
import { startProcessCluster, until, type ProcessCluster } from './harness/cluster.ts';

const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).trim().split('\n').filter((l) => l !== '');
const NOW_MS = 'date +%s%3N';

async function oneMasterOneAgent(t: Parameters<typeof startProcessCluster>[0], name: string): Promise<ProcessCluster> {
  const c = await startProcessCluster(t, name);
  const master = await c.startMaster('m1');
  await c.login(master);
  await c.startAgent('a1', master);
  return c;
}

// Exiting at once (0 counts as a failure too), or a second after the start, once the task was seen RUNNING.
for (const { exit, after } of [{ exit: 1, after: 0 }, { exit: 0, after: 0 }, { exit: 1, after: 1 }]) {
  test(`a command that exits ${exit} ${after === 0 ? 'at once' : `after ${after} s`} is relaunched with Marathon's growing backoff; it waits in /v2/queue`, async (t) => {
    const c = await oneMasterOneAgent(t, `fault-crash-${exit}-${after}`);
    const launches = join(c.dir, 'launches');
    const backoff = { backoffSeconds: 1, backoffFactor: 2, maxLaunchDelaySeconds: 4 };
    const id = `/faults/crash-${exit}-${after}`;
    const created = await c.api('POST', '/v2/apps', { id, instances: 1, cpus: 0.05, mem: 16, portDefinitions: [], cmd: `${NOW_MS} >> ${launches}; sleep ${after}; exit ${exit}`, ...backoff });
    t.is(created.status, 201, JSON.stringify(created.body));

    let queued: { count: number; app: { id: string } } | undefined;
    await until('5 launches', async () => {
      const q = (await c.api('GET', '/v2/queue')).body as { queue: { count: number; app: { id: string } }[] };
      queued ??= q.queue.find((e) => e.app.id === id);
      return (await lines(launches)).length >= 5;
    }, 60_000);
    const times = (await lines(launches)).map(Number);
    const gaps = times.slice(1).map((x, i) => x - times[i]!);
    t.log(`gaps between launches (ms): ${gaps.join(', ')}`);
    // After the n-th failure the next launch waits min(1 × 2^(n-1), 4) s: 1, 2, 4, 4.
    gaps.slice(0, 4).forEach((gap, i) => t.true(gap >= backoffDelayMs(backoff, i + 1) - 100, `gap ${i + 1} (${gap} ms) is at least the backoff ${backoffDelayMs(backoff, i + 1)} ms`));
    t.truthy(queued, 'the app was in /v2/queue between launches');
    t.is(queued?.count, 1);
    const app = ((await c.api('GET', `/v2/apps${id}`)).body as { app: { instances: number; tasksRunning: number } }).app;
    t.is(app.instances, 1, 'the app keeps its instances (a crash loop is retried, never given up)');
  });
}

test('a task that ignores SIGTERM is SIGKILLed after taskKillGracePeriodSeconds when its app scales down', async (t) => {
  const c = await oneMasterOneAgent(t, 'fault-sigterm');
  const pids = join(c.dir, 'pids');
  const id = '/faults/stubborn';
  const grace = 4;
  const created = await c.api('POST', '/v2/apps', {
    id, instances: 1, cpus: 0.05, mem: 16, portDefinitions: [], taskKillGracePeriodSeconds: grace,
    // The shell ignores SIGTERM and so does the sleep it waits on (ignored signals stay ignored across exec).
    cmd: `trap '' TERM; echo $$ >> ${pids}; while true; do sleep 1; done`,
  });
  t.is(created.status, 201, JSON.stringify(created.body));
  await until('the task RUNNING', async () => ((await c.api('GET', `/v2/apps${id}`)).body as { app: { tasksRunning: number } }).app.tasksRunning === 1, 30_000);
  const pid = Number((await lines(pids))[0]);
  const taskId = ((await c.api('GET', `/v2/apps${id}/tasks`)).body as { tasks: { id: string }[] }).tasks[0]!.id;

  const scaled = await c.api('PUT', `/v2/apps${id}`, { instances: 0 });
  t.is(scaled.status, 200, JSON.stringify(scaled.body));
  const askedAt = Date.now();
  await until('the task KILLING', async () => ((await c.api('GET', '/v2/tasks')).body as { tasks: { id: string; state: string }[] }).tasks.some((x) => x.id === taskId && x.state === 'TASK_KILLING'), 10_000);
  await new Promise((r) => setTimeout(r, 1000));
  t.not(readProcStat(pid)?.state ?? 'gone', 'gone', 'SIGTERM alone did not end it');
  await until('the process gone', () => {
    const s = readProcStat(pid);
    return s === undefined || s.state === 'Z';
  }, 20_000);
  t.true(Date.now() - askedAt >= grace * 1000, 'not before the grace period');
  await until('the task TASK_KILLED', async () => ((await c.api('GET', '/v2/tasks')).body as { tasks: { id: string; state: string }[] }).tasks.some((x) => x.id === taskId && x.state === 'TASK_KILLED'), 10_000);
  await until('the deployment done', async () => ((await c.api('GET', '/v2/deployments')).body as unknown[]).length === 0, 10_000);
  t.is((await lines(pids)).length, 1, 'a kill for a scale-down launches nothing');
});

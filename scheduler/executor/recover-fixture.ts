/**
 * Test fixture for recover.test.ts: an "agent" process that launches the
 * tasks given as JSON specs into a work directory, prints
 * `READY {"<task id>": pid, …}` once all run and their records are written,
 * then idles until it is killed (as an agent crash would kill it).
 *
 *   node recover-fixture.ts <workDir> '<json TaskLaunchSpec[]>' [die-at-running]
 *
 * With `die-at-running` it SIGKILLs itself in the RUNNING status event of
 * the first task (printing `RUNNING <pid>` first): the crash comes right after
 * the spawn, with nothing awaited since.
 */
import { Executor } from './executor.ts';
import type { TaskLaunchSpec } from './spec.ts';

const [workDir, specsJson, mode] = process.argv.slice(2);
const executor = new Executor({ workDir: workDir!, host: 'agent-1.test' });
if (mode === 'die-at-running') {
  executor.on('status', (s: { state: string; pid?: number }) => {
    if (s.state !== 'RUNNING') return;
    process.stdout.write(`RUNNING ${s.pid}\n`);
    process.kill(process.pid, 'SIGKILL');
  });
}
const handles = (JSON.parse(specsJson!) as TaskLaunchSpec[]).map((spec) => executor.launch(spec));
const pids: Record<string, number> = {};
for (const handle of handles) {
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (handle.state === 'RUNNING') resolve();
      else if (handle.history.length > 3) reject(new Error(`${handle.taskId}: ${JSON.stringify(handle.status)}`));
    };
    handle.on('status', check);
    check();
  });
  await handle.flushed();
  pids[handle.taskId] = handle.pid!;
}
process.stdout.write(`READY ${JSON.stringify(pids)}\n`);
setInterval(() => {}, 60_000);

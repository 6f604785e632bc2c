/**
 * Shared by the executor's tests: temp dirs, a base launch spec, waiting,
 * and a teardown that kills every process group a test started, even when
 * the test fails.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Executor } from './executor.ts';
import { readProcStat, signalGroup } from './proc.ts';
import type { TaskLaunchSpec } from './spec.ts';

export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-executor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

let seq = 0;
export function taskSpec(overrides: Partial<TaskLaunchSpec> = {}): TaskLaunchSpec {
  seq += 1;
  return {
    taskId: `web.instance-${process.pid}-${seq}._app.1`,
    appId: '/group/web',
    version: '2026-01-02T03:04:05.678Z',
    resources: { cpus: 0.5, memMb: 64, diskMb: 0, gpus: 0 },
    ...overrides,
  };
}

/** SIGKILLs every task group of `executor` and closes it when the test ends. */
export function reap(t: ExecutionContext, executor: Executor): void {
  t.teardown(async () => {
    for (const handle of executor.tasks()) if (handle.pid !== undefined) signalGroup(handle.pid, 'SIGKILL');
    await executor.close();
  });
}

/** SIGKILLs process group `pgid` when the test ends. */
export function reapGroup(t: ExecutionContext, pgid: number): void {
  t.teardown(() => {
    signalGroup(pgid, 'SIGKILL');
  });
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function fileText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** True when `pid` no longer runs (absent, or a zombie waiting for its parent). */
export function gone(pid: number): boolean {
  const stat = readProcStat(pid);
  return stat === undefined || stat.state === 'Z';
}

/**
 * File-based secrets (Marathon's `container.volumes[]: {containerPath, secret}`):
 * each value is written into the task's sandbox at `containerPath` (relative
 * to the sandbox, which the task sees as `$MESOS_SANDBOX`) before the task
 * starts, mode 0400, created exclusively (an existing file or a symlink there
 * fails the launch rather than being followed). The files go with the sandbox.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, isAbsolute } from 'node:path';
import { SecretMissingError } from './env.ts';
import type { TaskLaunchSpec } from './spec.ts';

/** A relative path of plain names (no `..`, no leading `/` or `.`). */
export const SECRET_FILE_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;

/** Writes the spec's secret files into `sandbox`; throws {@link SecretMissingError} for a secret with no value. */
export async function writeSecretFiles(sandbox: string, spec: Pick<TaskLaunchSpec, 'secretFiles' | 'secrets'>): Promise<void> {
  for (const file of spec.secretFiles ?? []) {
    const value = spec.secrets?.[file.secret];
    if (value === undefined) throw new SecretMissingError(`file ${file.path}`, file.secret);
    const target = join(sandbox, file.path);
    const inside = relative(sandbox, target);
    if (!SECRET_FILE_PATH.test(file.path) || inside.startsWith('..') || isAbsolute(inside)) throw new Error(`secret file path ${JSON.stringify(file.path)} is not a plain path inside the sandbox`);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    await writeFile(target, value, { mode: 0o400, flag: 'wx' });
  }
}

/**
 * Task logs: the task writes its stdout and stderr straight into
 * `<sandbox>/stdout` and `<sandbox>/stderr` (files opened O_APPEND and handed
 * to the process, so logging survives an agent restart: no pipe to the
 * agent). Rotation is by size, copy-then-truncate: when a file passes
 * `maxBytes`, `stdout.1..n` shift up (`.n` is dropped), the file is copied to
 * `stdout.1` and truncated; the task's O_APPEND writes then continue at the
 * new end. Costs of that design, accepted for no extra process per task:
 * a file may exceed `maxBytes` by what the task writes between two checks,
 * and bytes written in the microseconds between the last copy and the
 * truncate are lost.
 *
 * The read functions serve the API and `strata task log`.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync, constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError } from '../../common/errors.ts';

export const LOG_STREAMS = ['stdout', 'stderr'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export interface LogRotation {
  /** A log file is rotated once it is larger than this. */
  readonly maxBytes: number;
  /** Rotated files kept per stream (`stdout.1` newest … `stdout.<maxFiles>` oldest); 0 keeps none. */
  readonly maxFiles: number;
}

export const DEFAULT_LOG_ROTATION: LogRotation = { maxBytes: 10 * 1024 * 1024, maxFiles: 5 };

/** Opens (creating, mode 0600) both log files for appending; the caller hands the fds to the task and closes its copies. */
export function openLogFiles(sandbox: string): Record<LogStream, number> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND;
  const stdout = openSync(join(sandbox, 'stdout'), flags, 0o600);
  try {
    return { stdout, stderr: openSync(join(sandbox, 'stderr'), flags, 0o600) };
  } catch (err) {
    closeSync(stdout);
    throw err;
  }
}

function copyRange(from: number, to: number, start: number, end: number): void {
  const buf = Buffer.allocUnsafe(64 * 1024);
  let pos = start;
  while (pos < end) {
    const n = readSync(from, buf, 0, Math.min(buf.length, end - pos), pos);
    if (n === 0) break;
    writeSync(to, buf, 0, n);
    pos += n;
  }
}

function ignoreMissing(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Rotates `<sandbox>/<stream>` if it is over `maxBytes`; true when it did. Synchronous to keep the copy–truncate window short. */
export function rotateIfNeeded(sandbox: string, stream: LogStream, rotation: LogRotation): boolean {
  const path = join(sandbox, stream);
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return false;
  }
  if (size <= rotation.maxBytes) return false;
  if (rotation.maxFiles <= 0) {
    const fd = openSync(path, 'r+');
    try {
      ftruncateSync(fd, 0);
    } finally {
      closeSync(fd);
    }
    return true;
  }
  ignoreMissing(() => unlinkSync(`${path}.${rotation.maxFiles}`));
  for (let i = rotation.maxFiles - 1; i >= 1; i--) ignoreMissing(() => renameSync(`${path}.${i}`, `${path}.${i + 1}`));
  const fd = openSync(path, 'r+');
  const out = openSync(`${path}.1`, 'w', 0o600);
  try {
    let copied = 0;
    // Catch up with what the task writes during the copy (bounded: a task
    // writing faster than we copy is truncated after a few rounds).
    for (let round = 0; round < 8; round++) {
      const now = fstatSync(fd).size;
      if (now <= copied) break;
      copyRange(fd, out, copied, now);
      copied = now;
    }
    ftruncateSync(fd, 0);
  } finally {
    closeSync(out);
    closeSync(fd);
  }
  return true;
}

function checkStream(stream: string): asserts stream is LogStream {
  if (!(LOG_STREAMS as readonly string[]).includes(stream)) {
    throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', `unknown log stream ${JSON.stringify(stream)} (stdout or stderr)`);
  }
}

/** The path of a log file: `file` 0 is the live file, n is `<stream>.n`. */
export function logFilePath(sandbox: string, stream: LogStream, file = 0): string {
  return join(sandbox, file === 0 ? stream : `${stream}.${file}`);
}

export interface LogRange {
  /** The bytes read, as UTF-8 (a multi-byte character cut at either end is replaced). */
  readonly data: string;
  /** Where `data` starts in the file. */
  readonly offset: number;
  /** The file's size when read. */
  readonly size: number;
}

/**
 * Reads `length` bytes at `offset` of one log file, as the Mesos
 * `/files/read` endpoint does: no offset (or -1) returns only the size.
 */
export async function readLogRange(
  sandbox: string,
  options: { readonly stream: string; readonly file?: number; readonly offset?: number; readonly length?: number },
): Promise<LogRange> {
  checkStream(options.stream);
  const file = options.file ?? 0;
  const offset = options.offset ?? -1;
  const length = options.length ?? 64 * 1024;
  if (!Number.isInteger(file) || file < 0 || !Number.isInteger(offset) || offset < -1 || !Number.isInteger(length) || length < 0) {
    throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', 'file, offset and length must be non-negative integers (offset -1 = size only)');
  }
  const path = logFilePath(sandbox, options.stream, file);
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (file === 0) return { data: '', offset: 0, size: 0 };
      throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', `no rotated log file ${options.stream}.${file}`);
    }
    throw err;
  }
  try {
    const { size } = await handle.stat();
    if (offset === -1) return { data: '', offset: size, size };
    const start = Math.min(offset, size);
    const buf = Buffer.alloc(Math.min(length, size - start));
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    return { data: buf.subarray(0, bytesRead).toString('utf8'), offset: start, size };
  } finally {
    await handle.close();
  }
}

/**
 * The last `lines` lines of a stream, reaching back into rotated files when
 * the live one holds fewer, reading at most `maxBytes`.
 */
export async function readLogTail(
  sandbox: string,
  options: { readonly stream: string; readonly lines?: number; readonly maxBytes?: number },
): Promise<{ readonly data: string; readonly lines: number; readonly end: number }> {
  checkStream(options.stream);
  const want = options.lines ?? 100;
  let budget = options.maxBytes ?? 1024 * 1024;
  if (!Number.isInteger(want) || want < 0 || !Number.isInteger(budget) || budget < 0) {
    throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', 'lines and maxBytes must be non-negative integers');
  }
  const chunks: Buffer[] = [];
  let newlines = 0;
  let end = 0;
  for (let file = 0; budget > 0 && newlines <= want; file++) {
    const path = logFilePath(sandbox, options.stream, file);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      if (file === 0) continue;
      break;
    }
    if (file === 0) end = size;
    const take = Math.min(size, budget);
    if (take === 0) continue;
    const handle = await open(path, 'r');
    try {
      const buf = Buffer.alloc(take);
      const { bytesRead } = await handle.read(buf, 0, take, size - take);
      const chunk = buf.subarray(0, bytesRead);
      chunks.unshift(chunk);
      for (const byte of chunk) if (byte === 0x0a) newlines++;
      budget -= bytesRead;
    } finally {
      await handle.close();
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  const picked = want === 0 ? [] : all.slice(-want);
  return { data: picked.length === 0 ? '' : `${picked.join('\n')}${text.endsWith('\n') ? '\n' : ''}`, lines: picked.length, end };
}

/** The inode of a file, or undefined when it does not exist. */
async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

async function readChunk(path: string, from: number, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const { size } = await handle.stat();
    if (from >= size) return Buffer.alloc(0);
    const buf = Buffer.alloc(Math.min(maxBytes, size - from));
    const { bytesRead } = await handle.read(buf, 0, buf.length, from);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

export interface FollowOptions {
  readonly stream: string;
  /** Offset in the live file to start at (e.g. `end` of {@link readLogTail}). */
  readonly from: number;
  /** Called with each new chunk (at most `chunkBytes`); awaited, so a slow reader slows the follow (bounded memory). */
  readonly onData: (chunk: Buffer) => Promise<void> | void;
  /** True once no more output will come (the task ended): the follow ends after reading what is left. */
  readonly finished: () => boolean;
  readonly signal: AbortSignal;
  /** How often the file is checked when there is nothing new. Default 250 ms. */
  readonly pollMs?: number;
  readonly chunkBytes?: number;
}

/**
 * Follows a log stream from offset `from` of the live file, like `tail -F`
 * across this module's copy-truncate rotation: a rotation is seen as a new
 * `<stream>.1` (another inode) or a live file shorter than the offset; the
 * bytes between the offset and the rotation are then read from `<stream>.1`
 * and following goes on at 0 of the live file. (With `maxFiles` 0 the
 * rotated bytes are gone, as on disk.) Memory: one chunk at a time.
 * Resolves when `signal` aborts or, once `finished()`, nothing is left.
 */
export async function followLog(sandbox: string, options: FollowOptions): Promise<void> {
  checkStream(options.stream);
  const live = logFilePath(sandbox, options.stream, 0);
  const rotated = logFilePath(sandbox, options.stream, 1);
  const pollMs = options.pollMs ?? 250;
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  let position = Math.max(0, options.from);
  let rotatedIno = await inodeOf(rotated);
  const emit = async (chunk: Buffer): Promise<void> => {
    if (chunk.length > 0 && !options.signal.aborted) await options.onData(chunk);
  };
  while (!options.signal.aborted) {
    const done = options.finished();
    // The live file's size first, then `.1`: a rotation between the two shows as a new `.1`
    // (whose copy holds everything up to it), never as a short live file with a stale `.1`.
    let size: number;
    try {
      size = (await stat(live)).size;
    } catch {
      size = 0;
    }
    const ino = await inodeOf(rotated);
    if ((ino !== undefined && ino !== rotatedIno) || size < position) {
      // Rotated since the last look: the rest of what we had not read is in `.1` (when it was just made).
      if (ino !== undefined && ino !== rotatedIno) {
        for (;;) {
          const chunk = await readChunk(rotated, position, chunkBytes);
          if (chunk.length === 0) break;
          await emit(chunk);
          position += chunk.length;
        }
      }
      rotatedIno = ino;
      position = 0;
      continue;
    }
    if (size > position) {
      const chunk = await readChunk(live, position, chunkBytes);
      // A rotation between the size check and the read would have given bytes of the new file:
      // drop the chunk, and let the next round read the rest from `.1`.
      if ((await inodeOf(rotated)) !== ino) continue;
      await emit(chunk);
      position += chunk.length;
      continue;
    }
    if (done) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, pollMs);
      function finish(): void {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', finish);
        resolve();
      }
      options.signal.addEventListener('abort', finish, { once: true });
    });
  }
}

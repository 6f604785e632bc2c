import { closeSync, existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { openLogFiles, readLogRange, readLogTail, rotateIfNeeded } from './logs.ts';
import { tempDir } from './test-helpers.ts';

test('rotation: copy-truncate keeps maxFiles files, newest in .1, and the writer keeps appending from 0', async (t) => {
  const dir = await tempDir(t);
  const fds = openLogFiles(dir);
  t.teardown(() => {
    closeSync(fds.stdout);
    closeSync(fds.stderr);
  });
  t.is(statSync(`${dir}/stdout`).mode & 0o777, 0o600);
  const rotation = { maxBytes: 10, maxFiles: 2 };
  const round = (text: string): boolean => {
    writeSync(fds.stdout, text);
    return rotateIfNeeded(dir, 'stdout', rotation);
  };
  t.false(round('0123456789'), 'at the limit: no rotation');
  t.true(round('A\n'));
  t.is(readFileSync(`${dir}/stdout`, 'utf8'), '');
  t.is(readFileSync(`${dir}/stdout.1`, 'utf8'), '0123456789A\n');
  t.true(round('second-batch\n'));
  t.true(round('third-batch!\n'));
  writeSync(fds.stdout, 'live\n');
  t.is(readFileSync(`${dir}/stdout`, 'utf8'), 'live\n', 'O_APPEND: the writer continues at the start of the truncated file');
  t.is(readFileSync(`${dir}/stdout.1`, 'utf8'), 'third-batch!\n');
  t.is(readFileSync(`${dir}/stdout.2`, 'utf8'), 'second-batch\n');
  t.false(existsSync(`${dir}/stdout.3`), 'only maxFiles rotated files are kept');
  t.false(rotateIfNeeded(dir, 'stderr', rotation), 'an empty stream is left alone');

  writeSync(fds.stderr, 'x'.repeat(20));
  t.true(rotateIfNeeded(dir, 'stderr', { maxBytes: 5, maxFiles: 0 }));
  t.is(readFileSync(`${dir}/stderr`, 'utf8'), '');
  t.false(existsSync(`${dir}/stderr.1`), 'maxFiles 0 drops the old content');
});

test('reading: byte ranges as Mesos /files/read, tails across rotated files, bad requests refused', async (t) => {
  const dir = await tempDir(t);
  const fds = openLogFiles(dir);
  t.teardown(() => {
    closeSync(fds.stdout);
    closeSync(fds.stderr);
  });
  const rotation = { maxBytes: 12, maxFiles: 3 };
  for (let i = 1; i <= 9; i++) {
    writeSync(fds.stdout, `line ${i}\n`);
    rotateIfNeeded(dir, 'stdout', rotation);
  }
  // Files now hold, oldest first: .3, .2, .1, then the live file.
  const all = [3, 2, 1, 0].map((n) => readFileSync(n === 0 ? `${dir}/stdout` : `${dir}/stdout.${n}`, 'utf8')).join('');
  t.true(all.endsWith('line 9\n'));

  t.deepEqual(await readLogRange(dir, { stream: 'stdout', offset: -1 }), { data: '', offset: Buffer.byteLength(readFileSync(`${dir}/stdout`)), size: Buffer.byteLength(readFileSync(`${dir}/stdout`)) });
  const range = await readLogRange(dir, { stream: 'stdout', file: 1, offset: 2, length: 4 });
  t.is(range.data, readFileSync(`${dir}/stdout.1`, 'utf8').slice(2, 6));
  t.is((await readLogRange(dir, { stream: 'stdout', offset: 1000 })).data, '', 'past the end: nothing');
  t.deepEqual(await readLogRange(dir, { stream: 'stderr', offset: 0 }), { data: '', offset: 0, size: 0 });

  const tail = await readLogTail(dir, { stream: 'stdout', lines: 4 });
  t.is(tail.data, 'line 6\nline 7\nline 8\nline 9\n', 'reaches back into rotated files');
  t.is(tail.lines, 4);
  t.is((await readLogTail(dir, { stream: 'stdout', lines: 100 })).data, all, 'everything kept, in order');
  t.is((await readLogTail(dir, { stream: 'stdout', lines: 100, maxBytes: 7 })).data, 'line 9\n', 'maxBytes bounds the read');

  for (const bad of [
    readLogRange(dir, { stream: 'stdin' }),
    readLogRange(dir, { stream: 'stdout', file: 9, offset: 0 }),
    readLogRange(dir, { stream: 'stdout', offset: -5 }),
    readLogTail(dir, { stream: 'stdout', lines: -1 }),
  ]) {
    const err = await t.throwsAsync(bad);
    t.true(isStrataError(err, 'EXECUTOR_LOG_RANGE_INVALID'), String(err));
  }
});

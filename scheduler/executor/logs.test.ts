import { closeSync, existsSync, readFileSync, statSync, writeSync } from 'node:fs';
import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { followLog, openLogFiles, readLogRange, readLogTail, rotateIfNeeded } from './logs.ts';
import { tempDir, waitFor } from './test-helpers.ts';

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

test('followLog: from an offset, across copy-truncate rotations, ending once the task is finished', async (t) => {
  const dir = await tempDir(t);
  const fds = openLogFiles(dir);
  t.teardown(() => {
    closeSync(fds.stdout);
    closeSync(fds.stderr);
  });
  writeSync(fds.stdout, 'old line\n');
  const tail = await readLogTail(dir, { stream: 'stdout', lines: 0 });
  t.is(tail.end, 9, 'the tail says where the live file ended');
  const got: string[] = [];
  let finished = false;
  const stop = new AbortController();
  const rotation = { maxBytes: 8, maxFiles: 2 };
  const seen = (text: string) => async () => got.join('').includes(text);
  const following = followLog(dir, { stream: 'stdout', from: tail.end, onData: (c) => void got.push(c.toString()), finished: () => finished, signal: stop.signal, pollMs: 5, chunkBytes: 4 });
  writeSync(fds.stdout, 'one\n');
  await waitFor('one', seen('one\n'));
  // Written and rotated between two looks: the rest is read from stdout.1.
  writeSync(fds.stdout, 'two two\n');
  t.true(rotateIfNeeded(dir, 'stdout', rotation));
  writeSync(fds.stdout, 'three\n');
  await waitFor('three', seen('three\n'));
  t.true(rotateIfNeeded(dir, 'stdout', { maxBytes: 1, maxFiles: 2 }));
  writeSync(fds.stdout, 'four\n');
  await waitFor('four', seen('four\n'));
  finished = true;
  await following;
  t.is(got.join(''), 'one\ntwo two\nthree\nfour\n', 'every byte once, in order, none from before the offset');
  t.true(got.every((c) => c.length <= 4), 'chunks are bounded');
  stop.abort();
});

test('followLog: an abort ends it; an unknown stream is refused', async (t) => {
  const dir = await tempDir(t);
  const stop = new AbortController();
  const following = followLog(dir, { stream: 'stdout', from: 0, onData: () => undefined, finished: () => false, signal: stop.signal, pollMs: 5 });
  stop.abort();
  await t.notThrowsAsync(following);
  await t.throwsAsync(followLog(dir, { stream: 'other', from: 0, onData: () => undefined, finished: () => true, signal: stop.signal }), { message: /unknown log stream/ });
});

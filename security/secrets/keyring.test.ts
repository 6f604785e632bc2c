/**
 * The KEK file: created 0600 with one version, refused when readable by
 * others or malformed (each problem named), new versions added with the old
 * ones kept.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { Keyring, kekFile, parseKeyring } from './keyring.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-kek-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a missing file is created 0600 with version 1; addVersion keeps the old keys', async (t) => {
  const file = join(await tempDir(t), 'kek.json');
  const ring = await Keyring.open(kekFile(file), { create: true, where: file });
  t.is(ring.currentVersion, 1);
  t.true(ring.created);
  t.is((await stat(file)).mode & 0o777, 0o600);
  const first = ring.key(1)!;
  t.is(await ring.addVersion(), 2);
  t.deepEqual(ring.versions, [1, 2]);
  t.deepEqual(ring.key(1)!.export(), first.export());
  const text = JSON.parse(await readFile(file, 'utf8')) as { current: number; keys: Record<string, string> };
  t.is(text.current, 2);
  t.deepEqual(Object.keys(text.keys), ['1', '2']);
  t.is((await stat(file)).mode & 0o777, 0o600);
  // Another process (or master) sees the new version after a reload.
  const other = await Keyring.open(kekFile(file), { create: false, where: file });
  t.is(other.currentVersion, 2);
  t.false(other.created);
});

test('refused: no file without create, a file others can read, malformed contents', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'none.json');
  const e1 = await t.throwsAsync(Keyring.open(kekFile(missing), { create: false, where: missing }));
  t.true(isStrataError(e1, 'SECRET_KEK_INVALID'));
  const open = join(dir, 'open.json');
  await writeFile(open, JSON.stringify({ current: 1, keys: { 1: Buffer.alloc(32, 1).toString('base64') } }));
  await chmod(open, 0o644);
  const e2 = await t.throwsAsync(Keyring.open(kekFile(open), { create: false, where: open }));
  t.regex(e2!.message, /chmod 600/);
  const cases: [unknown, RegExp][] = [
    [[], /"current"/],
    [{ current: 0, keys: {} }, /"current"/],
    [{ current: 1, keys: { 1: 'c2hvcnQ=' } }, /32 bytes/],
    [{ current: 1, keys: { x: Buffer.alloc(32).toString('base64') } }, /version "x"/],
    [{ current: 2, keys: { 1: Buffer.alloc(32).toString('base64') } }, /current version 2 has no key/],
  ];
  for (const [raw, message] of cases) {
    const err = t.throws(() => parseKeyring(raw, 'f.json'));
    t.true(isStrataError(err, 'SECRET_KEK_INVALID'));
    t.regex(err!.message, message);
  }
});

/**
 * Crash durability and data-file safety of the embedded store.
 *
 * - A child process writes with 64 writes in flight and prints every
 *   acknowledged write; it is SIGKILLed at a random moment; the reopened file
 *   must hold every acknowledged write, and indexes must keep growing.
 *   3 rounds by default, 50 with STRATA_SLOW=1.
 * - Damaged, foreign, unknown-version and non-database files are refused with
 *   STORE_DATA_CORRUPT naming the file, and left byte-for-byte untouched.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { durabilityValue } from './durability-writer.ts';
import { EMBEDDED_APPLICATION_ID, openEmbeddedStore } from './embedded-store.ts';

const SLOW = process.env.STRATA_SLOW === '1';
const ROUNDS = SLOW ? 50 : 3;
const WRITER = fileURLToPath(new URL('./durability-writer.ts', import.meta.url));

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-durability-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Round {
  readyIndex: number;
  acks: Map<string, number>;
  stderr: string;
}

/** Runs the writer until `killAfterMs` after its first ack, then SIGKILLs it. */
async function runWriter(file: string, round: number, killAfterMs: number): Promise<Round> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', WRITER, file, String(round)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stderr = '';
  let killTimer: NodeJS.Timeout | undefined;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  child.stdout.on('data', (d: string) => {
    out += d;
    if (killTimer === undefined && out.includes('\nack ')) {
      killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    }
  });
  // A writer that never gets going is killed anyway, and the round fails below.
  const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(guard);
  clearTimeout(killTimer);
  if (signal !== 'SIGKILL') throw new Error(`writer exited with code ${code} before it was killed:\n${stderr}`);
  // Only complete lines count: the last one may have been cut by the kill.
  const lines = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
  const ready = lines[0]?.match(/^ready (\d+)$/);
  if (!ready) throw new Error(`writer did not report ready:\n${out.slice(0, 200)}\n${stderr}`);
  const acks = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const [, key, index] = line.split(' ');
    acks.set(key!, Number(index));
  }
  return { readyIndex: Number(ready[1]), acks, stderr };
}

test(`SIGKILL loses no acknowledged write (${ROUNDS} rounds, 64 writes in flight)`, async (t) => {
  t.timeout(SLOW ? 600_000 : 60_000);
  const file = path.join(await tempDir(t), 'store.db');
  let lastIndex = 0;
  let totalAcks = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const result = await runWriter(file, round, randomInt(0, 250));
    t.true(result.readyIndex >= lastIndex, `round ${round}: the writer starts at index ${result.readyIndex} >= ${lastIndex}`);
    const acked = [...result.acks.values()];
    t.true(acked.length > 0, `round ${round}: some writes were acknowledged`);
    t.true(acked.every((i) => i > lastIndex), `round ${round}: every index is above the previous round's last index`);

    const store = await openEmbeddedStore({ path: file });
    try {
      const entries = new Map((await store.list(`r${round}/`)).entries.map((e) => [e.key, e]));
      const missing: string[] = [];
      for (const [key, index] of result.acks) {
        const e = entries.get(key);
        if (e === undefined || e.value !== durabilityValue(key) || e.modifyIndex !== index) missing.push(`${key}@${index}`);
      }
      t.deepEqual(missing.slice(0, 10), [], `round ${round}: all ${result.acks.size} acknowledged writes are present with their values`);
      const maxAcked = Math.max(...acked);
      const after = await store.put(`parent/round-${round}`, 'x');
      t.true(after.ok && after.index > maxAcked, `round ${round}: the next index (${after.ok ? after.index : '-'}) is above every acknowledged one (${maxAcked})`);
      lastIndex = after.ok ? after.index : maxAcked;
      totalAcks += result.acks.size;
    } finally {
      await store.close();
    }
  }
  t.log(`${ROUNDS} rounds, ${totalAcks} acknowledged writes checked`);
});

// ---------------------------------------------------------------------------
// data-file safety

async function validStore(dir: string): Promise<string> {
  const file = path.join(dir, 'good.db');
  const store = await openEmbeddedStore({ path: file });
  await Promise.all(Array.from({ length: 400 }, (_, i) => store.put(`k/${i}`, 'v'.repeat(300))));
  await store.close();
  return file;
}

async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await fs.readdir(dir)) {
    const stat = await fs.stat(path.join(dir, name));
    files.set(name, stat.isFile() ? (await fs.readFile(path.join(dir, name))).toString('base64') : 'dir');
  }
  return files;
}

async function assertRefused(t: ExecutionContext, dir: string, file: string, reason: RegExp): Promise<void> {
  const before = await snapshot(dir);
  const err = await t.throwsAsync(openEmbeddedStore({ path: file }));
  t.is((err as { code?: string }).code, 'STORE_DATA_CORRUPT', err.message);
  t.true(err.message.includes(file), `the message names the file: ${err.message}`);
  t.regex(err.message, reason);
  t.deepEqual(await snapshot(dir), before, 'the file (and its directory) are byte-for-byte unchanged');
}

test('data-file safety: the store opens its own file again (the baseline of the refusals below)', async (t) => {
  const dir = await tempDir(t);
  const file = await validStore(dir);
  const store = await openEmbeddedStore({ path: file });
  t.is((await store.list('k/')).entries.length, 400);
  await store.close();
});

const damaged: Array<[string, (good: Buffer) => Buffer, RegExp]> = [
  ['with garbage appended', (b) => Buffer.concat([b, Buffer.from('torn tail garbage')]), /whole number of .*pages/],
  ['with a whole page of garbage appended', (b) => Buffer.concat([b, Buffer.alloc(4096, 0x5a)]), /appended/],
  ['truncated to half', (b) => b.subarray(0, Math.floor(b.length / 2 / 4096) * 4096), /truncated/],
  ['truncated mid-page', (b) => b.subarray(0, b.length - 1000), /whole number of .*pages/],
  ['truncated to a few bytes', (b) => b.subarray(0, 50), /too short/],
  ['emptied', () => Buffer.alloc(0), /too short/],
  [
    'with a torn page in the middle',
    (b) => {
      const c = Buffer.from(b);
      c.fill(0, 4096 * 4, 4096 * 4 + 2048);
      return c;
    },
    /damaged|integrity/,
  ],
];

for (const [what, damage, reason] of damaged) {
  test(`data-file safety: a store file ${what} is refused with STORE_DATA_CORRUPT and left untouched`, async (t) => {
    const dir = await tempDir(t);
    const good = await validStore(dir);
    const file = path.join(dir, 'damaged.db');
    await fs.writeFile(file, damage(await fs.readFile(good)));
    await assertRefused(t, dir, file, reason);
  });
}

test('data-file safety: a foreign SQLite database is refused and left untouched', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'foreign.db');
  const db = new DatabaseSync(file);
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT); INSERT INTO kv VALUES ('a', 'someone else''s data')");
  db.close();
  await assertRefused(t, dir, file, /not a Strata store/);
});

test('data-file safety: a store of an unknown format version is refused and left untouched', async (t) => {
  const dir = await tempDir(t);
  const file = await validStore(dir);
  const db = new DatabaseSync(file);
  db.exec("UPDATE meta SET value = 99 WHERE key = 'format'");
  db.close();
  await assertRefused(t, dir, file, /format version 99/);
});

test('data-file safety: a SQLite file with our application id but no store tables is refused', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'half.db');
  const db = new DatabaseSync(file);
  db.exec(`PRAGMA application_id = ${EMBEDDED_APPLICATION_ID}; CREATE TABLE other (x)`);
  db.close();
  await assertRefused(t, dir, file, /without its "meta" table/);
});

test('data-file safety: a text file is refused and left untouched', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'notes.txt');
  await fs.writeFile(file, 'These are my notes, not a database.\n'.repeat(20));
  await assertRefused(t, dir, file, /not a SQLite database/);
});

test('data-file safety: a directory, and a WAL without its database, are refused', async (t) => {
  const dir = await tempDir(t);
  const sub = path.join(dir, 'a-directory');
  await fs.mkdir(sub);
  await assertRefused(t, dir, sub, /not a regular file/);
  const lost = path.join(dir, 'lost.db');
  await fs.writeFile(`${lost}-wal`, Buffer.alloc(4096, 1));
  await assertRefused(t, dir, lost, /write-ahead log/);
});

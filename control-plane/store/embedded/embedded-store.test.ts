import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { storeContract } from '../contract/store-contract.ts';
import type { StateStore, WatchBatch } from '../port.ts';
import { openEmbeddedStore, type EmbeddedStateStore } from './embedded-store.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-embedded-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const compact = (store: StateStore): Promise<void> => (store as EmbeddedStateStore).compact();

// The contract, against a fresh data file per test and against ':memory:'.
let dirs: string[] = [];
test.after.always(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  dirs = [];
});
storeContract(test, {
  name: 'embedded (file)',
  open: async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-contract-'));
    dirs.push(dir);
    return openEmbeddedStore({ path: path.join(dir, 'store.db') });
  },
  compact,
});
storeContract(test, { name: 'embedded (:memory:)', open: () => openEmbeddedStore({ path: ':memory:' }), compact });

// Embedded-only behaviour.

test('embedded: data, indexes and sessions survive a reopen; sessions restart their TTL', async (t) => {
  const file = path.join(await tempDir(t), 'nested', 'store.db');
  const first = await openEmbeddedStore({ path: file });
  t.is(first.backend, 'embedded');
  const session = await first.createSession({ ttlSeconds: 1, name: 'agent-1' });
  const i1 = await first.put('a', '1');
  const i2 = await first.put('held', 'x', { sessionId: session });
  t.true(i1.ok && i2.ok);
  const before = await first.list('');
  await first.close();

  const openedAt = Date.now();
  const second = await openEmbeddedStore({ path: file });
  t.teardown(() => second.close());
  const after = await second.list('');
  t.deepEqual(after, before, 'same entries and the same index after reopen');
  t.true(await second.renewSession(session), 'the session outlived the restart');
  const i3 = await second.put('b', '1');
  t.true(i3.ok && i3.index > before.index, 'indexes keep growing after reopen');
  // Without renewals the session expires one TTL after the last renew.
  while ((await second.get('held')) !== undefined && Date.now() - openedAt < 5000) await new Promise((r) => setTimeout(r, 50));
  t.is(await second.get('held'), undefined, 'the reopened session expired and took its key');
  t.truthy(await second.get('a'));
});

test('embedded: writes queued in the same tick share one commit; CAS sees earlier writes of the group', async (t) => {
  const store = await openEmbeddedStore({ path: path.join(await tempDir(t), 's.db') });
  t.teardown(() => store.close());
  const before = store.stats().commits;
  const results = await Promise.all(Array.from({ length: 64 }, (_, i) => store.put(`k/${i}`, `v${i}`)));
  const indexes = results.map((r) => (r.ok ? r.index : -1));
  t.is(new Set(indexes).size, 64, 'every write has its own index');
  t.deepEqual(indexes, [...indexes].sort((a, b) => a - b), 'indexes follow arrival order');
  t.is(store.stats().commits - before, 1, '64 puts in one tick are one SQLite commit');
  t.true(store.stats().largestGroup >= 64);

  const [create, duplicate, update, stale] = await Promise.all([
    store.put('cas', 'a', { casIndex: 0 }),
    store.put('cas', 'b', { casIndex: 0 }),
    store.put('cas', 'c', { casIndex: indexes[63]! + 1 }),
    store.put('cas', 'd', { casIndex: indexes[63]! + 1 }),
  ]);
  t.true(create.ok);
  t.deepEqual(duplicate, { ok: false, reason: 'cas' }, 'the second create in the group sees the first');
  t.true(update.ok, 'a CAS on the index the first write got succeeds within the group');
  t.deepEqual(stale, { ok: false, reason: 'cas' });
  t.is((await store.get('cas'))!.value, 'c');
});

test('embedded: history is pruned to historyLimit; older watches resync, recent ones resume', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:', historyLimit: 10 });
  t.teardown(() => store.close());
  let last = 0;
  for (let i = 0; i < 50; i++) {
    const r = await store.put(`h/${i % 7}`, `${i}`);
    if (r.ok) last = r.index;
  }
  const { compactedIndex } = store.stats();
  t.true(compactedIndex > 0 && compactedIndex >= last - 10 - 2, `history compacted up to ${compactedIndex}`);
  t.true(last - compactedIndex >= 10, 'at least historyLimit indexes are kept');

  const next = async (from: number): Promise<WatchBatch> => {
    const watch = store.watch('h/', { fromIndex: from });
    t.teardown(() => watch.close());
    const r = await watch[Symbol.asyncIterator]().next();
    if (r.done === true) throw new Error('watch ended');
    return r.value;
  };
  const old = await next(1);
  t.is(old.kind, 'resync');
  t.is(old.index, last);
  t.is(old.kind === 'resync' ? old.entries.length : 0, 7);
  const recent = await next(last - 5);
  t.is(recent.kind, 'changes');
  t.is(recent.index, last - 4, 'resumes with the first index after fromIndex');
});

test('embedded: a lagging watcher is caught up from history without losing or repeating changes', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const watch = store.watch('lag/', { fromIndex: 0 });
  t.teardown(() => watch.close());
  // More than the in-memory queue holds while nobody reads.
  const total = 10_050;
  for (let i = 0; i < total; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => store.put(`lag/${(i + j) % 100}`, `${i + j}`)));
  }
  const indexes: number[] = [];
  for await (const batch of watch) {
    t.is(batch.kind, 'changes');
    indexes.push(batch.index);
    if (indexes.length === total) break;
  }
  t.is(indexes.length, total);
  t.true(indexes.every((x, i) => i === 0 || x === indexes[i - 1]! + 1), 'every index once, in order');
});

test('embedded: a second process-level open of a file in use is refused, the first keeps working', async (t) => {
  const file = path.join(await tempDir(t), 's.db');
  const store = await openEmbeddedStore({ path: file });
  t.teardown(() => store.close());
  t.true((await store.put('a', '1')).ok);
  const err = await t.throwsAsync(openEmbeddedStore({ path: file }));
  t.is((err as { code?: string }).code, 'STORE_UNAVAILABLE');
  t.regex(err.message, /in use/);
  t.true((await store.put('a', '2')).ok);
  t.is((await store.get('a'))!.value, '2');
});

test('embedded: options are validated', async (t) => {
  for (const options of [{ path: '' }, { path: ':memory:', historyLimit: 0 }, { path: ':memory:', historyLimit: 1.5 }]) {
    const err = await t.throwsAsync(openEmbeddedStore(options));
    t.is((err as { code?: string }).code, 'CONFIG_INVALID');
  }
});

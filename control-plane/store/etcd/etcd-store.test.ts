/**
 * The etcd backend against a real 3-member etcd cluster (one per file):
 * etcd-specific behaviour first, then the shared store contract.
 */
import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { ExecutionContext, TestFn } from 'ava';
import { freePort, startEtcdCluster, type EtcdCluster } from '../../../test/harness/etcd-cluster.ts';
import { storeContract } from '../contract/store-contract.ts';
import type { StateStore, WatchBatch } from '../port.ts';
import { openEtcdStore, type EtcdStoreOptions } from './etcd-store.ts';

let cluster: EtcdCluster | undefined;
const opened = new Set<StateStore>();

test.before(async () => {
  cluster = await startEtcdCluster({ members: 3 });
});

test.after.always(async () => {
  await Promise.all([...opened].map((s) => s.close().catch(() => undefined)));
  await cluster?.stop();
});

function etcd(): EtcdCluster {
  if (cluster === undefined) throw new Error('etcd cluster not started');
  return cluster;
}

async function open(options: Partial<EtcdStoreOptions> = {}): Promise<StateStore> {
  const store = await openEtcdStore({ endpoints: [...etcd().endpoints], ...options });
  opened.add(store);
  return store;
}

async function openFor(t: ExecutionContext, options: Partial<EtcdStoreOptions> = {}): Promise<StateStore> {
  const store = await open(options);
  t.teardown(() => store.close());
  return store;
}

const codeOf = async (fn: () => unknown): Promise<string | undefined> => {
  try {
    await fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
};

/** Reads batches until one reaches `index` (or fails after `ms`). */
async function readUntil(it: AsyncIterator<WatchBatch>, index: number, ms = 15_000): Promise<WatchBatch[]> {
  const out: WatchBatch[] = [];
  const deadline = Date.now() + ms;
  while ((out.at(-1)?.index ?? -1) < index) {
    let timer: NodeJS.Timeout | undefined;
    const next = await Promise.race([
      it.next(),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(1, deadline - Date.now())))),
    ]);
    clearTimeout(timer);
    if (next === 'timeout') throw new Error(`watch did not reach index ${index} within ${ms} ms (last ${out.at(-1)?.index})`);
    if (next.done === true) throw new Error(`watch ended before index ${index}`);
    out.push(next.value);
  }
  return out;
}

// ---------------------------------------------------------------------------
// etcd-specific behaviour

test('etcd: keys live under <prefix>kv/, indexes are etcd revisions, sessions are leases with a record', async (t) => {
  const ns = `layout-${randomUUID()}/`;
  const store = await openFor(t, { prefix: ns });
  t.is(store.backend, 'etcd');
  t.is(store.capabilities.watchHistory, 'every-index');
  t.deepEqual(store.health(), { status: 'ok', backend: 'etcd' });

  const put = await store.put('apps/web', '{"x":1}');
  t.true(put.ok);
  if (!put.ok) return;
  const raw = await etcd().rawRange(`${ns}kv/apps/web`);
  t.is(raw.kvs.length, 1);
  t.is(raw.kvs[0]?.value, '{"x":1}');
  t.is(raw.kvs[0]?.modRevision, put.index, 'the write index is the etcd revision');
  t.is(raw.kvs[0]?.createRevision, put.index);
  t.true(raw.revision >= put.index);

  const entry = await store.get('apps/web');
  t.is(entry?.createIndex, raw.kvs[0]?.createRevision);
  t.is(entry?.modifyIndex, raw.kvs[0]?.modRevision);

  const session = await store.createSession({ ttlSeconds: 30, name: 'layout-test' });
  t.regex(session, /^[0-9a-f]{16}$/, 'session ids are lease ids in 16 hex digits');
  const record = await etcd().rawRange(`${ns}sessions/${session}`);
  t.is(record.kvs.length, 1, 'one record per session');
  t.deepEqual(JSON.parse(record.kvs[0]?.value ?? '{}'), { name: 'layout-test', ttlSeconds: 30 });
  t.is(BigInt(record.kvs[0]?.lease ?? '0').toString(16).padStart(16, '0'), session, 'the record is bound to the lease');

  const bound = await store.put('apps/lock', 'me', { sessionId: session });
  t.true(bound.ok);
  t.is(BigInt((await etcd().rawRange(`${ns}kv/apps/lock`)).kvs[0]?.lease ?? '0').toString(16).padStart(16, '0'), session);
  t.deepEqual(
    (await store.list('')).entries.map((e) => e.key),
    ['apps/lock', 'apps/web'],
    'session records are not store keys',
  );
  await store.destroySession(session);
  t.is((await etcd().rawRange(`${ns}sessions/${session}`)).kvs.length, 0, 'the record goes with the lease');
  t.is((await etcd().rawRange(`${ns}kv/apps/lock`)).kvs.length, 0);
});

test('etcd: stores with different prefixes are isolated, even for deletePrefix("") and watch("")', async (t) => {
  const a = await openFor(t, { prefix: `iso-a-${randomUUID()}/` });
  const b = await openFor(t, { prefix: `iso-b-${randomUUID()}/` });
  const from = (await a.list('')).index;
  const watch = a.watch('', { fromIndex: from });
  t.teardown(() => watch.close());
  const it = watch[Symbol.asyncIterator]();
  await b.put('k', 'b');
  const wa = await a.put('k', 'a');
  t.true(wa.ok);
  const batches = await readUntil(it, wa.ok ? wa.index : 0);
  t.deepEqual(
    batches.flatMap((batch) => (batch.kind === 'changes' ? batch.events.map((e) => (e.type === 'put' ? e.entry.value : 'delete')) : ['resync'])),
    ['a'],
    "a's watch sees only a's keys",
  );
  await a.deletePrefix('');
  t.deepEqual((await a.list('')).entries, []);
  t.is((await b.get('k'))?.value, 'b', "b's key survives a.deletePrefix('')");
});

test('etcd: the empty namespace works (keys under kv/)', async (t) => {
  const store = await openFor(t, { prefix: '' });
  const key = `empty-ns/${randomUUID()}`;
  const r = await store.put(key, 'v');
  t.true(r.ok);
  t.is((await etcd().rawRange(`kv/${key}`)).kvs[0]?.value, 'v');
  await store.delete(key);
});

test('etcd: options are validated with CONFIG_INVALID; an unreachable cluster fails open with STORE_UNAVAILABLE in bounded time', async (t) => {
  t.is(await codeOf(() => openEtcdStore({ endpoints: [] })), 'CONFIG_INVALID');
  t.is(
    await codeOf(() => openEtcdStore({ endpoints: 'http://127.0.0.1:2379' as unknown as string[] })),
    'CONFIG_INVALID',
    'a string is not a list (the etcd3 gotcha)',
  );
  t.is(await codeOf(() => openEtcdStore({ endpoints: [etcd().endpoints.join(',')] })), 'CONFIG_INVALID', 'comma-joined URLs are refused');
  t.is(await codeOf(() => openEtcdStore({ endpoints: ['127.0.0.1:2379'] })), 'CONFIG_INVALID', 'the scheme is required');
  t.is(await codeOf(() => openEtcdStore({ endpoints: [...etcd().endpoints], callTimeoutMs: 0 })), 'CONFIG_INVALID');
  t.is(
    await codeOf(() => openEtcdStore({ endpoints: [...etcd().endpoints], minSessionTtlSeconds: 10, maxSessionTtlSeconds: 5 })),
    'CONFIG_INVALID',
  );
  const dead = `http://127.0.0.1:${await freePort()}`;
  const started = Date.now();
  t.is(await codeOf(() => openEtcdStore({ endpoints: [dead], retryTimeoutMs: 600, callTimeoutMs: 300 })), 'STORE_UNAVAILABLE');
  t.true(Date.now() - started < 5000, `gave up after ${Date.now() - started} ms`);
});

test('etcd: session TTL limits come from the options and are enforced', async (t) => {
  const store = await openFor(t, { minSessionTtlSeconds: 3, maxSessionTtlSeconds: 60 });
  t.is(store.capabilities.minSessionTtlSeconds, 3);
  t.is(store.capabilities.maxSessionTtlSeconds, 60);
  t.is(await codeOf(() => store.createSession({ ttlSeconds: 2 })), 'STORE_SESSION_TTL_INVALID');
  t.is(await codeOf(() => store.createSession({ ttlSeconds: 61 })), 'STORE_SESSION_TTL_INVALID');
  t.is(await codeOf(() => store.createSession({ ttlSeconds: 3.5 })), 'STORE_SESSION_TTL_INVALID', 'etcd leases have whole seconds');
  const id = await store.createSession({ ttlSeconds: 3 });
  t.true(await store.renewSession(id));
  await store.destroySession(id);
  t.false(await store.renewSession(id));
  t.false(await store.renewSession('not-a-session'), 'a malformed id names no live session');
  await t.notThrowsAsync(() => store.destroySession('not-a-session'));
});

test('etcd: a watch catching up on a backlog larger than etcd sends at once gets every revision once, in order', async (t) => {
  const store = await openFor(t, { prefix: `backlog-${randomUUID()}/` });
  const from = (await store.list('')).index;
  const total = process.env.STRATA_SLOW === '1' ? 5000 : 1300; // etcd sends at most 1000 revisions per catch-up round
  const indexes: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < total) {
        const i = next++;
        const r = await store.put(`k${i % 50}`, `v${i}`);
        if (r.ok) indexes.push(r.index);
      }
    }),
  );
  indexes.sort((x, y) => x - y);
  const watch = store.watch('', { fromIndex: from });
  t.teardown(() => watch.close());
  const batches = await readUntil(watch[Symbol.asyncIterator](), indexes.at(-1) ?? 0, 30_000);
  t.deepEqual(
    batches.map((b) => b.index),
    indexes,
    'one batch per write, in index order, none missing or repeated',
  );
  t.true(batches.every((b) => b.kind === 'changes' && b.events.length === 1));
});

test('etcd: health is ok on a live cluster and the store answers through any member', async (t) => {
  for (const endpoint of etcd().endpoints) {
    const store = await openFor(t, { endpoints: [endpoint], prefix: `one-member-${randomUUID()}/` });
    const r = await store.put('k', endpoint);
    t.true(r.ok);
    t.is((await store.get('k'))?.value, endpoint);
    t.deepEqual(store.health(), { status: 'ok', backend: 'etcd' });
  }
});

// Compaction is cluster-wide, so these run serially (before the concurrent tests).

test.serial('etcd: a connected watch is not disturbed by compaction; a watch from before it resyncs', async (t) => {
  const store = await openFor(t, { prefix: `compact-${randomUUID()}/` });
  const first = await store.put('a', '1');
  t.true(first.ok);
  const from = first.ok ? first.index : 0;
  const live = store.watch('', { fromIndex: from });
  t.teardown(() => live.close());
  const liveIt = live[Symbol.asyncIterator]();
  const second = await store.put('b', '1');
  const i2 = second.ok ? second.index : 0;
  t.deepEqual((await readUntil(liveIt, i2)).map((b) => b.kind), ['changes']);
  const third = await store.put('c', '1');
  const i3 = third.ok ? third.index : 0;
  t.is(await etcd().compact(), i3, 'compacted to the latest write: revisions below it are gone');
  const fourth = await store.put('d', '1');
  const i4 = fourth.ok ? fourth.index : 0;
  const after = await readUntil(liveIt, i4);
  t.deepEqual(
    after.map((b) => [b.kind, b.index]),
    [
      ['changes', i3],
      ['changes', i4],
    ],
    'no resync for a watch that already saw everything',
  );

  const late = store.watch('', { fromIndex: from });
  t.teardown(() => late.close());
  const lateBatches = await readUntil(late[Symbol.asyncIterator](), i4);
  t.is(lateBatches.length, 1);
  const resync = lateBatches[0];
  t.is(resync?.kind, 'resync', 'history from before the compaction is gone: resync');
  if (resync?.kind === 'resync') {
    t.true(resync.index >= i4);
    t.deepEqual(resync.entries.map((e) => `${e.key}=${e.value}`), ['a=1', 'b=1', 'c=1', 'd=1']);
  }
  // Compacted exactly at a watch's start revision is not a gap: no resync.
  const edge = store.watch('', { fromIndex: i3 - 1 });
  t.teardown(() => edge.close());
  t.deepEqual(
    (await readUntil(edge[Symbol.asyncIterator](), i4)).map((b) => [b.kind, b.index]),
    [
      ['changes', i3],
      ['changes', i4],
    ],
  );
});

// ---------------------------------------------------------------------------
// The shared contract. Its tests run one at a time here: compact() compacts
// the whole shared cluster, which would turn the watches other contract
// tests open from older indexes into (legal, but unexpected) resyncs.

const serialTest: TestFn = new Proxy(test, {
  apply: (_target, _this, args: Parameters<typeof test.serial>) => test.serial(...args),
});

storeContract(serialTest, {
  name: 'etcd',
  open: () => open({ prefix: 'contract/' }),
  compact: async () => {
    await etcd().compact();
  },
});

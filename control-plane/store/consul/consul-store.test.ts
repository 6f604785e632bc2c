/**
 * The Consul backend: the shared store contract against the fake Consul
 * (test/fakes/consul), and against a real Consul when CONSUL_HTTP_ADDR is
 * set (same suite, unchanged; CONSUL_HTTP_TOKEN is sent when set). Then the
 * behaviour only this backend has: the HTTP calls it makes, index resets,
 * unreachable or leaderless servers, session rebinding, Consul's limits.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { startFakeConsul, type FakeConsul, type FakeConsulOptions } from '../../../test/fakes/consul/fake-consul.ts';
import { storeContract } from '../contract/store-contract.ts';
import type { KvEntry, StateStore, Watch, WatchBatch } from '../port.ts';
import { openConsulStore, type ConsulStoreOptions } from './consul-store.ts';

/**
 * Consul's `limits.txn_max_req_len` defaults to 512 KiB of request body, and
 * every write goes through /v1/txn with base64 values (4/3 larger): a value
 * of the port's full 512 KiB needs about 700 KB. The fake runs with 1 MiB, as
 * a real Consul serving Strata must (see README.md); the default is tested
 * below.
 */
const TXN_MAX_REQ_LEN = 1024 * 1024;

let shared: FakeConsul | undefined;
test.before(async () => {
  shared = await startFakeConsul({ txnMaxReqLen: TXN_MAX_REQ_LEN });
});
test.after.always(async () => {
  await shared?.close();
});

storeContract(test, {
  name: 'consul (fake)',
  open: () => openConsulStore({ address: shared!.address, prefix: 'strata/' }),
});

const realAddress = process.env.CONSUL_HTTP_ADDR;
if (realAddress) {
  const runPrefix = `strata-test/${randomUUID()}/`;
  const token = process.env.CONSUL_HTTP_TOKEN;
  const realOptions: ConsulStoreOptions = { address: realAddress, prefix: runPrefix, ...(token ? { token } : {}) };
  storeContract(test, { name: `consul (${realAddress})`, open: () => openConsulStore(realOptions) });
  test.after.always('remove the keys the real-Consul run wrote', async () => {
    const store = await openConsulStore(realOptions);
    await store.deletePrefix('').catch(() => undefined);
    await store.close();
  });
}

// ---------------------------------------------------------------------------
// helpers

async function fakeFor(t: ExecutionContext, options: FakeConsulOptions = {}): Promise<FakeConsul> {
  const fake = await startFakeConsul({ txnMaxReqLen: TXN_MAX_REQ_LEN, ...options });
  t.teardown(() => fake.close());
  return fake;
}

async function storeFor(t: ExecutionContext, fake: FakeConsul, options: Partial<ConsulStoreOptions> = {}): Promise<StateStore> {
  const store = await openConsulStore({ address: fake.address, prefix: 'p/', retryBaseMs: 10, ...options });
  t.teardown(() => store.close());
  return store;
}

function code(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/** Reads batches with a deadline. */
function reader(t: ExecutionContext, watch: Watch): (ms?: number) => Promise<WatchBatch | 'timeout' | 'done'> {
  const it = watch[Symbol.asyncIterator]();
  t.teardown(() => watch.close());
  let pending: Promise<IteratorResult<WatchBatch>> | undefined;
  return async (ms = 5000) => {
    pending ??= it.next();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([pending, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))]);
    clearTimeout(timer);
    if (result === 'timeout') return 'timeout';
    pending = undefined;
    return result.done === true ? 'done' : result.value;
  };
}

function apply(view: Map<string, KvEntry>, batch: WatchBatch): void {
  if (batch.kind === 'resync') {
    view.clear();
    for (const e of batch.entries) view.set(e.key, e);
  } else {
    for (const e of batch.events) {
      if (e.type === 'put') view.set(e.entry.key, e.entry);
      else view.delete(e.key);
    }
  }
}

function sorted(entries: Iterable<KvEntry>): string[] {
  return [...entries].map((e) => `${e.key}=${e.value}@${e.createIndex}/${e.modifyIndex}${e.sessionId ? `~${e.sessionId}` : ''}`).sort();
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function consulJson(fake: FakeConsul, path: string): Promise<unknown> {
  const res = await fetch(`${fake.url}${path}`);
  return res.json();
}

// ---------------------------------------------------------------------------
// what goes over the wire

test('consul: reads use GET /v1/kv, every write goes through /v1/txn, sessions through /v1/session', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake);
  await store.put('a', '1');
  await store.get('a');
  await store.list('');
  await store.delete('a');
  await store.deletePrefix('x/');
  await store.txn({ writes: [{ op: 'put', key: 'b', value: '2' }] });
  const session = await store.createSession({ ttlSeconds: 10 });
  await store.renewSession(session);
  await store.destroySession(session);
  const calls = fake.requests.map((r) => `${r.method} ${r.path}`);
  t.deepEqual(
    [...new Set(calls.map((c) => c.replace(/[0-9a-f-]{36}$/u, ':uuid')))].sort(),
    ['GET /v1/kv/p/', 'GET /v1/kv/p/a', 'PUT /v1/session/create', 'PUT /v1/session/destroy/:uuid', 'PUT /v1/session/renew/:uuid', 'PUT /v1/txn'].sort(),
  );
  t.true(fake.requests.filter((r) => r.path === '/v1/kv/p/').every((r) => 'recurse' in r.query), 'listings are recursive');
});

test('consul: the session is created with the TTL, Behavior delete, LockDelay 0s and no health checks', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake);
  const id = await store.createSession({ ttlSeconds: 12, name: 'leader:x' });
  const info = (await consulJson(fake, `/v1/session/info/${id}`)) as Array<Record<string, unknown>>;
  t.like(info[0], { ID: id, Name: 'leader:x', TTL: '12s', Behavior: 'delete', LockDelay: 0, NodeChecks: null });
});

test('consul: the ACL token is sent as X-Consul-Token; a refused token is a configuration error', async (t) => {
  const fake = await fakeFor(t, { aclToken: 'sekret' });
  const good = await storeFor(t, fake, { token: 'sekret' });
  const put = await good.put('k', 'v');
  t.true(put.ok);
  t.true(fake.requests.every((r) => r.token === 'sekret'));
  const bad = await storeFor(t, fake, { token: 'wrong' });
  const err = await t.throwsAsync(bad.get('k'));
  t.is(code(err), 'CONFIG_INVALID');
  t.regex(err.message, /consulToken/u);
});

test('consul: address forms and a bad address', async (t) => {
  const fake = await fakeFor(t);
  for (const address of [fake.address, fake.url]) {
    const store = await openConsulStore({ address, prefix: 'p/' });
    t.true((await store.put('k', address)).ok, address);
    t.is((await store.get('k'))?.value, address);
    await store.close();
  }
  for (const address of ['', 'ftp://127.0.0.1:1', 'http://127.0.0.1:8500/some/path']) {
    await t.throwsAsync(openConsulStore({ address }), { code: 'CONFIG_INVALID' }, JSON.stringify(address));
  }
});

test('consul: the store prefix namespaces the keys inside Consul', async (t) => {
  const fake = await fakeFor(t);
  const one = await storeFor(t, fake, { prefix: 'one/' });
  const two = await storeFor(t, fake, { prefix: 'two/' });
  await one.put('k', '1');
  await two.put('k', '2');
  t.is((await one.get('k'))?.value, '1');
  t.deepEqual((await two.list('')).entries.map((e) => `${e.key}=${e.value}`), ['k=2']);
  await one.deletePrefix('');
  t.is(await one.get('k'), undefined);
  t.is((await two.get('k'))?.value, '2', 'deletePrefix("") stays inside the store prefix');
  const raw = (await consulJson(fake, '/v1/kv/two/k')) as Array<{ Key: string; Value: string }>;
  t.is(raw[0]?.Key, 'two/k');
  t.is(Buffer.from(raw[0]?.Value ?? '', 'base64').toString(), '2');
});

// ---------------------------------------------------------------------------
// sessions: a put binds a key to exactly the session it names

test('consul: a put without a session unbinds a key; a put with another session rebinds it', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake);
  const s1 = await store.createSession({ ttlSeconds: 60 });
  const s2 = await store.createSession({ ttlSeconds: 60 });
  const i1 = await store.put('k', 'held', { sessionId: s1 });
  t.is((await store.get('k'))?.sessionId, s1);
  const i2 = await store.put('k', 'free');
  t.true(i1.ok && i2.ok && i2.index > i1.index);
  const unbound = await store.get('k');
  t.like(unbound, { value: 'free', modifyIndex: i2.ok ? i2.index : -1 });
  t.is(unbound?.sessionId, undefined);
  await store.destroySession(s1);
  t.is((await store.get('k'))?.value, 'free', 'the unbound key outlives its old session');

  await store.put('j', 'one', { sessionId: s2 });
  const s3 = await store.createSession({ ttlSeconds: 60 });
  const rebound = await store.put('j', 'three', { sessionId: s3 });
  t.true(rebound.ok);
  t.like(await store.get('j'), { value: 'three', sessionId: s3 });
  await store.destroySession(s2);
  t.is((await store.get('j'))?.value, 'three', 'not deleted with the session that lost it');
  await store.destroySession(s3);
  t.is(await store.get('j'), undefined, 'deleted with the session that holds it');

  const tx = await store.txn({ writes: [{ op: 'put', key: 'm', value: 'v', sessionId: await store.createSession({ ttlSeconds: 60 }) }] });
  t.true(tx.ok);
  const s5 = await store.createSession({ ttlSeconds: 60 });
  const both = await store.txn({ conditions: [{ key: 'm', modifyIndex: tx.ok ? tx.index : 0 }], writes: [{ op: 'put', key: 'm', value: 'w', sessionId: s5 }, { op: 'put', key: 'n', value: 'x' }] });
  t.true(both.ok, 'rebinding inside a conditional transaction');
  t.like(await store.get('m'), { value: 'w', sessionId: s5 });
});

test('consul: a TTL outside 10 s to 86400 s is refused before Consul is asked; Consul\'s own refusal maps to the same code', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake);
  t.deepEqual(store.capabilities, { watchHistory: 'coalesced', minSessionTtlSeconds: 10, maxSessionTtlSeconds: 86_400 });
  const before = fake.requests.length;
  await t.throwsAsync(store.createSession({ ttlSeconds: 9 }), { code: 'STORE_SESSION_TTL_INVALID' });
  t.is(fake.requests.length, before, 'nothing sent');
  // A store told the server allows 1 s, talking to one that does not.
  const optimistic = await storeFor(t, fake, { minSessionTtlSeconds: 1 });
  const err = await t.throwsAsync(optimistic.createSession({ ttlSeconds: 2 }));
  t.is(code(err), 'STORE_SESSION_TTL_INVALID');
  t.regex(err.message, /Invalid Session TTL/u);
});

test('consul: a session TTL shorter than Consul\'s default works against a server configured for it', async (t) => {
  const fake = await fakeFor(t, { sessionTtlMinSeconds: 1 });
  const store = await storeFor(t, fake, { minSessionTtlSeconds: 1 });
  const started = Date.now();
  const session = await store.createSession({ ttlSeconds: 1 });
  await store.put('lease', 'v', { sessionId: session });
  while ((await store.get('lease')) !== undefined && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 50));
  t.is(await store.get('lease'), undefined, 'deleted when the TTL ran out (Behavior delete)');
  t.true(Date.now() - started >= 950, 'not before the TTL');
  t.false(await store.renewSession(session));
});

// ---------------------------------------------------------------------------
// Consul's limits

test('consul: with Consul\'s default txn_max_req_len a 512 KiB value is refused as too large, naming the setting', async (t) => {
  const fake = await fakeFor(t, { txnMaxReqLen: 512 * 1024 });
  const store = await storeFor(t, fake);
  const err = await t.throwsAsync(store.put('big', 'x'.repeat(512 * 1024)));
  t.is(code(err), 'STORE_VALUE_TOO_LARGE');
  t.regex(err.message, /txn_max_req_len/u);
  t.true((await store.put('small', 'x'.repeat(300 * 1024))).ok, 'values that fit after base64 are fine');
});

// ---------------------------------------------------------------------------
// watches

test('consul: a watch from an index with no listing to diff against starts with a resync, never a silent gap', async (t) => {
  const fake = await fakeFor(t);
  const writer = await storeFor(t, fake);
  const i1 = await writer.put('w/a', '1');
  await writer.put('w/b', '1');
  const del = await writer.delete('w/a');
  t.true(i1.ok && del.ok);
  // A fresh store has no listing of w/ at i1, and the deletion of w/a after i1 cannot be proven from a listing.
  const store = await storeFor(t, fake);
  const next = reader(t, store.watch('w/', { fromIndex: i1.ok ? i1.index : 0 }));
  const first = await next();
  t.true(first !== 'timeout' && first !== 'done' && first.kind === 'resync', JSON.stringify(first));
  if (first !== 'timeout' && first !== 'done' && first.kind === 'resync') {
    t.deepEqual(first.entries.map((e) => e.key), ['w/b']);
    t.true(first.index >= (del.ok ? del.index : 0));
  }
});

test('consul: a watch from the current index (no list) and one from 0 need no resync', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake);
  const i1 = await store.put('w/a', '1');
  t.true(i1.ok);
  const fromNow = reader(t, store.watch('w/', { fromIndex: i1.ok ? i1.index : 0 }));
  const fromZero = reader(t, store.watch('w/', { fromIndex: 0 }));
  // Written right after watch(): the store holds the write until the watch has its base.
  const i2 = await store.put('w/b', '2');
  const b1 = await fromNow();
  t.like(b1, { kind: 'changes', index: i2.ok ? i2.index : -1 });
  t.deepEqual(b1 !== 'timeout' && b1 !== 'done' && b1.kind === 'changes' ? b1.events.map((e) => e.type === 'put' && e.entry.key) : [], ['w/b']);
  const view = new Map<string, KvEntry>();
  for (;;) {
    const b = await fromZero();
    if (b === 'timeout' || b === 'done') break;
    t.is(b.kind, 'changes', 'from 0 the base is the empty store');
    apply(view, b);
    if (b.index >= (i2.ok ? i2.index : 0)) break;
  }
  t.deepEqual(sorted(view.values()), sorted((await store.list('w/')).entries));
});

test('consul: a restored snapshot sends the index backwards: the watch resets and resyncs, indexes never go down', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake, { blockingWaitMs: 300 });
  await store.put('r/a', '1');
  const listed = await store.list('r/');
  const snapshot = fake.snapshot();
  const view = new Map(listed.entries.map((e) => [e.key, e]));
  const next = reader(t, store.watch('r/', { fromIndex: listed.index }));
  await store.put('r/b', '1');
  const i3 = await store.put('r/a', '2');
  let last = listed.index;
  while (last < (i3.ok ? i3.index : 0)) {
    const b = await next();
    if (b === 'timeout' || b === 'done') return t.fail(`no batch: ${b}`);
    apply(view, b);
    last = b.index;
  }
  fake.restore(snapshot);
  const reset = await next();
  if (reset === 'timeout' || reset === 'done') return t.fail(`no resync: ${reset}`);
  t.is(reset.kind, 'resync');
  t.true(reset.index >= last, `the resync index ${reset.index} is not below the last delivered ${last}`);
  apply(view, reset);
  t.deepEqual(sorted(view.values()), sorted((await store.list('r/')).entries), 'the view is the restored state');
  const after = await store.put('r/c', '3');
  t.true(after.ok);
  const b = await next();
  if (b === 'timeout' || b === 'done') return t.fail(`nothing after the reset: ${b}`);
  t.is(b.kind, 'changes');
  t.true(b.index >= reset.index);
  apply(view, b);
  t.deepEqual(sorted(view.values()), sorted((await store.list('r/')).entries), 'changes after the reset apply on top');
});

test('consul: reaped tombstones lower a listing\'s index: no spurious batch, later changes still arrive', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake, { blockingWaitMs: 200 });
  await store.put('g/a', '1');
  await store.put('g/b', '1');
  await store.delete('g/b');
  const listed = await store.list('g/');
  const next = reader(t, store.watch('g/', { fromIndex: listed.index }));
  fake.reapTombstones();
  t.is(await next(700), 'timeout', 'the lower index after reaping changes nothing the consumer holds');
  const requestsBefore = fake.requests.length;
  await new Promise((r) => setTimeout(r, 500));
  t.true(fake.requests.length - requestsBefore <= 6, 'the watch keeps blocking instead of spinning on the lower index');
  const put = await store.put('g/c', '1');
  const b = await next();
  t.like(b, { kind: 'changes', index: put.ok ? put.index : -1 });
});

// ---------------------------------------------------------------------------
// failures

test('consul: an unreachable agent fails calls with STORE_UNAVAILABLE after bounded retries, health degraded, no crash', async (t) => {
  const port = await closedPort();
  const store = await openConsulStore({ address: `127.0.0.1:${port}`, retries: 2, retryBaseMs: 20, healthIntervalMs: 0 });
  t.teardown(() => store.close());
  t.is(store.health().status, 'ok', 'nothing tried yet');
  const started = Date.now();
  for (const call of [() => store.get('k'), () => store.put('k', 'v'), () => store.list(''), () => store.createSession({ ttlSeconds: 10 })]) {
    const err = await t.throwsAsync(call());
    t.is(code(err), 'STORE_UNAVAILABLE');
    t.regex(err.message, /ECONNREFUSED/u);
  }
  t.true(Date.now() - started < 5000, 'retries are bounded');
  t.like(store.health(), { status: 'degraded', backend: 'consul' });
  t.regex(store.health().detail ?? '', /ECONNREFUSED/u);
  // A watch keeps retrying quietly until closed.
  const next = reader(t, store.watch('', { fromIndex: 0 }));
  t.is(await next(300), 'timeout');
  await store.close();
  t.is(await next(1000), 'done');
});

test('consul: without a leader calls fail and health degrades; the watch resumes after recovery without a gap', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake, { retries: 2, blockingWaitMs: 200, watchBackoffMs: { initial: 20, max: 100 } });
  await store.put('l/a', '1');
  const listed = await store.list('l/');
  const next = reader(t, store.watch('l/', { fromIndex: listed.index }));
  fake.setLeaderless(true);
  const err = await t.throwsAsync(store.put('l/b', '1'));
  t.is(code(err), 'STORE_UNAVAILABLE');
  t.regex(err.message, /No cluster leader/u);
  t.is(store.health().status, 'degraded');
  t.is(await next(400), 'timeout', 'nothing delivered while failing');
  fake.setLeaderless(false);
  const put = await store.put('l/c', '1');
  t.true(put.ok);
  t.is(store.health().status, 'ok', 'healthy again after a success');
  const b = await next();
  t.like(b, { kind: 'changes', index: put.ok ? put.index : -1 });
  t.deepEqual(b !== 'timeout' && b !== 'done' && b.kind === 'changes' ? b.events.map((e) => (e.type === 'put' ? e.entry.key : `-${e.key}`)) : [], ['l/c'], 'the refused write was never applied');
});

test('consul: connections dropped mid-watch: the watch reconnects from the last index, nothing twice, nothing lost', async (t) => {
  const fake = await fakeFor(t);
  const store = await storeFor(t, fake, { blockingWaitMs: 5000, watchBackoffMs: { initial: 20, max: 100 } });
  const listed = await store.list('d/');
  const next = reader(t, store.watch('d/', { fromIndex: listed.index }));
  const keys: string[] = [];
  const view = new Map<string, KvEntry>();
  let last = listed.index;
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 30));
    fake.dropConnections(); // cuts the watch's blocking query (and the idle keep-alive sockets)
    // Let the client see its idle sockets close, so the write below is not
    // sent on one: a write whose connection resets is not retried (its outcome is unknown).
    await new Promise((r) => setTimeout(r, 30));
    const put = await store.put(`d/${i}`, String(i));
    keys.push(`d/${i}`);
    while (last < (put.ok ? put.index : 0)) {
      const b = await next();
      if (b === 'timeout' || b === 'done') return t.fail(`watch stalled: ${b}`);
      t.true(b.index > last);
      t.is(b.kind, 'changes');
      if (b.kind === 'changes') for (const e of b.events) t.true(e.type === 'put' && !view.has(e.entry.key), 'each key once');
      apply(view, b);
      last = b.index;
    }
  }
  t.deepEqual([...view.keys()].sort(), keys);
  t.is(store.health().status, 'ok');
});

/**
 * The fake Consul's behaviour beyond the documented sample exchanges
 * (recorded.test.ts): session TTLs and invalidation, transaction atomicity
 * and limits, the index rules of state/kvs.go, and the fault hooks the
 * backend tests rely on.
 */
import test, { type ExecutionContext } from 'ava';
import { startFakeConsul, type FakeConsul, type FakeConsulOptions } from './fake-consul.ts';

async function fakeFor(t: ExecutionContext, options: FakeConsulOptions = {}): Promise<FakeConsul> {
  const fake = await startFakeConsul(options);
  t.teardown(() => fake.close());
  return fake;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

async function call(fake: FakeConsul, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers };
  if (typeof body === 'string') init.body = body;
  else if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`${fake.url}${path}`, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const kv = (key: string, verb: string, extra: Record<string, unknown> = {}): unknown => ({ KV: { Verb: verb, Key: key, ...extra } });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function session(fake: FakeConsul, body: Record<string, unknown>): Promise<string> {
  const res = await call(fake, 'PUT', '/v1/session/create', body);
  return (res.json as { ID: string }).ID;
}

test('sessions: TTL expiry with Behavior delete deletes the held keys at one new index; release only unlocks', async (t) => {
  const fake = await fakeFor(t, { sessionTtlMinSeconds: 1 });
  const created = Date.now();
  const del = await session(fake, { TTL: '2s', Behavior: 'delete' });
  const rel = await session(fake, { TTL: '2s', Behavior: 'release' });
  t.is((await call(fake, 'PUT', `/v1/kv/a?acquire=${del}`, 'x')).json, true);
  t.is((await call(fake, 'PUT', `/v1/kv/b?acquire=${del}`, 'x')).json, true);
  t.is((await call(fake, 'PUT', `/v1/kv/c?acquire=${rel}`, 'x')).json, true);
  const before = fake.raftIndex();
  await sleep(Math.max(0, created + 1000 - Date.now()));
  const alive = (await call(fake, 'GET', '/v1/kv/a')).status;
  if (Date.now() - created < 1900) t.is(alive, 200, 'alive before the TTL');
  await sleep(Math.max(0, created + 2300 - Date.now()));
  t.is((await call(fake, 'GET', '/v1/kv/a')).status, 404);
  t.is((await call(fake, 'GET', '/v1/kv/b')).status, 404);
  const c = (await call(fake, 'GET', '/v1/kv/c')).json as Array<Record<string, unknown>>;
  t.is(c[0]?.Session, undefined, 'released, not deleted');
  t.is(c[0]?.LockIndex, 1);
  const listed = await call(fake, 'GET', '/v1/kv/?recurse');
  const tombstoneIndex = Number(listed.headers.get('x-consul-index'));
  t.true(tombstoneIndex > before);
  t.deepEqual(await call(fake, 'GET', `/v1/session/info/${del}`).then((r) => r.json), []);
});

test('sessions: renew extends the TTL; an unknown session renews with 404; TTL bounds follow session_ttl_min and 24h', async (t) => {
  const fake = await fakeFor(t, { sessionTtlMinSeconds: 1 });
  const id = await session(fake, { TTL: '2s', Behavior: 'delete' });
  await call(fake, 'PUT', `/v1/kv/k?acquire=${id}`, 'v');
  const created = Date.now();
  for (let i = 0; i < 8; i++) {
    await sleep(500);
    t.is((await call(fake, 'PUT', `/v1/session/renew/${id}`)).status, 200);
  }
  t.true(Date.now() - created > 4000);
  t.is((await call(fake, 'GET', '/v1/kv/k')).status, 200, 'alive after twice the TTL of renewals');
  const missing = await call(fake, 'PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000');
  t.is(missing.status, 404);
  t.is(missing.text, "Session id '00000000-0000-0000-0000-000000000000' not found");

  const strict = await fakeFor(t);
  const short = await call(strict, 'PUT', '/v1/session/create', { TTL: '5s' });
  t.is(short.status, 500);
  t.is(short.text, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
  t.is((await call(strict, 'PUT', '/v1/session/create', { TTL: '86401s' })).status, 500);
  t.is((await call(strict, 'PUT', '/v1/session/create', { TTL: '10s' })).status, 200);
  t.is((await call(strict, 'PUT', '/v1/session/create', { Behavior: 'explode' })).text, "Invalid Behavior setting 'explode'");
});

test('txn: all or nothing; every failing operation is reported; limits answer 413', async (t) => {
  const fake = await fakeFor(t);
  await call(fake, 'PUT', '/v1/kv/x', 'x');
  const res = await call(fake, 'PUT', '/v1/txn', [
    kv('a', 'set', { Value: b64('1') }),
    kv('x', 'check-index', { Index: 1 }),
    kv('b', 'set', { Value: b64('2') }),
    kv('x', 'check-not-exists'),
    kv('ghost', 'lock', { Value: '', Session: '00000000-0000-0000-0000-000000000000' }),
  ]);
  t.is(res.status, 409);
  t.deepEqual(
    (res.json as { Errors: Array<{ OpIndex: number }> }).Errors.map((e) => e.OpIndex),
    [1, 3, 4],
  );
  t.is((await call(fake, 'GET', '/v1/kv/a')).status, 404, 'nothing applied');
  const tooMany = await call(fake, 'PUT', '/v1/txn', Array.from({ length: 129 }, (_, i) => kv(`k${i}`, 'get-or-empty')));
  t.is(tooMany.status, 413);
  t.is(tooMany.text, 'Transaction contains too many operations (129 > 128)');
  const big = await call(fake, 'PUT', '/v1/txn', [kv('big', 'set', { Value: b64('x'.repeat(600 * 1024)) })]);
  t.is(big.status, 413, 'the base64 body is over txn_max_req_len (512 KiB)');
  const roomy = await fakeFor(t, { txnMaxReqLen: 2 * 1024 * 1024 });
  const value = await call(roomy, 'PUT', '/v1/txn', [kv('big', 'set', { Value: b64('x'.repeat(513 * 1024)) })]);
  t.is(value.status, 413);
  t.is(value.text, `Value for key "big" is too large (${513 * 1024} > ${512 * 1024} bytes)`);
});

test('kvs.go rules: an unchanged set keeps its ModifyIndex; a plain set keeps the session; delete-cas of a missing key succeeds', async (t) => {
  const fake = await fakeFor(t);
  const first = await call(fake, 'PUT', '/v1/txn', [kv('k', 'set', { Value: b64('v') })]);
  const again = await call(fake, 'PUT', '/v1/txn', [kv('k', 'set', { Value: b64('v') })]);
  const idx = (r: Answer): number => (r.json as { Results: Array<{ KV: { ModifyIndex: number } }> }).Results[0]!.KV.ModifyIndex;
  t.is(idx(again), idx(first), 'same value, flags and session: no write');
  const flagged = await call(fake, 'PUT', '/v1/txn', [kv('k', 'set', { Value: b64('v'), Flags: 9 })]);
  t.true(idx(flagged) > idx(first), 'new Flags: a write');

  const id = await session(fake, { TTL: '60s' });
  await call(fake, 'PUT', `/v1/kv/held?acquire=${id}`, 'a');
  await call(fake, 'PUT', '/v1/kv/held', 'b');
  const held = (await call(fake, 'GET', '/v1/kv/held')).json as Array<Record<string, unknown>>;
  t.is(held[0]?.Session, id, 'set without acquire keeps the lock holder');
  const stolen = await call(fake, 'PUT', '/v1/txn', [kv('held', 'lock', { Value: '', Session: await session(fake, { TTL: '60s' }) })]);
  t.is((stolen.json as { Errors: Array<{ What: string }> }).Errors[0]?.What, 'failed to lock key "held", lock is already held');
  const check = await call(fake, 'PUT', '/v1/txn', [kv('held', 'check-session', { Session: '' })]);
  t.is((check.json as { Errors: Array<{ What: string }> }).Errors[0]?.What, `failed session check for key "held", current session "${id}" != ""`);

  t.is((await call(fake, 'PUT', '/v1/txn', [kv('never', 'delete-cas', { Index: 5 })])).status, 200);
  t.is((await call(fake, 'DELETE', '/v1/kv/never?cas=5')).json, true);
});

test('listing index: the highest ModifyIndex or tombstone under the prefix; delete-tree leaves one tombstone', async (t) => {
  const fake = await fakeFor(t);
  await call(fake, 'PUT', '/v1/kv/p/a', '1');
  await call(fake, 'PUT', '/v1/kv/p/b', '1');
  await call(fake, 'PUT', '/v1/kv/q', '1');
  const index = async (prefix: string): Promise<number> => Number((await call(fake, 'GET', `/v1/kv/${prefix}?recurse`)).headers.get('x-consul-index'));
  const beforeDelete = await index('p/');
  await call(fake, 'DELETE', '/v1/kv/p/b');
  const afterDelete = await index('p/');
  t.true(afterDelete > beforeDelete, 'the tombstone counts');
  t.true((await index('q')) < afterDelete, 'another prefix keeps its own index');
  await call(fake, 'DELETE', '/v1/kv/p/?recurse');
  const afterTree = await index('p/');
  t.true(afterTree > afterDelete);
  t.is((await call(fake, 'GET', '/v1/kv/p/?recurse')).status, 404);
  fake.reapTombstones();
  t.true((await index('p/')) >= afterTree, 'an empty prefix without tombstones reports the table index');
  await call(fake, 'PUT', '/v1/kv/r/a', '1');
  const ra = await index('r/');
  await call(fake, 'PUT', '/v1/kv/r/b', '1');
  await call(fake, 'DELETE', '/v1/kv/r/b');
  t.true((await index('r/')) > ra);
  fake.reapTombstones();
  t.is(await index('r/'), ra, 'after tombstone reaping the index goes back to the highest entry');
});

test('blocking: a query that has nothing new waits out `wait`, one with an old index answers at once', async (t) => {
  const fake = await fakeFor(t);
  await call(fake, 'PUT', '/v1/kv/k', '1');
  const current = Number((await call(fake, 'GET', '/v1/kv/k')).headers.get('x-consul-index'));
  const started = Date.now();
  const stale = await call(fake, 'GET', `/v1/kv/k?index=${current - 1}&wait=5s`);
  t.true(Date.now() - started < 2500, 'answers at once (the wait is 5 s)');
  t.is(stale.status, 200);
  const waited = Date.now();
  const held = await call(fake, 'GET', `/v1/kv/k?index=${current}&wait=300ms`);
  t.true(Date.now() - waited >= 300);
  t.is(Number(held.headers.get('x-consul-index')), current);
  t.is((await call(fake, 'GET', '/v1/kv/k?index=abc')).status, 400);
  t.is((await call(fake, 'GET', '/v1/kv/k?index=1&wait=soon')).text, 'Invalid wait time');
});

test('fault hooks: leaderless, ACL token, snapshot restore, dropped connections', async (t) => {
  const fake = await fakeFor(t, { aclToken: 'tok' });
  const auth = { 'X-Consul-Token': 'tok' };
  t.is((await call(fake, 'GET', '/v1/kv/k')).status, 403);
  t.is((await call(fake, 'GET', '/v1/kv/k', undefined, { Authorization: 'Bearer tok' })).status, 404, 'Bearer works too');
  await call(fake, 'PUT', '/v1/kv/k', 'one', auth);
  const snap = fake.snapshot();
  await call(fake, 'PUT', '/v1/kv/k', 'two', auth);
  const high = fake.raftIndex();
  fake.setLeaderless(true);
  const refused = await call(fake, 'GET', '/v1/kv/k', undefined, auth);
  t.is(refused.status, 500);
  t.is(refused.text, 'No cluster leader');
  fake.setLeaderless(false);
  // A blocking query pending across a restore answers when wait runs out, with the lower index.
  const pending = call(fake, 'GET', `/v1/kv/k?index=${high}&wait=300ms`, undefined, auth);
  await sleep(50);
  fake.restore(snap);
  const after = await pending;
  t.true(Number(after.headers.get('x-consul-index')) < high, 'the index went backwards');
  t.is(Buffer.from(((after.json as Array<{ Value: string }>)[0]?.Value) ?? '', 'base64').toString(), 'one');
  t.true(fake.raftIndex() < high);
  const cut = call(fake, 'GET', `/v1/kv/k?index=${fake.raftIndex()}&wait=10s`, undefined, auth);
  await sleep(50);
  fake.dropConnections();
  await t.throwsAsync(cut, undefined, 'the client sees its connection cut');
  t.is((await call(fake, 'GET', '/v1/kv/k', undefined, auth)).status, 200, 'still listening');
});

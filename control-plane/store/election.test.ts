import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { openEmbeddedStore } from './embedded/embedded-store.ts';
import { campaign, readLeader } from './election.ts';
import type { StateStore } from './port.ts';

const KEY = 'strata/leader/test';

/** The store with its renewSession replaced (to model a partition or a flaky link). */
function withRenew(s: StateStore, renewSession: StateStore['renewSession']): StateStore {
  return {
    backend: s.backend,
    capabilities: s.capabilities,
    get: (k) => s.get(k),
    list: (p) => s.list(p),
    put: (k, v, o) => s.put(k, v, o),
    delete: (k, o) => s.delete(k, o),
    deletePrefix: (p) => s.deletePrefix(p),
    txn: (r) => s.txn(r),
    watch: (p, o) => s.watch(p, o),
    createSession: (o) => s.createSession(o),
    renewSession,
    destroySession: (id) => s.destroySession(id),
    health: () => s.health(),
    close: () => s.close(),
  };
}

async function store(t: { teardown(fn: () => Promise<void>): void }): Promise<StateStore> {
  const s = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => s.close());
  return s;
}

test('one candidate leads; the other takes over with a higher fencing token when it resigns', async (t) => {
  const s = await store(t);
  const a = await campaign(s, { key: KEY, value: 'a', ttlSeconds: 2 });
  let bLeads = false;
  const bPromise = campaign(s, { key: KEY, value: 'b', ttlSeconds: 2 }).then((l) => {
    bLeads = true;
    return l;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.false(bLeads, 'b waits while a leads');
  t.deepEqual(await readLeader(s, KEY), { value: 'a', token: a.token });
  await a.resign();
  t.true(a.signal.aborted);
  const b = await bPromise;
  t.true(b.token > a.token, 'fencing tokens grow');
  t.is((await readLeader(s, KEY))?.value, 'b');
  await b.resign();
});

test('a deposed leader\'s fenced writes fail with STORE_FENCED, even before it notices', async (t) => {
  const s = await store(t);
  const a = await campaign(s, { key: KEY, value: 'a', ttlSeconds: 2 });
  t.true((await a.fencedTxn({ writes: [{ op: 'put', key: 'x', value: '1' }] })).ok);
  // The key is taken from under a (an operator, or its session expiring) and b wins.
  await s.delete(KEY);
  const b = await campaign(s, { key: KEY, value: 'b', ttlSeconds: 2 });
  const err = await t.throwsAsync(a.fencedTxn({ writes: [{ op: 'put', key: 'x', value: 'stale' }] }));
  t.true(isStrataError(err, 'STORE_FENCED'));
  t.is((await s.get('x'))?.value, '1', 'the stale write did not land');
  t.true(a.signal.aborted, 'a knows it lost');
  t.true((await b.fencedTxn({ conditions: [{ key: 'x', modifyIndex: (await s.get('x'))!.modifyIndex }], writes: [{ op: 'put', key: 'x', value: '2' }] })).ok);
  const failed = await b.fencedTxn({ conditions: [{ key: 'x', modifyIndex: 1 }], writes: [{ op: 'put', key: 'x', value: '3' }] });
  t.deepEqual(failed, { ok: false, failed: [0] }, 'failed positions are the caller\'s, not shifted by the fence');
  await b.resign();
});

test('a leader that cannot renew its session loses leadership within its TTL, and a standby takes over', async (t) => {
  const s = await store(t);
  // Session timers are unref'd (they must not keep a process alive); hold the loop open for the test.
  const hold = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(hold));
  let renewAllowed = true;
  const flaky = withRenew(s, async (id) => (renewAllowed ? s.renewSession(id) : Promise.reject(new Error('network down'))));
  const a = await campaign(flaky, { key: KEY, value: 'a', ttlSeconds: 1 });
  const b = campaign(s, { key: KEY, value: 'b', ttlSeconds: 1 });
  renewAllowed = false;
  const started = Date.now();
  const leader = await b;
  t.true(Date.now() - started < 3000, `took over after ${Date.now() - started} ms`);
  await new Promise((r) => setTimeout(r, 200));
  t.true(a.signal.aborted);
  await leader.resign();
});

test('aborting a campaign stops waiting and never leaves a leader key behind', async (t) => {
  const s = await store(t);
  const a = await campaign(s, { key: KEY, value: 'a', ttlSeconds: 2 });
  const abort = new AbortController();
  const waiting = campaign(s, { key: KEY, value: 'b', ttlSeconds: 2, signal: abort.signal });
  abort.abort(new Error('shutting down'));
  await t.throwsAsync(waiting, { message: 'shutting down' });
  await a.resign();
  t.is(await readLeader(s, KEY), undefined);
  const already = new AbortController();
  already.abort(new Error('gone'));
  await t.throwsAsync(campaign(s, { key: KEY, value: 'c', ttlSeconds: 2, signal: already.signal }), { message: 'gone' });
  t.is(await readLeader(s, KEY), undefined);
});

test('a leader whose renewals hang steps down within its TTL, before the store would hand the key to another', async (t) => {
  const s = await store(t);
  const hold = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(hold));
  const hanging = withRenew(s, () => new Promise<boolean>(() => undefined));
  const started = Date.now();
  const a = await campaign(hanging, { key: KEY, value: 'a', ttlSeconds: 1 });
  await new Promise<void>((resolve) => a.signal.addEventListener('abort', () => resolve(), { once: true }));
  const steppedDownMs = Date.now() - started;
  t.true(steppedDownMs <= 1000, `stepped down ${steppedDownMs} ms after winning (TTL 1000 ms)`);
  t.regex(String((a.signal.reason as Error).message), /within its TTL/);
});

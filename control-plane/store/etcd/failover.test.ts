/**
 * The etcd backend while etcd fails: `kill -9` of the raft leader under
 * writes and under an open watch, and the whole cluster down and back.
 * One 3-member cluster (50 ms heartbeat / 500 ms election) for the file; the
 * tests run serially because each one kills members.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { startEtcdCluster, type EtcdCluster } from '../../../test/harness/etcd-cluster.ts';
import { isStrataError } from '../../../common/errors.ts';
import type { StateStore, WatchBatch } from '../port.ts';
import { openEtcdStore, type EtcdStoreOptions } from './etcd-store.ts';

/** Writes must be back within this long after the leader dies (generous: 2 shared cores). */
const RESUME_BOUND_MS = 15_000;

let cluster: EtcdCluster | undefined;
const stores = new Set<StateStore>();

test.before(async () => {
  cluster = await startEtcdCluster({ members: 3, fastElection: true });
});

test.after.always(async () => {
  await Promise.all([...stores].map((s) => s.close().catch(() => undefined)));
  await cluster?.stop();
});

function etcd(): EtcdCluster {
  if (cluster === undefined) throw new Error('etcd cluster not started');
  return cluster;
}

async function openFor(t: ExecutionContext, options: Partial<EtcdStoreOptions> = {}): Promise<StateStore> {
  const store = await openEtcdStore({ endpoints: [...etcd().endpoints], callTimeoutMs: 1500, retryTimeoutMs: 8000, ...options });
  stores.add(store);
  t.teardown(() => store.close());
  return store;
}

/** Endpoints with member `first` first (the store sticks to the first one that works). */
function endpointsStartingAt(first: number): string[] {
  const all = etcd().endpoints;
  return all.map((_, i) => all[(first + i) % all.length] as string);
}

/** Every member running and healthy, with a leader, before a test starts. */
async function healAll(): Promise<void> {
  const c = etcd();
  for (let i = 0; i < c.members.length; i++) if (!c.isRunning(i)) await c.restart(i, { waitHealthy: false });
  for (let i = 0; i < c.members.length; i++) await c.waitHealthy(i);
  await c.waitForLeader();
}

test.afterEach.always(async () => {
  await healAll();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Ack {
  readonly key: string;
  readonly value: string;
  readonly index: number;
  readonly at: number;
}

/**
 * Writers putting unique keys until `stop()`: half plain puts, half
 * create-only check-and-set puts. Records acknowledgements and failures.
 */
function startWriters(store: StateStore, prefix: string, workers: number) {
  const acks: Ack[] = [];
  const failures: { key: string; code: string; message: string }[] = [];
  const wrongAnswers: string[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let n = 0; running; n++) {
      const key = `${prefix}w${w}/${n}`;
      const value = `v${w}.${n}`;
      const cas = n % 2 === 1;
      try {
        const r = await store.put(key, value, cas ? { casIndex: 0 } : {});
        if (r.ok) acks.push({ key, value, index: r.index, at: Date.now() });
        // The key never existed: a lost create-only put would be a wrong answer.
        else wrongAnswers.push(`${key}: ${JSON.stringify(r)}`);
      } catch (err) {
        failures.push({ key, code: isStrataError(err) ? err.code : 'uncoded', message: String(err) });
        await sleep(20);
      }
    }
  });
  return {
    acks,
    failures,
    wrongAnswers,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
}

test.serial('leader kill -9 under concurrent writes: every put is acknowledged or STORE_UNAVAILABLE; acknowledged ones survive; writes resume', async (t) => {
  const c = etcd();
  // STRATA_SLOW=1: several kills in a row, each of the then leader.
  const rounds = process.env.STRATA_SLOW === '1' ? 4 : 1;
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await healAll();
    const leader = await c.waitForLeader();
    // The store prefers the leader, so in-flight requests die with it.
    const store = await openFor(t, { endpoints: endpointsStartingAt(leader) });
    const prefix = `conc${round}/`;
    const writers = startWriters(store, prefix, 8);
    await sleep(800);
    const before = writers.acks.length;
    const killedAt = Date.now();
    await c.kill(leader, 'SIGKILL');
    // Writes resume: some put started after the kill is acknowledged.
    const deadline = killedAt + RESUME_BOUND_MS;
    while (!writers.acks.some((a) => a.at > killedAt + 10) && Date.now() < deadline) await sleep(20);
    const resumed = writers.acks.find((a) => a.at > killedAt + 10);
    await sleep(700);
    await writers.stop();
    const newLeader = await c.waitForLeader();
    t.log(
      `round ${round}: killed leader m${leader}; new leader m${newLeader}; ${before} acks before, ${writers.acks.length} total, ${writers.failures.length} STORE_UNAVAILABLE; first ack after the kill at +${resumed ? resumed.at - killedAt : 'never'} ms`,
    );
    if (writers.failures.length > 0) t.log(`  e.g. ${writers.failures[0]?.message.slice(0, 160)}`);
    t.true(before > 0, 'writes were flowing before the kill');
    t.truthy(resumed, `writes resumed within ${RESUME_BOUND_MS} ms`);
    t.deepEqual(writers.wrongAnswers, [], 'no create-only put on a fresh key was reported as a lost check-and-set');
    t.deepEqual(
      writers.failures.filter((f) => f.code !== 'STORE_UNAVAILABLE'),
      [],
      'every failure is STORE_UNAVAILABLE',
    );
    const listed = await store.list(prefix);
    const byKey = new Map(listed.entries.map((e) => [e.key, e]));
    const lost = writers.acks.filter((a) => byKey.get(a.key)?.value !== a.value || byKey.get(a.key)?.modifyIndex !== a.index);
    t.deepEqual(lost, [], 'every acknowledged put is readable at its index after the failover');
    const indexes = writers.acks.map((a) => a.index);
    t.is(new Set(indexes).size, indexes.length, 'no two acknowledged puts share an index');
  }
});

test.serial('leader kill -9 under an open watch: the watched sequence has no gap and no duplicate', async (t) => {
  const c = etcd();
  const leader = await c.waitForLeader();
  // The watcher's stream sits on the leader; the writer talks to a follower first.
  const watcher = await openFor(t, { endpoints: endpointsStartingAt(leader) });
  const writer = await openFor(t, { endpoints: endpointsStartingAt(leader + 1) });
  const from = (await watcher.list('watched/')).index;
  const watch = watcher.watch('watched/', { fromIndex: from });
  t.teardown(() => watch.close());
  const seen: WatchBatch[] = [];
  const consumer = (async () => {
    for await (const batch of watch) seen.push(batch);
  })();

  const acks: Ack[] = [];
  const failures: string[] = [];
  let running = true;
  const writing = (async () => {
    for (let n = 0; running; n++) {
      const key = `watched/k${n % 7}`;
      try {
        const r = await writer.put(key, `n${n}`);
        if (r.ok) acks.push({ key, value: `n${n}`, index: r.index, at: Date.now() });
      } catch (err) {
        failures.push(isStrataError(err) ? err.code : String(err));
        await sleep(20);
      }
    }
  })();
  await sleep(700);
  const killedAt = Date.now();
  await c.kill(leader, 'SIGKILL');
  while (!acks.some((a) => a.at > killedAt + 10) && Date.now() < killedAt + RESUME_BOUND_MS) await sleep(20);
  await sleep(1000);
  running = false;
  await writing;
  const last = Math.max(...acks.map((a) => a.index));
  const deadline = Date.now() + RESUME_BOUND_MS;
  while ((seen.at(-1)?.index ?? 0) < last && Date.now() < deadline) await sleep(20);
  const firstAfterKill = acks.find((a) => a.at > killedAt + 10);
  t.log(`killed leader m${leader}; ${acks.length} acks, ${failures.length} failures (${[...new Set(failures)].join(', ')}); watch delivered ${seen.length} batches up to ${seen.at(-1)?.index} (last write ${last}); first ack after the kill at +${firstAfterKill ? firstAfterKill.at - killedAt : 'never'} ms`);
  t.truthy(firstAfterKill, `writes resumed within ${RESUME_BOUND_MS} ms`);
  t.true(failures.every((f) => f === 'STORE_UNAVAILABLE'), 'writer failures are STORE_UNAVAILABLE');
  t.true((seen.at(-1)?.index ?? 0) >= last, 'the watch caught up with every write');
  t.true(seen.every((b) => b.kind === 'changes'), 'no resync was needed (history was not compacted)');

  // No duplicates, strictly increasing.
  const indexes = seen.map((b) => b.index);
  t.true(indexes.every((x, i) => i === 0 || x > (indexes[i - 1] as number)), 'batch indexes strictly increase');

  // Every acknowledged write is in the watched sequence, at its index, with its value.
  const events = new Map<number, string>();
  for (const b of seen) if (b.kind === 'changes') for (const e of b.events) if (e.type === 'put') events.set(e.entry.modifyIndex, `${e.entry.key}=${e.entry.value}`);
  t.deepEqual(
    acks.filter((a) => events.get(a.index) !== `${a.key}=${a.value}`),
    [],
    'every acknowledged write was watched',
  );

  // And the live sequence is exactly etcd's history: replay it with a fresh watch.
  const replay = watcher.watch('watched/', { fromIndex: from });
  const replayed: WatchBatch[] = [];
  const until = seen.at(-1)?.index ?? 0;
  for await (const batch of replay) {
    replayed.push(batch);
    if (batch.index >= until) break;
  }
  t.deepEqual(replayed, seen.filter((b) => b.index <= until), 'the watch across the kill equals the replayed history');
  watch.close();
  await consumer;
});

test.serial('every member down: calls fail with STORE_UNAVAILABLE in bounded time, health degrades, nothing crashes; restart brings writes back', async (t) => {
  const c = etcd();
  const store = await openFor(t, { callTimeoutMs: 500, retryTimeoutMs: 2000, healthIntervalMs: 250 });
  const before = await store.put('down/before', '1');
  t.true(before.ok);
  const from = before.ok ? before.index : 0;
  const watch = store.watch('down/', { fromIndex: from });
  t.teardown(() => watch.close());
  const seen: WatchBatch[] = [];
  let ended = false;
  void (async () => {
    for await (const batch of watch) seen.push(batch);
    ended = true;
  })();

  await Promise.all(c.members.map((_, i) => c.kill(i, 'SIGKILL')));

  for (const [name, call] of [
    ['put', () => store.put('down/x', '1')],
    ['get', () => store.get('down/x')],
    ['list', () => store.list('down/')],
    ['txn', () => store.txn({ conditions: [{ key: 'down/x', modifyIndex: 0 }], writes: [{ op: 'put', key: 'down/x', value: '1' }] })],
    ['createSession', () => store.createSession({ ttlSeconds: 10 })],
  ] as const) {
    const started = Date.now();
    const err = await t.throwsAsync(call() as Promise<unknown>);
    const took = Date.now() - started;
    t.true(isStrataError(err, 'STORE_UNAVAILABLE'), `${name}: ${String(err)}`);
    t.true(took < 2000 + 500 + 1500, `${name} gave up after ${took} ms`);
  }
  const deadline = Date.now() + 5000;
  while (store.health().status !== 'degraded' && Date.now() < deadline) await sleep(50);
  const health = store.health();
  t.is(health.status, 'degraded');
  t.is(health.backend, 'etcd');
  t.truthy(health.detail, 'degraded health says why');
  t.log(`degraded detail: ${health.detail?.slice(0, 200)}`);
  t.false(ended, 'the watch does not end while etcd is down');

  // Back up: same ports, same data.
  for (let i = 0; i < c.members.length; i++) await c.restart(i, { waitHealthy: false });
  const restartedAt = Date.now();
  let after: number | undefined;
  while (after === undefined && Date.now() < restartedAt + RESUME_BOUND_MS + 15_000) {
    try {
      const r = await store.put('down/after', '2');
      if (r.ok) after = r.index;
    } catch (err) {
      if (!isStrataError(err, 'STORE_UNAVAILABLE')) throw err;
    }
  }
  t.log(`writes back ${Date.now() - restartedAt} ms after the restart`);
  t.truthy(after, 'writes work again after the restart');
  t.is((await store.get('down/before'))?.value, '1', 'data survived');
  const healthDeadline = Date.now() + 5000;
  while (store.health().status !== 'ok' && Date.now() < healthDeadline) await sleep(50);
  t.deepEqual(store.health(), { status: 'ok', backend: 'etcd' });
  const watchDeadline = Date.now() + RESUME_BOUND_MS;
  while ((seen.at(-1)?.index ?? 0) < (after ?? Infinity) && Date.now() < watchDeadline) await sleep(20);
  t.deepEqual(
    seen.flatMap((b) => (b.kind === 'changes' ? b.events.map((e) => (e.type === 'put' ? `${e.entry.key}=${e.entry.value}@${b.index}` : 'delete')) : ['resync'])),
    [`down/after=2@${after}`],
    'the watch resumed and delivered the write made after the outage, once',
  );
});

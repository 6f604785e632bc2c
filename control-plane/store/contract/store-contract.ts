/**
 * The executable contract of the `StateStore` port (`../port.ts`). Every
 * backend runs it unchanged:
 *
 *   storeContract(test, { name: 'embedded', open: () => openEmbeddedStore(...) });
 *
 * Each test opens its own store, writes only under its own random key prefix
 * and closes the store when it ends, so targets may hand out stores over one
 * shared server. What differs between backends is read from
 * `store.capabilities` (watch history, session TTL range), nothing else.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import fc from 'fast-check';
import { KEY_MAX_BYTES, TXN_MAX_OPS, VALUE_MAX_BYTES } from '../port.ts';
import type { KvEntry, StateStore, TxnCondition, TxnWrite, Watch, WatchBatch, WriteResult } from '../port.ts';

export interface StoreContractTarget {
  /** Prefixes every test title. */
  readonly name: string;
  /** Opens a store; called once per test, possibly concurrently. */
  open(): Promise<StateStore>;
  /**
   * Makes the backend forget its change history up to the current index, so
   * a watch from an older index must resync. Without it the compaction test
   * only checks that a watch from an old index converges.
   */
  compact?(store: StateStore): Promise<void>;
}

const SLOW = process.env.STRATA_SLOW === '1';
/** Upper bound for any single wait on a watch. */
const WATCH_WAIT_MS = 10_000;

// ---------------------------------------------------------------------------
// helpers

interface Opened {
  readonly store: StateStore;
  /** A key prefix no other test uses. */
  readonly prefix: string;
}

async function openFor(t: ExecutionContext, target: StoreContractTarget): Promise<Opened> {
  const store = await target.open();
  t.teardown(() => store.close());
  return { store, prefix: `contract/${randomUUID()}/` };
}

/** Compares keys as UTF-8 bytes: the order every backend lists in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** An entry with only the port's fields (no extra properties, no undefined sessionId). */
function norm(e: KvEntry): KvEntry {
  return e.sessionId === undefined
    ? { key: e.key, value: e.value, createIndex: e.createIndex, modifyIndex: e.modifyIndex }
    : { key: e.key, value: e.value, createIndex: e.createIndex, modifyIndex: e.modifyIndex, sessionId: e.sessionId };
}

function normAll(entries: Iterable<KvEntry>): KvEntry[] {
  return [...entries].map(norm).sort((a, b) => compareKeys(a.key, b.key));
}

function okIndex(t: ExecutionContext, result: WriteResult, what: string): number {
  if (!result.ok) {
    t.fail(`${what}: expected ok, got ${JSON.stringify(result)}`);
    throw new Error(`${what} failed`);
  }
  t.true(Number.isSafeInteger(result.index) && result.index > 0, `${what}: index ${result.index} is a positive integer`);
  return result.index;
}

const TIMEOUT = Symbol('timeout');

async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<typeof TIMEOUT>((resolve) => (timer = setTimeout(() => resolve(TIMEOUT), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads a watch batch by batch with bounded waits. */
class WatchReader {
  readonly watch: Watch;
  readonly #it: AsyncIterator<WatchBatch>;
  #pending: Promise<IteratorResult<WatchBatch>> | undefined;
  readonly batches: WatchBatch[] = [];

  constructor(t: ExecutionContext, watch: Watch) {
    this.watch = watch;
    this.#it = watch[Symbol.asyncIterator]();
    t.teardown(() => watch.close());
  }

  /** The next batch, `undefined` when the watch ended, or TIMEOUT. */
  async next(ms = WATCH_WAIT_MS): Promise<WatchBatch | undefined | typeof TIMEOUT> {
    this.#pending ??= this.#it.next();
    const result = await within(this.#pending, ms);
    if (result === TIMEOUT) return TIMEOUT;
    this.#pending = undefined;
    if (result.done === true) return undefined;
    this.batches.push(result.value);
    return result.value;
  }

  /** Reads until a batch with index >= `index` arrived; fails the test on timeout or end. */
  async until(t: ExecutionContext, index: number): Promise<WatchBatch[]> {
    const start = this.batches.length;
    const deadline = Date.now() + WATCH_WAIT_MS;
    while ((this.batches.at(-1)?.index ?? -1) < index) {
      const batch = await this.next(Math.max(1, deadline - Date.now()));
      if (batch === TIMEOUT) {
        t.fail(`watch delivered nothing reaching index ${index} within ${WATCH_WAIT_MS} ms (last: ${this.batches.at(-1)?.index})`);
        throw new Error('watch timeout');
      }
      if (batch === undefined) {
        t.fail(`watch ended before index ${index}`);
        throw new Error('watch ended');
      }
    }
    return this.batches.slice(start);
  }

  /** Asserts that nothing more arrives for `ms`. */
  async quiet(t: ExecutionContext, ms = 150): Promise<void> {
    const batch = await this.next(ms);
    t.is(batch, TIMEOUT, `no further batch expected, got ${JSON.stringify(batch)}`);
  }
}

/** A consumer's view of a prefix, built only from watch batches. */
function applyBatch(view: Map<string, KvEntry>, batch: WatchBatch): void {
  if (batch.kind === 'resync') {
    view.clear();
    for (const e of batch.entries) view.set(e.key, e);
    return;
  }
  for (const ev of batch.events) {
    if (ev.type === 'put') view.set(ev.entry.key, ev.entry);
    else view.delete(ev.key);
  }
}

type FlatEvent = { type: 'put'; key: string; value: string; index: number } | { type: 'delete'; key: string; index: number };

function flatten(batches: readonly WatchBatch[]): FlatEvent[] {
  const out: FlatEvent[] = [];
  for (const b of batches) {
    if (b.kind !== 'changes') continue;
    for (const ev of b.events) {
      out.push(
        ev.type === 'put'
          ? { type: 'put', key: ev.entry.key, value: ev.entry.value, index: ev.entry.modifyIndex }
          : { type: 'delete', key: ev.key, index: ev.index },
      );
    }
  }
  return out;
}

/** Batch indexes strictly increase, stay above `from`, and a key appears once per batch. */
function assertBatchShape(t: ExecutionContext, batches: readonly WatchBatch[], from: number): void {
  let last = from;
  for (const b of batches) {
    t.true(b.index > last, `batch index ${b.index} must exceed the previous ${last}`);
    last = b.index;
    if (b.kind === 'changes') {
      const keys = b.events.map((e) => (e.type === 'put' ? e.entry.key : e.key));
      t.is(new Set(keys).size, keys.length, `batch ${b.index} names a key twice`);
      for (const e of b.events) {
        const at = e.type === 'put' ? e.entry.modifyIndex : e.index;
        t.true(at <= b.index && at > from, `event index ${at} within (${from}, ${b.index}]`);
      }
    }
  }
}

/** Runs `fn` and returns the `code` it throws or rejects with (sync throws count). */
async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    const value = fn();
    if (value !== null && typeof value === 'object' && Symbol.asyncIterator in value) {
      for await (const _ of value as AsyncIterable<unknown>) break;
    } else {
      await value;
    }
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded error: ${String(err)}`;
  }
}

/** A small deterministic generator, so a failing run can be reproduced from its seed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

// ---------------------------------------------------------------------------
// the contract

export function storeContract(test: TestFn, target: StoreContractTarget): void {
  const title = (what: string): string => `${target.name}: ${what}`;

  // -- basic reads and writes ----------------------------------------------

  test(title('put/get: createIndex and modifyIndex follow the writes'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const k = `${prefix}a`;
    t.is(await store.get(k), undefined, 'absent key reads as undefined');
    const i1 = okIndex(t, await store.put(k, 'one'), 'first put');
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'one', createIndex: i1, modifyIndex: i1 });
    const i2 = okIndex(t, await store.put(k, 'two'), 'second put');
    t.true(i2 > i1);
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'two', createIndex: i1, modifyIndex: i2 });
    const i3 = okIndex(t, await store.put(k, 'two'), 'same value again');
    t.true(i3 > i2, 'rewriting the same value is still a write');
    t.is((await store.get(k))!.modifyIndex, i3);
    const empty = `${prefix}empty`;
    okIndex(t, await store.put(empty, ''), 'empty value');
    t.is((await store.get(empty))!.value, '', 'empty values are values');
    const unicode = `${prefix}ключ/😀`;
    okIndex(t, await store.put(unicode, 'värde ✓ 😀'), 'unicode');
    t.is((await store.get(unicode))!.value, 'värde ✓ 😀');
  });

  test(title('delete: removes the key; deleting an absent key is ok and returns the current index'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const k = `${prefix}a`;
    const i1 = okIndex(t, await store.put(k, 'v'), 'put');
    const i2 = okIndex(t, await store.delete(k), 'delete');
    t.true(i2 > i1);
    t.is(await store.get(k), undefined);
    const again = await store.delete(k);
    t.true(again.ok);
    t.true(again.ok && again.index >= i2, 'a no-op delete still reports an index no older than the last write');
    const i3 = okIndex(t, await store.put(k, 'back'), 'recreate');
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'back', createIndex: i3, modifyIndex: i3 }, 'a recreated key gets a new createIndex');
  });

  test(title('the cluster-wide index only grows across every kind of write'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const seen: number[] = [];
    seen.push(okIndex(t, await store.put(`${prefix}a`, '1'), 'put a'));
    seen.push(okIndex(t, await store.put(`${prefix}b`, '1'), 'put b'));
    seen.push(okIndex(t, await store.put(`${prefix}a`, '2', { casIndex: seen[0]! }), 'cas put a'));
    const tx = await store.txn({ writes: [{ op: 'put', key: `${prefix}c`, value: '1' }, { op: 'delete', key: `${prefix}b` }] });
    t.true(tx.ok);
    if (tx.ok) seen.push(tx.index);
    seen.push(okIndex(t, await store.delete(`${prefix}a`), 'delete a'));
    seen.push(okIndex(t, await store.put(`${prefix}d/x`, '1'), 'put d/x'));
    seen.push((await store.deletePrefix(`${prefix}d/`)).index);
    for (let i = 1; i < seen.length; i++) t.true(seen[i]! > seen[i - 1]!, `write ${i} index ${seen[i]} > ${seen[i - 1]}`);
    const last = seen.at(-1)!;
    const listed = await store.list(prefix);
    t.true(listed.index >= last, 'list index is no older than the last write');
    const noop = await store.delete(`${prefix}never`);
    t.true(noop.ok && noop.index >= last);
    const later = okIndex(t, await store.put(`${prefix}e`, '1'), 'put e');
    t.true(later > last && later > listed.index);
  });

  test(title('list: exactly the prefix, sorted by key as UTF-8 bytes'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const p = `${prefix}list/`;
    const inside = ['b', 'a', 'a/b', 'a/a', 'Z', '\u00e9', '\u65e5\u672c', '\ud83d\ude00', '\ue000', 'a b', 'a-b'].map((s) => `${p}${s}`);
    const outside = [`${prefix}list`, `${prefix}lis`, `${prefix}list-other`, `${prefix}lisu/a`, `${prefix}other`];
    for (const k of [...inside, ...outside].sort(() => Math.random() - 0.5)) okIndex(t, await store.put(k, `v:${k}`), `put ${k}`);
    const listed = await store.list(p);
    t.deepEqual(
      listed.entries.map((e) => e.key),
      [...inside].sort(compareKeys),
      'keys under the prefix only, in UTF-8 byte order (U+E000 sorts before U+1F600)',
    );
    for (const e of listed.entries) {
      t.is(e.value, `v:${e.key}`);
      t.true(e.modifyIndex <= listed.index && e.createIndex <= e.modifyIndex);
    }
    t.deepEqual((await store.list(`${p}a/`)).entries.map((e) => e.key), [`${p}a/a`, `${p}a/b`]);
    t.deepEqual((await store.list(`${prefix}nothing/`)).entries, [], 'an empty prefix lists nothing');
    t.is((await store.list(prefix)).entries.length, inside.length + outside.length);
  });

  test(title('list index is a watch fromIndex: the watch yields exactly the changes after the listed state'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    okIndex(t, await store.put(`${prefix}a`, '1'), 'put a');
    okIndex(t, await store.put(`${prefix}b`, '1'), 'put b');
    const listed = await store.list(prefix);
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: listed.index }));
    const ic = okIndex(t, await store.put(`${prefix}c`, '1'), 'put c');
    const ia = okIndex(t, await store.delete(`${prefix}a`), 'delete a');
    const batches = await reader.until(t, ia);
    assertBatchShape(t, batches, listed.index);
    const view = new Map(listed.entries.map((e) => [e.key, e]));
    for (const b of batches) applyBatch(view, b);
    t.deepEqual(normAll(view.values()), normAll((await store.list(prefix)).entries), 'list + watch = current state');
    if (store.capabilities.watchHistory === 'every-index') {
      t.deepEqual(flatten(batches), [
        { type: 'put', key: `${prefix}c`, value: '1', index: ic },
        { type: 'delete', key: `${prefix}a`, index: ia },
      ]);
      t.deepEqual(batches.map((b) => b.index), [ic, ia]);
    }
    await reader.quiet(t);
  });

  // -- check-and-set -----------------------------------------------------------

  test(title('CAS put: 0 creates only, a stale index writes nothing and reports {ok:false, reason:"cas"}'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const k = `${prefix}cas`;
    const i1 = okIndex(t, await store.put(k, 'first', { casIndex: 0 }), 'create with cas 0');
    t.deepEqual(await store.put(k, 'second', { casIndex: 0 }), { ok: false, reason: 'cas' }, 'cas 0 on an existing key fails');
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'first', createIndex: i1, modifyIndex: i1 }, 'nothing written');
    const i2 = okIndex(t, await store.put(k, 'second', { casIndex: i1 }), 'cas with the current modifyIndex');
    t.deepEqual(await store.put(k, 'stale', { casIndex: i1 }), { ok: false, reason: 'cas' }, 'cas with an old index fails');
    t.deepEqual(await store.put(k, 'future', { casIndex: i2 + 1_000_000 }), { ok: false, reason: 'cas' });
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'second', createIndex: i1, modifyIndex: i2 });
    const absent = `${prefix}absent`;
    t.deepEqual(await store.put(absent, 'x', { casIndex: i2 }), { ok: false, reason: 'cas' }, 'non-zero cas on an absent key fails');
    t.is(await store.get(absent), undefined, 'and does not create it');
    // Only one of many concurrent creators wins.
    const racers = await Promise.all(Array.from({ length: 8 }, (_, i) => store.put(`${prefix}race`, `r${i}`, { casIndex: 0 })));
    t.is(racers.filter((r) => r.ok).length, 1, 'exactly one concurrent cas-0 put wins');
    const winner = racers.findIndex((r) => r.ok);
    t.is((await store.get(`${prefix}race`))!.value, `r${winner}`);
  });

  test(title('CAS delete: deletes only at the current modifyIndex'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const k = `${prefix}cas`;
    const i1 = okIndex(t, await store.put(k, 'v'), 'put');
    const i2 = okIndex(t, await store.put(k, 'w'), 'update');
    t.deepEqual(await store.delete(k, { casIndex: i1 }), { ok: false, reason: 'cas' }, 'stale index');
    t.deepEqual(norm((await store.get(k))!), { key: k, value: 'w', createIndex: i1, modifyIndex: i2 }, 'still there, unchanged');
    const i3 = okIndex(t, await store.delete(k, { casIndex: i2 }), 'cas delete at the current index');
    t.true(i3 > i2);
    t.is(await store.get(k), undefined);
    t.deepEqual(await store.delete(`${prefix}absent`, { casIndex: i2 }), { ok: false, reason: 'cas' }, 'non-zero cas on an absent key');
  });

  // -- deletePrefix ------------------------------------------------------------

  test(title('deletePrefix: every key under the prefix goes in one write, nothing else'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const gone = [`${prefix}dp/a`, `${prefix}dp/b`, `${prefix}dp/c/d`];
    const kept = [`${prefix}dp`, `${prefix}dpx`, `${prefix}other`];
    let last = 0;
    for (const k of [...gone, ...kept]) last = okIndex(t, await store.put(k, '1'), `put ${k}`);
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: last }));
    const { index } = await store.deletePrefix(`${prefix}dp/`);
    t.true(index > last, 'deletePrefix is a write with a new index');
    t.deepEqual((await store.list(prefix)).entries.map((e) => e.key), [...kept].sort(compareKeys));
    const batches = await reader.until(t, index);
    if (store.capabilities.watchHistory === 'every-index') {
      t.is(batches.length, 1, 'one batch: one write');
      const b = batches[0]!;
      t.is(b.index, index);
      t.true(b.kind === 'changes');
      if (b.kind === 'changes') {
        t.deepEqual(b.events.map((e) => (e.type === 'delete' ? `${e.key}@${e.index}` : 'put')).sort(), gone.map((k) => `${k}@${index}`).sort());
      }
    }
    const again = await store.deletePrefix(`${prefix}dp/`);
    t.true(again.index >= index, 'deleting an empty prefix still reports an index');
    t.is((await store.list(prefix)).entries.length, kept.length);
  });

  // -- transactions ------------------------------------------------------------

  test(title('txn: all writes apply at one index when every condition holds'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const [a, b, c] = ['a', 'b', 'c'].map((s) => `${prefix}${s}`) as [string, string, string];
    const ia = okIndex(t, await store.put(a, '1'), 'put a');
    const ib = okIndex(t, await store.put(b, '1'), 'put b');
    const result = await store.txn({
      conditions: [
        { key: a, modifyIndex: ia },
        { key: c, modifyIndex: 0 },
      ],
      writes: [
        { op: 'put', key: a, value: '2' },
        { op: 'put', key: c, value: '1' },
        { op: 'delete', key: b },
      ],
    });
    t.true(result.ok, JSON.stringify(result));
    if (!result.ok) return;
    t.true(result.index > ib);
    t.deepEqual(norm((await store.get(a))!), { key: a, value: '2', createIndex: ia, modifyIndex: result.index });
    t.deepEqual(norm((await store.get(c))!), { key: c, value: '1', createIndex: result.index, modifyIndex: result.index });
    t.is(await store.get(b), undefined);
    const onlyConditions = await store.txn({ conditions: [{ key: a, modifyIndex: result.index }], writes: [] });
    t.true(onlyConditions.ok, 'a transaction of conditions alone succeeds when they hold');
    t.deepEqual(await store.txn({ conditions: [{ key: a, modifyIndex: ia }], writes: [] }), { ok: false, failed: [0] });
  });

  test(title('txn: a failed condition applies nothing and reports every failed position'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const [a, c, d] = ['a', 'c', 'd'].map((s) => `${prefix}${s}`) as [string, string, string];
    const ia1 = okIndex(t, await store.put(a, '1'), 'put a');
    const ia2 = okIndex(t, await store.put(a, '2'), 'update a');
    const ic = okIndex(t, await store.put(c, '1'), 'put c');
    const before = normAll((await store.list(prefix)).entries);
    const result = await store.txn({
      conditions: [
        { key: a, modifyIndex: ia1 }, // stale
        { key: c, modifyIndex: ic }, // holds
        { key: d, modifyIndex: ic }, // d is absent
        { key: d, modifyIndex: 0 }, // holds
      ],
      writes: [
        { op: 'put', key: a, value: 'x' },
        { op: 'put', key: d, value: 'y' },
        { op: 'delete', key: c },
      ],
    });
    t.false(result.ok);
    if (!result.ok) t.deepEqual([...result.failed].sort((x, y) => x - y), [0, 2]);
    t.deepEqual(normAll((await store.list(prefix)).entries), before, 'nothing was applied');
    t.is((await store.get(a))!.modifyIndex, ia2);
    t.is(await store.get(d), undefined);
  });

  // -- limits -------------------------------------------------------------------

  test(title('limits: bad keys, values and transactions are refused with their codes; data stays intact'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const k = `${prefix}keep`;
    const ik = okIndex(t, await store.put(k, 'original'), 'put');
    const intact = async (what: string): Promise<void> => {
      t.deepEqual(norm((await store.get(k))!), { key: k, value: 'original', createIndex: ik, modifyIndex: ik }, `${what}: data intact`);
    };
    const longKey = `${prefix}${'x'.repeat(600)}`;
    const badKeys: Array<[string, string]> = [
      ['600-byte key', longKey],
      ['lone surrogate', `${prefix}bad\ud800key`],
      ['NUL', `${prefix}a\u0000b`],
      ['leading slash', `/${prefix}a`],
      ['empty', ''],
    ];
    for (const [what, key] of badKeys) {
      t.is(await codeOf(() => store.put(key, 'v')), 'STORE_KEY_INVALID', `put: ${what}`);
      t.is(await codeOf(() => store.get(key)), 'STORE_KEY_INVALID', `get: ${what}`);
      t.is(await codeOf(() => store.delete(key)), 'STORE_KEY_INVALID', `delete: ${what}`);
      t.is(await codeOf(() => store.txn({ writes: [{ op: 'put', key: k, value: 'changed' }, { op: 'put', key, value: 'v' }] })), 'STORE_KEY_INVALID', `txn: ${what}`);
      await intact(what);
    }
    t.is(await codeOf(() => store.list(`/${prefix}`)), 'STORE_KEY_INVALID', 'list: leading slash prefix');
    t.is(await codeOf(() => store.deletePrefix(`${prefix}\ud800`)), 'STORE_KEY_INVALID', 'deletePrefix: lone surrogate');
    t.is(await codeOf(() => store.watch(`${prefix}\u0000`, { fromIndex: 0 })), 'STORE_KEY_INVALID', 'watch: NUL in prefix');
    // The limit counts UTF-8 bytes: 512 bytes of two-byte characters is fine.
    const room = KEY_MAX_BYTES - Buffer.byteLength(prefix);
    const exact = prefix + 'a'.repeat(room % 2) + '\u00e9'.repeat(room >> 1);
    t.is(Buffer.byteLength(exact), KEY_MAX_BYTES);
    okIndex(t, await store.put(exact, 'fits'), 'a key of exactly 512 bytes');
    t.is((await store.get(exact))!.value, 'fits');
    t.is(await codeOf(() => store.put(`${exact}\u00e9`, 'v')), 'STORE_KEY_INVALID', 'one more two-byte character is over');

    t.is(await codeOf(() => store.put(k, 'x'.repeat(VALUE_MAX_BYTES + 1))), 'STORE_VALUE_TOO_LARGE', 'value over 512 KiB');
    await intact('oversized value');
    t.is(await codeOf(() => store.put(k, '\u00e9'.repeat(VALUE_MAX_BYTES / 2 + 1))), 'STORE_VALUE_TOO_LARGE', 'the value limit counts bytes');
    t.is(await codeOf(() => store.put(k, 'bad\udc00')), 'STORE_VALUE_INVALID', 'lone surrogate value');
    t.is(await codeOf(() => store.txn({ writes: [{ op: 'put', key: `${prefix}t1`, value: 'ok' }, { op: 'put', key: k, value: 'y'.repeat(VALUE_MAX_BYTES + 1) }] })), 'STORE_VALUE_TOO_LARGE', 'txn value over 512 KiB');
    await intact('oversized value in txn');
    t.is(await store.get(`${prefix}t1`), undefined, 'no part of a refused transaction is written');
    const big = `${prefix}big`;
    okIndex(t, await store.put(big, 'z'.repeat(VALUE_MAX_BYTES)), 'a value of exactly 512 KiB');
    t.is((await store.get(big))!.value.length, VALUE_MAX_BYTES);

    const tooMany: TxnWrite[] = Array.from({ length: TXN_MAX_OPS + 1 }, (_, i) => ({ op: 'put', key: `${prefix}many/${i}`, value: 'v' }));
    t.is(await codeOf(() => store.txn({ writes: tooMany })), 'STORE_TXN_TOO_LARGE', `${TXN_MAX_OPS + 1} operations`);
    t.deepEqual((await store.list(`${prefix}many/`)).entries, [], 'nothing of the oversized transaction was written');
    const fits = await store.txn({ writes: tooMany.slice(0, TXN_MAX_OPS) });
    t.true(fits.ok, `${TXN_MAX_OPS} operations fit`);
    t.is((await store.list(`${prefix}many/`)).entries.length, TXN_MAX_OPS);
    t.is(await codeOf(() => store.txn({ writes: [{ op: 'put', key: k, value: '1' }, { op: 'delete', key: k }] })), 'STORE_TXN_INVALID', 'same key twice');
    t.is(await codeOf(() => store.txn({ writes: [] })), 'STORE_TXN_INVALID', 'empty transaction');
    await intact('refused transactions');
  });

  // -- watches -------------------------------------------------------------------

  test(title('watch: from an index it delivers exactly the later changes, in order, without duplicates'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((s) => `${prefix}${s}`) as [string, string, string, string, string];
    const from = okIndex(t, await store.put(a, '1'), 'put a');
    const ib = okIndex(t, await store.put(b, '1'), 'put b');
    const ia = okIndex(t, await store.put(a, '2'), 'update a');
    const idb = okIndex(t, await store.delete(b), 'delete b');
    const tx = await store.txn({ writes: [{ op: 'put', key: c, value: '1' }, { op: 'put', key: d, value: '1' }] });
    t.true(tx.ok, 'txn');
    const itx = tx.ok ? tx.index : 0;
    okIndex(t, await store.put(`${prefix.slice(0, -1)}-outside`, 'not watched'), 'outside the prefix');
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: from }));
    const first = await reader.until(t, itx);
    // Live changes after the watch started.
    const ie = okIndex(t, await store.put(e, '1'), 'put e');
    const { index: idp } = await store.deletePrefix(c);
    const batches = [...first, ...(await reader.until(t, idp))];
    assertBatchShape(t, batches, from);
    // The state at `from`: only a existed.
    const view = new Map<string, KvEntry>([[a, { key: a, value: '1', createIndex: from, modifyIndex: from }]]);
    for (const bt of batches) applyBatch(view, bt);
    t.deepEqual(normAll(view.values()), normAll((await store.list(prefix)).entries));
    if (store.capabilities.watchHistory === 'every-index') {
      t.deepEqual(batches.map((bt) => bt.index), [ib, ia, idb, itx, ie, idp], 'one batch per index at which the prefix changed');
      t.deepEqual(flatten(batches), [
        { type: 'put', key: b, value: '1', index: ib },
        { type: 'put', key: a, value: '2', index: ia },
        { type: 'delete', key: b, index: idb },
        ...[c, d].map((k) => ({ type: 'put' as const, key: k, value: '1', index: itx })),
        { type: 'put', key: e, value: '1', index: ie },
        { type: 'delete', key: c, index: idp },
      ]);
      const txBatch = batches[3]!;
      t.true(txBatch.kind === 'changes' && txBatch.events.length === 2, 'both writes of the transaction arrive in one batch');
    }
    await reader.quiet(t);
  });

  test(title('watch: a consumer applying every batch holds the exact store state (every intermediate index for every-index)'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const every = store.capabilities.watchHistory === 'every-index';
    const start = await store.list(prefix);
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: start.index }));
    const view = new Map<string, KvEntry>();
    const viewAt = new Map<number, KvEntry[]>();
    let consumed = start.index;
    let stop = false;
    const consumer = (async () => {
      while (!stop) {
        const batch = await reader.next(200);
        if (batch === TIMEOUT) continue;
        if (batch === undefined) return;
        applyBatch(view, batch);
        viewAt.set(batch.index, normAll(view.values()));
        consumed = batch.index;
      }
    })();

    // Phase 1: sequential writes with the expected state after each index.
    const rand = prng(0x5eed + Math.floor(Math.random() * 1e9));
    const keys = Array.from({ length: 6 }, (_, i) => `${prefix}k${i}`);
    const model = new Map<string, KvEntry>();
    const stateAt = new Map<number, KvEntry[]>();
    const steps = SLOW ? 400 : 40;
    for (let step = 0; step < steps; step++) {
      const key = keys[rand(keys.length)]!;
      const choice = rand(10);
      if (choice < 5) {
        const current = model.get(key);
        const opts = choice === 4 ? { casIndex: current?.modifyIndex ?? 0 } : {};
        const index = okIndex(t, await store.put(key, `s${step}`, opts), `step ${step} put`);
        model.set(key, { key, value: `s${step}`, createIndex: current?.createIndex ?? index, modifyIndex: index });
        stateAt.set(index, normAll(model.values()));
      } else if (choice < 8) {
        const existed = model.has(key);
        const result = await store.delete(key);
        t.true(result.ok);
        if (existed && result.ok) {
          model.delete(key);
          stateAt.set(result.index, normAll(model.values()));
        }
      } else {
        const other = keys[(keys.indexOf(key) + 1 + rand(keys.length - 1)) % keys.length]!;
        const result = await store.txn({ writes: [{ op: 'put', key, value: `t${step}` }, { op: 'delete', key: other }] });
        t.true(result.ok);
        if (result.ok) {
          const current = model.get(key);
          model.set(key, { key, value: `t${step}`, createIndex: current?.createIndex ?? result.index, modifyIndex: result.index });
          model.delete(other);
          stateAt.set(result.index, normAll(model.values()));
        }
      }
    }
    // Phase 2: a burst of concurrent writes; only the final state is known.
    const burst = await Promise.all(
      Array.from({ length: 48 }, (_, i) => (i % 5 === 4 ? store.delete(keys[i % keys.length]!) : store.put(keys[i % keys.length]!, `b${i}`))),
    );
    const finalIndex = Math.max(...burst.map((r) => (r.ok ? r.index : 0)), ...stateAt.keys());
    const deadline = Date.now() + WATCH_WAIT_MS;
    while (consumed < finalIndex && Date.now() < deadline) await sleep(10);
    stop = true;
    await consumer;
    const listed = await store.list(prefix);
    t.true(consumed >= finalIndex, `consumer reached index ${finalIndex} (at ${consumed})`);
    t.deepEqual(normAll(view.values()), normAll(listed.entries), 'the consumer holds the exact final state');
    if (every) {
      for (const [index, state] of stateAt) {
        t.deepEqual(viewAt.get(index), state, `state after the batch at index ${index}`);
      }
    }
  });

  const compactTitle = target.compact
    ? 'watch: from an index older than the compacted history yields a resync with the full current entries'
    : 'watch: from an old index converges on the current state (resync not forced: target has no compact())';
  test(title(compactTitle), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const old = okIndex(t, await store.put(`${prefix}a`, '1'), 'put a');
    okIndex(t, await store.put(`${prefix}b`, '1'), 'put b');
    okIndex(t, await store.put(`${prefix}a`, '2'), 'update a');
    okIndex(t, await store.delete(`${prefix}b`), 'delete b');
    okIndex(t, await store.put(`${prefix}c`, '1'), 'put c');
    if (target.compact) await target.compact(store);
    const listed = await store.list(prefix);
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: old }));
    const view = new Map<string, KvEntry>([[`${prefix}a`, { key: `${prefix}a`, value: '1', createIndex: old, modifyIndex: old }]]);
    const batches = await reader.until(t, listed.index);
    if (target.compact) {
      const first = batches[0]!;
      t.is(first.kind, 'resync', 'the first batch is a resync');
      if (first.kind === 'resync') {
        t.true(first.index >= listed.index);
        t.deepEqual(normAll(first.entries), normAll(listed.entries), 'the resync holds every current entry of the prefix');
      }
    }
    for (const b of batches) applyBatch(view, b);
    const after = okIndex(t, await store.put(`${prefix}d`, '1'), 'put d');
    for (const b of await reader.until(t, after)) applyBatch(view, b);
    assertBatchShape(t, reader.batches, old);
    t.deepEqual(normAll(view.values()), normAll((await store.list(prefix)).entries), 'the consumer converges after the resync');
  });

  test(title('watch: close() and abort end the iterator'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const from = (await store.list(prefix)).index;
    // close() while a next() is pending
    const w1 = store.watch(prefix, { fromIndex: from });
    const it1 = w1[Symbol.asyncIterator]();
    const pending = it1.next();
    w1.close();
    const ended = await within(pending, 2000);
    t.not(ended, TIMEOUT, 'a pending next() settles when the watch closes');
    t.true(ended !== TIMEOUT && ended.done === true);
    t.true((await it1.next()).done, 'and stays ended');
    w1.close(); // idempotent

    // abort ends a for-await loop
    const controller = new AbortController();
    const seen: WatchBatch[] = [];
    const loop = (async () => {
      for await (const b of store.watch(prefix, { fromIndex: from, signal: controller.signal })) seen.push(b);
    })();
    const i1 = okIndex(t, await store.put(`${prefix}a`, '1'), 'put');
    const deadline = Date.now() + WATCH_WAIT_MS;
    while (!seen.some((b) => b.index >= i1) && Date.now() < deadline) await sleep(5);
    t.true(seen.some((b) => b.index >= i1), 'the watch delivered before the abort');
    controller.abort();
    t.not(await within(loop, 2000), TIMEOUT, 'the for-await loop ends after abort');
    const count = seen.length;
    okIndex(t, await store.put(`${prefix}a`, '2'), 'put after abort');
    await sleep(50);
    t.is(seen.length, count, 'nothing is delivered after the abort');

    // already-aborted signal: ends at once
    const aborted = AbortSignal.abort();
    const r = await within(store.watch(prefix, { fromIndex: from, signal: aborted })[Symbol.asyncIterator]().next(), 2000);
    t.true(r !== TIMEOUT && r.done === true, 'a watch with an aborted signal is already ended');

    // break out of for-await closes the watch
    const w3 = store.watch(prefix, { fromIndex: from });
    for await (const b of w3) {
      t.true(b.index > from);
      break;
    }
    const afterBreak = await within(w3[Symbol.asyncIterator]().next(), 2000);
    t.true(afterBreak !== TIMEOUT && afterBreak.done === true, 'breaking out of for-await ends the watch');
  });

  // -- sessions ----------------------------------------------------------------

  /** `ttl` moved into the store's accepted TTL range. */
  const clampTtl = (ttl: number, s: StateStore): number =>
    Math.min(Math.max(ttl, s.capabilities.minSessionTtlSeconds), s.capabilities.maxSessionTtlSeconds);

  test(title('sessions: bound keys vanish when the session is destroyed; unknown or ended sessions are refused'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const session = await store.createSession({ ttlSeconds: clampTtl(60, store), name: 'contract' });
    t.is(typeof session, 'string');
    const bound = `${prefix}bound`;
    const bound2 = `${prefix}sub/bound`;
    const free = `${prefix}free`;
    okIndex(t, await store.put(bound, 'held', { sessionId: session }), 'put bound');
    const tx = await store.txn({ writes: [{ op: 'put', key: bound2, value: 'held', sessionId: session }] });
    t.true(tx.ok, 'txn put bound to the session');
    const ifree = okIndex(t, await store.put(free, 'free'), 'put free');
    t.is((await store.get(bound))!.sessionId, session, 'the entry names its session');
    t.is((await store.get(free))!.sessionId, undefined);
    t.true(await store.renewSession(session), 'a live session renews');
    const reader = new WatchReader(t, store.watch(prefix, { fromIndex: ifree }));
    await store.destroySession(session);
    t.is(await store.get(bound), undefined, 'bound key deleted with its session');
    t.is(await store.get(bound2), undefined, 'key bound in a txn deleted too');
    t.deepEqual(norm((await store.get(free))!), { key: free, value: 'free', createIndex: ifree, modifyIndex: ifree }, 'unbound key untouched');
    const deletes = flatten(await reader.until(t, (await store.list(prefix)).index));
    t.deepEqual(deletes.map((e) => `${e.type} ${e.key}`).sort(), [`delete ${bound}`, `delete ${bound2}`], 'watchers see the deletions');
    t.false(await store.renewSession(session), 'renewing an ended session returns false');
    await t.notThrowsAsync(async () => store.destroySession(session), 'destroying an ended session is a no-op');
    t.is(await codeOf(() => store.put(bound, 'again', { sessionId: session })), 'STORE_SESSION_INVALID', 'put with an ended session');
    t.is(await store.get(bound), undefined);
    t.is(await codeOf(() => store.put(`${prefix}x`, 'v', { sessionId: randomUUID() })), 'STORE_SESSION_INVALID', 'put with an unknown session');
    t.is(await store.get(`${prefix}x`), undefined, 'nothing written for an unknown session');
    const txBad = await codeOf(() =>
      store.txn({ writes: [{ op: 'put', key: free, value: 'changed' }, { op: 'put', key: `${prefix}y`, value: 'v', sessionId: session }] }),
    );
    t.is(txBad, 'STORE_SESSION_INVALID', 'txn put with an ended session');
    t.is((await store.get(free))!.value, 'free', 'the rest of that transaction was not applied');
    t.false(await store.renewSession(randomUUID()), 'renewing an unknown session returns false');
  });

  test(title('sessions: keys vanish when the TTL expires without renew'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const ttl = store.capabilities.minSessionTtlSeconds;
    const started = Date.now();
    const session = await store.createSession({ ttlSeconds: ttl });
    const bound = `${prefix}lease`;
    okIndex(t, await store.put(bound, 'v', { sessionId: session }), 'put bound');
    okIndex(t, await store.put(`${prefix}free`, 'v'), 'put free');
    t.truthy(await store.get(bound), 'present while the session lives');
    // Consul may take up to twice the TTL to invalidate; allow that plus slack.
    const deadline = started + ttl * 2000 + 3000;
    while ((await store.get(bound)) !== undefined && Date.now() < deadline) await sleep(50);
    const elapsed = Date.now() - started;
    t.is(await store.get(bound), undefined, `bound key gone within ${deadline - started} ms`);
    t.true(elapsed >= ttl * 1000 - 100, `not before the TTL (${elapsed} ms >= ${ttl * 1000} ms)`);
    t.truthy(await store.get(`${prefix}free`), 'unbound key stays');
    t.false(await store.renewSession(session), 'an expired session cannot be renewed');
    t.is(await codeOf(() => store.put(bound, 'v', { sessionId: session })), 'STORE_SESSION_INVALID');
  });

  test(title('sessions: renew keeps a session alive past its TTL'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    // At least 3 s: a loaded test box can stall the event loop past a 1 s TTL between two renewals.
    const ttl = Math.min(Math.max(store.capabilities.minSessionTtlSeconds, 3), store.capabilities.maxSessionTtlSeconds);
    const session = await store.createSession({ ttlSeconds: ttl });
    const bound = `${prefix}kept`;
    okIndex(t, await store.put(bound, 'v', { sessionId: session }), 'put bound');
    const until = Date.now() + ttl * 2000 + 500;
    let renewals = 0;
    while (Date.now() < until) {
      await sleep(ttl * 250);
      t.true(await store.renewSession(session), `renewal ${++renewals} succeeds`);
    }
    t.truthy(await store.get(bound), 'still present after more than twice the TTL');
    await store.destroySession(session);
    t.is(await store.get(bound), undefined);
  });

  test(title('sessions: a TTL outside the capabilities is refused with STORE_SESSION_TTL_INVALID'), async (t) => {
    const { store } = await openFor(t, target);
    const { minSessionTtlSeconds: min, maxSessionTtlSeconds: max } = store.capabilities;
    t.true(min > 0 && max >= min, 'capabilities declare a TTL range');
    for (const ttl of [0, -1, min / 2, max + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      t.is(await codeOf(() => store.createSession({ ttlSeconds: ttl })), 'STORE_SESSION_TTL_INVALID', `ttl ${ttl}`);
    }
    const atMax = await store.createSession({ ttlSeconds: max });
    t.true(await store.renewSession(atMax), 'the largest TTL is accepted');
    await store.destroySession(atMax);
  });

  // -- lifecycle -----------------------------------------------------------------

  test(title('close: every later call throws STORE_CLOSED; close is idempotent'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    t.is(typeof store.backend, 'string');
    const health = store.health();
    t.is(health.backend, store.backend);
    t.true(health.status === 'ok' || health.status === 'degraded');
    const session = await store.createSession({ ttlSeconds: clampTtl(60, store) });
    okIndex(t, await store.put(`${prefix}a`, '1'), 'put');
    const watch = store.watch(prefix, { fromIndex: (await store.list(prefix)).index });
    const pending = watch[Symbol.asyncIterator]().next();
    await store.close();
    const ended = await within(pending, 5000);
    t.true(ended !== TIMEOUT && ended.done === true, 'open watches end when the store closes');
    const calls: Array<[string, () => unknown]> = [
      ['get', () => store.get(`${prefix}a`)],
      ['list', () => store.list(prefix)],
      ['put', () => store.put(`${prefix}a`, '2')],
      ['delete', () => store.delete(`${prefix}a`)],
      ['deletePrefix', () => store.deletePrefix(prefix)],
      ['txn', () => store.txn({ writes: [{ op: 'put', key: `${prefix}b`, value: '1' }] })],
      ['watch', () => store.watch(prefix, { fromIndex: 0 })],
      ['createSession', () => store.createSession({ ttlSeconds: clampTtl(60, store) })],
      ['renewSession', () => store.renewSession(session)],
      ['destroySession', () => store.destroySession(session)],
      ['health', () => store.health()],
    ];
    for (const [name, call] of calls) t.is(await codeOf(call), 'STORE_CLOSED', `${name} after close`);
    await t.notThrowsAsync(() => store.close(), 'closing again is fine');
  });

  // -- model-based property test -------------------------------------------------

  test(title('random put/delete/CAS/txn sequences match a simple model'), async (t) => {
    const { store, prefix } = await openFor(t, target);
    const names = ['a', 'b', 'c', 'd/e', 'd/f'];
    // Which casIndex / condition index to use: 0, the key's current index,
    // one that can never match, or one from the run's history.
    const pickArb = fc.oneof(fc.constant('zero' as const), fc.constant('current' as const), fc.constant('never' as const), fc.nat(50));
    const keyArb = fc.constantFrom(...names);
    const valueArb = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'ünïcödé', '😀'));
    const opArb = fc.oneof(
      { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('casPut' as const), key: keyArb, value: valueArb, pick: pickArb }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('casDelete' as const), key: keyArb, pick: pickArb }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('deletePrefix' as const), sub: fc.constantFrom('d/', 'a', '') }) },
      {
        weight: 2,
        arbitrary: fc.record({
          op: fc.constant('txn' as const),
          conditions: fc.array(fc.record({ key: keyArb, pick: pickArb }), { maxLength: 3 }),
          writes: fc.uniqueArray(fc.record({ key: keyArb, del: fc.boolean(), value: valueArb }), {
            minLength: 1,
            maxLength: 4,
            selector: (w) => w.key,
          }),
        }),
      },
    );
    type Pick = 'zero' | 'current' | 'never' | number;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: SLOW ? 60 : 25 }), async (ops) => {
        const p = `${prefix}run${run++}/`;
        const model = new Map<string, KvEntry>();
        const history: number[] = [];
        let last = 0;
        const resolve = (key: string, pick: Pick): number => {
          if (pick === 'zero') return 0;
          if (pick === 'current') return model.get(key)?.modifyIndex ?? 0;
          if (pick === 'never') return 2 ** 50;
          return history.length === 0 ? 0 : history[pick % history.length]!;
        };
        const holds = (key: string, index: number): boolean => (model.get(key)?.modifyIndex ?? 0) === index;
        const wrote = (index: number): void => {
          if (!(index > last)) throw new Error(`index ${index} did not grow past ${last}`);
          last = index;
          history.push(index);
        };
        const putModel = (key: string, value: string, index: number): void => {
          model.set(key, { key, value, createIndex: model.get(key)?.createIndex ?? index, modifyIndex: index });
        };
        for (const op of ops) {
          if (op.op === 'put' || op.op === 'casPut') {
            const key = p + op.key;
            const cas = op.op === 'casPut' ? resolve(key, op.pick) : undefined;
            const expectOk = cas === undefined || holds(key, cas);
            const r = await store.put(key, op.value, cas === undefined ? {} : { casIndex: cas });
            if (r.ok !== expectOk) throw new Error(`${JSON.stringify(op)} (cas ${cas}): expected ok=${expectOk}, got ${JSON.stringify(r)}`);
            if (r.ok) {
              wrote(r.index);
              putModel(key, op.value, r.index);
            } else if (r.reason !== 'cas') throw new Error(`failed put must say reason "cas": ${JSON.stringify(r)}`);
          } else if (op.op === 'delete' || op.op === 'casDelete') {
            const key = p + op.key;
            const cas = op.op === 'casDelete' ? resolve(key, op.pick) : undefined;
            const existed = model.has(key);
            const expectOk = cas === undefined || holds(key, cas);
            const r = await store.delete(key, cas === undefined ? {} : { casIndex: cas });
            if (r.ok !== expectOk) throw new Error(`${JSON.stringify(op)} (cas ${cas}): expected ok=${expectOk}, got ${JSON.stringify(r)}`);
            if (r.ok && existed) {
              wrote(r.index);
              model.delete(key);
            } else if (r.ok && r.index < last) throw new Error(`no-op delete returned index ${r.index} older than ${last}`);
          } else if (op.op === 'deletePrefix') {
            const sub = p + op.sub;
            const doomed = [...model.keys()].filter((k) => k.startsWith(sub));
            const r = await store.deletePrefix(sub);
            if (doomed.length > 0) {
              wrote(r.index);
              for (const k of doomed) model.delete(k);
            } else if (r.index < last) throw new Error(`empty deletePrefix returned index ${r.index} older than ${last}`);
          } else {
            const conditions: TxnCondition[] = op.conditions.map((c) => ({ key: p + c.key, modifyIndex: resolve(p + c.key, c.pick) }));
            const writes: TxnWrite[] = op.writes.map((w) => (w.del ? { op: 'delete', key: p + w.key } : { op: 'put', key: p + w.key, value: w.value }));
            const failed = conditions.flatMap((c, i) => (holds(c.key, c.modifyIndex) ? [] : [i]));
            const changes = writes.some((w) => w.op === 'put' || model.has(w.key));
            const r = await store.txn({ conditions, writes });
            if (failed.length > 0) {
              if (r.ok || [...r.failed].sort((x, y) => x - y).join() !== failed.join()) {
                throw new Error(`txn ${JSON.stringify({ conditions, writes })}: expected failed ${JSON.stringify(failed)}, got ${JSON.stringify(r)}`);
              }
            } else {
              if (!r.ok) throw new Error(`txn ${JSON.stringify({ conditions, writes })} should succeed, got ${JSON.stringify(r)}`);
              if (changes) {
                wrote(r.index);
                for (const w of writes) {
                  if (w.op === 'put') putModel(w.key, w.value, r.index);
                  else model.delete(w.key);
                }
              }
            }
          }
        }
        const listed = await store.list(p);
        const expected = normAll(model.values());
        const actual = normAll(listed.entries);
        if (JSON.stringify(actual) !== JSON.stringify(expected)) {
          throw new Error(`final state differs:\n store ${JSON.stringify(actual)}\n model ${JSON.stringify(expected)}`);
        }
        if (listed.entries.map((e) => e.key).join('\n') !== expected.map((e) => e.key).join('\n')) throw new Error('list is not sorted by key');
        if (listed.index < last) throw new Error(`list index ${listed.index} is older than the last write ${last}`);
        for (const name of names) {
          const got = await store.get(p + name);
          const want = model.get(p + name);
          if (JSON.stringify(got === undefined ? undefined : norm(got)) !== JSON.stringify(want)) {
            throw new Error(`get ${name}: store ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
          }
        }
      }),
      { numRuns: SLOW ? 300 : 20 },
    );
    t.true(run >= (SLOW ? 300 : 20), `${run} runs matched the model`);
  });
}

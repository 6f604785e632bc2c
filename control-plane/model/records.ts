/**
 * Typed records over the {@link StateStore}: the only way components read
 * and write cluster state. Writes are validated (schema + cross-field rules,
 * `validate.ts`) and refused with `RECORD_INVALID` listing every wrong field;
 * reads are decoded and validated again, so a consumer only ever sees
 * records that match the model.
 *
 * Undecodable records (not JSON, failing the schema, a key that names no
 * valid id, or a record whose id differs from its key) can still appear:
 * written by hand, by another version, or by a bug. They are reported, never
 * thrown into a consumer's loop:
 * - `get` of exactly that record throws `RECORD_UNDECODABLE` (the caller
 *   asked for it and there is no valid answer);
 * - `list` and `watch` deliver them in the batch's `invalid` list (each a
 *   `RECORD_UNDECODABLE` error with the issues as details) and leave them
 *   out of the records;
 * - a {@link RecordView} treats such a key as holding no record (an older
 *   valid value is removed, so the view never serves data the store no
 *   longer holds), keeps it in `view.invalid` until it is fixed or deleted,
 *   and calls `onInvalid`.
 *
 * Records come back deep-frozen, with the store's `createIndex` and
 * `modifyIndex` beside them ({@link Versioned}); pass `modifyIndex` as
 * `casIndex` to update only what was read.
 */
import { StrataError } from '../../common/errors.ts';
import type { KvEntry, StateStore, Watch, WatchBatch } from '../store/port.ts';
import { idFromKey, keyOf, prefix, recordId } from './keys.ts';
import type { RecordKind, RecordTypes } from './schemas.ts';
import { assertRecord, formatIssues, validateRecord, type Issue } from './validate.ts';

/** A record as read from the store. */
export interface Versioned<T> {
  readonly id: string;
  readonly key: string;
  /** Deep-frozen: share it, never change it. */
  readonly value: T;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A store entry under a kind's prefix that is not a valid record of that kind. */
export interface InvalidRecord {
  readonly key: string;
  /** The id the key names, when it names a valid one. */
  readonly id: string | undefined;
  readonly modifyIndex: number;
  /** `RECORD_UNDECODABLE`; `details` holds the issues. */
  readonly error: StrataError;
}

export type RecordEvent<T> =
  | { readonly type: 'put'; readonly record: Versioned<T> }
  | { readonly type: 'delete'; readonly id: string; readonly key: string; readonly index: number };

/**
 * A watch batch, decoded. Same ordering and resync rules as the store's
 * {@link WatchBatch}. `invalid` lists entries written in this batch that
 * are not valid records (a put event is not delivered for them);
 * `invalidDeleted` lists deleted keys that named no valid id.
 */
export type RecordBatch<T> =
  | {
      readonly kind: 'changes';
      readonly index: number;
      readonly events: readonly RecordEvent<T>[];
      readonly invalid: readonly InvalidRecord[];
      readonly invalidDeleted: readonly string[];
    }
  | { readonly kind: 'resync'; readonly index: number; readonly records: readonly Versioned<T>[]; readonly invalid: readonly InvalidRecord[] };

export interface RecordWatch<T> extends AsyncIterable<RecordBatch<T>> {
  close(): void;
}

export interface RecordList<T> {
  readonly records: readonly Versioned<T>[];
  readonly invalid: readonly InvalidRecord[];
  /** Watch from this index to see exactly the changes after this listing. */
  readonly index: number;
}

export interface RecordPutOptions {
  /** Write only if the record's `modifyIndex` is this (0 = only if it does not exist). */
  readonly casIndex?: number;
  /** Bind the key to a session (e.g. the leader record). */
  readonly sessionId?: string;
}

export type RecordWriteResult =
  | { readonly ok: true; readonly index: number; readonly id: string; readonly key: string }
  | { readonly ok: false; readonly reason: 'cas' };

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function undecodable(kind: RecordKind, key: string, issues: readonly Issue[]): StrataError {
  return new StrataError('RECORD_UNDECODABLE', `stored ${kind} record at ${key} is unusable: ${formatIssues(issues)}`, { details: issues });
}

type Decoded<T> = { readonly ok: true; readonly record: Versioned<T> } | { readonly ok: false; readonly invalid: InvalidRecord };

/** Decode one entry of `kind`'s prefix. Never throws. */
export function decodeEntry<K extends RecordKind>(kind: K, entry: KvEntry): Decoded<RecordTypes[K]> {
  const id = idFromKey(kind, entry.key);
  const fail = (issues: Issue[]): Decoded<RecordTypes[K]> => ({
    ok: false,
    invalid: { key: entry.key, id, modifyIndex: entry.modifyIndex, error: undecodable(kind, entry.key, issues) },
  });
  if (id === undefined) return fail([{ path: '', message: `key does not name a valid ${kind} id` }]);
  let value: unknown;
  try {
    value = JSON.parse(entry.value);
  } catch (err) {
    return fail([{ path: '', message: `is not JSON (${(err as Error).message})` }]);
  }
  const issues = validateRecord(kind, value);
  if (issues.length > 0) return fail(issues);
  const own = recordId(kind, value as RecordTypes[K]);
  if (own !== id) return fail([{ path: '', message: `names id ${JSON.stringify(own)} but is stored under ${JSON.stringify(id)}` }]);
  return {
    ok: true,
    record: { id, key: entry.key, value: deepFreeze(value as RecordTypes[K]), createIndex: entry.createIndex, modifyIndex: entry.modifyIndex },
  };
}

class DecodedWatch<K extends RecordKind> implements RecordWatch<RecordTypes[K]> {
  readonly #kind: K;
  readonly #inner: Watch;

  constructor(kind: K, inner: Watch) {
    this.#kind = kind;
    this.#inner = inner;
  }

  close(): void {
    this.#inner.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RecordBatch<RecordTypes[K]>> {
    try {
      for await (const batch of this.#inner) yield this.#decode(batch);
    } finally {
      this.#inner.close();
    }
  }

  #decode(batch: WatchBatch): RecordBatch<RecordTypes[K]> {
    const kind = this.#kind;
    const invalid: InvalidRecord[] = [];
    if (batch.kind === 'resync') {
      const records: Versioned<RecordTypes[K]>[] = [];
      for (const entry of batch.entries) {
        const d = decodeEntry(kind, entry);
        if (d.ok) records.push(d.record);
        else invalid.push(d.invalid);
      }
      return { kind: 'resync', index: batch.index, records, invalid };
    }
    const events: RecordEvent<RecordTypes[K]>[] = [];
    const invalidDeleted: string[] = [];
    for (const event of batch.events) {
      if (event.type === 'put') {
        const d = decodeEntry(kind, event.entry);
        if (d.ok) events.push({ type: 'put', record: d.record });
        else invalid.push(d.invalid);
      } else {
        const id = idFromKey(kind, event.key);
        if (id === undefined) invalidDeleted.push(event.key);
        else events.push({ type: 'delete', id, key: event.key, index: event.index });
      }
    }
    return { kind: 'changes', index: batch.index, events, invalid, invalidDeleted };
  }
}

/**
 * The typed repository. One per store; it holds nothing but the store and a
 * cache of decoded records (below).
 *
 * `list` reads the store every time (so it is as fresh as the store), but
 * decoding is the expensive part of a listing (JSON parsing, validation
 * against the model, freezing: most of `GET /v2/apps` with 10,000 tasks),
 * so the records decoded by the previous listing of a kind are kept by key
 * and reused when the listed entry has the same create and modify index
 * (every write changes the modify index, so the value is the same). Records
 * are frozen, so sharing them is safe.
 */
export class Records {
  readonly store: StateStore;
  readonly #decoded = new Map<RecordKind, Map<string, Versioned<unknown>>>();

  constructor(store: StateStore) {
    this.store = store;
  }

  /** The record, or `undefined` if absent. `RECORD_ID_INVALID` for a malformed id, `RECORD_UNDECODABLE` if the stored value is unusable. */
  async get<K extends RecordKind>(kind: K, id: string): Promise<Versioned<RecordTypes[K]> | undefined> {
    const entry = await this.store.get(keyOf(kind, id));
    if (!entry) return undefined;
    const d = decodeEntry(kind, entry);
    if (!d.ok) throw d.invalid.error;
    return d.record;
  }

  /** Every record of `kind`, sorted by key, with the unusable entries set apart. */
  async list<K extends RecordKind>(kind: K): Promise<RecordList<RecordTypes[K]>> {
    const { entries, index } = await this.store.list(prefix(kind));
    const records: Versioned<RecordTypes[K]>[] = [];
    const invalid: InvalidRecord[] = [];
    const before = this.#decoded.get(kind) as Map<string, Versioned<RecordTypes[K]>> | undefined;
    const now = new Map<string, Versioned<RecordTypes[K]>>();
    for (const entry of entries) {
      const known = before?.get(entry.key);
      if (known && known.modifyIndex === entry.modifyIndex && known.createIndex === entry.createIndex) {
        records.push(known);
        now.set(entry.key, known);
        continue;
      }
      const d = decodeEntry(kind, entry);
      if (d.ok) {
        records.push(d.record);
        now.set(entry.key, d.record);
      } else invalid.push(d.invalid);
    }
    this.#decoded.set(kind, now as Map<string, Versioned<unknown>>);
    return { records, invalid, index };
  }

  /**
   * Validate and write. `RECORD_INVALID` (details: every `{path, message}`)
   * if the record breaks the model; nothing is written then. A lost
   * check-and-set is `{ok: false}`, as in the store.
   */
  async put<K extends RecordKind>(kind: K, record: RecordTypes[K], options: RecordPutOptions = {}): Promise<RecordWriteResult> {
    assertRecord(kind, record);
    const id = recordId(kind, record);
    const key = keyOf(kind, id);
    const result = await this.store.put(key, JSON.stringify(record), options);
    return result.ok ? { ok: true, index: result.index, id, key } : result;
  }

  /** Delete; `{ok: false}` if `casIndex` is given and no longer matches. Deleting an absent record is `{ok: true}`. */
  async delete(kind: RecordKind, id: string, options: { readonly casIndex?: number } = {}): Promise<RecordWriteResult> {
    const key = keyOf(kind, id);
    const result = await this.store.delete(key, options);
    return result.ok ? { ok: true, index: result.index, id, key } : result;
  }

  /** Decoded batches of every change to `kind` after `fromIndex` (use a `list`'s index). */
  watch<K extends RecordKind>(kind: K, options: { readonly fromIndex: number; readonly signal?: AbortSignal }): RecordWatch<RecordTypes[K]> {
    return new DecodedWatch(kind, this.store.watch(prefix(kind), options));
  }
}

// ---------------------------------------------------------------------------
// Views

/** What one applied batch changed. */
export interface ViewUpdate<T> {
  readonly index: number;
  /** The whole view was replaced (a resync batch). */
  readonly resync: boolean;
  /** Records added or changed (after a resync: every record). */
  readonly upserted: readonly Versioned<T>[];
  /** Ids no longer in the view (deleted, or now unusable). */
  readonly removed: readonly string[];
  /** Entries found unusable in this batch. */
  readonly invalid: readonly InvalidRecord[];
}

export interface ViewOptions {
  /** Aborting it closes the view. */
  readonly signal?: AbortSignal;
  /** Called for every unusable entry the view meets (also those of the initial listing). */
  readonly onInvalid?: (invalid: InvalidRecord) => void;
  /** A listener or `onInvalid` threw. Default: rethrown outside the view's loop (an uncaught exception). */
  readonly onError?: (err: unknown) => void;
}

/**
 * An in-memory copy of every record of one kind, kept current by a watch.
 * After each applied batch, `records` is exactly the store's valid records
 * of the kind at `index`. The maps are owned by the view: read them, never
 * change them.
 */
export interface RecordView<T> {
  readonly kind: RecordKind;
  /** Index of the last applied batch (or of the initial listing). */
  readonly index: number;
  readonly records: ReadonlyMap<string, Versioned<T>>;
  /** Unusable entries currently in the store, by key. */
  readonly invalid: ReadonlyMap<string, InvalidRecord>;
  get(id: string): T | undefined;
  /** `listener` runs after each applied batch, in order. Returns the unsubscribe function. */
  subscribe(listener: (update: ViewUpdate<T>) => void): () => void;
  /** Resolves once `index` >= the given index (an index written under this kind's prefix). */
  waitFor(index: number): Promise<void>;
  /** Stop watching. Idempotent. */
  close(): void;
  /** Settles when the view stops: resolves after `close()`/abort, rejects if the watch failed. */
  readonly ended: Promise<void>;
}

class View<K extends RecordKind> implements RecordView<RecordTypes[K]> {
  readonly kind: K;
  index: number;
  readonly records = new Map<string, Versioned<RecordTypes[K]>>();
  readonly invalid = new Map<string, InvalidRecord>();
  readonly ended: Promise<void>;
  readonly #listeners = new Set<(update: ViewUpdate<RecordTypes[K]>) => void>();
  readonly #waiters: { index: number; resolve: () => void; reject: (err: unknown) => void }[] = [];
  readonly #options: ViewOptions;
  readonly #watch: RecordWatch<RecordTypes[K]>;
  #closed = false;
  #failure: unknown;

  constructor(records: Records, kind: K, initial: RecordList<RecordTypes[K]>, options: ViewOptions) {
    this.kind = kind;
    this.index = initial.index;
    this.#options = options;
    for (const r of initial.records) this.records.set(r.id, r);
    for (const i of initial.invalid) {
      this.invalid.set(i.key, i);
      this.#report(() => options.onInvalid?.(i));
    }
    this.#watch = records.watch(kind, { fromIndex: initial.index, ...(options.signal ? { signal: options.signal } : {}) });
    options.signal?.addEventListener('abort', () => this.close(), { once: true });
    this.ended = this.#run();
    // `ended` is for those who want it; an unobserved failure must not crash the process.
    this.ended.catch(() => undefined);
  }

  get(id: string): RecordTypes[K] | undefined {
    return this.records.get(id)?.value;
  }

  subscribe(listener: (update: ViewUpdate<RecordTypes[K]>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  waitFor(index: number): Promise<void> {
    if (this.index >= index) return Promise.resolve();
    if (this.#closed) return Promise.reject(this.#failure ?? new StrataError('STORE_CLOSED', `the ${this.kind} view is closed`));
    return new Promise((resolve, reject) => this.#waiters.push({ index, resolve, reject }));
  }

  close(): void {
    if (this.#closed) return;
    this.#watch.close();
  }

  async #run(): Promise<void> {
    try {
      for await (const batch of this.#watch) this.#apply(batch);
    } catch (err) {
      this.#failure = err;
      throw err;
    } finally {
      this.#closed = true;
      const failure = this.#failure ?? new StrataError('STORE_CLOSED', `the ${this.kind} view was closed before index was reached`);
      for (const w of this.#waiters.splice(0)) w.reject(failure);
    }
  }

  #apply(batch: RecordBatch<RecordTypes[K]>): void {
    const upserted: Versioned<RecordTypes[K]>[] = [];
    const removed: string[] = [];
    if (batch.kind === 'resync') {
      const before = new Set(this.records.keys());
      this.records.clear();
      this.invalid.clear();
      for (const r of batch.records) {
        this.records.set(r.id, r);
        before.delete(r.id);
        upserted.push(r);
      }
      removed.push(...before);
    } else {
      for (const event of batch.events) {
        if (event.type === 'put') {
          this.records.set(event.record.id, event.record);
          this.invalid.delete(event.record.key);
          upserted.push(event.record);
        } else {
          this.invalid.delete(event.key);
          if (this.records.delete(event.id)) removed.push(event.id);
        }
      }
      for (const key of batch.invalidDeleted) this.invalid.delete(key);
    }
    for (const i of batch.invalid) {
      this.invalid.set(i.key, i);
      if (i.id !== undefined && this.records.delete(i.id)) removed.push(i.id);
    }
    this.index = batch.index;
    const update: ViewUpdate<RecordTypes[K]> = { index: batch.index, resync: batch.kind === 'resync', upserted, removed, invalid: batch.invalid };
    for (const i of batch.invalid) this.#report(() => this.#options.onInvalid?.(i));
    for (const listener of this.#listeners) this.#report(() => listener(update));
    const ready = this.#waiters.filter((w) => w.index <= this.index);
    for (const w of ready) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  #report(call: () => void): void {
    try {
      call();
    } catch (err) {
      if (this.#options.onError) this.#options.onError(err);
      else
        queueMicrotask(() => {
          throw err;
        });
    }
  }
}

/**
 * Open a view of every record of `kind`: lists them, then applies the watch
 * from the listing's index in the background. Resolves once the listing is
 * in the view.
 */
export async function openView<K extends RecordKind>(records: Records, kind: K, options: ViewOptions = {}): Promise<RecordView<RecordTypes[K]>> {
  const initial = await records.list(kind);
  return new View(records, kind, initial, options);
}

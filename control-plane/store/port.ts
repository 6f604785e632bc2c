/**
 * The state-store port: Consul's KV semantics, implemented by every backend
 * (embedded SQLite, etcd v3, Consul). Components depend on this interface
 * only; adapters in `embedded/`, `etcd/` and `consul/` are the only modules that
 * import a storage library. `contract/store-contract.ts` is the executable
 * form of this file: every backend runs it unchanged.
 *
 * Indexes
 * - Every write gets an index from one cluster-wide counter that only grows
 *   (Consul's Raft index, etcd's revision, the embedded store's sequence).
 * - Every entry carries `createIndex` (the write that created it) and
 *   `modifyIndex` (the write that last changed it). All writes of one
 *   transaction share one index.
 * - Indexes are positive integers; `0` as a check-and-set index means
 *   "the key must not exist".
 *
 * Keys and values
 * - Keys are non-empty, well-formed UTF-8 of at most {@link KEY_MAX_BYTES}
 *   bytes, without NUL, and never start with `/` (Consul's rule). Prefixes
 *   follow the same rules but may be empty (the whole store).
 * - Values are strings (records are JSON) of at most
 *   {@link VALUE_MAX_BYTES} bytes of UTF-8.
 * - Bad keys or values are refused with `STORE_KEY_INVALID`,
 *   `STORE_VALUE_INVALID` or `STORE_VALUE_TOO_LARGE` before anything is
 *   written.
 *
 * Failures
 * - A failed check-and-set is a value (`{ok: false}`), not an exception.
 * - Unreachable backends throw `STORE_UNAVAILABLE` (after the backend's own
 *   bounded retries); a closed store throws `STORE_CLOSED`.
 */

/** Longest key in bytes of UTF-8. */
export const KEY_MAX_BYTES = 512;
/** Largest value in bytes of UTF-8 (Consul's default `kv_max_value_size`). */
export const VALUE_MAX_BYTES = 512 * 1024;
/** Most operations (conditions plus writes) in one transaction (Consul's limit). */
export const TXN_MAX_OPS = 64;

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly createIndex: number;
  readonly modifyIndex: number;
  /** The session the key is bound to; the key is deleted when it ends. */
  readonly sessionId?: string;
}

export interface PutOptions {
  /**
   * Check-and-set: write only if the key's current `modifyIndex` equals this
   * (0 = only if the key does not exist).
   */
  readonly casIndex?: number;
  /** Bind the key to a live session; it is deleted when the session ends. */
  readonly sessionId?: string;
}

export interface DeleteOptions {
  /** Delete only if the key's current `modifyIndex` equals this. */
  readonly casIndex?: number;
}

/**
 * Outcome of a write. `index` is the index of the write. A lost
 * check-and-set is `{ok: false}` and writes nothing. Deleting a key that does
 * not exist (without `casIndex`) is `{ok: true}` and still returns the
 * current index, as Consul does.
 */
export type WriteResult =
  | { readonly ok: true; readonly index: number }
  | { readonly ok: false; readonly reason: 'cas' };

export interface ListResult {
  readonly entries: readonly KvEntry[];
  /**
   * A consistency point for this prefix: watching the same prefix from this
   * index yields exactly the changes made after the listed state.
   */
  readonly index: number;
}

/** A transaction guard: the key's `modifyIndex` must equal `modifyIndex` (0 = absent). */
export interface TxnCondition {
  readonly key: string;
  readonly modifyIndex: number;
}

export type TxnWrite =
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly sessionId?: string }
  | { readonly op: 'delete'; readonly key: string };

export interface TxnRequest {
  readonly conditions?: readonly TxnCondition[];
  readonly writes: readonly TxnWrite[];
}

/**
 * All or nothing: either every condition held and every write was applied
 * at one index, or nothing was written and `failed` lists the positions of
 * the conditions that did not hold (at least one).
 */
export type TxnResult =
  | { readonly ok: true; readonly index: number }
  | { readonly ok: false; readonly failed: readonly number[] };

export type WatchEvent =
  | { readonly type: 'put'; readonly entry: KvEntry }
  | { readonly type: 'delete'; readonly key: string; readonly index: number };

/**
 * What a watch delivers, in increasing `index` order.
 * - `changes`: the events that brought the prefix from the previous batch's
 *   index (or the watch's `fromIndex`) to `index`. A key appears at most once
 *   per batch, with its state at `index`.
 * - `resync`: the watch could not prove it saw every change since the last
 *   index (the history was compacted, or the backend keeps none): the
 *   consumer must replace its whole view of the prefix with `entries`.
 *   Never a silent gap.
 */
export type WatchBatch =
  | { readonly kind: 'changes'; readonly index: number; readonly events: readonly WatchEvent[] }
  | { readonly kind: 'resync'; readonly index: number; readonly entries: readonly KvEntry[] };

export interface WatchOptions {
  /** Deliver changes with index greater than this. */
  readonly fromIndex: number;
  /** Ends the watch; the iterator then finishes. */
  readonly signal?: AbortSignal;
}

/**
 * A watch on a prefix. Iterate it with `for await`; it survives backend
 * reconnects internally (resuming from the last delivered index, so nothing
 * is delivered twice or skipped) and ends only when closed or aborted.
 * A consumer that applies every batch in order holds, after each batch, the
 * store's exact state of the prefix at that batch's index.
 */
export interface Watch extends AsyncIterable<WatchBatch> {
  close(): void;
}

export interface SessionOptions {
  readonly ttlSeconds: number;
  /** Shown in listings and logs. */
  readonly name?: string;
}

export interface StoreHealth {
  readonly status: 'ok' | 'degraded';
  readonly backend: string;
  /** Why it is degraded, when it is. */
  readonly detail?: string;
}

export interface StoreCapabilities {
  /**
   * `every-index`: a watch delivers every index at which the prefix changed
   * (embedded, etcd). `coalesced`: a batch may fold several indexes into one,
   * delivering each key's latest state (Consul's blocking queries).
   */
  readonly watchHistory: 'every-index' | 'coalesced';
  /** Shortest and longest session TTL the backend accepts. */
  readonly minSessionTtlSeconds: number;
  readonly maxSessionTtlSeconds: number;
}

export interface StateStore {
  /** Registered backend name: `embedded`, `etcd` or `consul`. */
  readonly backend: string;
  readonly capabilities: StoreCapabilities;

  get(key: string): Promise<KvEntry | undefined>;
  /** Every key that starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ListResult>;
  put(key: string, value: string, options?: PutOptions): Promise<WriteResult>;
  delete(key: string, options?: DeleteOptions): Promise<WriteResult>;
  /** Delete every key under a prefix in one write; returns its index. */
  deletePrefix(prefix: string): Promise<{ readonly index: number }>;
  txn(request: TxnRequest): Promise<TxnResult>;
  watch(prefix: string, options: WatchOptions): Watch;

  /** Create a session (lease) that lives `ttlSeconds` unless renewed. */
  createSession(options: SessionOptions): Promise<string>;
  /** Extend a session by its TTL; `false` if it already ended. */
  renewSession(sessionId: string): Promise<boolean>;
  /** End a session now; its keys are deleted. Ending an ended session is a no-op. */
  destroySession(sessionId: string): Promise<void>;

  health(): StoreHealth;
  /** Release resources; later calls throw `STORE_CLOSED`. Idempotent. */
  close(): Promise<void>;
}

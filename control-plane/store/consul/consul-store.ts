/**
 * The Consul backend of the {@link StateStore} port, on Consul's HTTP API
 * through the npm `consul` client (silas/node-consul). Every shape below is
 * from Consul's API documentation (hashicorp/consul
 * `website/content/api-docs/`): kv.mdx, txn.mdx, session.mdx,
 * features/blocking.mdx. README.md in this folder explains the decisions.
 *
 * Reads
 * - `get`: GET /v1/kv/<key> (kv.mdx "Read Key"); 404 = absent.
 * - `list`: GET /v1/kv/<prefix>?recurse; the listing's `X-Consul-Index` is
 *   its consistency point (the highest ModifyIndex or tombstone under the
 *   prefix, kv.mdx "Read Key" › `ModifyIndex`).
 *
 * Writes all go through PUT /v1/txn (txn.mdx "Create Transaction"), never
 * through PUT/DELETE /v1/kv: those answer only `true`/`false`
 * (kv.mdx "Create/Update Key", "Delete Key"), while the port needs the index
 * of every write, and a transaction's KV results carry the `ModifyIndex` the
 * write got. Mapping:
 * - condition `modifyIndex` 0 → `check-not-exists`, n → `check-index`;
 * - put → `set` then `check-session` with no session (a post-condition:
 *   Consul's `set` keeps a key's session, so the check fails on a bound key
 *   and its error names the holder); put with a session → `lock`. A key bound
 *   to another session is then sent again with `unlock` by that session in
 *   the same transaction, so a put leaves the key bound to exactly the
 *   session it names (or none), as the other backends do (see #write);
 * - delete → `delete`; a delete reports no result, so a transaction without
 *   any put writes the first deleted key (`set`) just before deleting it,
 *   and that `set` result carries the transaction's index; a prefix delete
 *   is `set` of the prefix key then `delete-tree`;
 * - a transaction of conditions only is a read transaction (no Raft write);
 *   its index is the store's current index (a `?keys` listing's
 *   X-Consul-Index);
 * - every `set`/`lock` carries a fresh random `Flags` value: Consul skips a
 *   write that changes nothing (state/kvs.go kvsSetTxn) and would report the
 *   old ModifyIndex, while the port gives every write its own index.
 * A 409 lists failed operations by `OpIndex` (txn.mdx "Sample Response").
 *
 * Sessions: PUT /v1/session/create with `TTL`, `Behavior: "delete"`,
 * `LockDelay: "0s"` and no health checks (so only the TTL ends them);
 * /v1/session/renew/<id>, /v1/session/destroy/<id> (session.mdx).
 *
 * Watches are blocking queries (features/blocking.mdx) on
 * GET /v1/kv/<prefix>?recurse&index=&wait=; successive listings are diffed
 * into change batches (so history is `coalesced`).
 *
 * The `consul` client can express every call used here (including `lock` in
 * /v1/txn); its typings omit the common options it honours (`ctx`,
 * `timeout`, `index`, `wait`), so the few calls are typed locally.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import Consul from 'consul';
import { StrataError, isStrataError, type ErrorCode } from '../../../common/errors.ts';
import { checkIndex, checkKey, checkPrefix, checkSessionTtl, checkTxn, checkValue } from '../limits.ts';
import type {
  DeleteOptions,
  KvEntry,
  ListResult,
  PutOptions,
  SessionOptions,
  StateStore,
  StoreCapabilities,
  StoreHealth,
  TxnCondition,
  TxnRequest,
  TxnResult,
  TxnWrite,
  Watch,
  WatchBatch,
  WatchEvent,
  WatchOptions,
  WriteResult,
} from '../port.ts';

export interface ConsulStoreOptions {
  /** Consul agent HTTP address: `host:port` or an `http(s)://host:port` URL. */
  readonly address: string;
  /** ACL token, sent as `X-Consul-Token`. */
  readonly token?: string;
  /** Namespace of this store inside Consul's KV (default `strata/`). May be empty. */
  readonly prefix?: string;
  /** Datacenter (`?dc=`); default: the agent's. */
  readonly datacenter?: string;
  /** Deadline of one request, in ms (default 10000). */
  readonly requestTimeoutMs?: number;
  /** Attempts after the first for a retryable failure (default 3). */
  readonly retries?: number;
  /** First retry delay, doubled per attempt, in ms (default 100). */
  readonly retryBaseMs?: number;
  /** `wait` of a watch's blocking query, in ms (default 60000; Consul caps it at 10 min). */
  readonly blockingWaitMs?: number;
  /**
   * Watch rate limit (features/blocking.mdx "Rate limit"): a token bucket of
   * `burst` queries refilled at `perSecond` (default 5 and 10).
   */
  readonly watchRateLimit?: { readonly burst: number; readonly perSecond: number };
  /** Delay between a watch's failed query and its next, first and most, in ms (default 100 and 5000). */
  readonly watchBackoffMs?: { readonly initial: number; readonly max: number };
  /** How often an idle store probes Consul to keep `health()` current, in ms (default 5000; 0 = never). */
  readonly healthIntervalMs?: number;
  /**
   * Shortest session TTL: Consul's `session_ttl_min` server setting
   * (default 10 s, session.mdx "Create Session" › `TTL`).
   */
  readonly minSessionTtlSeconds?: number;
}

export const CONSUL_DEFAULTS = {
  prefix: 'strata/',
  requestTimeoutMs: 10_000,
  retries: 3,
  retryBaseMs: 100,
  blockingWaitMs: 60_000,
  watchRateLimit: { burst: 5, perSecond: 10 },
  watchBackoffMs: { initial: 100, max: 5000 },
  healthIntervalMs: 5000,
  minSessionTtlSeconds: 10,
  maxSessionTtlSeconds: 86_400,
} as const;

// ---------------------------------------------------------------------------
// The consul client, typed for the calls this file makes.

/** papi's per-request context: `cancel` aborts; `includeResponse` returns `[res, body]`. */
interface RequestCtx extends EventEmitter {
  includeResponse: boolean;
}
interface CallOptions {
  readonly ctx: RequestCtx;
  readonly timeout: number;
}
interface KvApi {
  get(options: { key: string; recurse?: boolean; index?: string; wait?: string } & CallOptions): Promise<unknown>;
  keys(options: { key: string; separator?: string } & CallOptions): Promise<unknown>;
}
interface TxnApi {
  create(operations: readonly TxnOp[], options: CallOptions): Promise<unknown>;
}
interface SessionApi {
  create(options: { name: string; ttl: string; behavior: 'delete'; lockdelay: string; checks: string[] } & CallOptions): Promise<unknown>;
  renew(options: { id: string } & CallOptions): Promise<unknown>;
  destroy(options: { id: string } & CallOptions): Promise<unknown>;
}

/** kv.mdx "Read Key" › "Metadata Response" (Value already base64-decoded by the client). */
interface RawEntry {
  readonly Key: string;
  readonly Value: string | null;
  readonly Flags: number;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
  readonly LockIndex: number;
  readonly Session?: string;
}

/** txn.mdx "JSON Request Body Schema": a KV operation. */
interface TxnOp {
  readonly KV: {
    readonly Verb: string;
    readonly Key: string;
    readonly Value?: string;
    readonly Flags?: number;
    readonly Index?: number;
    readonly Session?: string;
  };
}
/** txn.mdx "Sample Response". */
interface TxnReply {
  readonly Results?: readonly { readonly KV?: Partial<RawEntry> & { readonly Value: string | null } }[] | null;
  readonly Errors?: readonly { readonly OpIndex: number; readonly What: string }[] | null;
}

interface RequestOptions {
  /** Deadline of one attempt (default: the store's requestTimeoutMs). */
  readonly timeoutMs?: number;
  /** A 5xx answer the caller gives a meaning to (not a failure). */
  readonly accept?: (reply: Reply) => boolean;
  /** Cancels the call, in flight or between retries (it then throws STORE_CLOSED). */
  readonly signal?: AbortSignal;
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

// ---------------------------------------------------------------------------

/** api-structure.mdx "UUID Format": what a Consul session ID looks like. */
const SESSION_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;
/** Errors that prove a request never reached Consul (safe to retry a write). */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
/** Key used to learn the index of a prefix delete when the prefix itself is empty. */
const ROOT_PROBE_KEY = '.strata-index-probe';

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** A fresh Flags value, so a write is never a no-op to Consul. */
function nonce(): number {
  return randomInt(1, 2 ** 47);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function text(body: unknown): string {
  if (typeof body === 'string') return body.trim();
  if (Buffer.isBuffer(body)) return body.toString('utf8').trim();
  return body === undefined ? '' : JSON.stringify(body);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function parseAddress(address: string): { host: string; port: number; secure: boolean } {
  if (typeof address !== 'string' || address.trim() === '') {
    throw new StrataError('CONFIG_INVALID', 'store.consulAddress must be "host:port" or an http(s) URL');
  }
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//iu.test(address) ? address : `http://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new StrataError('CONFIG_INVALID', `store.consulAddress ${JSON.stringify(address)} is not "host:port" or an http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StrataError('CONFIG_INVALID', `store.consulAddress ${JSON.stringify(address)} must use http or https`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new StrataError('CONFIG_INVALID', `store.consulAddress ${JSON.stringify(address)} must not have a path`);
  }
  const secure = url.protocol === 'https:';
  return { host: url.hostname, port: url.port === '' ? (secure ? 443 : 8500) : Number(url.port), secure };
}

function indexHeader(headers: IncomingHttpHeaders): number {
  const raw = headers['x-consul-index'];
  const value = Number(Array.isArray(raw) ? raw[0] : raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StrataError('STORE_PROTOCOL', `Consul answered without a valid X-Consul-Index header (${String(raw)})`);
  }
  // features/blocking.mdx "Sanity check index is greater than zero".
  return Math.max(value, 1);
}

function isRawEntry(v: unknown): v is RawEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.Key === 'string' && typeof e.CreateIndex === 'number' && typeof e.ModifyIndex === 'number' && (e.Value === null || typeof e.Value === 'string');
}

/** What a failed operation of a transaction was there for. */
type OpRole =
  | { readonly role: 'condition'; readonly position: number }
  | { readonly role: 'guard' | 'write'; readonly write: number }
  | { readonly role: 'probe' };

class ConsulStore implements StateStore {
  readonly backend = 'consul';
  readonly capabilities: StoreCapabilities;

  readonly #client: Consul;
  readonly #kv: KvApi;
  readonly #txn: TxnApi;
  readonly #session: SessionApi;
  readonly #address: string;
  readonly #prefix: string;
  readonly #requestTimeoutMs: number;
  readonly #retries: number;
  readonly #retryBaseMs: number;
  readonly #blockingWaitMs: number;
  readonly #rate: { readonly burst: number; readonly perSecond: number };
  readonly #backoff: { readonly initial: number; readonly max: number };
  readonly #inflight = new Set<RequestCtx>();
  readonly #watches = new Set<ConsulWatch>();
  /** Recent `list()` results: a watch from exactly that index can diff against them. */
  readonly #listings = new Map<string, readonly KvEntry[]>();
  readonly #closing = new AbortController();
  /** First listings of new watches still in flight (see {@link #barrier}). */
  readonly #bases = new Set<Promise<unknown>>();
  #health: StoreHealth = { status: 'ok', backend: 'consul' };
  #lastContact = Date.now();
  #probe: NodeJS.Timeout | undefined;

  constructor(options: ConsulStoreOptions) {
    const { host, port, secure } = parseAddress(options.address);
    this.#address = options.address;
    this.#prefix = options.prefix ?? CONSUL_DEFAULTS.prefix;
    if (this.#prefix !== '') checkPrefix(this.#prefix);
    this.#requestTimeoutMs = options.requestTimeoutMs ?? CONSUL_DEFAULTS.requestTimeoutMs;
    this.#retries = options.retries ?? CONSUL_DEFAULTS.retries;
    this.#retryBaseMs = options.retryBaseMs ?? CONSUL_DEFAULTS.retryBaseMs;
    this.#blockingWaitMs = Math.min(options.blockingWaitMs ?? CONSUL_DEFAULTS.blockingWaitMs, 600_000);
    this.#rate = options.watchRateLimit ?? CONSUL_DEFAULTS.watchRateLimit;
    this.#backoff = options.watchBackoffMs ?? CONSUL_DEFAULTS.watchBackoffMs;
    const minTtl = options.minSessionTtlSeconds ?? CONSUL_DEFAULTS.minSessionTtlSeconds;
    this.capabilities = {
      watchHistory: 'coalesced',
      minSessionTtlSeconds: minTtl,
      maxSessionTtlSeconds: CONSUL_DEFAULTS.maxSessionTtlSeconds,
    };
    const defaults: { token?: string; dc?: string } = {};
    if (options.token !== undefined && options.token !== '') defaults.token = options.token;
    if (options.datacenter !== undefined) defaults.dc = options.datacenter;
    this.#client = new Consul({ host, port, secure, defaults });
    this.#kv = this.#client.kv as unknown as KvApi;
    this.#txn = this.#client.transaction as unknown as TxnApi;
    this.#session = this.#client.session as unknown as SessionApi;
    const healthIntervalMs = options.healthIntervalMs ?? CONSUL_DEFAULTS.healthIntervalMs;
    if (healthIntervalMs > 0) {
      this.#probe = setInterval(() => {
        if (Date.now() - this.#lastContact < healthIntervalMs) return;
        this.currentIndex().catch(() => undefined);
      }, healthIntervalMs);
      this.#probe.unref();
    }
  }

  // -- plumbing ---------------------------------------------------------------

  #open(): void {
    if (this.#closing.signal.aborted) throw new StrataError('STORE_CLOSED', 'the Consul store was closed');
  }

  #consulKey(key: string): string {
    return this.#prefix + key;
  }

  #entry(raw: RawEntry): KvEntry {
    const base = { key: raw.Key.slice(this.#prefix.length), value: raw.Value ?? '', createIndex: raw.CreateIndex, modifyIndex: raw.ModifyIndex };
    return raw.Session ? { ...base, sessionId: raw.Session } : base;
  }

  markOk(): void {
    this.#lastContact = Date.now();
    if (this.#health.status !== 'ok') this.#health = { status: 'ok', backend: 'consul' };
  }

  markDegraded(detail: string): void {
    this.#health = { status: 'degraded', backend: 'consul', detail };
  }

  /**
   * One HTTP call through the consul client, as a {@link Reply} for every
   * HTTP answer. Transport failures and 5xx answers are retried with backoff
   * (reads always; writes only when the request provably never reached
   * Consul, or Consul had no leader), then become `STORE_UNAVAILABLE`.
   */
  async request(kind: 'read' | 'write', what: string, exec: (options: CallOptions) => Promise<unknown>, options: RequestOptions = {}): Promise<Reply> {
    this.#open();
    const { timeoutMs = this.#requestTimeoutMs, accept, signal } = options;
    const cancelled = (cause?: unknown): StrataError =>
      this.#closing.signal.aborted
        ? new StrataError('STORE_CLOSED', 'the Consul store was closed', { cause })
        : new StrataError('STORE_CLOSED', `${what} was cancelled (its watch was closed)`, { cause });
    const stop = signal ? AbortSignal.any([this.#closing.signal, signal]) : this.#closing.signal;
    for (let attempt = 0; ; attempt++) {
      if (stop.aborted) throw cancelled();
      const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
      const onStop = (): void => {
        ctx.emit('cancel');
      };
      this.#inflight.add(ctx);
      signal?.addEventListener('abort', onStop, { once: true });
      let reply: Reply | undefined;
      let failure: { retry: boolean; detail: string; cause: unknown } | undefined;
      try {
        reply = toReply(await exec({ ctx, timeout: timeoutMs }));
      } catch (err) {
        if (stop.aborted) throw cancelled(err);
        reply = responseOf(err);
        if (!reply) {
          const code = (err as { code?: unknown }).code;
          const notSent = typeof code === 'string' && NOT_SENT_CODES.has(code);
          failure = {
            retry: kind === 'read' || notSent,
            detail: `${what}: ${(err as Error).message}${kind === 'write' && !notSent ? ' (the write may or may not have been applied)' : ''}`,
            cause: err,
          };
        }
      } finally {
        this.#inflight.delete(ctx);
        signal?.removeEventListener('abort', onStop);
      }
      if (reply && (reply.status >= 500 || reply.status === 429) && !accept?.(reply)) {
        const body = text(reply.body);
        // "No cluster leader" and rate limiting refuse a write before it is applied.
        const refused = reply.status === 429 || /no cluster leader/iu.test(body);
        failure = { retry: kind === 'read' || refused, detail: `${what}: Consul answered ${reply.status} ${body}`, cause: undefined };
      }
      if (!failure && reply) {
        this.markOk();
        return reply;
      }
      if (failure && failure.retry && attempt < this.#retries) {
        const delay = Math.min(this.#retryBaseMs * 2 ** attempt, 2000);
        await sleep(delay / 2 + Math.random() * (delay / 2), stop);
        this.#open();
        continue;
      }
      const detail = failure?.detail ?? what;
      this.markDegraded(detail);
      throw new StrataError('STORE_UNAVAILABLE', `Consul at ${this.#address} is unavailable: ${detail}`, { cause: failure?.cause });
    }
  }

  /** An HTTP answer the port has no meaning for. */
  #unexpected(what: string, reply: Reply): StrataError {
    const body = text(reply.body);
    if (reply.status === 401 || reply.status === 403) {
      return new StrataError('CONFIG_INVALID', `Consul refused ${what} (${reply.status} ${body}): check store.consulToken and its ACL policy (key_prefix and session write)`);
    }
    if (reply.status === 400 && /key/iu.test(body)) return new StrataError('STORE_KEY_INVALID', `Consul refused the key in ${what}: ${body}`);
    if (reply.status >= 300 && reply.status < 400) {
      return new StrataError('STORE_KEY_INVALID', `Consul redirected ${what} (${reply.status}): its HTTP router rewrites keys holding "//" or "." / ".." segments`);
    }
    if (reply.status === 413) {
      const code: ErrorCode = /operations/iu.test(body) ? 'STORE_TXN_TOO_LARGE' : 'STORE_VALUE_TOO_LARGE';
      return new StrataError(code, `Consul refused ${what} as too large (${body}); Consul limits a /v1/txn body to limits.txn_max_req_len (default 512 KiB, after base64)`);
    }
    return new StrataError('STORE_PROTOCOL', `Consul answered ${what} with ${reply.status} ${body}`);
  }

  // -- reads ------------------------------------------------------------------

  async get(key: string): Promise<KvEntry | undefined> {
    this.#open();
    checkKey(key);
    const reply = await this.request('read', `GET /v1/kv/${key}`, (o) => this.#kv.get({ key: this.#consulKey(key), ...o }));
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) throw this.#unexpected(`GET /v1/kv/${key}`, reply);
    const raw = Array.isArray(reply.body) ? (reply.body as unknown[])[0] : reply.body;
    if (!isRawEntry(raw)) throw new StrataError('STORE_PROTOCOL', `Consul answered GET /v1/kv/${key} with an entry of the wrong shape`);
    return this.#entry(raw);
  }

  /** GET /v1/kv/<prefix>?recurse, optionally blocking (features/blocking.mdx). */
  async listRaw(prefix: string, block?: { index: number; waitMs: number; signal?: AbortSignal }): Promise<ListResult> {
    const what = `GET /v1/kv/${prefix}?recurse`;
    const params: { key: string; recurse: true; index?: string; wait?: string } = { key: this.#consulKey(prefix), recurse: true };
    let timeout = this.#requestTimeoutMs;
    if (block && block.index > 0) {
      params.index = String(block.index);
      params.wait = `${Math.max(1, Math.round(block.waitMs))}ms`;
      // Consul adds up to wait/16 of jitter.
      timeout = block.waitMs + block.waitMs / 16 + this.#requestTimeoutMs;
    }
    const reply = await this.request('read', what, (o) => this.#kv.get({ ...params, ...o }), {
      timeoutMs: timeout,
      ...(block?.signal ? { signal: block.signal } : {}),
    });
    if (reply.status === 404) return { entries: [], index: indexHeader(reply.headers) };
    if (reply.status !== 200) throw this.#unexpected(what, reply);
    if (!Array.isArray(reply.body) || !reply.body.every(isRawEntry)) throw new StrataError('STORE_PROTOCOL', `Consul answered ${what} with entries of the wrong shape`);
    const entries = (reply.body as RawEntry[])
      .filter((e) => e.Key.startsWith(this.#prefix))
      .map((e) => this.#entry(e))
      .sort((a, b) => byteOrder(a.key, b.key));
    return { entries, index: indexHeader(reply.headers) };
  }

  async list(prefix: string): Promise<ListResult> {
    this.#open();
    checkPrefix(prefix);
    const result = await this.listRaw(prefix);
    this.#remember(prefix, result);
    return result;
  }

  #remember(prefix: string, result: ListResult): void {
    let bytes = 0;
    for (const e of result.entries) bytes += e.value.length + e.key.length;
    if (bytes > 4 * 1024 * 1024) return;
    const id = `${result.index}\0${prefix}`;
    this.#listings.delete(id);
    this.#listings.set(id, result.entries);
    while (this.#listings.size > 16) this.#listings.delete(this.#listings.keys().next().value as string);
  }

  /**
   * A watch's first listing is its base; a write this store sends after
   * `watch()` returned waits until that listing is answered, so the watch
   * sees the write as a change rather than as part of the base (which would
   * force a resync).
   */
  registerBase(listing: Promise<unknown>): void {
    const settled = listing.then(
      () => undefined,
      () => undefined,
    );
    this.#bases.add(settled);
    void settled.then(() => this.#bases.delete(settled));
  }

  async #barrier(): Promise<void> {
    if (this.#bases.size > 0) await Promise.all([...this.#bases]);
    this.#open();
  }

  recalled(prefix: string, index: number): readonly KvEntry[] | undefined {
    return this.#listings.get(`${index}\0${prefix}`);
  }

  /**
   * The store's current index: `X-Consul-Index` of a key listing of the
   * store's prefix up to the first `/` (kv.mdx "Read Key" › `keys`,
   * `separator`), which is the highest index written under the prefix.
   */
  async currentIndex(): Promise<number> {
    const what = `GET /v1/kv/${this.#prefix}?keys`;
    const reply = await this.request('read', what, (o) => this.#kv.keys({ key: this.#prefix, separator: '/', ...o }));
    if (reply.status !== 200 && reply.status !== 404) throw this.#unexpected(what, reply);
    return indexHeader(reply.headers);
  }

  // -- writes -----------------------------------------------------------------

  async put(key: string, value: string, options: PutOptions = {}): Promise<WriteResult> {
    this.#open();
    checkKey(key);
    checkValue(key, value);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    const sessionId = options.sessionId === undefined ? undefined : this.#checkSession(options.sessionId);
    const write: TxnWrite = sessionId === undefined ? { op: 'put', key, value } : { op: 'put', key, value, sessionId };
    const result = await this.#write(casIndex === undefined ? [] : [{ key, modifyIndex: casIndex }], [write]);
    return result.ok ? result : { ok: false, reason: 'cas' };
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<WriteResult> {
    this.#open();
    checkKey(key);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    const result = await this.#write(casIndex === undefined ? [] : [{ key, modifyIndex: casIndex }], [{ op: 'delete', key }]);
    return result.ok ? result : { ok: false, reason: 'cas' };
  }

  async deletePrefix(prefix: string): Promise<{ readonly index: number }> {
    this.#open();
    checkPrefix(prefix);
    const tree = this.#consulKey(prefix);
    // delete-tree reports no result; a `set` of a key inside the tree, in the
    // same transaction, reports the transaction's index and is deleted with it.
    const probe = tree === '' ? ROOT_PROBE_KEY : tree;
    await this.#barrier();
    const ops: TxnOp[] = [
      { KV: { Verb: 'set', Key: probe, Value: '', Flags: nonce() } },
      { KV: { Verb: 'delete-tree', Key: tree } },
    ];
    const reply = await this.#sendTxn('write', ops);
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/txn (delete-tree)', reply);
    return { index: txnIndex(reply.body) };
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    this.#open();
    checkTxn(request);
    for (const w of request.writes) if (w.op === 'put' && w.sessionId !== undefined) this.#checkSession(w.sessionId);
    const conditions = request.conditions ?? [];
    if (request.writes.length === 0) return this.#readOnlyTxn(conditions);
    return this.#write(conditions, request.writes);
  }

  #checkSession(sessionId: unknown): string {
    if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) {
      throw new StrataError('STORE_SESSION_INVALID', `session ${JSON.stringify(sessionId)} does not exist (Consul session IDs are UUIDs)`);
    }
    return sessionId;
  }

  #sendTxn(kind: 'read' | 'write', ops: readonly TxnOp[]): Promise<Reply> {
    return this.request(kind, 'PUT /v1/txn', (o) => this.#txn.create(ops, o));
  }

  /** Conditions only: a read transaction (no Raft write); its index is the store's current one. */
  async #readOnlyTxn(conditions: readonly TxnCondition[]): Promise<TxnResult> {
    const ops = conditions.map((c) => this.#condition(c.key, c.modifyIndex));
    const reply = await this.#sendTxn('read', ops);
    if (reply.status === 409) {
      const failed = txnErrors(reply.body).map((e) => e.OpIndex);
      return { ok: false, failed: [...new Set(failed)].sort((a, b) => a - b) };
    }
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/txn', reply);
    return { ok: true, index: await this.currentIndex() };
  }

  #condition(key: string, modifyIndex: number): TxnOp {
    return modifyIndex === 0
      ? { KV: { Verb: 'check-not-exists', Key: this.#consulKey(key) } }
      : { KV: { Verb: 'check-index', Key: this.#consulKey(key), Index: modifyIndex } };
  }

  /**
   * A write transaction. Consul's `set` keeps the session a key is bound to
   * and its `lock` refuses a key another session holds, while the port's put
   * leaves a key bound to exactly the session it names (or none). So:
   * - a put without a session is `set` followed by `check-session` with no
   *   session: if the key turns out bound to a session, the check fails, the
   *   whole transaction rolls back, and Consul's error names the session
   *   (state/kvs.go kvsCheckSessionTxn); the transaction is then sent again
   *   with `unlock` by that session, which writes the value and unbinds;
   * - a put with a session is `lock`; if another session holds the key, the
   *   holder is read and the transaction is sent again with `unlock` by the
   *   holder, then `lock`.
   * The common case is one round trip; conditions are evaluated by Consul in
   * the same transaction every time.
   */
  async #write(conditions: readonly TxnCondition[], writes: readonly TxnWrite[]): Promise<TxnResult> {
    await this.#barrier();
    /** The session each put's key is known to be bound to (absent = not bound, as far as we know). */
    const holders = new Map<number, string>();
    const hasPut = writes.some((w) => w.op === 'put');
    for (let attempt = 0; attempt < 16; attempt++) {
      const ops: TxnOp[] = [];
      const roles: OpRole[] = [];
      const add = (op: TxnOp, role: OpRole): void => {
        ops.push(op);
        roles.push(role);
      };
      conditions.forEach((c, position) => add(this.#condition(c.key, c.modifyIndex), { role: 'condition', position }));
      let probed = false;
      writes.forEach((w, write) => {
        const key = this.#consulKey(w.key);
        if (w.op === 'delete') {
          // A delete has no result; a `set` just before it reports the index.
          if (!hasPut && !probed) {
            probed = true;
            add({ KV: { Verb: 'set', Key: key, Value: '', Flags: nonce() } }, { role: 'probe' });
          }
          add({ KV: { Verb: 'delete', Key: key } }, { role: 'write', write });
          return;
        }
        const value = b64(w.value);
        const holder = holders.get(write);
        if (holder !== undefined && holder !== w.sessionId) {
          // Writes the value and releases the other session's hold.
          add({ KV: { Verb: 'unlock', Key: key, Value: value, Flags: nonce(), Session: holder } }, { role: 'write', write });
        }
        if (w.sessionId !== undefined) {
          add({ KV: { Verb: 'lock', Key: key, Value: value, Flags: nonce(), Session: w.sessionId } }, { role: 'write', write });
        } else if (holder === undefined) {
          add({ KV: { Verb: 'set', Key: key, Value: value, Flags: nonce() } }, { role: 'write', write });
          add({ KV: { Verb: 'check-session', Key: key, Session: '' } }, { role: 'guard', write });
        }
      });

      const reply = await this.#sendTxn('write', ops);
      if (reply.status === 200) return { ok: true, index: txnIndex(reply.body) };
      if (reply.status !== 409) throw this.#unexpected('PUT /v1/txn', reply);

      const errors = txnErrors(reply.body);
      const failed = errors.flatMap((e) => {
        const role = roles[e.OpIndex];
        return role?.role === 'condition' ? [role.position] : [];
      });
      if (failed.length > 0) return { ok: false, failed: [...new Set(failed)].sort((a, b) => a - b) };
      const unknown: number[] = [];
      for (const e of errors) {
        const role = roles[e.OpIndex];
        if (role === undefined || role.role === 'condition' || role.role === 'probe') {
          throw new StrataError('STORE_PROTOCOL', `Consul refused transaction operation ${e.OpIndex}: ${e.What}`);
        }
        if (/invalid session|missing session/iu.test(e.What)) {
          const w = writes[role.write];
          throw new StrataError('STORE_SESSION_INVALID', `session ${w?.op === 'put' ? String(w.sessionId) : ''} does not exist or has ended (Consul: ${e.What})`);
        }
        // kvsCheckSessionTxn: `current session "<holder>" != ""`.
        const named = /current session "([^"]+)"/iu.exec(e.What)?.[1];
        if (named !== undefined) holders.set(role.write, named);
        else unknown.push(role.write);
      }
      if (unknown.length > 0) {
        const found = await this.#readHolders(unknown.map((i) => (writes[i] as TxnWrite).key));
        unknown.forEach((write, n) => {
          const holder = found[n];
          if (holder === undefined) holders.delete(write);
          else holders.set(write, holder);
        });
      }
    }
    throw new StrataError('STORE_UNAVAILABLE', `Consul at ${this.#address}: the keys of a transaction kept changing their session binding; gave up after 16 attempts`);
  }

  /** The session holding each key, by one read transaction of `get-or-empty` (txn.mdx "KV Operations"). */
  async #readHolders(keys: readonly string[]): Promise<(string | undefined)[]> {
    const ops: TxnOp[] = keys.map((key) => ({ KV: { Verb: 'get-or-empty', Key: this.#consulKey(key) } }));
    const reply = await this.#sendTxn('read', ops);
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/txn (get-or-empty)', reply);
    const results = (reply.body as TxnReply).Results ?? [];
    return keys.map((_, i) => results[i]?.KV?.Session || undefined);
  }

  // -- watches ----------------------------------------------------------------

  watch(prefix: string, options: WatchOptions): Watch {
    this.#open();
    checkPrefix(prefix);
    const fromIndex = checkIndex('fromIndex', options?.fromIndex);
    const watch = new ConsulWatch(this, prefix, fromIndex, options.signal, {
      waitMs: this.#blockingWaitMs,
      rate: this.#rate,
      backoff: this.#backoff,
      closing: this.#closing.signal,
    });
    this.#watches.add(watch);
    watch.onClose(() => this.#watches.delete(watch));
    return watch;
  }

  // -- sessions ---------------------------------------------------------------

  async createSession(options: SessionOptions): Promise<string> {
    this.#open();
    const ttl = checkSessionTtl(options?.ttlSeconds, this.capabilities, { backendNote: "Consul's limits" });
    const name = options.name ?? '';
    if (typeof name !== 'string') throw new StrataError('STORE_SESSION_INVALID', 'session name must be a string');
    const invalidTtl = (r: Reply): boolean => r.status === 500 && /session ttl/iu.test(text(r.body));
    const reply = await this.request(
      'write',
      'PUT /v1/session/create',
      (o) => this.#session.create({ name, ttl: `${ttl}s`, behavior: 'delete', lockdelay: '0s', checks: [], ...o }),
      { accept: invalidTtl },
    );
    if (invalidTtl(reply)) throw new StrataError('STORE_SESSION_TTL_INVALID', `Consul refused the session TTL of ${ttl} s: ${text(reply.body)}`);
    const id = (reply.body as { ID?: unknown } | undefined)?.ID;
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/session/create', reply);
    if (typeof id !== 'string' || id === '') throw new StrataError('STORE_PROTOCOL', 'Consul created a session without an ID');
    return id;
  }

  async renewSession(sessionId: string): Promise<boolean> {
    this.#open();
    if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) return false;
    const reply = await this.request('write', 'PUT /v1/session/renew', (o) => this.#session.renew({ id: sessionId, ...o }));
    if (reply.status === 404) return false;
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/session/renew', reply);
    return Array.isArray(reply.body) && reply.body.length > 0;
  }

  async destroySession(sessionId: string): Promise<void> {
    this.#open();
    if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) return;
    await this.#barrier();
    const reply = await this.request('write', 'PUT /v1/session/destroy', (o) => this.#session.destroy({ id: sessionId, ...o }));
    if (reply.status !== 200) throw this.#unexpected('PUT /v1/session/destroy', reply);
  }

  // -- lifecycle --------------------------------------------------------------

  health(): StoreHealth {
    this.#open();
    return this.#health;
  }

  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    if (this.#probe) clearInterval(this.#probe);
    for (const watch of [...this.#watches]) watch.close();
    for (const ctx of [...this.#inflight]) ctx.emit('cancel');
    this.#client.destroy();
  }
}

function toReply(result: unknown): Reply {
  const [res, body] = Array.isArray(result) ? (result as [unknown, unknown]) : [undefined, result];
  const r = res as { statusCode?: number; headers?: IncomingHttpHeaders } | undefined;
  if (!r || typeof r.statusCode !== 'number') throw new StrataError('STORE_PROTOCOL', 'the consul client returned no HTTP response');
  return { status: r.statusCode, headers: r.headers ?? {}, body };
}

function responseOf(err: unknown): Reply | undefined {
  const res = (err as { isResponse?: boolean; response?: { statusCode?: number; headers?: IncomingHttpHeaders; body?: unknown } }).response;
  if (!(err as { isResponse?: boolean }).isResponse || !res || typeof res.statusCode !== 'number') return undefined;
  return { status: res.statusCode, headers: res.headers ?? {}, body: res.body };
}

function txnErrors(body: unknown): readonly { OpIndex: number; What: string }[] {
  const errors = (body as TxnReply | undefined)?.Errors;
  if (!Array.isArray(errors) || errors.length === 0 || !errors.every((e) => typeof e?.OpIndex === 'number' && typeof e?.What === 'string')) {
    throw new StrataError('STORE_PROTOCOL', 'Consul rolled a transaction back (409) without a list of Errors [{OpIndex, What}]');
  }
  return errors;
}

/** The transaction's index: the highest ModifyIndex among its results (the writes'). */
function txnIndex(body: unknown): number {
  let index = 0;
  for (const r of (body as TxnReply | undefined)?.Results ?? []) index = Math.max(index, r.KV?.ModifyIndex ?? 0);
  if (index <= 0) throw new StrataError('STORE_PROTOCOL', 'Consul applied a transaction but reported no ModifyIndex in its Results');
  return index;
}

// ---------------------------------------------------------------------------

interface WatchSettings {
  readonly waitMs: number;
  readonly rate: { readonly burst: number; readonly perSecond: number };
  readonly backoff: { readonly initial: number; readonly max: number };
  readonly closing: AbortSignal;
}

/**
 * A watch: a loop of blocking queries on the prefix, each listing diffed
 * against the previous one.
 *
 * The first listing is fetched at once (not blocking) when the watch is
 * created. Deletions since `fromIndex` can be proven only against a listing
 * of the prefix at `fromIndex`: that first listing, when its index is not
 * past `fromIndex` (nothing changed since); a `list()` of this store that
 * returned exactly `fromIndex`; or nothing at all when `fromIndex` is 0.
 * Otherwise the first batch is a `resync`. An index that goes backwards
 * (features/blocking.mdx "Reset the index if it goes backwards": snapshot
 * restore, tombstone reaping) restarts from the new listing with a
 * `resync`, whose index is never below the last one delivered.
 */
class ConsulWatch implements Watch {
  readonly #store: ConsulStore;
  readonly #prefix: string;
  readonly #fromIndex: number;
  readonly #settings: WatchSettings;
  readonly #stop = new AbortController();
  readonly #closeListeners: (() => void)[] = [];
  readonly #iterator: AsyncGenerator<WatchBatch, void, undefined>;
  #first: Promise<ListResult> | undefined;
  #tokens: number;
  #refilledAt = Date.now();

  constructor(store: ConsulStore, prefix: string, fromIndex: number, signal: AbortSignal | undefined, settings: WatchSettings) {
    this.#store = store;
    this.#prefix = prefix;
    this.#fromIndex = fromIndex;
    this.#settings = settings;
    this.#tokens = settings.rate.burst;
    const onAbort = (): void => this.close();
    if (signal?.aborted || settings.closing.aborted) this.#stop.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    settings.closing.addEventListener('abort', onAbort, { once: true });
    this.onClose(() => {
      signal?.removeEventListener('abort', onAbort);
      settings.closing.removeEventListener('abort', onAbort);
    });
    // Start at once: if nothing changes before the answer, it is the base.
    if (!this.#stop.signal.aborted && store.recalled(prefix, fromIndex) === undefined && fromIndex > 0) {
      this.#first = this.#query(0);
      this.#first.catch(() => undefined);
      store.registerBase(this.#first);
    }
    this.#iterator = this.#run();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return this.#iterator;
  }

  onClose(listener: () => void): void {
    if (this.#stop.signal.aborted) listener();
    else this.#closeListeners.push(listener);
  }

  close(): void {
    // Aborting cancels the query in flight (request() listens to the signal).
    if (!this.#stop.signal.aborted) this.#stop.abort();
    for (const listener of this.#closeListeners.splice(0)) listener();
  }

  #query(index: number): Promise<ListResult> {
    return this.#store.listRaw(this.#prefix, {
      index,
      waitMs: this.#settings.waitMs,
      signal: this.#stop.signal,
    });
  }

  /** features/blocking.mdx "Rate limit": a token bucket. */
  async #rateLimit(): Promise<void> {
    const { burst, perSecond } = this.#settings.rate;
    const now = Date.now();
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilledAt) / 1000) * perSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) {
      await sleep(((1 - this.#tokens) / perSecond) * 1000, this.#stop.signal);
      this.#tokens = 1;
      this.#refilledAt = Date.now();
    }
    this.#tokens -= 1;
  }

  async *#run(): AsyncGenerator<WatchBatch, void, undefined> {
    const stop = this.#stop.signal;
    const recalled = this.#store.recalled(this.#prefix, this.#fromIndex);
    /** The prefix's state at `baseIndex`, once known. */
    let base: Map<string, KvEntry> | undefined;
    let baseIndex = this.#fromIndex;
    if (recalled) base = new Map(recalled.map((e) => [e.key, e]));
    else if (this.#fromIndex === 0) base = new Map();
    let delivered = this.#fromIndex;
    let failures = 0;
    try {
      while (!stop.aborted) {
        let listing: ListResult;
        try {
          if (this.#first) {
            const first = this.#first;
            this.#first = undefined;
            listing = await first;
          } else {
            await this.#rateLimit();
            if (stop.aborted) return;
            listing = await this.#query(base === undefined ? 0 : baseIndex);
          }
          failures = 0;
        } catch (err) {
          if (stop.aborted || (isStrataError(err) && err.code === 'STORE_CLOSED')) return;
          // request() already marked the store degraded; keep trying.
          if (isStrataError(err) && err.code !== 'STORE_UNAVAILABLE') this.#store.markDegraded(`watch on ${JSON.stringify(this.#prefix)}: ${err.message}`);
          const { initial, max } = this.#settings.backoff;
          const delay = Math.min(initial * 2 ** failures, max);
          failures++;
          await sleep(delay / 2 + Math.random() * (delay / 2), stop);
          continue;
        }
        if (stop.aborted) return;
        const index = listing.index;
        if (base === undefined) {
          base = new Map(listing.entries.map((e) => [e.key, e]));
          baseIndex = index;
          if (index <= this.#fromIndex) continue; // nothing changed since fromIndex: this is the base
          delivered = index;
          yield { kind: 'resync', index, entries: listing.entries };
          continue;
        }
        if (index < baseIndex) {
          // The index went backwards: start again from this listing, and
          // resync unless it is exactly what the consumer already holds
          // (tombstone reaping lowers the index without changing entries).
          const same = diff(base, listing.entries, index).length === 0;
          base = new Map(listing.entries.map((e) => [e.key, e]));
          baseIndex = index;
          if (same) continue;
          delivered = Math.max(index, delivered);
          yield { kind: 'resync', index: delivered, entries: listing.entries };
          continue;
        }
        if (index === baseIndex) continue; // the wait ran out
        const events = diff(base, listing.entries, index);
        base = new Map(listing.entries.map((e) => [e.key, e]));
        baseIndex = index;
        if (events.length === 0) continue;
        delivered = Math.max(index, delivered);
        yield { kind: 'changes', index: delivered, events };
      }
    } finally {
      this.close();
    }
  }
}

/** The events that turn `before` into `after` (a listing at `index`). */
function diff(before: ReadonlyMap<string, KvEntry>, after: readonly KvEntry[], index: number): WatchEvent[] {
  const events: WatchEvent[] = [];
  const seen = new Set<string>();
  for (const entry of after) {
    seen.add(entry.key);
    const old = before.get(entry.key);
    if (!old || old.modifyIndex !== entry.modifyIndex || old.createIndex !== entry.createIndex) events.push({ type: 'put', entry });
  }
  for (const key of before.keys()) if (!seen.has(key)) events.push({ type: 'delete', key, index });
  const at = (e: WatchEvent): number => (e.type === 'put' ? e.entry.modifyIndex : e.index);
  const keyOf = (e: WatchEvent): string => (e.type === 'put' ? e.entry.key : e.key);
  return events.sort((a, b) => at(a) - at(b) || byteOrder(keyOf(a), keyOf(b)));
}

/** Open a store on a Consul agent. Nothing is sent until the first call. */
export async function openConsulStore(options: ConsulStoreOptions): Promise<StateStore> {
  return new ConsulStore(options);
}

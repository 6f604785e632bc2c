/**
 * The etcd v3 backend of the {@link StateStore} port, on the `etcd3` npm
 * client's gRPC connection pool (the raw RPCs, never its lazy builders).
 *
 * Layout in etcd (`prefix` defaults to `strata/`):
 * - `<prefix>kv/<key>`        every store key, value as UTF-8
 * - `<prefix>sessions/<id>`   one record per session (JSON: name, TTL), bound
 *                             to the session's lease so it vanishes with it
 *
 * Indexes are etcd revisions: `createIndex` = `create_revision`,
 * `modifyIndex` = `mod_revision`, the index of a write = the response
 * header's revision. Sessions are etcd leases; a session id is the lease id
 * as 16 hex digits (what `etcdctl lease list` prints).
 *
 * Calls: every attempt has a deadline (`callTimeoutMs`) and goes to one
 * member; on a transport or leader failure the next attempt goes to the next
 * member, with backoff, until `retryTimeoutMs` has passed; then the call
 * throws `STORE_UNAVAILABLE`. Requests carry etcd's `hasleader` metadata, so
 * a member without a leader refuses at once instead of waiting out the
 * request timeout. A write whose outcome is unknown (the connection dropped
 * after it was sent) is retried only when retrying cannot change its meaning:
 * unconditional writes are retried; a check-and-set or guarded transaction is
 * retried too, but if the retry then finds its condition false the call
 * throws `STORE_UNAVAILABLE` ("outcome unknown") instead of reporting a lost
 * check-and-set, because the first attempt may have been the one that won.
 *
 * See README.md in this folder for the TTL and namespacing decisions.
 */
import { castGrpcError, isRecoverableError, type IOptions } from 'etcd3';
import { ConnectionPool } from 'etcd3/lib/connection-pool.js';
import { StrataError, isStrataError } from '../../../common/errors.ts';
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
  TxnRequest,
  TxnResult,
  Watch,
  WatchBatch,
  WatchEvent,
  WatchOptions,
  WriteResult,
} from '../port.ts';

export interface EtcdStoreOptions {
  /**
   * Client URLs of the etcd members, e.g. `['http://127.0.0.1:2379']`, in
   * order of preference: calls and watches go to the first one that works
   * and stay there until it fails (list the local member first).
   */
  readonly endpoints: readonly string[];
  /** Namespace of this store inside etcd (default `strata/`). May be empty. */
  readonly prefix?: string;
  /** Deadline of one attempt of one call, in ms (default 3000). */
  readonly callTimeoutMs?: number;
  /**
   * How long a call keeps retrying (across members, with backoff) before it
   * throws `STORE_UNAVAILABLE`, in ms (default 8000).
   */
  readonly retryTimeoutMs?: number;
  /** How often an idle store probes etcd to keep `health()` current, in ms (default 2000). */
  readonly healthIntervalMs?: number;
  /**
   * Shortest session TTL accepted (default 2 s). etcd silently raises any
   * lease TTL below 1.5 x its election timeout (rounded up to seconds), so
   * this must be at least that: 2 s is right for etcd's default 1000 ms
   * election timeout (and anything up to 1333 ms).
   */
  readonly minSessionTtlSeconds?: number;
  /** Longest session TTL accepted (default 86400 s, Consul's limit). */
  readonly maxSessionTtlSeconds?: number;
}

export const ETCD_DEFAULTS = {
  prefix: 'strata/',
  callTimeoutMs: 3000,
  retryTimeoutMs: 8000,
  healthIntervalMs: 2000,
  minSessionTtlSeconds: 2,
  maxSessionTtlSeconds: 86_400,
} as const;

// ---------------------------------------------------------------------------
// Raw gRPC shapes (etcd3 loads rpc.proto with keepCase, longs as strings,
// defaults filled in).

interface RawHeader {
  readonly revision: string;
}
interface RawKv {
  readonly key: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly value: Buffer;
  readonly lease: string;
}
interface RangeResponse {
  readonly header: RawHeader;
  readonly kvs: readonly RawKv[];
}
interface WriteResponse {
  readonly header: RawHeader;
}
interface TxnResponse {
  readonly header: RawHeader;
  readonly succeeded: boolean;
  readonly responses: readonly { readonly response_range?: RangeResponse | null }[];
}
interface LeaseGrantResponse {
  readonly header: RawHeader;
  readonly ID: string;
  readonly error: string;
}
interface KeepAliveResponse {
  readonly ID: string;
  readonly TTL: string;
}
interface RawEvent {
  /** The proto's enum name: `Put` or `Delete` (compared case-insensitively). */
  readonly type: string;
  readonly kv: RawKv;
}
interface WatchResponse {
  readonly header: RawHeader;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly events: readonly RawEvent[];
}

type Callback = (err: Error | null, response: unknown) => void;
interface Metadata {
  set(key: string, value: string): void;
}
interface CallOptions {
  readonly deadline?: number;
}
interface GrpcStream {
  write(message: unknown): boolean;
  end(): void;
  cancel(): void;
  pause(): void;
  resume(): void;
  on(event: 'data', listener: (message: never) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
}
type ServiceClient = Record<string, (...args: unknown[]) => unknown>;
type ServiceName = 'KV' | 'Lease' | 'Watch';

// etcd enum values (rpc.proto): Compare.CompareResult.EQUAL, CompareTarget.MOD.
const COMPARE_EQUAL = 0;
const COMPARE_MOD = 2;

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;
/** No circuit breakers or hidden retries in the client: this module retries itself. */
const passThrough = {
  execute: async (fn: (context: { signal: AbortSignal; attempt: number }) => unknown) =>
    fn({ signal: new AbortController().signal, attempt: 0 }),
} as unknown as HostPolicy;

const GRPC_OPTIONS = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

class Endpoint {
  readonly url: string;
  readonly pool: ConnectionPool;

  constructor(url: string) {
    this.url = url;
    this.pool = new ConnectionPool({
      hosts: [url],
      grpcOptions: GRPC_OPTIONS,
      faultHandling: { host: () => passThrough, global: passThrough },
    });
  }

  /** One unary RPC on this member, with `hasleader` set and a deadline. */
  unary<T>(service: ServiceName, method: string, request: unknown, deadline: number): Promise<T> {
    return this.pool.withConnection(service, ({ client, metadata }) => {
      (metadata as Metadata).set('hasleader', 'true');
      const fn = (client as unknown as ServiceClient)[method];
      if (typeof fn !== 'function') throw new StrataError('STORE_PROTOCOL', `etcd service ${service} has no method ${method}`);
      return new Promise<T>((resolve, reject) => {
        const callback: Callback = (err, response) => (err ? reject(castGrpcError(err)) : resolve(response as T));
        fn.call(client, request, metadata, { deadline } satisfies CallOptions, callback);
      });
    });
  }

  /** Opens a bidirectional stream on this member (errors surface on the stream). */
  stream(service: ServiceName, method: string, options: CallOptions): Promise<GrpcStream> {
    return this.pool.withConnection(service, ({ client, metadata }) => {
      (metadata as Metadata).set('hasleader', 'true');
      const fn = (client as unknown as ServiceClient)[method];
      if (typeof fn !== 'function') throw new StrataError('STORE_PROTOCOL', `etcd service ${service} has no method ${method}`);
      const stream = fn.call(client, metadata, options) as GrpcStream;
      // Always listen for errors: cancel() emits one, and an unheard error
      // event would crash the process.
      stream.on('error', () => undefined);
      return stream;
    });
  }

  close(): void {
    this.pool.close();
  }
}

// ---------------------------------------------------------------------------
// Keys, ranges, ids

function prefixRangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] as number;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every key
}

/** Session ids are lease ids written as 16 lowercase hex digits. */
function sessionIdOf(lease: string): string | undefined {
  if (lease === '0' || lease === '') return undefined;
  return BigInt(lease).toString(16).padStart(16, '0');
}

function leaseOf(sessionId: unknown): string | undefined {
  if (typeof sessionId !== 'string' || !/^[0-9a-f]{1,16}$/.test(sessionId)) return undefined;
  const lease = BigInt(`0x${sessionId}`);
  return lease === 0n || lease > 0x7fff_ffff_ffff_ffffn ? undefined : lease.toString(10);
}

function revision(header: RawHeader | undefined): number {
  const value = Number(header?.revision ?? NaN);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StrataError('STORE_PROTOCOL', `etcd answered with a bad revision: ${String(header?.revision)}`);
  }
  return value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Error classification

type Failure =
  /** Not applied; retrying is always safe. */
  | { readonly kind: 'retry'; readonly message: string }
  /** Transient, but the request may have been applied. */
  | { readonly kind: 'ambiguous'; readonly message: string }
  /** An answer: no retry. */
  | { readonly kind: 'fatal'; readonly error: StrataError; readonly degraded?: boolean };

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function classify(err: unknown, op: string): Failure {
  if (isStrataError(err)) return { kind: 'fatal', error: err };
  const message = messageOf(err);
  const fatal = (code: ConstructorParameters<typeof StrataError>[0], text: string, degraded = false): Failure => ({
    kind: 'fatal',
    error: new StrataError(code, `${op}: ${text}`, { cause: err }),
    degraded,
  });
  if (message.includes('requested lease not found')) return fatal('STORE_SESSION_INVALID', 'the session does not exist or has expired');
  if (message.includes('request is too large')) {
    return fatal(op.startsWith('txn') ? 'STORE_TXN_TOO_LARGE' : 'STORE_VALUE_TOO_LARGE', `etcd refused the request as too large (${message})`);
  }
  if (message.includes('too many operations in txn request')) return fatal('STORE_TXN_TOO_LARGE', message);
  if (message.includes('duplicate key given in txn request')) return fatal('STORE_TXN_INVALID', message);
  if (message.includes('database space exceeded')) {
    return fatal('STORE_UNAVAILABLE', 'etcd is out of space (NOSPACE alarm: --quota-backend-bytes reached; compact and defragment)', true);
  }
  if (/permission denied|invalid auth token|authentication failed|user name is empty/.test(message)) {
    return fatal('STORE_UNAVAILABLE', `etcd refused access: ${message}`, true);
  }
  // Refused before it was processed: safe to send again.
  if (
    /etcdserver: no leader|etcdserver: not leader|etcdserver: leader changed|too many requests|No connection established|ECONNREFUSED|Failed to connect|failed to connect|Name resolution failed|connection pool has no hosts/i.test(
      message,
    )
  ) {
    return { kind: 'retry', message };
  }
  if (err instanceof Error && isRecoverableError(err)) return { kind: 'ambiguous', message };
  if (/etcdserver: request timed out|etcdserver: server stopped|ECONNRESET|Connection dropped|RST_STREAM|Deadline exceeded|DEADLINE_EXCEEDED|14 UNAVAILABLE|4 DEADLINE/i.test(message)) {
    return { kind: 'ambiguous', message };
  }
  return fatal('STORE_PROTOCOL', `etcd answered unexpectedly: ${message}`);
}

// ---------------------------------------------------------------------------

interface CallResult<T> {
  readonly value: T;
  /** Some earlier attempt failed in a way that may have applied it. */
  readonly ambiguous: boolean;
}

class EtcdStore implements StateStore {
  readonly backend = 'etcd';
  readonly capabilities: StoreCapabilities;

  readonly #endpoints: readonly Endpoint[];
  readonly #kvPrefix: Buffer;
  readonly #sessionPrefix: string;
  readonly #callTimeoutMs: number;
  readonly #retryTimeoutMs: number;
  readonly #healthIntervalMs: number;
  #preferred: number;
  #closed = false;
  #health: StoreHealth = { status: 'ok', backend: 'etcd' };
  #lastSuccess = 0;
  #probeTimer: NodeJS.Timeout | undefined;
  #probing = false;
  readonly #watches = new Set<EtcdWatch>();

  constructor(options: Required<Omit<EtcdStoreOptions, 'endpoints'>> & { readonly endpoints: readonly string[] }) {
    this.#endpoints = options.endpoints.map((url) => new Endpoint(url));
    this.#kvPrefix = Buffer.from(`${options.prefix}kv/`, 'utf8');
    this.#sessionPrefix = `${options.prefix}sessions/`;
    this.#callTimeoutMs = options.callTimeoutMs;
    this.#retryTimeoutMs = options.retryTimeoutMs;
    this.#healthIntervalMs = options.healthIntervalMs;
    this.#preferred = 0;
    this.capabilities = Object.freeze({
      watchHistory: 'every-index',
      minSessionTtlSeconds: options.minSessionTtlSeconds,
      maxSessionTtlSeconds: options.maxSessionTtlSeconds,
    });
  }

  // --- plumbing ----------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new StrataError('STORE_CLOSED', 'the etcd store was closed');
  }

  #markOk(): void {
    this.#lastSuccess = Date.now();
    if (this.#health.status !== 'ok') this.#health = { status: 'ok', backend: 'etcd' };
  }

  #markDegraded(detail: string): void {
    this.#health = { status: 'degraded', backend: 'etcd', detail };
  }

  get endpointCount(): number {
    return this.#endpoints.length;
  }

  /** The member the next call goes to. */
  endpoint(index: number): Endpoint {
    return this.#endpoints[index % this.#endpoints.length] as Endpoint;
  }

  get preferred(): number {
    return this.#preferred;
  }

  /** Moves the preference off a member that just failed (unless someone already did). */
  failedOver(index: number): number {
    if (this.#preferred === index) this.#preferred = (index + 1) % this.#endpoints.length;
    return this.#preferred;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `attempt` against one member at a time until it answers, rotating
   * members and backing off, for at most `retryTimeoutMs`.
   */
  async call<T>(op: string, attempt: (endpoint: Endpoint, deadline: number) => Promise<T>): Promise<CallResult<T>> {
    this.#assertOpen();
    const giveUpAt = Date.now() + this.#retryTimeoutMs;
    const n = this.#endpoints.length;
    let ambiguous = false;
    let failures = 0;
    const recent: string[] = [];
    for (;;) {
      const index = this.#preferred;
      const endpoint = this.#endpoints[index] as Endpoint;
      const deadline = Math.min(Date.now() + this.#callTimeoutMs, Math.max(giveUpAt, Date.now() + 250));
      try {
        const value = await attempt(endpoint, deadline);
        this.#markOk();
        return { value, ambiguous };
      } catch (err) {
        if (this.#closed) throw new StrataError('STORE_CLOSED', `${op}: the etcd store was closed`, { cause: err });
        const failure = classify(err, op);
        if (failure.kind === 'fatal') {
          if (failure.degraded) this.#markDegraded(failure.error.message);
          else this.#markOk();
          throw failure.error;
        }
        if (failure.kind === 'ambiguous') ambiguous = true;
        recent.push(`${endpoint.url}: ${failure.message}`);
        if (recent.length > n) recent.shift();
        this.failedOver(index);
        failures++;
        // Try every member once quickly, then back off exponentially.
        const delay = failures < n ? 10 : Math.min(1000, 50 * 2 ** Math.min(failures - n, 5)) * (0.5 + Math.random() / 2);
        if (Date.now() + delay >= giveUpAt) {
          const detail = `etcd unreachable (${failures} attempts in ${this.#retryTimeoutMs} ms): ${recent.join('; ')}`;
          this.#markDegraded(detail);
          throw new StrataError('STORE_UNAVAILABLE', `${op}: ${detail}`, { cause: err });
        }
        await sleep(delay);
        this.#assertOpen();
      }
    }
  }

  #key(key: string): Buffer {
    return Buffer.concat([this.#kvPrefix, Buffer.from(key, 'utf8')]);
  }

  #range(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.#key(prefix);
    return { key, range_end: prefixRangeEnd(key) };
  }

  /** The watch request range for a prefix. */
  rangeOf(prefix: string): { key: Buffer; range_end: Buffer } {
    return this.#range(prefix);
  }

  entryOf(kv: RawKv): KvEntry {
    const sessionId = sessionIdOf(kv.lease);
    const entry = {
      key: kv.key.subarray(this.#kvPrefix.length).toString('utf8'),
      value: kv.value.toString('utf8'),
      createIndex: Number(kv.create_revision),
      modifyIndex: Number(kv.mod_revision),
    };
    return sessionId === undefined ? entry : { ...entry, sessionId };
  }

  deleteEventOf(kv: RawKv): WatchEvent {
    return { type: 'delete', key: kv.key.subarray(this.#kvPrefix.length).toString('utf8'), index: Number(kv.mod_revision) };
  }

  #lease(sessionId: string | undefined): string | undefined {
    if (sessionId === undefined) return undefined;
    const lease = leaseOf(sessionId);
    if (lease === undefined) {
      throw new StrataError('STORE_SESSION_INVALID', `session id ${JSON.stringify(String(sessionId)).slice(0, 40)} is not an etcd session id`);
    }
    return lease;
  }

  #unknownOutcome(op: string): StrataError {
    const detail = `${op}: the outcome is unknown (an attempt failed after it was sent and the retry found the condition false; the first attempt may have applied it) - read and retry`;
    return new StrataError('STORE_UNAVAILABLE', detail);
  }

  // --- reads ---------------------------------------------------------------

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    this.#assertOpen();
    const request = { key: this.#key(key) };
    const { value } = await this.call('get', (ep, deadline) => ep.unary<RangeResponse>('KV', 'range', request, deadline));
    const kv = value.kvs[0];
    return kv === undefined ? undefined : this.entryOf(kv);
  }

  /** A linearizable read of a whole prefix (also used by watches to resync). */
  async listRaw(prefix: string): Promise<ListResult> {
    const request = this.#range(prefix);
    const { value } = await this.call('list', (ep, deadline) => ep.unary<RangeResponse>('KV', 'range', request, deadline));
    return { entries: value.kvs.map((kv) => this.entryOf(kv)), index: revision(value.header) };
  }

  async list(prefix: string): Promise<ListResult> {
    checkPrefix(prefix);
    this.#assertOpen();
    return this.listRaw(prefix);
  }

  // --- writes --------------------------------------------------------------

  async put(key: string, value: string, options: PutOptions = {}): Promise<WriteResult> {
    checkKey(key);
    checkValue(key, value);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    const lease = this.#lease(options.sessionId);
    this.#assertOpen();
    const put = { key: this.#key(key), value: Buffer.from(value, 'utf8'), ...(lease === undefined ? {} : { lease }) };
    if (casIndex === undefined) {
      const { value: response } = await this.call('put', (ep, deadline) => ep.unary<WriteResponse>('KV', 'put', put, deadline));
      return { ok: true, index: revision(response.header) };
    }
    const txn = {
      compare: [{ key: put.key, result: COMPARE_EQUAL, target: COMPARE_MOD, mod_revision: String(casIndex) }],
      success: [{ request_put: put }],
      failure: [],
    };
    const { value: response, ambiguous } = await this.call('put (check-and-set)', (ep, deadline) =>
      ep.unary<TxnResponse>('KV', 'txn', txn, deadline),
    );
    if (response.succeeded) return { ok: true, index: revision(response.header) };
    if (ambiguous) throw this.#unknownOutcome('put (check-and-set)');
    return { ok: false, reason: 'cas' };
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<WriteResult> {
    checkKey(key);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    this.#assertOpen();
    const del = { key: this.#key(key) };
    if (casIndex === undefined) {
      const { value: response } = await this.call('delete', (ep, deadline) => ep.unary<WriteResponse>('KV', 'deleteRange', del, deadline));
      return { ok: true, index: revision(response.header) };
    }
    const txn = {
      compare: [{ key: del.key, result: COMPARE_EQUAL, target: COMPARE_MOD, mod_revision: String(casIndex) }],
      success: [{ request_delete_range: del }],
      failure: [],
    };
    const { value: response, ambiguous } = await this.call('delete (check-and-set)', (ep, deadline) =>
      ep.unary<TxnResponse>('KV', 'txn', txn, deadline),
    );
    if (response.succeeded) return { ok: true, index: revision(response.header) };
    if (ambiguous) throw this.#unknownOutcome('delete (check-and-set)');
    return { ok: false, reason: 'cas' };
  }

  async deletePrefix(prefix: string): Promise<{ readonly index: number }> {
    checkPrefix(prefix);
    this.#assertOpen();
    const request = this.#range(prefix);
    const { value } = await this.call('deletePrefix', (ep, deadline) => ep.unary<WriteResponse>('KV', 'deleteRange', request, deadline));
    return { index: revision(value.header) };
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    checkTxn(request);
    const conditions = request.conditions ?? [];
    const writes = request.writes.map((w) =>
      w.op === 'put'
        ? {
            request_put: {
              key: this.#key(w.key),
              value: Buffer.from(w.value, 'utf8'),
              ...(w.sessionId === undefined ? {} : { lease: this.#lease(w.sessionId) }),
            },
          }
        : { request_delete_range: { key: this.#key(w.key) } },
    );
    this.#assertOpen();
    // On failure, read every guarded key in the same transaction: the reads
    // see the exact state the conditions were checked against.
    const guarded = [...new Set(conditions.map((c) => c.key))];
    const txn = {
      compare: conditions.map((c) => ({ key: this.#key(c.key), result: COMPARE_EQUAL, target: COMPARE_MOD, mod_revision: String(c.modifyIndex) })),
      success: writes,
      failure: guarded.map((key) => ({ request_range: { key: this.#key(key), keys_only: true } })),
    };
    const op = conditions.length > 0 ? 'txn (guarded)' : 'txn';
    const { value: response, ambiguous } = await this.call(op, (ep, deadline) => ep.unary<TxnResponse>('KV', 'txn', txn, deadline));
    if (response.succeeded) return { ok: true, index: revision(response.header) };
    if (ambiguous) throw this.#unknownOutcome(op);
    const current = new Map<string, number>();
    guarded.forEach((key, i) => {
      const kv = response.responses[i]?.response_range?.kvs[0];
      current.set(key, kv === undefined ? 0 : Number(kv.mod_revision));
    });
    const failed = conditions.flatMap((c, i) => (current.get(c.key) === c.modifyIndex ? [] : [i]));
    if (failed.length === 0) throw new StrataError('STORE_PROTOCOL', 'etcd reported a failed transaction but every condition holds');
    return { ok: false, failed };
  }

  // --- watches -------------------------------------------------------------

  watch(prefix: string, options: WatchOptions): Watch {
    checkPrefix(prefix);
    const fromIndex = checkIndex('fromIndex', options.fromIndex);
    this.#assertOpen();
    const watch = new EtcdWatch(this, prefix, fromIndex, options.signal, () => this.#watches.delete(watch));
    this.#watches.add(watch);
    watch.start();
    return watch;
  }

  // --- sessions ------------------------------------------------------------

  async createSession(options: SessionOptions): Promise<string> {
    const ttl = checkSessionTtl(options?.ttlSeconds, this.capabilities, { wholeSeconds: true });
    this.#assertOpen();
    const { value: grant } = await this.call('createSession', (ep, deadline) =>
      ep.unary<LeaseGrantResponse>('Lease', 'leaseGrant', { TTL: ttl, ID: 0 }, deadline),
    );
    if (grant.error) throw new StrataError('STORE_SESSION_INVALID', `createSession: etcd refused the lease: ${grant.error}`);
    const sessionId = sessionIdOf(grant.ID);
    if (sessionId === undefined) throw new StrataError('STORE_PROTOCOL', 'createSession: etcd granted lease 0');
    // The session record lives and dies with the lease.
    const record = {
      key: Buffer.from(`${this.#sessionPrefix}${sessionId}`, 'utf8'),
      value: Buffer.from(JSON.stringify({ name: options.name ?? '', ttlSeconds: ttl }), 'utf8'),
      lease: grant.ID,
    };
    try {
      await this.call('createSession', (ep, deadline) => ep.unary<WriteResponse>('KV', 'put', record, deadline));
    } catch (err) {
      await this.destroySession(sessionId).catch(() => undefined);
      throw err;
    }
    return sessionId;
  }

  async renewSession(sessionId: string): Promise<boolean> {
    const lease = leaseOf(sessionId);
    this.#assertOpen();
    if (lease === undefined) return false;
    const { value: ttl } = await this.call('renewSession', async (ep, deadline) => {
      const stream = await ep.stream('Lease', 'leaseKeepAlive', { deadline });
      try {
        return await new Promise<string>((resolve, reject) => {
          stream.on('data', (response: KeepAliveResponse) => resolve(response.TTL));
          stream.on('error', (err) => reject(castGrpcError(err)));
          stream.on('end', () => reject(new Error('14 UNAVAILABLE: keepalive stream ended')));
          stream.write({ ID: lease });
        });
      } finally {
        stream.cancel();
      }
    });
    return Number(ttl) > 0;
  }

  async destroySession(sessionId: string): Promise<void> {
    const lease = leaseOf(sessionId);
    this.#assertOpen();
    if (lease === undefined) return;
    try {
      await this.call('destroySession', (ep, deadline) => ep.unary<unknown>('Lease', 'leaseRevoke', { ID: lease }, deadline));
    } catch (err) {
      if (isStrataError(err, 'STORE_SESSION_INVALID')) return; // already ended
      throw err;
    }
  }

  // --- health and lifecycle -----------------------------------------------

  health(): StoreHealth {
    this.#assertOpen();
    return this.#health;
  }

  /** One linearizable read (count only), with the usual retries. */
  async ping(): Promise<void> {
    const request = { key: this.#kvPrefix, count_only: true, limit: 1 };
    await this.call('open', (ep, deadline) => ep.unary<RangeResponse>('KV', 'range', request, deadline));
  }

  /** One round of probing: a linearizable read on each member in turn until one answers. */
  async probe(): Promise<void> {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    const errors: string[] = [];
    try {
      const request = { key: this.#kvPrefix, count_only: true, limit: 1 };
      for (let i = 0; i < this.#endpoints.length; i++) {
        const index = (this.#preferred + i) % this.#endpoints.length;
        const endpoint = this.#endpoints[index] as Endpoint;
        try {
          await endpoint.unary<RangeResponse>('KV', 'range', request, Date.now() + Math.min(this.#callTimeoutMs, 2000));
          this.#markOk();
          return;
        } catch (err) {
          errors.push(`${endpoint.url}: ${messageOf(err)}`);
          this.failedOver(index);
        }
      }
      if (!this.#closed) this.#markDegraded(`no etcd member answered a linearizable read: ${errors.join('; ')}`);
    } finally {
      this.#probing = false;
    }
  }

  startProbing(): void {
    const tick = (): void => {
      if (this.#closed) return;
      if (Date.now() - this.#lastSuccess >= this.#healthIntervalMs) void this.probe().catch(() => undefined);
      this.#probeTimer = setTimeout(tick, this.#healthIntervalMs);
      this.#probeTimer.unref();
    };
    this.#probeTimer = setTimeout(tick, this.#healthIntervalMs);
    this.#probeTimer.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    for (const watch of [...this.#watches]) watch.close();
    for (const endpoint of this.#endpoints) endpoint.close();
  }
}

// ---------------------------------------------------------------------------
// Watches

/**
 * One etcd watch stream per Watch, so its resume point is ours: after any
 * stream failure the watch is re-created from `lastRevision + 1` on the next
 * member, and events at or below `lastRevision` are dropped, so nothing is
 * delivered twice or skipped. A compacted start revision becomes a `resync`
 * batch (a linearizable list of the prefix), then watching continues after it.
 */
class EtcdWatch implements Watch {
  readonly #store: EtcdStore;
  readonly #prefix: string;
  readonly #range: { key: Buffer; range_end: Buffer };
  readonly #signal: AbortSignal | undefined;
  readonly #onClose: () => void;
  readonly #onAbort = (): void => this.close();
  /** Everything up to this revision has been queued for the consumer. */
  #lastRevision: number;
  #queue: WatchBatch[] = [];
  #waiting: ((result: IteratorResult<WatchBatch>) => void) | undefined;
  #closed = false;
  #stream: GrpcStream | undefined;
  #paused = false;
  #endpoint: number;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  static readonly HIGH_WATER = 10_000;
  static readonly LOW_WATER = 1_000;

  constructor(store: EtcdStore, prefix: string, fromIndex: number, signal: AbortSignal | undefined, onClose: () => void) {
    this.#store = store;
    this.#prefix = prefix;
    this.#range = store.rangeOf(prefix);
    this.#lastRevision = fromIndex;
    this.#signal = signal;
    this.#onClose = onClose;
    this.#endpoint = store.preferred;
  }

  start(): void {
    if (this.#signal?.aborted) {
      this.close();
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#connect();
  }

  #schedule(fn: () => void, delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      fn();
    }, delay);
  }

  #backoff(): number {
    this.#failures++;
    const n = this.#store.endpointCount;
    if (this.#failures < n) return 10;
    return Math.min(2000, 50 * 2 ** Math.min(this.#failures - n, 6)) * (0.5 + Math.random() / 2);
  }

  #connect(): void {
    if (this.#closed || this.#store.closed) return;
    const endpoint = this.#store.endpoint(this.#endpoint);
    endpoint.stream('Watch', 'watch', {}).then(
      (stream) => {
        if (this.#closed) {
          stream.cancel();
          return;
        }
        this.#stream = stream;
        this.#paused = false;
        stream.on('data', (response: WatchResponse) => this.#onResponse(stream, response));
        stream.on('error', (err) => this.#onBroken(stream, err));
        stream.on('end', () => this.#onBroken(stream, new Error('watch stream ended')));
        stream.write({
          create_request: {
            key: this.#range.key,
            range_end: this.#range.range_end,
            start_revision: String(this.#lastRevision + 1),
            progress_notify: true,
          },
        });
      },
      (err: unknown) => this.#onBroken(undefined, err),
    );
  }

  #onBroken(stream: GrpcStream | undefined, _err: unknown): void {
    if (stream !== undefined && stream !== this.#stream) return; // an old stream's last words
    this.#detach();
    if (this.#closed) return;
    this.#endpoint = this.#store.failedOver(this.#endpoint % this.#store.endpointCount);
    this.#schedule(() => this.#connect(), this.#backoff());
  }

  #detach(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream !== undefined) {
      try {
        stream.cancel();
      } catch {
        // already closed
      }
    }
  }

  #onResponse(stream: GrpcStream, response: WatchResponse): void {
    if (stream !== this.#stream || this.#closed) return;
    if (response.compact_revision !== '0' && response.compact_revision !== '') {
      // History we still need is gone: replace the consumer's view.
      this.#detach();
      this.#resync();
      return;
    }
    if (response.canceled) {
      this.#onBroken(stream, new Error(`etcd cancelled the watch: ${response.cancel_reason}`));
      return;
    }
    if (response.created) {
      this.#failures = 0;
      return;
    }
    if (response.events.length === 0) {
      // Progress notification: every event up to this revision was sent.
      const rev = Number(response.header.revision);
      if (rev > this.#lastRevision) this.#lastRevision = rev;
      return;
    }
    // etcd never splits one revision over two responses; group per revision.
    let batchRevision = -1;
    let events: WatchEvent[] = [];
    const flush = (): void => {
      if (events.length > 0) this.#push({ kind: 'changes', index: batchRevision, events });
      events = [];
    };
    for (const event of response.events) {
      const rev = Number(event.kv.mod_revision);
      if (rev <= this.#lastRevision) continue; // already delivered before a reconnect
      if (rev !== batchRevision) {
        flush();
        batchRevision = rev;
      }
      events.push(event.type.toUpperCase() === 'DELETE' ? this.#store.deleteEventOf(event.kv) : { type: 'put', entry: this.#store.entryOf(event.kv) });
    }
    flush();
  }

  #resync(): void {
    if (this.#closed || this.#store.closed) return;
    this.#store.listRaw(this.#prefix).then(
      (listed) => {
        if (this.#closed) return;
        this.#push({ kind: 'resync', index: listed.index, entries: listed.entries });
        this.#connect();
      },
      () => this.#schedule(() => this.#resync(), this.#backoff()),
    );
  }

  #push(batch: WatchBatch): void {
    if (this.#closed) return;
    this.#lastRevision = batch.index;
    if (this.#waiting !== undefined) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ value: batch, done: false });
      return;
    }
    this.#queue.push(batch);
    if (this.#queue.length >= EtcdWatch.HIGH_WATER && this.#stream !== undefined && !this.#paused) {
      this.#paused = true;
      this.#stream.pause();
    }
  }

  #next(): Promise<IteratorResult<WatchBatch>> {
    const batch = this.#queue.shift();
    if (batch !== undefined) {
      if (this.#paused && this.#queue.length <= EtcdWatch.LOW_WATER && this.#stream !== undefined) {
        this.#paused = false;
        this.#stream.resume();
      }
      return Promise.resolve({ value: batch, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiting !== undefined) return Promise.reject(new Error('watch: next() called while another next() is pending'));
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => this.#next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#detach();
    this.#queue = [];
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
    this.#onClose();
  }
}

// ---------------------------------------------------------------------------

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new StrataError('CONFIG_INVALID', `etcd store option ${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/**
 * Opens the etcd store. Resolves once some member answered a linearizable
 * read; throws `STORE_UNAVAILABLE` if none did within `retryTimeoutMs`, and
 * `CONFIG_INVALID` for bad options.
 */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<StateStore> {
  const endpoints = options?.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    throw new StrataError('CONFIG_INVALID', 'etcd store option endpoints must be a non-empty array of URLs');
  }
  for (const url of endpoints) {
    if (typeof url !== 'string' || !/^https?:\/\/[^\s,/]+$/.test(url)) {
      throw new StrataError('CONFIG_INVALID', `etcd endpoint ${JSON.stringify(url)} must look like http://host:port (one URL per array entry)`);
    }
  }
  if (endpoints.some((url) => url.startsWith('https:'))) {
    throw new StrataError('CONFIG_INVALID', 'etcd store: https endpoints need TLS options, which are not supported yet');
  }
  const prefix = options.prefix ?? ETCD_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !prefix.isWellFormed() || prefix.includes('\0')) {
    throw new StrataError('CONFIG_INVALID', 'etcd store option prefix must be a well-formed string without NUL');
  }
  const minTtl = positiveInt('minSessionTtlSeconds', options.minSessionTtlSeconds, ETCD_DEFAULTS.minSessionTtlSeconds);
  const maxTtl = positiveInt('maxSessionTtlSeconds', options.maxSessionTtlSeconds, ETCD_DEFAULTS.maxSessionTtlSeconds);
  if (maxTtl < minTtl) throw new StrataError('CONFIG_INVALID', 'etcd store option maxSessionTtlSeconds is below minSessionTtlSeconds');
  const store = new EtcdStore({
    endpoints,
    prefix,
    callTimeoutMs: positiveInt('callTimeoutMs', options.callTimeoutMs, ETCD_DEFAULTS.callTimeoutMs),
    retryTimeoutMs: positiveInt('retryTimeoutMs', options.retryTimeoutMs, ETCD_DEFAULTS.retryTimeoutMs),
    healthIntervalMs: positiveInt('healthIntervalMs', options.healthIntervalMs, ETCD_DEFAULTS.healthIntervalMs),
    minSessionTtlSeconds: minTtl,
    maxSessionTtlSeconds: maxTtl,
  });
  try {
    await store.ping();
  } catch (err) {
    await store.close();
    throw err;
  }
  store.startProbing();
  return store;
}

/**
 * A stateful fake of the Consul HTTP API, for tests: node:http on 127.0.0.1,
 * port 0. It implements the endpoints Strata's Consul store uses, with the
 * request and response shapes, status codes and headers of Consul's HTTP API
 * documentation (hashicorp/consul `website/content/api-docs/`); each handler
 * names the section it follows. Where the documentation is silent (the exact
 * error texts, which index a listing reports, what a no-op write does) the
 * fake follows Consul's source (`agent/kvs_endpoint.go`,
 * `agent/txn_endpoint.go`, `agent/session_endpoint.go`,
 * `agent/consul/state/kvs.go`, `agent/consul/state/txn.go`,
 * `agent/consul/rpc.go` blockingQuery) and says so.
 *
 * See README.md in this folder for what is and is not covered.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { formatGoDuration, parseGoDuration } from './go-duration.ts';

export interface FakeConsulOptions {
  /** Consul's `session_ttl_min` server setting (default 10 s). */
  readonly sessionTtlMinSeconds?: number;
  /** Consul's `limits.kv_max_value_size` (default 512 KiB). */
  readonly kvMaxValueSize?: number;
  /** Consul's `limits.txn_max_req_len` (default 512 KiB). */
  readonly txnMaxReqLen?: number;
  /** Most operations in one /v1/txn request (txn.mdx "Sample Payload": 128). */
  readonly maxTxnOps?: number;
  /** The agent's node name, used when a session names no Node. */
  readonly nodeName?: string;
  /** When set, every request must present this ACL token. */
  readonly aclToken?: string;
  /**
   * Invalidate TTL sessions after this many TTLs without renewal. Consul
   * may take up to 2 (session.mdx "Create Session", `TTL`); the default 1
   * keeps tests short.
   */
  readonly ttlMultiplier?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly token: string | undefined;
}

/** A copy of the whole state, to be restored later ("raft snapshot restore"). */
export interface FakeConsulSnapshot {
  readonly raftIndex: number;
  readonly state: State;
}

export interface FakeConsul {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request received, oldest first. */
  readonly requests: readonly RecordedRequest[];
  /** The last Raft index the fake handed out. */
  raftIndex(): number;
  /** Answer every request with 500 "No cluster leader" while on. */
  setLeaderless(on: boolean): void;
  /** Capture the state (see {@link restore}). */
  snapshot(): FakeConsulSnapshot;
  /**
   * Restore a snapshot: the data and the Raft index go back to what they
   * were (blocking.mdx "Implementation Details": a restored snapshot is one
   * way a query's index goes backwards). Sessions keep their original TTLs.
   */
  restore(snapshot: FakeConsulSnapshot): void;
  /** Tombstone garbage collection: a listing's index may then go backwards. */
  reapTombstones(): void;
  /** Cut every open client connection (blocking queries included); keep listening. */
  dropConnections(): void;
  /** Stop listening and drop every connection (blocking queries included). */
  close(): Promise<void>;
}

interface DirEntry {
  readonly Key: string;
  readonly Value: Buffer;
  readonly Flags: number;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
  readonly LockIndex: number;
  readonly Session: string;
}

interface SessionRecord {
  readonly ID: string;
  readonly Name: string;
  readonly Node: string;
  /** Nanoseconds, as Consul reports it. */
  readonly LockDelay: number;
  readonly Behavior: 'release' | 'delete';
  readonly TTL: string;
  readonly NodeChecks: readonly string[] | null;
  readonly ServiceChecks: readonly unknown[] | null;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

interface State {
  entries: Map<string, DirEntry>;
  tombstones: Map<string, number>;
  sessions: Map<string, SessionRecord>;
  /** Table indexes (Consul's `index` table): the last write to each table. */
  kvsIndex: number;
  tombstonesIndex: number;
  sessionsIndex: number;
}

function cloneState(s: State): State {
  return {
    entries: new Map(s.entries),
    tombstones: new Map(s.tombstones),
    sessions: new Map(s.sessions),
    kvsIndex: s.kvsIndex,
    tombstonesIndex: s.tombstonesIndex,
    sessionsIndex: s.sessionsIndex,
  };
}

/** api-structure.mdx "UUID Format": hashicorp/go-uuid, 16 random bytes. */
function goUuid(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Go's `%q` for the strings Consul puts in its error texts. */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** kv.mdx "Read Key" › "Metadata Response": the JSON of one entry. */
function entryJson(e: DirEntry, withValue = true): Record<string, unknown> {
  // Field order of Consul's structs.DirEntry.
  const out: Record<string, unknown> = {
    LockIndex: e.LockIndex,
    Key: e.Key,
    Flags: e.Flags,
    Value: withValue && e.Value.length > 0 ? e.Value.toString('base64') : null,
  };
  if (e.Session !== '') out.Session = e.Session;
  out.CreateIndex = e.CreateIndex;
  out.ModifyIndex = e.ModifyIndex;
  return out;
}

/** session.mdx "Read Session" › "Sample Response": the JSON of one session. */
function sessionJson(s: SessionRecord): Record<string, unknown> {
  return {
    ID: s.ID,
    Name: s.Name,
    Node: s.Node,
    LockDelay: s.LockDelay,
    Behavior: s.Behavior,
    TTL: s.TTL,
    NodeChecks: s.NodeChecks,
    ServiceChecks: s.ServiceChecks,
    CreateIndex: s.CreateIndex,
    ModifyIndex: s.ModifyIndex,
  };
}

function sameEntry(a: DirEntry, b: DirEntry): boolean {
  return a.LockIndex === b.LockIndex && a.Key === b.Key && a.Flags === b.Flags && a.Session === b.Session && a.Value.equals(b.Value);
}

/** Case-insensitive field lookup, as Go's encoding/json decodes. */
function field(obj: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}
function hasField(obj: Record<string, unknown>, name: string): boolean {
  const lower = name.toLowerCase();
  return Object.keys(obj).some((k) => k.toLowerCase() === lower);
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface TxnKvOp {
  readonly verb: string;
  readonly key: string;
  readonly value: Buffer;
  readonly flags: number;
  readonly index: number;
  readonly session: string;
}

const WRITE_VERBS = new Set(['set', 'delete', 'delete-cas', 'delete-tree', 'cas', 'lock', 'unlock']);

const MAX_WAIT_NS = 10 * 60e9;
const DEFAULT_WAIT_NS = 5 * 60e9;

export async function startFakeConsul(options: FakeConsulOptions = {}): Promise<FakeConsul> {
  const sessionTtlMinNs = (options.sessionTtlMinSeconds ?? 10) * 1e9;
  const sessionTtlMaxNs = 86400e9;
  const kvMaxValueSize = options.kvMaxValueSize ?? 512 * 1024;
  const txnMaxReqLen = Math.max(options.txnMaxReqLen ?? 512 * 1024, kvMaxValueSize);
  const maxTxnOps = options.maxTxnOps ?? 128;
  const nodeName = options.nodeName ?? 'fake-consul';
  const ttlMultiplier = options.ttlMultiplier ?? 1;

  // A fresh Consul has applied a few Raft entries before any user write.
  let raftIndex = 5;
  let state: State = { entries: new Map(), tombstones: new Map(), sessions: new Map(), kvsIndex: 0, tombstonesIndex: 0, sessionsIndex: 0 };
  const sessionTimers = new Map<string, NodeJS.Timeout>();
  let leaderless = false;
  const requests: RecordedRequest[] = [];
  let waiters = new Set<() => void>();
  let closing = false;

  const nextIndex = (): number => ++raftIndex;
  const wakeAll = (): void => {
    const w = waiters;
    waiters = new Set();
    for (const fn of w) fn();
  };

  // ---- state operations, after agent/consul/state/kvs.go ----

  function kvsMaxIndex(s: State): number {
    return Math.max(s.kvsIndex, s.tombstonesIndex);
  }

  /** kvsSetTxn: keeps CreateIndex, keeps the session unless told otherwise, skips unchanged entries. */
  function kvsSet(s: State, idx: number, entry: Omit<DirEntry, 'CreateIndex' | 'ModifyIndex'>, updateSession: boolean): DirEntry {
    const existing = s.entries.get(entry.Key);
    const candidate: DirEntry = {
      ...entry,
      Session: updateSession ? entry.Session : (existing?.Session ?? ''),
      CreateIndex: existing?.CreateIndex ?? idx,
      ModifyIndex: idx,
    };
    if (existing && sameEntry(existing, candidate)) return existing;
    s.entries.set(entry.Key, candidate);
    s.kvsIndex = idx;
    return candidate;
  }

  function kvsDelete(s: State, idx: number, key: string): void {
    if (!s.entries.has(key)) return;
    s.tombstones.set(key, idx);
    s.tombstonesIndex = idx;
    s.entries.delete(key);
    s.kvsIndex = idx;
  }

  /** kvsDeleteCASTxn: a missing key counts as success (nothing to delete). */
  function kvsDeleteCas(s: State, idx: number, cidx: number, key: string): boolean {
    const e = s.entries.get(key);
    if (!e || e.ModifyIndex !== cidx) return e === undefined;
    kvsDelete(s, idx, key);
    return true;
  }

  /** kvsDeleteTreeTxn: one tombstone for the prefix (none for the whole tree). */
  function kvsDeleteTree(s: State, idx: number, prefix: string): void {
    let deleted = false;
    for (const key of [...s.entries.keys()]) {
      if (key.startsWith(prefix)) {
        s.entries.delete(key);
        deleted = true;
      }
    }
    if (!deleted) return;
    if (prefix !== '') {
      s.tombstones.set(prefix, idx);
      s.tombstonesIndex = idx;
    }
    s.kvsIndex = idx;
  }

  /** kvsSetCASTxn: 0 = only if absent, n = only if ModifyIndex is n. */
  function kvsSetCas(s: State, idx: number, cidx: number, entry: Omit<DirEntry, 'CreateIndex' | 'ModifyIndex'>): DirEntry | undefined {
    const existing = s.entries.get(entry.Key);
    if (cidx === 0 && existing) return undefined;
    if (cidx !== 0 && (!existing || existing.ModifyIndex !== cidx)) return undefined;
    return kvsSet(s, idx, entry, false);
  }

  /** kvsLockTxn: throws for a missing/invalid session, undefined if another session holds the key. */
  function kvsLock(s: State, idx: number, entry: Omit<DirEntry, 'CreateIndex' | 'ModifyIndex' | 'LockIndex'>): DirEntry | undefined {
    if (entry.Session === '') throw new Error('missing session');
    if (!s.sessions.has(entry.Session)) throw new Error(`invalid session ${goQuote(entry.Session)}`);
    const existing = s.entries.get(entry.Key);
    let lockIndex = 1;
    if (existing) {
      if (existing.Session === entry.Session) lockIndex = existing.LockIndex;
      else if (existing.Session !== '') return undefined;
      else lockIndex = existing.LockIndex + 1;
    }
    return kvsSet(s, idx, { ...entry, LockIndex: lockIndex }, true);
  }

  /** kvsUnlockTxn: the key must exist and be held by this session. */
  function kvsUnlock(s: State, idx: number, entry: Omit<DirEntry, 'CreateIndex' | 'ModifyIndex' | 'LockIndex'>): DirEntry | undefined {
    if (entry.Session === '') throw new Error('missing session');
    const existing = s.entries.get(entry.Key);
    if (!existing || existing.Session !== entry.Session) return undefined;
    return kvsSet(s, idx, { ...entry, Session: '', LockIndex: existing.LockIndex }, true);
  }

  /** kvsListTxn: max ModifyIndex of the entries and tombstones under the prefix, else the table index. */
  function kvsList(s: State, prefix: string): { index: number; entries: DirEntry[] } {
    const entries = [...s.entries.values()].filter((e) => e.Key.startsWith(prefix)).sort((a, b) => byteOrder(a.Key, b.Key));
    let lindex = 0;
    for (const e of entries) lindex = Math.max(lindex, e.ModifyIndex);
    if (prefix !== '') {
      for (const [key, idx] of s.tombstones) if (key.startsWith(prefix)) lindex = Math.max(lindex, idx);
    } else {
      lindex = kvsMaxIndex(s);
    }
    return { index: lindex !== 0 ? lindex : kvsMaxIndex(s), entries };
  }

  /** deleteSessionTxn: the session's keys are released or deleted at the same index. */
  function invalidateSession(s: State, idx: number, id: string): void {
    const session = s.sessions.get(id);
    if (!session) return;
    for (const e of [...s.entries.values()]) {
      if (e.Session !== id) continue;
      if (session.Behavior === 'delete') kvsDelete(s, idx, e.Key);
      else kvsSet(s, idx, { ...e, Session: '' }, true);
    }
    s.sessions.delete(id);
    s.sessionsIndex = idx;
  }

  function armSessionTimer(session: SessionRecord): void {
    const old = sessionTimers.get(session.ID);
    if (old) clearTimeout(old);
    const ttlNs = session.TTL === '' ? 0 : (parseGoDuration(session.TTL) ?? 0);
    if (ttlNs === 0) return;
    const timer = setTimeout(() => {
      sessionTimers.delete(session.ID);
      if (!state.sessions.has(session.ID)) return;
      invalidateSession(state, nextIndex(), session.ID);
      wakeAll();
    }, (ttlNs / 1e6) * ttlMultiplier);
    timer.unref();
    sessionTimers.set(session.ID, timer);
  }

  // ---- HTTP plumbing ----

  /** Consul's setMeta: the headers of every endpoint that supports blocking queries (blocking.mdx). */
  function metaHeaders(index: number): Record<string, string> {
    return { 'X-Consul-Index': String(Math.max(index, 1)), 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  /** kv.mdx "Read Key": a 404 has no body, only the blocking-query headers. */
  function sendNotFound(res: ServerResponse, index: number): void {
    res.writeHead(404, { ...metaHeaders(index), 'Content-Length': 0 });
    res.end();
  }

  /** Errors are plain text (Consul writes the message with fmt.Fprint). */
  function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new HttpError(413, `Request body too large, max size: ${limit} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  interface Blocking {
    readonly minIndex: number;
    readonly waitMs: number;
  }

  /** blocking.mdx: `index` and `wait` (default 5m, at most 10m, plus up to wait/16 of jitter). */
  function parseBlocking(query: URLSearchParams): Blocking {
    let minIndex = 0;
    if (query.has('index')) {
      const text = query.get('index') ?? '';
      if (!/^\d+$/u.test(text)) throw new HttpError(400, 'Invalid index');
      minIndex = Number(text);
    }
    let waitNs = DEFAULT_WAIT_NS;
    if (query.has('wait')) {
      const parsed = parseGoDuration(query.get('wait') ?? '');
      if (parsed === undefined || parsed < 0) throw new HttpError(400, 'Invalid wait time');
      waitNs = Math.min(parsed, MAX_WAIT_NS);
    }
    const waitMs = waitNs / 1e6;
    return { minIndex, waitMs: waitMs + Math.random() * (waitMs / 16) };
  }

  /**
   * agent/consul/rpc.go blockingQuery: run the query; without `index`
   * answer at once; otherwise answer when the result's index passes
   * `index`, or when `wait` runs out (with whatever the index is then).
   */
  async function blockingQuery<T extends { index: number }>(req: IncomingMessage, blocking: Blocking, run: () => T): Promise<T | undefined> {
    const deadline = Date.now() + blocking.waitMs;
    for (;;) {
      const result = run();
      if (blocking.minIndex === 0 || Math.max(result.index, 1) > blocking.minIndex || Date.now() >= deadline || closing) return result;
      const gone = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
        const onClose = (): void => finish(true);
        const wake = (): void => finish(false);
        function finish(closed: boolean): void {
          clearTimeout(timer);
          waiters.delete(wake);
          req.socket.off('close', onClose);
          resolve(closed);
        }
        waiters.add(wake);
        req.socket.once('close', onClose);
      });
      if (gone) return undefined;
    }
  }

  // ---- /v1/kv ----

  /** kv.mdx "Read Key" (GET /kv/:key, ?recurse, ?keys, ?separator; blocking). */
  async function kvGet(req: IncomingMessage, res: ServerResponse, key: string, query: URLSearchParams): Promise<void> {
    const blocking = parseBlocking(query);
    if (query.has('keys')) {
      // kv.mdx "Keys Response": an array of key names, up to the separator.
      const separator = query.get('separator') ?? '';
      const result = await blockingQuery(req, blocking, () => {
        const listed = kvsList(state, key);
        const keys: string[] = [];
        for (const e of listed.entries) {
          const rest = e.Key.slice(key.length);
          const cut = separator === '' ? -1 : rest.indexOf(separator);
          const name = cut === -1 ? e.Key : e.Key.slice(0, key.length + cut + separator.length);
          if (keys[keys.length - 1] !== name) keys.push(name);
        }
        return { index: listed.index, keys };
      });
      if (!result) return;
      if (result.keys.length === 0 && key !== '') return sendNotFound(res, result.index);
      return sendJson(res, 200, result.keys, metaHeaders(result.index));
    }
    if (query.has('recurse')) {
      const result = await blockingQuery(req, blocking, () => kvsList(state, key));
      if (!result) return;
      if (result.entries.length === 0) return sendNotFound(res, result.index);
      return sendJson(res, 200, result.entries.map((e) => entryJson(e)), metaHeaders(result.index));
    }
    if (key === '') throw new HttpError(400, 'Missing key name');
    // "If no key exists at the given path, a 404 is returned"; the index is
    // then the KV table's (agent/consul/kvs_endpoint.go Get).
    const result = await blockingQuery(req, blocking, () => {
      const entry = state.entries.get(key);
      return { index: entry ? entry.ModifyIndex : kvsMaxIndex(state), entry };
    });
    if (!result) return;
    if (!result.entry) return sendNotFound(res, result.index);
    return sendJson(res, 200, [entryJson(result.entry)], metaHeaders(result.index));
  }

  function parseUint(query: URLSearchParams, name: string): number {
    const text = query.get(name) ?? '';
    if (!/^\d+$/u.test(text)) throw new HttpError(400, `strconv.ParseUint: parsing ${goQuote(text)}: invalid syntax`);
    return Number(text);
  }

  function conflicting(query: URLSearchParams, ...names: string[]): void {
    if (names.filter((n) => query.has(n)).length > 1) throw new HttpError(400, `Conflicting flags: ${query.toString()}\n`);
  }

  /** kv.mdx "Create/Update Key": PUT /kv/:key with ?flags, ?cas, ?acquire, ?release; answers true or false. */
  async function kvPut(req: IncomingMessage, res: ServerResponse, key: string, query: URLSearchParams): Promise<void> {
    if (key === '') throw new HttpError(400, 'Missing key name');
    conflicting(query, 'cas', 'acquire', 'release');
    const flags = query.has('flags') ? parseUint(query, 'flags') : 0;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > kvMaxValueSize) {
      throw new HttpError(413, `Request body(${declared} bytes) too large, max size: ${kvMaxValueSize} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`);
    }
    const value = await readBody(req, kvMaxValueSize);
    const idx = nextIndex();
    let ok: boolean;
    if (query.has('cas')) {
      ok = kvsSetCas(state, idx, parseUint(query, 'cas'), { Key: key, Value: value, Flags: flags, LockIndex: 0, Session: '' }) !== undefined;
    } else if (query.has('acquire')) {
      try {
        ok = kvsLock(state, idx, { Key: key, Value: value, Flags: flags, Session: query.get('acquire') ?? '' }) !== undefined;
      } catch (err) {
        throw new HttpError(500, (err as Error).message);
      }
    } else if (query.has('release')) {
      try {
        ok = kvsUnlock(state, idx, { Key: key, Value: value, Flags: flags, Session: query.get('release') ?? '' }) !== undefined;
      } catch (err) {
        throw new HttpError(500, (err as Error).message);
      }
    } else {
      kvsSet(state, idx, { Key: key, Value: value, Flags: flags, LockIndex: 0, Session: '' }, false);
      ok = true;
    }
    wakeAll();
    sendJson(res, 200, ok);
  }

  /** kv.mdx "Delete Key": DELETE /kv/:key with ?recurse or ?cas; answers true or false. */
  function kvDelete(res: ServerResponse, key: string, query: URLSearchParams): void {
    conflicting(query, 'recurse', 'cas');
    if (!query.has('recurse') && key === '') throw new HttpError(400, 'Missing key name');
    const idx = nextIndex();
    let ok = true;
    if (query.has('recurse')) kvsDeleteTree(state, idx, key);
    else if (query.has('cas')) ok = kvsDeleteCas(state, idx, parseUint(query, 'cas'), key);
    else kvsDelete(state, idx, key);
    wakeAll();
    sendJson(res, 200, ok);
  }

  // ---- /v1/txn ----

  function decodeOps(body: Buffer): TxnKvOp[] {
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, `Failed to parse body: ${(err as Error).message}`);
    }
    if (!Array.isArray(raw)) throw new HttpError(400, 'Failed to parse body: json: cannot unmarshal object into Go value of type api.TxnOps');
    if (raw.length > maxTxnOps) throw new HttpError(413, `Transaction contains too many operations (${raw.length} > ${maxTxnOps})`);
    return raw.map((op: unknown) => {
      if (typeof op !== 'object' || op === null) throw new HttpError(400, 'Failed to parse body: operation is not an object');
      const kv = field(op as Record<string, unknown>, 'KV');
      if (typeof kv !== 'object' || kv === null) {
        throw new HttpError(400, 'Failed to parse body: this fake implements KV operations only');
      }
      const o = kv as Record<string, unknown>;
      const valueText = field(o, 'Value');
      let value = Buffer.alloc(0);
      if (valueText !== undefined && valueText !== null) {
        if (typeof valueText !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/u.test(valueText) || valueText.length % 4 !== 0) {
          throw new HttpError(400, 'Failed to parse body: failed to decode value: illegal base64 data');
        }
        value = Buffer.from(valueText, 'base64');
      }
      const key = String(field(o, 'Key') ?? '');
      if (value.length > kvMaxValueSize) throw new HttpError(413, `Value for key ${goQuote(key)} is too large (${value.length} > ${kvMaxValueSize} bytes)`);
      const num = (name: string): number => {
        const v = field(o, name);
        return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
      };
      return {
        verb: String(field(o, 'Verb') ?? ''),
        key,
        value,
        flags: num('Flags'),
        index: num('Index'),
        session: String(field(o, 'Session') ?? ''),
      };
    });
  }

  /** agent/consul/state/txn.go txnKVS: one KV operation; returns its results or throws its error. */
  function applyKvOp(s: State, idx: number, op: TxnKvOp): Record<string, unknown>[] {
    const base = { Key: op.key, Value: op.value, Flags: op.flags };
    const blank = (e: DirEntry | undefined): Record<string, unknown>[] => (e ? [{ KV: entryJson(e, false) }] : []);
    switch (op.verb) {
      case 'set':
        return blank(kvsSet(s, idx, { ...base, LockIndex: 0, Session: '' }, false));
      case 'cas': {
        const e = kvsSetCas(s, idx, op.index, { ...base, LockIndex: 0, Session: '' });
        if (!e) throw new Error(`failed to set key ${goQuote(op.key)}, index is stale`);
        return blank(e);
      }
      case 'lock': {
        const e = kvsLock(s, idx, { ...base, Session: op.session });
        if (!e) throw new Error(`failed to lock key ${goQuote(op.key)}, lock is already held`);
        return blank(e);
      }
      case 'unlock': {
        const e = kvsUnlock(s, idx, { ...base, Session: op.session });
        if (!e) throw new Error(`failed to unlock key ${goQuote(op.key)}, lock isn't held, or is held by another session`);
        return blank(e);
      }
      case 'get': {
        const e = s.entries.get(op.key);
        if (!e) throw new Error(`key ${goQuote(op.key)} doesn't exist`);
        return [{ KV: entryJson(e) }];
      }
      case 'get-or-empty': {
        const e = s.entries.get(op.key);
        return [{ KV: e ? entryJson(e) : { LockIndex: 0, Key: op.key, Flags: op.flags, Value: null, CreateIndex: 0, ModifyIndex: 0 } }];
      }
      case 'get-tree':
        return kvsList(s, op.key).entries.map((e) => ({ KV: entryJson(e) }));
      case 'check-index': {
        const e = s.entries.get(op.key);
        if (!e) throw new Error(`failed to check index, key ${goQuote(op.key)} doesn't exist`);
        if (e.ModifyIndex !== op.index) throw new Error(`failed index check for key ${goQuote(op.key)}, current modify index ${e.ModifyIndex} != ${op.index}`);
        return blank(e);
      }
      case 'check-session': {
        const e = s.entries.get(op.key);
        if (!e) throw new Error(`failed to check session, key ${goQuote(op.key)} doesn't exist`);
        if (e.Session !== op.session) throw new Error(`failed session check for key ${goQuote(op.key)}, current session ${goQuote(e.Session)} != ${goQuote(op.session)}`);
        return blank(e);
      }
      case 'check-not-exists':
        if (s.entries.has(op.key)) throw new Error(`key ${goQuote(op.key)} exists`);
        return [];
      case 'delete':
        kvsDelete(s, idx, op.key);
        return [];
      case 'delete-cas':
        if (!kvsDeleteCas(s, idx, op.index, op.key)) throw new Error(`failed to delete key ${goQuote(op.key)}, index is stale`);
        return [];
      case 'delete-tree':
        kvsDeleteTree(s, idx, op.key);
        return [];
      default:
        throw new Error(`unknown KV verb ${goQuote(op.verb)}`);
    }
  }

  /**
   * txn.mdx "Create Transaction": all or nothing; 200 with Results, or 409
   * with Errors [{OpIndex, What}] and nothing applied. A transaction without
   * writes is a read (no Raft index, X-Consul-KnownLeader/LastContact).
   */
  async function txn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > txnMaxReqLen) throw new HttpError(413, `Request body too large, max size: ${txnMaxReqLen} bytes`);
    const ops = decodeOps(await readBody(req, txnMaxReqLen));
    const writes = ops.filter((op) => WRITE_VERBS.has(op.verb)).length;
    const work = cloneState(state);
    const idx = writes > 0 ? nextIndex() : 0;
    const results: Record<string, unknown>[] = [];
    const errors: { OpIndex: number; What: string }[] = [];
    ops.forEach((op, i) => {
      try {
        results.push(...applyKvOp(work, idx, op));
      } catch (err) {
        errors.push({ OpIndex: i, What: (err as Error).message });
      }
    });
    const readHeaders: Record<string, string> = writes === 0 ? { 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' } : {};
    if (errors.length > 0) return sendJson(res, 409, { Results: null, Errors: errors }, readHeaders);
    if (writes > 0) {
      state = work;
      wakeAll();
    }
    sendJson(res, 200, { Results: results, Errors: null }, readHeaders);
  }

  // ---- /v1/session ----

  /** session.mdx "Create Session": PUT /session/create → {"ID": ...}. */
  async function sessionCreate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = (await readBody(req, 1024 * 1024)).toString('utf8');
    let body: Record<string, unknown> = {};
    if (text.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new HttpError(400, `Request decode failed: ${(err as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'Request decode failed: body is not an object');
      body = parsed as Record<string, unknown>;
    }
    // Defaults of agent/session_endpoint.go SessionCreate.
    let lockDelayNs = 15e9;
    if (hasField(body, 'LockDelay')) {
      const raw = field(body, 'LockDelay');
      let ns: number | undefined;
      if (typeof raw === 'string') ns = parseGoDuration(raw);
      else if (typeof raw === 'number') ns = raw;
      if (ns === undefined) throw new HttpError(400, `Request decode failed: time: invalid duration ${goQuote(String(raw))}`);
      // FixupLockDelay: small numbers are seconds.
      lockDelayNs = ns < 1000 ? ns * 1e9 : ns;
    }
    const behavior = String(field(body, 'Behavior') ?? '') || 'release';
    if (behavior !== 'release' && behavior !== 'delete') throw new HttpError(500, `Invalid Behavior setting '${behavior}'`);
    const ttl = String(field(body, 'TTL') ?? '');
    if (ttl !== '') {
      const ns = parseGoDuration(ttl);
      if (ns === undefined) throw new HttpError(500, `Session TTL '${ttl}' invalid: time: invalid duration ${goQuote(ttl)}`);
      if (ns !== 0 && (ns < sessionTtlMinNs || ns > sessionTtlMaxNs)) {
        throw new HttpError(500, `Invalid Session TTL '${ns}', must be between [${formatGoDuration(sessionTtlMinNs)}=${formatGoDuration(sessionTtlMaxNs)}]`);
      }
    }
    // Checks (deprecated) and NodeChecks replace the default serfHealth.
    let nodeChecks: readonly string[] | null = ['serfHealth'];
    for (const name of ['Checks', 'NodeChecks']) {
      if (hasField(body, name)) {
        const v = field(body, name);
        nodeChecks = Array.isArray(v) && v.length > 0 ? v.map(String) : null;
      }
    }
    const serviceChecks = field(body, 'ServiceChecks');
    const idx = nextIndex();
    const session: SessionRecord = {
      ID: goUuid(),
      Name: String(field(body, 'Name') ?? ''),
      Node: String(field(body, 'Node') ?? '') || nodeName,
      LockDelay: lockDelayNs,
      Behavior: behavior,
      TTL: ttl,
      NodeChecks: nodeChecks,
      ServiceChecks: Array.isArray(serviceChecks) && serviceChecks.length > 0 ? serviceChecks : null,
      CreateIndex: idx,
      ModifyIndex: idx,
    };
    state.sessions.set(session.ID, session);
    state.sessionsIndex = idx;
    armSessionTimer(session);
    sendJson(res, 200, { ID: session.ID });
  }

  /** session.mdx "Delete Session": idempotent, answers true; a malformed UUID is an error. */
  function sessionDestroy(res: ServerResponse, id: string): void {
    if (id === '') throw new HttpError(400, 'Missing session');
    if (!UUID_RE.test(id)) throw new HttpError(400, `Session ID ${goQuote(id)} must be a valid UUID`);
    if (state.sessions.has(id)) {
      invalidateSession(state, nextIndex(), id);
      const timer = sessionTimers.get(id);
      if (timer) clearTimeout(timer);
      sessionTimers.delete(id);
      wakeAll();
    }
    sendJson(res, 200, true);
  }

  /** session.mdx "Renew Session": [session], or 404 "Session id '…' not found". */
  function sessionRenew(res: ServerResponse, id: string): void {
    if (id === '') throw new HttpError(400, 'Missing session');
    const session = state.sessions.get(id);
    if (!session) return sendText(res, 404, `Session id '${id}' not found`);
    armSessionTimer(session);
    sendJson(res, 200, [sessionJson(session)]);
  }

  /** session.mdx "Read Session": [session], or [] when it does not exist (blocking). */
  async function sessionInfo(req: IncomingMessage, res: ServerResponse, id: string, query: URLSearchParams): Promise<void> {
    if (id === '') throw new HttpError(400, 'Missing session');
    const result = await blockingQuery(req, parseBlocking(query), () => {
      const session = state.sessions.get(id);
      return { index: session ? session.ModifyIndex : state.sessionsIndex, session };
    });
    if (!result) return;
    sendJson(res, 200, result.session ? [sessionJson(result.session)] : [], metaHeaders(result.index));
  }

  /** session.mdx "List Sessions" (blocking). */
  async function sessionList(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const result = await blockingQuery(req, parseBlocking(query), () => ({ index: state.sessionsIndex, sessions: [...state.sessions.values()] }));
    if (!result) return;
    sendJson(res, 200, result.sessions.map(sessionJson), metaHeaders(result.index));
  }

  // ---- routing ----

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw new HttpError(400, 'invalid URL escape');
    }
    const query = url.searchParams;
    const headerToken = req.headers['x-consul-token'];
    const bearer = /^Bearer (.+)$/u.exec(req.headers.authorization ?? '')?.[1];
    const token = (typeof headerToken === 'string' ? headerToken : undefined) ?? bearer ?? query.get('token') ?? undefined;
    requests.push({ method, path, query: Object.fromEntries(query), token });
    // api-structure.mdx "Default ACL Policy": on every response since 1.9.
    res.setHeader('X-Consul-Default-ACL-Policy', options.aclToken === undefined ? 'allow' : 'deny');
    if (options.aclToken !== undefined && token !== options.aclToken) throw new HttpError(403, 'ACL not found');
    if (leaderless) throw new HttpError(500, 'No cluster leader');

    const allow = (...methods: string[]): void => {
      if (!methods.includes(method)) throw new HttpError(405, `method ${method} not allowed`);
    };
    if (path.startsWith('/v1/kv/') || path === '/v1/kv') {
      const key = path.slice('/v1/kv/'.length);
      allow('GET', 'PUT', 'DELETE');
      if (method === 'GET') return kvGet(req, res, key, query);
      if (method === 'PUT') return kvPut(req, res, key, query);
      return kvDelete(res, key, query);
    }
    if (path === '/v1/txn') {
      allow('PUT');
      return txn(req, res);
    }
    if (path === '/v1/session/create') {
      allow('PUT');
      return sessionCreate(req, res);
    }
    if (path.startsWith('/v1/session/destroy/')) {
      allow('PUT');
      return sessionDestroy(res, path.slice('/v1/session/destroy/'.length));
    }
    if (path.startsWith('/v1/session/renew/')) {
      allow('PUT');
      return sessionRenew(res, path.slice('/v1/session/renew/'.length));
    }
    if (path.startsWith('/v1/session/info/')) {
      allow('GET');
      return sessionInfo(req, res, path.slice('/v1/session/info/'.length), query);
    }
    if (path === '/v1/session/list') {
      allow('GET');
      return sessionList(req, res, query);
    }
    throw new HttpError(404, '404 page not found\n');
  }

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendText(res, err.status, err.message);
      else sendText(res, 500, err instanceof Error ? err.message : String(err));
    });
  });
  // Go's http.Server keeps idle connections open; so does the fake, so the
  // client's keep-alive pool is not raced by server-side idle closes.
  server.keepAliveTimeout = 120_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;

  return {
    address: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    raftIndex: () => raftIndex,
    setLeaderless(on: boolean): void {
      leaderless = on;
    },
    snapshot(): FakeConsulSnapshot {
      return { raftIndex, state: cloneState(state) };
    },
    restore(snapshot: FakeConsulSnapshot): void {
      raftIndex = snapshot.raftIndex;
      state = cloneState(snapshot.state);
      for (const timer of sessionTimers.values()) clearTimeout(timer);
      sessionTimers.clear();
      for (const session of state.sessions.values()) armSessionTimer(session);
      wakeAll();
    },
    reapTombstones(): void {
      state.tombstones.clear();
    },
    dropConnections(): void {
      for (const socket of sockets) socket.destroy();
    },
    async close(): Promise<void> {
      closing = true;
      for (const timer of sessionTimers.values()) clearTimeout(timer);
      sessionTimers.clear();
      wakeAll();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

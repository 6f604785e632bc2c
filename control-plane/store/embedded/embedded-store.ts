/**
 * The embedded state store: the `StateStore` port on Node's built-in
 * `node:sqlite`, for single-node `strata up`.
 *
 * Durability: one SQLite file in WAL mode with `synchronous=FULL`; a write is
 * acknowledged only after the COMMIT that holds it returned, so no
 * acknowledged write is lost on SIGKILL or power loss.
 *
 * Group commit: writes are queued and every write that arrives in the same
 * event-loop turn is applied in ONE SQLite transaction, in arrival order
 * (each keeps its own index; check-and-set sees the writes queued before it),
 * and all are settled after that COMMIT returns. One fsync then pays for up to
 * {@link MAX_GROUP} writes.
 *
 * History: every change is also appended to a `history` table (index, key,
 * type, value), so a watch can resume from any index still retained. History
 * is pruned to the newest `historyLimit` indexes; a watch from an older index
 * gets a `resync` batch with the whole prefix.
 *
 * Data-file safety: the file carries `PRAGMA application_id` and a `meta`
 * table with a format version. Before anything writes, the file is inspected
 * (header bytes, size against the header's page count, read-only
 * `quick_check`, application id, format version); a file that is not a SQLite
 * database, is someone else's, is from an unknown format or is damaged is
 * refused with `STORE_DATA_CORRUPT` and left byte-for-byte untouched. The file
 * is held with an exclusive lock while open, so a second process cannot open
 * it (`STORE_UNAVAILABLE`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
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

/** `PRAGMA application_id` of a Strata store file: ASCII "STRA". */
export const EMBEDDED_APPLICATION_ID = 0x53545241;
/** The data-file format this build reads and writes (`meta.format`). */
export const EMBEDDED_FORMAT_VERSION = 1;
/** Indexes of change history kept for resuming watches, by default. */
export const DEFAULT_HISTORY_LIMIT = 100_000;
/** Most writes applied in one SQLite transaction. */
const MAX_GROUP = 4096;
/** A watch whose consumer lags this many batches is fed from the history table instead. */
const WATCH_QUEUE_LIMIT = 10_000;
/** Indexes a lagging watch reads from the history table at a time. */
const WATCH_CATCHUP_WINDOW = 4096;
const SWEEP_INTERVAL_MS = 100;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

export const EMBEDDED_CAPABILITIES: StoreCapabilities = Object.freeze({
  watchHistory: 'every-index',
  minSessionTtlSeconds: 1,
  maxSessionTtlSeconds: 86_400,
});

/** The logging this store does; a pino logger fits. */
export interface EmbeddedStoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EmbeddedStoreOptions {
  /** The data file, or `':memory:'` for a store that lives only in this process. */
  readonly path: string;
  /** Indexes of change history kept for watches (default {@link DEFAULT_HISTORY_LIMIT}). */
  readonly historyLimit?: number;
  readonly logger?: EmbeddedStoreLogger;
}

export interface EmbeddedStoreStats {
  /** The current (last committed) index. */
  readonly index: number;
  /** History holds every change with an index above this. */
  readonly compactedIndex: number;
  /** SQLite transactions committed by the group-commit loop. */
  readonly commits: number;
  /** Operations (writes, session changes) settled by those commits. */
  readonly operations: number;
  /** Most operations one commit carried. */
  readonly largestGroup: number;
  readonly sessions: number;
  readonly watches: number;
}

/** The embedded store: the port plus a few embedded-only operations. */
export interface EmbeddedStateStore extends StateStore {
  /** Drop all change history up to the current index (watches from older indexes resync). */
  compact(): Promise<void>;
  stats(): EmbeddedStoreStats;
}

// ---------------------------------------------------------------------------
// Data-file inspection and creation

function corrupt(file: string, what: string, cause?: unknown): StrataError {
  return new StrataError('STORE_DATA_CORRUPT', `store data file ${file} ${what}; the file was left untouched`, {
    details: { path: file },
    ...(cause === undefined ? {} : { cause }),
  });
}

function sqliteCode(err: unknown): number | undefined {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? code & 0xff : undefined;
}

/** Maps an error from opening or reading a data file to a StrataError. */
function classifyOpenError(file: string, err: unknown, doing: string): StrataError {
  if (isStrataError(err)) return err;
  const code = sqliteCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 5 || code === 6) {
    return new StrataError('STORE_UNAVAILABLE', `store data file ${file} is in use by another process (${message})`, { cause: err });
  }
  if (code === 11 || code === 26) return corrupt(file, `is damaged or not a database (${message})`, err);
  return new StrataError('STORE_UNAVAILABLE', `cannot ${doing} store data file ${file}: ${message}`, { cause: err });
}

function fileSize(file: string): number | undefined {
  try {
    return fs.statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Checks that `file` is an intact Strata store without writing to it: header
 * bytes, size, `quick_check` on a read-only connection, application id,
 * format version, tables. Throws STORE_DATA_CORRUPT naming the file.
 */
export function inspectDataFile(file: string): void {
  const stat = fs.statSync(file);
  if (!stat.isFile()) throw corrupt(file, 'is not a regular file');
  const size = stat.size;
  if (size < 100) {
    throw corrupt(file, `is ${size} bytes, too short to be a store (truncated, or not a database)`);
  }
  const header = Buffer.alloc(100);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (!header.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw corrupt(file, 'is not a SQLite database (it does not start with "SQLite format 3")');
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65_536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
    throw corrupt(file, `has an invalid page size ${rawPageSize} in its header`);
  }
  if (size % pageSize !== 0) {
    throw corrupt(file, `is ${size} bytes, not a whole number of ${pageSize}-byte pages (torn write, truncation or appended bytes)`);
  }
  // While a WAL file holds frames the main file may legitimately lag its
  // header; without one, the header's page count must match the size.
  const walBytes = fileSize(`${file}-wal`) ?? 0;
  const headerPages = header.readUInt32BE(28);
  const headerSizeValid = headerPages !== 0 && header.readUInt32BE(24) === header.readUInt32BE(92);
  if (walBytes === 0 && headerSizeValid && headerPages * pageSize !== size) {
    const expected = headerPages * pageSize;
    throw corrupt(
      file,
      `is ${size} bytes but its header records ${headerPages} pages of ${pageSize} bytes (${expected} bytes): ${
        size > expected ? 'bytes were appended after the last page' : 'it was truncated'
      }`,
    );
  }

  // A read-only connection to a WAL-mode file may create the -wal and -shm
  // side files; those it created are removed again afterwards.
  const hadWal = fileSize(`${file}-wal`) !== undefined;
  const hadShm = fileSize(`${file}-shm`) !== undefined;
  const removeCreatedSideFiles = (): void => {
    if (!hadShm) fs.rmSync(`${file}-shm`, { force: true });
    if (!hadWal && fileSize(`${file}-wal`) === 0) fs.rmSync(`${file}-wal`, { force: true });
  };
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { readOnly: true });
  } catch (err) {
    removeCreatedSideFiles();
    throw classifyOpenError(file, err, 'open');
  }
  try {
    const problems = (db.prepare('PRAGMA quick_check(5)').all() as Array<{ quick_check: string }>).map((r) => r.quick_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw corrupt(file, `fails SQLite's integrity check: ${problems.join('; ').replaceAll('\n', ' ')}`);
    }
    const appId = (db.prepare('PRAGMA application_id').get() as { application_id: number }).application_id;
    if (appId !== EMBEDDED_APPLICATION_ID) {
      throw corrupt(
        file,
        `is a SQLite database but not a Strata store (application_id ${appId}, expected ${EMBEDDED_APPLICATION_ID})`,
      );
    }
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name),
    );
    for (const table of ['meta', 'kv', 'history', 'sessions']) {
      if (!tables.has(table)) throw corrupt(file, `is a Strata store without its "${table}" table`);
    }
    const format = (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as { value: unknown } | undefined)?.value;
    if (format !== EMBEDDED_FORMAT_VERSION) {
      throw corrupt(
        file,
        `has store format version ${JSON.stringify(format ?? null)}; this build reads version ${EMBEDDED_FORMAT_VERSION}`,
      );
    }
  } catch (err) {
    throw classifyOpenError(file, err, 'read');
  } finally {
    db.close();
    removeCreatedSideFiles();
  }
}

const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;
  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    create_index INTEGER NOT NULL,
    modify_index INTEGER NOT NULL,
    session TEXT
  ) WITHOUT ROWID;
  CREATE INDEX kv_session ON kv (session) WHERE session IS NOT NULL;
  CREATE TABLE history (
    idx INTEGER NOT NULL,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    value TEXT,
    create_index INTEGER,
    session TEXT
  );
  CREATE INDEX history_idx ON history (idx);
  CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL, ttl_ms INTEGER NOT NULL) WITHOUT ROWID;
`;

function initialise(db: DatabaseSync): void {
  db.exec(`PRAGMA application_id = ${EMBEDDED_APPLICATION_ID}`);
  db.exec('BEGIN');
  db.exec(SCHEMA);
  const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
  meta.run('format', EMBEDDED_FORMAT_VERSION);
  meta.run('index', 0);
  meta.run('compacted', 0);
  db.exec('COMMIT');
}

/**
 * Creates a new store file at `file` atomically: it is built under a temporary
 * name and hard-linked into place, so `file` is either absent or a complete
 * store, and an existing file is never replaced.
 */
function createDataFile(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.init-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // The store holds password hashes and signing keys: owner-only. SQLite
    // gives its -wal and -shm files the database file's mode.
    fs.writeFileSync(temp, '', { mode: 0o600, flag: 'wx' });
    const db = new DatabaseSync(temp);
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      initialise(db);
    } finally {
      db.close();
    }
    const fd = fs.openSync(temp, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(temp, file);
    } catch (err) {
      // Someone created it meanwhile: it is inspected like any existing file.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } finally {
    for (const leftover of [temp, `${temp}-wal`, `${temp}-shm`]) fs.rmSync(leftover, { force: true });
  }
}

// ---------------------------------------------------------------------------
// Helpers

/** The half-open key range `[lower, upper)` of a prefix, compared as UTF-8 bytes. */
function prefixUpperBound(prefix: string): Buffer | undefined {
  if (prefix === '') return undefined;
  const bytes = Buffer.from(prefix, 'utf8');
  // UTF-8 never holds 0xFF, so the last byte can always be incremented.
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! + 1;
  return bytes;
}

interface KvRow {
  key: string;
  value: string;
  create_index: number;
  modify_index: number;
  session: string | null;
}

interface HeadRow {
  create_index: number;
  modify_index: number;
}

interface HistoryRow {
  idx: number;
  key: string;
  type: number;
  value: string | null;
  create_index: number | null;
  session: string | null;
}

function entry(key: string, value: string, createIndex: number, modifyIndex: number, session: string | null | undefined): KvEntry {
  return session === null || session === undefined
    ? { key, value, createIndex, modifyIndex }
    : { key, value, createIndex, modifyIndex, sessionId: session };
}

function rowEntry(row: KvRow): KvEntry {
  return entry(row.key, row.value, row.create_index, row.modify_index, row.session);
}

function closedError(): StrataError {
  return new StrataError('STORE_CLOSED', 'the embedded store was closed');
}

function checkSessionId(sessionId: unknown): string {
  if (typeof sessionId !== 'string' || sessionId === '') {
    throw new StrataError('STORE_SESSION_INVALID', `session id must be a non-empty string, got ${JSON.stringify(sessionId)}`);
  }
  return sessionId;
}

const CAS_FAILED: WriteResult = Object.freeze({ ok: false, reason: 'cas' });

// ---------------------------------------------------------------------------
// Watches

/** What a watch needs from the store. */
interface WatchSource {
  currentIndex(): number;
  compactedIndex(): number;
  listEntries(prefix: string): KvEntry[];
  /** Changes under `prefix` with `from < index <= to`, as one batch per index. */
  readHistory(prefix: string, from: number, to: number): WatchBatch[];
  detach(watch: EmbeddedWatch): void;
}

type Waiter = { resolve(result: IteratorResult<WatchBatch>): void; reject(err: unknown): void };

class EmbeddedWatch implements Watch, AsyncIterator<WatchBatch> {
  readonly prefix: string;
  readonly #source: WatchSource;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.close();
  /** Every change with an index up to this is queued or delivered. */
  #through: number;
  /** Index of the last batch handed to the consumer (or the starting index). */
  #delivered: number;
  /** The live queue overflowed (or the watch started in the past): read from history. */
  #behind: boolean;
  #queue: WatchBatch[] = [];
  #waiter: Waiter | undefined;
  #closed = false;

  constructor(source: WatchSource, prefix: string, fromIndex: number, signal: AbortSignal | undefined) {
    this.#source = source;
    this.prefix = prefix;
    this.#signal = signal;
    this.#through = fromIndex;
    this.#delivered = fromIndex;
    this.#behind = fromIndex < source.currentIndex();
    if (signal?.aborted) this.close();
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return this;
  }

  /** Called by the store after each commit, once per committed index, in order. */
  offer(index: number, events: readonly WatchEvent[]): void {
    if (this.#closed || this.#behind || index <= this.#through) return;
    this.#through = index;
    const mine = events.filter((e) => (e.type === 'put' ? e.entry.key : e.key).startsWith(this.prefix));
    if (mine.length === 0) return;
    const batch: WatchBatch = { kind: 'changes', index, events: mine };
    if (this.#waiter !== undefined) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      this.#delivered = index;
      waiter.resolve({ value: batch, done: false });
      return;
    }
    this.#queue.push(batch);
    if (this.#queue.length > WATCH_QUEUE_LIMIT) {
      // The consumer is far behind: stop buffering, re-read from history later.
      this.#queue = [];
      this.#behind = true;
      this.#through = this.#delivered;
    }
  }

  #catchUp(): void {
    const current = this.#source.currentIndex();
    if (this.#delivered < this.#source.compactedIndex()) {
      this.#queue.push({ kind: 'resync', index: current, entries: this.#source.listEntries(this.prefix) });
      this.#through = current;
      this.#behind = false;
      return;
    }
    let from = this.#through;
    while (this.#queue.length === 0 && from < current) {
      const to = Math.min(current, from + WATCH_CATCHUP_WINDOW);
      this.#queue.push(...this.#source.readHistory(this.prefix, from, to));
      from = to;
    }
    this.#through = from;
    if (from >= current) this.#behind = false;
  }

  next(): Promise<IteratorResult<WatchBatch>> {
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) return Promise.reject(new Error('watch: next() called while a previous next() is pending'));
    if (this.#queue.length === 0 && this.#behind) {
      try {
        this.#catchUp();
      } catch (err) {
        return Promise.reject(
          isStrataError(err) ? err : new StrataError('STORE_UNAVAILABLE', `watch could not read the change history: ${String(err)}`, { cause: err }),
        );
      }
    }
    const batch = this.#queue.shift();
    if (batch !== undefined) {
      this.#delivered = batch.index;
      return Promise.resolve({ value: batch, done: false });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<WatchBatch>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#source.detach(this);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
  }
}

// ---------------------------------------------------------------------------
// The store

interface SessionState {
  readonly id: string;
  readonly name: string;
  readonly ttlMs: number;
  expiresAt: number;
  /** Set once the session's end was queued. */
  ending?: Promise<void>;
}

type OpBody =
  | { kind: 'put'; key: string; value: string; casIndex: number | undefined; sessionId: string | undefined }
  | { kind: 'delete'; key: string; casIndex: number | undefined }
  | { kind: 'deletePrefix'; prefix: string }
  | { kind: 'txn'; request: TxnRequest }
  | { kind: 'createSession'; id: string; name: string; ttlMs: number }
  | { kind: 'endSession'; id: string; reason: string }
  | { kind: 'compact' };

interface Op {
  readonly body: OpBody;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface Committed {
  readonly index: number;
  readonly events: WatchEvent[];
}

interface ApplyContext {
  readonly now: number;
  readonly committed: Committed[];
  readonly undo: Array<() => void>;
}

interface Statements {
  head: StatementSync;
  get: StatementSync;
  listAll: StatementSync;
  listRange: StatementSync;
  upsert: StatementSync;
  remove: StatementSync;
  keysAll: StatementSync;
  keysRange: StatementSync;
  keysOfSession: StatementSync;
  historyPut: StatementSync;
  historyDelete: StatementSync;
  historyAll: StatementSync;
  historyRange: StatementSync;
  historyPrune: StatementSync;
  setMeta: StatementSync;
  sessionInsert: StatementSync;
  sessionDelete: StatementSync;
}

function prepare(db: DatabaseSync): Statements {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    head: p('SELECT create_index, modify_index FROM kv WHERE key = ?'),
    get: p('SELECT key, value, create_index, modify_index, session FROM kv WHERE key = ?'),
    listAll: p('SELECT key, value, create_index, modify_index, session FROM kv ORDER BY key'),
    listRange: p(
      'SELECT key, value, create_index, modify_index, session FROM kv WHERE key >= ? AND key < CAST(? AS TEXT) ORDER BY key',
    ),
    upsert: p(
      `INSERT INTO kv (key, value, create_index, modify_index, session) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, modify_index = excluded.modify_index, session = excluded.session`,
    ),
    remove: p('DELETE FROM kv WHERE key = ?'),
    keysAll: p('SELECT key FROM kv ORDER BY key'),
    keysRange: p('SELECT key FROM kv WHERE key >= ? AND key < CAST(? AS TEXT) ORDER BY key'),
    keysOfSession: p('SELECT key FROM kv WHERE session = ? ORDER BY key'),
    historyPut: p('INSERT INTO history (idx, key, type, value, create_index, session) VALUES (?, ?, 0, ?, ?, ?)'),
    historyDelete: p('INSERT INTO history (idx, key, type) VALUES (?, ?, 1)'),
    historyAll: p(
      'SELECT idx, key, type, value, create_index, session FROM history WHERE idx > ? AND idx <= ? ORDER BY idx, rowid',
    ),
    historyRange: p(
      `SELECT idx, key, type, value, create_index, session FROM history
       WHERE idx > ? AND idx <= ? AND key >= ? AND key < CAST(? AS TEXT) ORDER BY idx, rowid`,
    ),
    historyPrune: p('DELETE FROM history WHERE idx <= ?'),
    setMeta: p('UPDATE meta SET value = ? WHERE key = ?'),
    sessionInsert: p('INSERT INTO sessions (id, name, ttl_ms) VALUES (?, ?, ?)'),
    sessionDelete: p('DELETE FROM sessions WHERE id = ?'),
  };
}

class EmbeddedStore implements EmbeddedStateStore {
  readonly backend = 'embedded';
  readonly capabilities = EMBEDDED_CAPABILITIES;

  readonly #db: DatabaseSync;
  readonly #s: Statements;
  readonly #location: string;
  readonly #historyLimit: number;
  readonly #pruneSlack: number;
  readonly #logger: EmbeddedStoreLogger | undefined;
  readonly #sessions = new Map<string, SessionState>();
  readonly #watches = new Set<EmbeddedWatch>();
  readonly #sweeper: NodeJS.Timeout;
  #index: number;
  #compacted: number;
  #queue: Op[] = [];
  #flushScheduled = false;
  #idleWaiters: Array<() => void> = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  #degraded: string | undefined;
  #commits = 0;
  #operations = 0;
  #largestGroup = 0;

  constructor(db: DatabaseSync, location: string, historyLimit: number, logger: EmbeddedStoreLogger | undefined) {
    this.#db = db;
    this.#location = location;
    this.#historyLimit = historyLimit;
    this.#pruneSlack = Math.max(1, Math.min(1024, Math.floor(historyLimit / 8)));
    this.#logger = logger;
    this.#s = prepare(db);
    const meta = new Map(
      (db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: unknown }>).map((r) => [r.key, r.value]),
    );
    this.#index = Number(meta.get('index') ?? 0);
    this.#compacted = Number(meta.get('compacted') ?? 0);
    // Sessions outlive a restart with a fresh TTL from now, as Consul and etcd
    // do after a leader change.
    const now = Date.now();
    for (const row of db.prepare('SELECT id, name, ttl_ms FROM sessions').all() as Array<{ id: string; name: string; ttl_ms: number }>) {
      this.#sessions.set(row.id, { id: row.id, name: row.name, ttlMs: row.ttl_ms, expiresAt: now + row.ttl_ms });
    }
    // Keys bound to a session that no longer exists (cannot happen through
    // this code, which ends sessions atomically) are deleted like any ended
    // session's keys.
    const orphans = db
      .prepare('SELECT DISTINCT session FROM kv WHERE session IS NOT NULL AND session NOT IN (SELECT id FROM sessions)')
      .all() as Array<{ session: string }>;
    for (const { session } of orphans) {
      this.#logger?.warn({ location, session }, 'store: deleting keys bound to a session that no longer exists');
      this.#enqueue({ kind: 'endSession', id: session, reason: 'orphaned' }).catch(() => {});
    }
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  // -- reads ---------------------------------------------------------------

  #open(): void {
    if (this.#closed) throw closedError();
  }

  #read<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new StrataError('STORE_UNAVAILABLE', `store ${this.#location}: ${what} failed: ${String(err)}`, { cause: err });
    }
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#open();
    checkKey(key);
    const row = this.#read('get', () => this.#s.get.get(key) as KvRow | undefined);
    return row === undefined ? undefined : rowEntry(row);
  }

  #listEntries(prefix: string): KvEntry[] {
    const upper = prefixUpperBound(prefix);
    const rows = (upper === undefined ? this.#s.listAll.all() : this.#s.listRange.all(prefix, upper)) as unknown as KvRow[];
    return rows.map(rowEntry);
  }

  async list(prefix: string): Promise<ListResult> {
    this.#open();
    checkPrefix(prefix);
    const entries = this.#read('list', () => this.#listEntries(prefix));
    return { entries, index: this.#index };
  }

  #readHistory(prefix: string, from: number, to: number): WatchBatch[] {
    const upper = prefixUpperBound(prefix);
    const rows = (
      upper === undefined ? this.#s.historyAll.all(from, to) : this.#s.historyRange.all(from, to, prefix, upper)
    ) as unknown as HistoryRow[];
    const batches: WatchBatch[] = [];
    let events: WatchEvent[] = [];
    let index = -1;
    for (const row of rows) {
      if (row.idx !== index) {
        if (events.length > 0) batches.push({ kind: 'changes', index, events });
        events = [];
        index = row.idx;
      }
      events.push(
        row.type === 0
          ? { type: 'put', entry: entry(row.key, row.value ?? '', row.create_index ?? row.idx, row.idx, row.session) }
          : { type: 'delete', key: row.key, index: row.idx },
      );
    }
    if (events.length > 0) batches.push({ kind: 'changes', index, events });
    return batches;
  }

  // -- writes --------------------------------------------------------------

  #enqueue<T>(body: OpBody): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ body, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  async put(key: string, value: string, options: PutOptions = {}): Promise<WriteResult> {
    this.#open();
    checkKey(key);
    checkValue(key, value);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    const sessionId = options.sessionId === undefined ? undefined : checkSessionId(options.sessionId);
    return this.#enqueue<WriteResult>({ kind: 'put', key, value, casIndex, sessionId });
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<WriteResult> {
    this.#open();
    checkKey(key);
    const casIndex = options.casIndex === undefined ? undefined : checkIndex('casIndex', options.casIndex);
    return this.#enqueue<WriteResult>({ kind: 'delete', key, casIndex });
  }

  async deletePrefix(prefix: string): Promise<{ readonly index: number }> {
    this.#open();
    checkPrefix(prefix);
    return this.#enqueue<{ index: number }>({ kind: 'deletePrefix', prefix });
  }

  async txn(request: TxnRequest): Promise<TxnResult> {
    this.#open();
    if (request === null || typeof request !== 'object' || !Array.isArray(request.writes)) {
      throw new StrataError('STORE_TXN_INVALID', 'transaction must be an object with a "writes" array');
    }
    if (request.conditions !== undefined && !Array.isArray(request.conditions)) {
      throw new StrataError('STORE_TXN_INVALID', 'transaction "conditions" must be an array');
    }
    checkTxn(request);
    for (const w of request.writes) if (w.op === 'put' && w.sessionId !== undefined) checkSessionId(w.sessionId);
    // Copy, so a caller mutating its request after the call changes nothing.
    const copy: TxnRequest = {
      conditions: (request.conditions ?? []).map((c) => ({ key: c.key, modifyIndex: c.modifyIndex })),
      writes: request.writes.map((w) =>
        w.op === 'put'
          ? w.sessionId === undefined
            ? { op: 'put', key: w.key, value: w.value }
            : { op: 'put', key: w.key, value: w.value, sessionId: w.sessionId }
          : { op: 'delete', key: w.key },
      ),
    };
    return this.#enqueue<TxnResult>({ kind: 'txn', request: copy });
  }

  /** Drops all history up to the current index. */
  async compact(): Promise<void> {
    this.#open();
    await this.#enqueue<void>({ kind: 'compact' });
  }

  // -- the group-commit loop ----------------------------------------------

  #flush(): void {
    this.#flushScheduled = false;
    const group = this.#queue.length <= MAX_GROUP ? this.#queue : this.#queue.slice(0, MAX_GROUP);
    this.#queue = this.#queue.length <= MAX_GROUP ? [] : this.#queue.slice(MAX_GROUP);
    if (this.#queue.length > 0) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    if (group.length > 0) this.#commitGroup(group);
    if (this.#queue.length === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  #commitGroup(group: Op[]): void {
    const startIndex = this.#index;
    const startCompacted = this.#compacted;
    const ctx: ApplyContext = { now: Date.now(), committed: [], undo: [] };
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      for (const op of group) {
        try {
          outcomes.push({ ok: true, value: this.#apply(op.body, ctx) });
        } catch (err) {
          // Refusals (e.g. an ended session) are decided before the op writes.
          if (!isStrataError(err)) throw err;
          outcomes.push({ ok: false, error: err });
        }
      }
      if (this.#index !== startIndex) this.#s.setMeta.run(this.#index, 'index');
      if (this.#index - this.#compacted > this.#historyLimit + this.#pruneSlack) {
        this.#compacted = this.#index - this.#historyLimit;
        this.#s.historyPrune.run(this.#compacted);
      }
      if (this.#compacted !== startCompacted) this.#s.setMeta.run(this.#compacted, 'compacted');
      this.#db.exec('COMMIT');
    } catch (err) {
      try {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      } catch (rollbackErr) {
        this.#logger?.error({ location: this.#location, err: rollbackErr }, 'store: rollback failed');
      }
      this.#index = startIndex;
      this.#compacted = startCompacted;
      for (const undo of ctx.undo.reverse()) undo();
      this.#degraded = `last commit failed: ${String(err)}`;
      this.#logger?.error({ location: this.#location, err, operations: group.length }, 'store: commit failed');
      const error = new StrataError('STORE_UNAVAILABLE', `store ${this.#location}: commit failed: ${String(err)}`, { cause: err });
      for (const op of group) op.reject(error);
      return;
    }
    this.#degraded = undefined;
    this.#commits += 1;
    this.#operations += group.length;
    this.#largestGroup = Math.max(this.#largestGroup, group.length);
    if (this.#watches.size > 0) {
      for (const c of ctx.committed) for (const w of this.#watches) w.offer(c.index, c.events);
    }
    group.forEach((op, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) op.resolve(outcome.value);
      else op.reject(outcome.error);
    });
  }

  #apply(body: OpBody, ctx: ApplyContext): unknown {
    switch (body.kind) {
      case 'put':
        return this.#applyPut(body.key, body.value, body.casIndex, body.sessionId, ctx);
      case 'delete':
        return this.#applyDelete(body.key, body.casIndex, ctx);
      case 'deletePrefix':
        return this.#applyDeletePrefix(body.prefix, ctx);
      case 'txn':
        return this.#applyTxn(body.request, ctx);
      case 'createSession':
        return this.#applyCreateSession(body.id, body.name, body.ttlMs, ctx);
      case 'endSession':
        return this.#applyEndSession(body.id, body.reason, ctx);
      case 'compact':
        this.#compacted = this.#index;
        this.#s.historyPrune.run(this.#index);
        return undefined;
    }
  }

  #head(key: string): HeadRow | undefined {
    return this.#s.head.get(key) as HeadRow | undefined;
  }

  #requireSession(id: string, now: number): void {
    const session = this.#sessions.get(id);
    if (session === undefined || session.expiresAt <= now) {
      throw new StrataError('STORE_SESSION_INVALID', `session ${id} does not exist or has expired`);
    }
  }

  #writePut(key: string, value: string, head: HeadRow | undefined, index: number, sessionId: string | undefined): WatchEvent {
    const createIndex = head === undefined ? index : head.create_index;
    const session = sessionId ?? null;
    this.#s.upsert.run(key, value, createIndex, index, session);
    this.#s.historyPut.run(index, key, value, createIndex, session);
    return { type: 'put', entry: entry(key, value, createIndex, index, session) };
  }

  #writeDelete(key: string, index: number): WatchEvent {
    this.#s.remove.run(key);
    this.#s.historyDelete.run(index, key);
    return { type: 'delete', key, index };
  }

  #applyPut(key: string, value: string, casIndex: number | undefined, sessionId: string | undefined, ctx: ApplyContext): WriteResult {
    const head = this.#head(key);
    if (casIndex !== undefined && (head?.modify_index ?? 0) !== casIndex) return CAS_FAILED;
    if (sessionId !== undefined) this.#requireSession(sessionId, ctx.now);
    const index = ++this.#index;
    ctx.committed.push({ index, events: [this.#writePut(key, value, head, index, sessionId)] });
    return { ok: true, index };
  }

  #applyDelete(key: string, casIndex: number | undefined, ctx: ApplyContext): WriteResult {
    const head = this.#head(key);
    if (casIndex !== undefined && (head?.modify_index ?? 0) !== casIndex) return CAS_FAILED;
    if (head === undefined) return { ok: true, index: this.#index };
    const index = ++this.#index;
    ctx.committed.push({ index, events: [this.#writeDelete(key, index)] });
    return { ok: true, index };
  }

  #deleteKeys(keys: readonly string[], ctx: ApplyContext): number {
    if (keys.length === 0) return this.#index;
    const index = ++this.#index;
    ctx.committed.push({ index, events: keys.map((key) => this.#writeDelete(key, index)) });
    return index;
  }

  #applyDeletePrefix(prefix: string, ctx: ApplyContext): { index: number } {
    const upper = prefixUpperBound(prefix);
    const rows = (upper === undefined ? this.#s.keysAll.all() : this.#s.keysRange.all(prefix, upper)) as Array<{ key: string }>;
    return { index: this.#deleteKeys(rows.map((r) => r.key), ctx) };
  }

  #applyTxn(request: TxnRequest, ctx: ApplyContext): TxnResult {
    const failed: number[] = [];
    (request.conditions ?? []).forEach((c, i) => {
      if ((this.#head(c.key)?.modify_index ?? 0) !== c.modifyIndex) failed.push(i);
    });
    if (failed.length > 0) return { ok: false, failed };
    for (const w of request.writes) if (w.op === 'put' && w.sessionId !== undefined) this.#requireSession(w.sessionId, ctx.now);
    const heads = request.writes.map((w) => this.#head(w.key));
    if (!request.writes.some((w, i) => w.op === 'put' || heads[i] !== undefined)) return { ok: true, index: this.#index };
    const index = ++this.#index;
    const events: WatchEvent[] = [];
    request.writes.forEach((w, i) => {
      if (w.op === 'put') events.push(this.#writePut(w.key, w.value, heads[i], index, w.sessionId));
      else if (heads[i] !== undefined) events.push(this.#writeDelete(w.key, index));
    });
    ctx.committed.push({ index, events });
    return { ok: true, index };
  }

  #applyCreateSession(id: string, name: string, ttlMs: number, ctx: ApplyContext): string {
    this.#s.sessionInsert.run(id, name, ttlMs);
    this.#sessions.set(id, { id, name, ttlMs, expiresAt: ctx.now + ttlMs });
    ctx.undo.push(() => this.#sessions.delete(id));
    return id;
  }

  #applyEndSession(id: string, reason: string, ctx: ApplyContext): undefined {
    const session = this.#sessions.get(id);
    this.#s.sessionDelete.run(id);
    const keys = (this.#s.keysOfSession.all(id) as Array<{ key: string }>).map((r) => r.key);
    const index = this.#deleteKeys(keys, ctx);
    if (session !== undefined) {
      this.#sessions.delete(id);
      ctx.undo.push(() => this.#sessions.set(id, session));
    }
    this.#logger?.info({ location: this.#location, session: id, name: session?.name, reason, keys: keys.length, index }, 'store: session ended');
    return undefined;
  }

  // -- watches ---------------------------------------------------------------

  watch(prefix: string, options: WatchOptions): Watch {
    this.#open();
    checkPrefix(prefix);
    const fromIndex = checkIndex('fromIndex', options?.fromIndex);
    const watch = new EmbeddedWatch(
      {
        currentIndex: () => this.#index,
        compactedIndex: () => this.#compacted,
        listEntries: (p) => this.#listEntries(p),
        readHistory: (p, from, to) => this.#readHistory(p, from, to),
        detach: (w) => this.#watches.delete(w),
      },
      prefix,
      fromIndex,
      options.signal,
    );
    if (!options.signal?.aborted) this.#watches.add(watch);
    return watch;
  }

  // -- sessions --------------------------------------------------------------

  async createSession(options: SessionOptions): Promise<string> {
    this.#open();
    const ttl = checkSessionTtl(options?.ttlSeconds, this.capabilities);
    const name = options.name ?? '';
    if (typeof name !== 'string') throw new StrataError('STORE_SESSION_INVALID', 'session name must be a string');
    return this.#enqueue<string>({ kind: 'createSession', id: randomUUID(), name, ttlMs: Math.round(ttl * 1000) });
  }

  #end(session: SessionState, reason: string): Promise<void> {
    session.ending ??= this.#enqueue<void>({ kind: 'endSession', id: session.id, reason });
    return session.ending;
  }

  async renewSession(sessionId: string): Promise<boolean> {
    this.#open();
    checkSessionId(sessionId);
    const session = this.#sessions.get(sessionId);
    if (session === undefined || session.ending !== undefined) return false;
    const now = Date.now();
    if (session.expiresAt <= now) {
      this.#end(session, 'expired').catch(() => {});
      return false;
    }
    session.expiresAt = now + session.ttlMs;
    return true;
  }

  async destroySession(sessionId: string): Promise<void> {
    this.#open();
    checkSessionId(sessionId);
    const session = this.#sessions.get(sessionId);
    if (session !== undefined) await this.#end(session, 'destroyed');
  }

  #sweep(): void {
    if (this.#closed || this.#sessions.size === 0) return;
    const now = Date.now();
    for (const session of this.#sessions.values()) {
      if (session.ending === undefined && session.expiresAt <= now) {
        this.#end(session, 'expired').catch((err: unknown) => {
          this.#logger?.warn({ location: this.#location, session: session.id, err }, 'store: expiring a session failed');
          session.ending = undefined; // retried on the next sweep
        });
      }
    }
  }

  // -- lifecycle -------------------------------------------------------------

  health(): StoreHealth {
    this.#open();
    return this.#degraded === undefined
      ? { status: 'ok', backend: this.backend }
      : { status: 'degraded', backend: this.backend, detail: this.#degraded };
  }

  stats(): EmbeddedStoreStats {
    return {
      index: this.#index,
      compactedIndex: this.#compacted,
      commits: this.#commits,
      operations: this.#operations,
      largestGroup: this.#largestGroup,
      sessions: this.#sessions.size,
      watches: this.#watches.size,
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    if (this.#queue.length > 0 || this.#flushScheduled) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    for (const w of [...this.#watches]) w.close();
    this.#db.close();
  }
}

// ---------------------------------------------------------------------------
// Opening

function openConnection(file: string): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file);
  } catch (err) {
    throw classifyOpenError(file, err, 'open');
  }
  try {
    // Exclusive locking: one process owns the file (the index counter lives
    // in this process), and WAL needs no shared-memory file.
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    const mode = (db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string }).journal_mode;
    if (mode !== 'wal') throw new Error(`journal_mode is ${mode}, expected wal`);
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA wal_autocheckpoint = 4000');
    // Take the lock now, and re-check what the inspection saw through the
    // connection that will write.
    db.exec('BEGIN IMMEDIATE');
    const appId = (db.prepare('PRAGMA application_id').get() as { application_id: number }).application_id;
    const format = (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as { value: unknown } | undefined)?.value;
    db.exec('COMMIT');
    if (appId !== EMBEDDED_APPLICATION_ID || format !== EMBEDDED_FORMAT_VERSION) {
      throw corrupt(file, 'changed between inspection and opening (application id or format version differ)');
    }
    return db;
  } catch (err) {
    try {
      db.close();
    } catch {
      // already failing
    }
    throw classifyOpenError(file, err, 'open');
  }
}

/**
 * Opens (or creates) the embedded store. An existing file is inspected first
 * and refused with STORE_DATA_CORRUPT, untouched, unless it is an intact store
 * of a known format.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStateStore> {
  const location = options?.path;
  if (typeof location !== 'string' || location === '') {
    throw new StrataError('CONFIG_INVALID', 'embedded store: "path" must be a file path or ":memory:"');
  }
  const historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  if (!Number.isSafeInteger(historyLimit) || historyLimit < 1) {
    throw new StrataError('CONFIG_INVALID', `embedded store: "historyLimit" must be a positive integer, got ${String(historyLimit)}`);
  }
  if (location === ':memory:') {
    const db = new DatabaseSync(':memory:');
    initialise(db);
    return new EmbeddedStore(db, location, historyLimit, options.logger);
  }
  const file = path.resolve(location);
  if (fileSize(file) === undefined) {
    if ((fileSize(`${file}-wal`) ?? 0) > 0) {
      throw corrupt(file, `does not exist but its write-ahead log ${file}-wal does (the database file was lost)`);
    }
    createDataFile(file);
    options.logger?.info({ location: file }, 'store: created a new data file');
  }
  inspectDataFile(file);
  const db = openConnection(file);
  return new EmbeddedStore(db, file, historyLimit, options.logger);
}

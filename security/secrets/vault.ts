/**
 * The secret store `default` (DC/OS `/secrets/v1`): values encrypted at rest
 * (`crypto.ts`) in `secret` records, keys from the {@link Keyring}.
 *
 * - Writes are check-and-set: create is create-only (`SECRET_EXISTS`),
 *   update and delete act on the version read (retried on a lost race).
 * - Reads decrypt on the calling master; a record wrapped by a KEK version
 *   this master lacks makes it reload its keyring once (another master may
 *   have rotated), then fail with `SECRET_DECRYPT_FAILED`.
 * - Rotation without downtime: `rotate()` adds a KEK version (or adopts one
 *   an operator put in the file), then re-wraps every data key in the
 *   background, one check-and-set write per secret. Values are never
 *   re-encrypted and old versions stay in the keyring, so every read works
 *   before, during and after; a write racing the re-wrap wins and is wrapped
 *   by the new version anyway.
 *
 * Pure decisions: {@link secretRid}, {@link secretListRid},
 * {@link secretSpaceProblem}.
 */
import { StrataError, isStrataError } from '../../common/errors.ts';
import type { Records, Versioned } from '../../control-plane/model/records.ts';
import { SECRET_PATH_PATTERN, type StoredSecret } from '../../control-plane/model/schemas.ts';
import { openSecret, rewrapSecret, sealSecret } from './crypto.ts';
import type { Keyring } from './keyring.ts';
import type { SecretMetrics } from './metrics.ts';

export const DEFAULT_SECRET_STORE = 'default';
const PATH = new RegExp(SECRET_PATH_PATTERN);
const CAS_ATTEMPTS = 5;

/** DC/OS's resource id of one secret: `dcos:secrets:default:/<path>` (a grant on a parent path covers the secrets under it). */
export function secretRid(path: string): string {
  return `dcos:secrets:${DEFAULT_SECRET_STORE}:/${path}`;
}

/** DC/OS's resource id for listing under a path: `dcos:secrets:list:default:/<path>` (`read`). */
export function secretListRid(path: string): string {
  return `dcos:secrets:list:${DEFAULT_SECRET_STORE}:/${path}`;
}

/** A path as users write it (`/a/b`, `a/b/`) → the stored form (`a/b`), or `SECRET_NOT_FOUND`-free `API_BAD_REQUEST` naming the rule. */
export function normalizeSecretPath(raw: string, field = 'path'): string {
  const path = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  if (path.length > 256 || !PATH.test(path)) {
    throw new StrataError('API_BAD_REQUEST', `${field} ${JSON.stringify(raw.slice(0, 80))} is not a secret path: "/"-separated names of letters, digits, _ . - (not starting with . or -), at most 16 levels and 256 characters`);
  }
  return path;
}

/**
 * Why the app `appId` may not use the secret at `path`, or `undefined` if it
 * may. DC/OS's rule: a service sees the secrets at its own path and above it
 * (`/dev/db/web` may use `dev/db/web/key`, `dev/db/pass`, `dev/pass`, `pass`;
 * not `prod/pass` or `dev/other/pass`).
 */
export function secretSpaceProblem(appId: string, path: string): string | undefined {
  const space = appId.split('/').filter((s) => s !== '');
  const dirs = path.split('/').slice(0, -1);
  const fits = dirs.length <= space.length && dirs.every((d, i) => d === space[i]);
  return fits ? undefined : `secret ${path} is outside the space of app ${appId} (an app may use secrets under /${space.join('/')} or above it)`;
}

export type SecretMetadata = Pick<StoredSecret, 'path' | 'description' | 'author' | 'createdAt' | 'updatedAt' | 'kekVersion'>;

function metadataOf(r: StoredSecret): SecretMetadata {
  return { path: r.path, kekVersion: r.kekVersion, createdAt: r.createdAt, updatedAt: r.updatedAt, ...(r.description === undefined ? {} : { description: r.description }), ...(r.author === undefined ? {} : { author: r.author }) };
}

export interface SecretWrite {
  readonly value: Buffer;
  readonly description?: string;
  readonly author?: string;
}

export interface RotationStatus {
  readonly kekVersion: number;
  readonly kekVersions: number[];
  readonly running: boolean;
  /** Secrets in the store at the last count. */
  readonly total: number;
  /** Of those, still wrapped by an older version. */
  readonly pending: number;
  readonly rewrapped: number;
  readonly failed: number;
  readonly lastError?: string;
}

export class SecretVault {
  readonly #records: Records;
  readonly #keyring: Keyring;
  readonly #metrics: SecretMetrics | undefined;
  #rotation: Promise<void> | undefined;
  #again = false;
  #status = { total: 0, pending: 0, rewrapped: 0, failed: 0, lastError: undefined as string | undefined };

  constructor(records: Records, keyring: Keyring, options: { readonly metrics?: SecretMetrics } = {}) {
    this.#records = records;
    this.#keyring = keyring;
    this.#metrics = options.metrics;
    this.#metrics?.kekVersion.set(keyring.currentVersion);
  }

  async #get(path: string): Promise<Versioned<StoredSecret>> {
    const found = await this.#records.get('secret', path);
    if (!found) throw new StrataError('SECRET_NOT_FOUND', `no secret at ${path}`);
    return found;
  }

  /** The value (bytes). Counts the read and any decryption failure. */
  async read(path: string): Promise<Buffer> {
    return (await this.readWithMetadata(path)).value;
  }

  /** The value and the stored metadata, from one store read. */
  async readWithMetadata(path: string): Promise<{ value: Buffer; metadata: SecretMetadata }> {
    let record: Versioned<StoredSecret>;
    try {
      record = await this.#get(path);
    } catch (err) {
      this.#metrics?.reads.inc({ result: isStrataError(err, 'SECRET_NOT_FOUND') ? 'not-found' : 'error' });
      throw err;
    }
    try {
      if (this.#keyring.key(record.value.kekVersion) === undefined) await this.#keyring.reload();
      const value = openSecret(path, record.value, this.#keyring);
      this.#metrics?.reads.inc({ result: 'ok' });
      return { value, metadata: metadataOf(record.value) };
    } catch (err) {
      this.#metrics?.reads.inc({ result: 'decrypt-failed' });
      if (isStrataError(err, 'SECRET_DECRYPT_FAILED')) this.#metrics?.decryptFailures.inc();
      throw err;
    }
  }

  /** The stored metadata (never the value). */
  async describe(path: string): Promise<SecretMetadata> {
    return metadataOf((await this.#get(path)).value);
  }

  #record(path: string, write: SecretWrite, createdAt: string, previous?: StoredSecret): StoredSecret {
    const now = new Date().toISOString();
    const description = write.description ?? previous?.description;
    return {
      path,
      ...sealSecret(path, write.value, this.#keyring),
      ...(description === undefined ? {} : { description }),
      ...(write.author === undefined ? {} : { author: write.author }),
      createdAt,
      updatedAt: now,
    };
  }

  async create(path: string, write: SecretWrite): Promise<void> {
    const result = await this.#records.put('secret', this.#record(path, write, new Date().toISOString()), { casIndex: 0 });
    if (!result.ok) throw new StrataError('SECRET_EXISTS', `a secret already exists at ${path} (change it with PATCH)`);
    this.#metrics?.writes.inc({ op: 'create' });
  }

  async update(path: string, write: SecretWrite): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.#get(path);
      const result = await this.#records.put('secret', this.#record(path, write, current.value.createdAt, current.value), { casIndex: current.modifyIndex });
      if (result.ok) {
        this.#metrics?.writes.inc({ op: 'update' });
        return;
      }
    }
    throw new StrataError('RECORD_CONFLICT', `secret ${path} kept changing while it was updated; try again`);
  }

  async delete(path: string): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.#get(path);
      const result = await this.#records.delete('secret', path, { casIndex: current.modifyIndex });
      if (result.ok) {
        this.#metrics?.writes.inc({ op: 'delete' });
        return;
      }
    }
    throw new StrataError('RECORD_CONFLICT', `secret ${path} kept changing while it was deleted; try again`);
  }

  /** Paths under `under` (`''` = all), relative to it, sorted. */
  async list(under: string): Promise<string[]> {
    const prefix = under === '' ? '' : `${under}/`;
    const { records } = await this.#records.list('secret');
    return records.map((r) => r.value.path).filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length)).sort();
  }

  status(): RotationStatus {
    const s = this.#status;
    return {
      kekVersion: this.#keyring.currentVersion,
      kekVersions: this.#keyring.versions,
      running: this.#rotation !== undefined,
      total: s.total,
      pending: s.pending,
      rewrapped: s.rewrapped,
      failed: s.failed,
      ...(s.lastError === undefined ? {} : { lastError: s.lastError }),
    };
  }

  /**
   * Starts a rotation: with `generate`, a new random KEK version is added to
   * the keyring and made current; without, the keyring file is re-read (an
   * operator added a version). Then every data key not yet wrapped by the
   * current version is re-wrapped in the background. Answers at once.
   */
  async rotate(options: { readonly generate: boolean }): Promise<RotationStatus> {
    if (options.generate) await this.#keyring.addVersion();
    else await this.#keyring.reload();
    this.#metrics?.kekVersion.set(this.#keyring.currentVersion);
    if (this.#rotation) this.#again = true;
    else {
      this.#status = { total: 0, pending: 0, rewrapped: 0, failed: 0, lastError: undefined };
      this.#rotation = this.#rewrapAll().finally(() => {
        this.#rotation = undefined;
      });
    }
    return this.status();
  }

  /** Resolves when no re-wrap is running (tests, shutdown). */
  async rotationSettled(): Promise<void> {
    while (this.#rotation) await this.#rotation;
  }

  async #rewrapAll(): Promise<void> {
    do {
      this.#again = false;
      const { records } = await this.#records.list('secret');
      const target = this.#keyring.currentVersion;
      const stale = records.filter((r) => r.value.kekVersion !== target);
      this.#status.total = records.length;
      this.#status.pending = stale.length;
      this.#metrics?.rotationPending.set(stale.length);
      for (const record of stale) {
        try {
          await this.#rewrapOne(record);
          this.#status.rewrapped++;
          this.#metrics?.rewrapped.inc();
        } catch (err) {
          this.#status.failed++;
          this.#status.lastError = (err as Error).message;
          if (isStrataError(err, 'SECRET_DECRYPT_FAILED')) this.#metrics?.decryptFailures.inc();
        }
        this.#status.pending--;
        this.#metrics?.rotationPending.dec();
      }
    } while (this.#again);
  }

  async #rewrapOne(first: Versioned<StoredSecret>): Promise<void> {
    let record: Versioned<StoredSecret> | undefined = first;
    for (let attempt = 0; attempt < CAS_ATTEMPTS && record; attempt++) {
      const next = rewrapSecret(record.value.path, record.value, this.#keyring);
      if (next === record.value) return; // already current (a write raced us)
      const result = await this.#records.put('secret', { ...record.value, ...next }, { casIndex: record.modifyIndex });
      if (result.ok) return;
      record = await this.#records.get('secret', first.value.path);
    }
    if (record) throw new StrataError('RECORD_CONFLICT', `secret ${first.value.path} kept changing during the re-wrap`);
  }
}

/**
 * The key-encryption keys (KEKs), kept in a file outside the store, never in
 * it: `{"current": 2, "keys": {"1": "<base64, 32 bytes>", "2": "..."}}`,
 * mode 0600. Every version stays until an operator removes it, so secrets
 * wrapped by an older version keep decrypting while a rotation re-wraps them.
 *
 * The file is the adapter; {@link Keyring} is what the rest sees. In a
 * cluster every master needs the same file (distribute it like a TLS key);
 * a master that meets an unknown version reloads the file once.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { StrataError } from '../../common/errors.ts';
import { KEY_BYTES, type KekLookup } from './crypto.ts';

export interface KeyringFile {
  readonly current: number;
  readonly keys: Readonly<Record<string, string>>;
}

/** Where the keys live: a file, or memory in tests. */
export interface KekStore {
  /** The keyring, or `undefined` if there is none yet. */
  load(): Promise<KeyringFile | undefined>;
  save(keyring: KeyringFile): Promise<void>;
}

function invalid(where: string, why: string): StrataError {
  return new StrataError('SECRET_KEK_INVALID', `key-encryption keys in ${where}: ${why}`);
}

/** Checks a parsed keyring; the keys as buffers by version. */
export function parseKeyring(raw: unknown, where: string): { current: number; keys: Map<number, Buffer> } {
  if (typeof raw !== 'object' || raw === null) throw invalid(where, 'not a JSON object');
  const { current, keys } = raw as { current?: unknown; keys?: unknown };
  if (!Number.isInteger(current) || (current as number) < 1) throw invalid(where, '"current" must be a version number >= 1');
  if (typeof keys !== 'object' || keys === null) throw invalid(where, '"keys" must map versions to base64 keys');
  const out = new Map<number, Buffer>();
  for (const [version, text] of Object.entries(keys)) {
    const n = Number(version);
    if (!Number.isInteger(n) || n < 1 || String(n) !== version) throw invalid(where, `key version ${JSON.stringify(version)} is not a number >= 1`);
    const key = typeof text === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : undefined;
    if (!key || key.length !== KEY_BYTES) throw invalid(where, `key version ${version} must be ${KEY_BYTES} bytes in base64`);
    out.set(n, key);
  }
  if (!out.has(current as number)) throw invalid(where, `the current version ${String(current)} has no key`);
  return { current: current as number, keys: out };
}

/** The KEK file: read with its mode checked (0600 or stricter), written atomically with mode 0600. */
export function kekFile(path: string): KekStore {
  return {
    async load() {
      let text: string;
      try {
        const info = await stat(path);
        if ((info.mode & 0o077) !== 0) throw invalid(path, `mode ${(info.mode & 0o777).toString(8)} lets others read it; chmod 600`);
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        if (err instanceof StrataError) throw err;
        throw invalid(path, (err as Error).message);
      }
      try {
        return JSON.parse(text) as KeyringFile;
      } catch {
        throw invalid(path, 'not valid JSON');
      }
    },
    async save(keyring) {
      const tmp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(tmp, `${JSON.stringify(keyring, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await rename(tmp, path);
    },
  };
}

/** Keys in memory (tests, benchmarks). */
export function memoryKekStore(initial?: KeyringFile): KekStore & { current(): KeyringFile | undefined } {
  let kept = initial;
  return {
    load: () => Promise.resolve(kept),
    save: (k) => {
      kept = k;
      return Promise.resolve();
    },
    current: () => kept,
  };
}

/** The KEKs this process holds. */
export class Keyring implements KekLookup {
  readonly #store: KekStore;
  readonly #where: string;
  #current = 0;
  #keys = new Map<number, KeyObject>();
  /** This open made the keyring (it did not exist). */
  created = false;

  private constructor(store: KekStore, where: string) {
    this.#store = store;
    this.#where = where;
  }

  /** Loads the keys; with `create`, a missing keyring is made with one random version. */
  static async open(store: KekStore, options: { readonly create: boolean; readonly where: string }): Promise<Keyring> {
    const ring = new Keyring(store, options.where);
    const loaded = await store.load();
    if (!loaded) {
      if (!options.create) throw invalid(options.where, 'the file does not exist');
      await store.save({ current: 1, keys: { 1: randomBytes(KEY_BYTES).toString('base64') } });
      ring.created = true;
    }
    await ring.reload();
    return ring;
  }

  get currentVersion(): number {
    return this.#current;
  }

  get versions(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  key(version: number): KeyObject | undefined {
    return this.#keys.get(version);
  }

  /** Reads the keyring again (another master or an operator added a version). */
  async reload(): Promise<void> {
    const loaded = await this.#store.load();
    if (!loaded) throw invalid(this.#where, 'the file disappeared');
    const { current, keys } = parseKeyring(loaded, this.#where);
    this.#current = current;
    this.#keys = new Map([...keys].map(([v, k]) => [v, createSecretKey(k)]));
    for (const k of keys.values()) k.fill(0);
  }

  /** Adds a new random version and makes it current; older versions stay for decryption. */
  async addVersion(): Promise<number> {
    await this.reload();
    const next = Math.max(...this.#keys.keys()) + 1;
    const keys: Record<string, string> = {};
    for (const [v, k] of this.#keys) keys[String(v)] = k.export().toString('base64');
    keys[String(next)] = randomBytes(KEY_BYTES).toString('base64');
    await this.#store.save({ current: next, keys });
    await this.reload();
    return next;
  }
}

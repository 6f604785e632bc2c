/**
 * Envelope encryption of one secret (no I/O): the value is encrypted with
 * AES-256-GCM under a fresh random data key; the data key is encrypted
 * (wrapped) with AES-256-GCM under the key-encryption key (KEK) of a given
 * version. Each blob is `iv (12 bytes) || ciphertext || tag (16 bytes)`,
 * base64.
 *
 * Additional authenticated data binds each blob to where it belongs: the
 * value to the secret's path (a ciphertext moved to another path does not
 * decrypt), the data key to the path and the KEK version. Any changed bit in
 * a blob, a wrong KEK, or a moved blob fails with `SECRET_DECRYPT_FAILED`.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { StrataError } from '../../common/errors.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** Looks up a KEK by version (`undefined` = unknown version). KeyObjects: OpenSSL 3 sets up a raw-Buffer key several times slower. */
export interface KekLookup {
  readonly currentVersion: number;
  key(version: number): KeyObject | undefined;
}

/** What is stored for one secret (the rest of the record is metadata). */
export interface SealedValue {
  readonly kekVersion: number;
  readonly dataKey: string;
  readonly value: string;
}

const valueAad = (path: string): Buffer => Buffer.from(`strata-secret-value:v1\0${path}`);
const dataKeyAad = (path: string, kekVersion: number): Buffer => Buffer.from(`strata-secret-data-key:v1\0${path}\0${kekVersion}`);

function seal(key: KeyObject, plain: Buffer, aad: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

/** The plaintext, or `undefined` when the blob is malformed or does not authenticate. */
function open(key: KeyObject, sealed: string, aad: Buffer): Buffer | undefined {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

function kekOf(keks: KekLookup, version: number, path: string): KeyObject {
  const kek = keks.key(version);
  if (!kek) throw new StrataError('SECRET_DECRYPT_FAILED', `secret ${path} is wrapped by key-encryption key version ${version}, which this master does not have`);
  return kek;
}

/** Encrypts `value` for `path` under a new data key wrapped by the current KEK. */
export function sealSecret(path: string, value: Buffer, keks: KekLookup): SealedValue {
  const version = keks.currentVersion;
  const dataKey = randomBytes(KEY_BYTES);
  try {
    return { kekVersion: version, dataKey: seal(kekOf(keks, version, path), dataKey, dataKeyAad(path, version)), value: seal(createSecretKey(dataKey), value, valueAad(path)) };
  } finally {
    dataKey.fill(0);
  }
}

function unwrapDataKey(path: string, sealed: SealedValue, keks: KekLookup): Buffer {
  const dataKey = open(kekOf(keks, sealed.kekVersion, path), sealed.dataKey, dataKeyAad(path, sealed.kekVersion));
  if (!dataKey || dataKey.length !== KEY_BYTES) {
    throw new StrataError('SECRET_DECRYPT_FAILED', `the data key of secret ${path} does not decrypt under key-encryption key version ${sealed.kekVersion} (altered, moved, or a wrong key)`);
  }
  return dataKey;
}

/** The value of the secret at `path`; `SECRET_DECRYPT_FAILED` if anything does not authenticate. */
export function openSecret(path: string, sealed: SealedValue, keks: KekLookup): Buffer {
  const dataKey = unwrapDataKey(path, sealed, keks);
  try {
    const value = open(createSecretKey(dataKey), sealed.value, valueAad(path));
    if (!value) throw new StrataError('SECRET_DECRYPT_FAILED', `the value of secret ${path} does not decrypt (altered or moved from another path)`);
    return value;
  } finally {
    dataKey.fill(0);
  }
}

/**
 * The same secret with its data key wrapped by the current KEK instead
 * (rotation): the value's ciphertext is untouched. Returns `sealed` itself
 * when it already uses the current version.
 */
export function rewrapSecret(path: string, sealed: SealedValue, keks: KekLookup): SealedValue {
  const version = keks.currentVersion;
  if (sealed.kekVersion === version) return sealed;
  const dataKey = unwrapDataKey(path, sealed, keks);
  try {
    return { kekVersion: version, dataKey: seal(kekOf(keks, version, path), dataKey, dataKeyAad(path, version)), value: sealed.value };
  } finally {
    dataKey.fill(0);
  }
}

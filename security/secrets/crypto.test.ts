/**
 * Envelope encryption: round trip, tamper detection on every part, a wrong
 * or missing KEK, a ciphertext moved to another path, re-wrapping.
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { openSecret, rewrapSecret, sealSecret, type KekLookup, type SealedValue } from './crypto.ts';

function ring(keys: Record<number, KeyObject>, current: number): KekLookup {
  return { currentVersion: current, key: (v) => keys[v] };
}
const k1 = createSecretKey(randomBytes(32));
const k2 = createSecretKey(randomBytes(32));

const decryptFails = (t: ExecutionContext, run: () => unknown, what: string): void => {
  const err = t.throws(run, undefined, what);
  t.true(isStrataError(err, 'SECRET_DECRYPT_FAILED'), `${what}: ${String(err)}`);
};

/** Flip one bit of a base64 blob at byte `at` (negative: from the end). */
function flip(blob: string, at: number): string {
  const raw = Buffer.from(blob, 'base64');
  const i = at < 0 ? raw.length + at : at;
  raw[i]! ^= 0x01;
  return raw.toString('base64');
}

test('a value round-trips, and the stored form holds neither the value nor the data key in clear', (t) => {
  const keks = ring({ 1: k1 }, 1);
  const value = Buffer.from('correct horse battery staple');
  const sealed = sealSecret('db/password', value, keks);
  t.is(sealed.kekVersion, 1);
  t.deepEqual(openSecret('db/password', sealed, keks), value);
  t.false(JSON.stringify(sealed).includes('horse'));
  t.false(Buffer.from(sealed.value, 'base64').includes(value));
  // Fresh IVs and data keys: the same value seals differently each time.
  const again = sealSecret('db/password', value, keks);
  t.not(again.value, sealed.value);
  t.not(again.dataKey, sealed.dataKey);
  t.deepEqual(openSecret('empty', sealSecret('empty', Buffer.alloc(0), keks), keks), Buffer.alloc(0), 'an empty value');
});

test('tampering with the IV, ciphertext or tag of the value or of the wrapped data key is detected', (t) => {
  const keks = ring({ 1: k1 }, 1);
  const sealed = sealSecret('db/password', Buffer.from('s3cret-value'), keks);
  const cases: [string, SealedValue][] = [
    ['value IV', { ...sealed, value: flip(sealed.value, 0) }],
    ['value ciphertext', { ...sealed, value: flip(sealed.value, 13) }],
    ['value tag', { ...sealed, value: flip(sealed.value, -1) }],
    ['value truncated', { ...sealed, value: Buffer.from(sealed.value, 'base64').subarray(0, 20).toString('base64') }],
    ['data key IV', { ...sealed, dataKey: flip(sealed.dataKey, 0) }],
    ['data key ciphertext', { ...sealed, dataKey: flip(sealed.dataKey, 20) }],
    ['data key tag', { ...sealed, dataKey: flip(sealed.dataKey, -1) }],
    ['KEK version relabelled', { ...sealed, kekVersion: 2 }],
  ];
  const both = ring({ 1: k1, 2: k1 }, 1); // version 2 maps to the same bytes: only the AAD can tell
  for (const [what, bad] of cases) decryptFails(t, () => openSecret('db/password', bad, both), what);
});

test('a wrong KEK, a missing KEK version, and a ciphertext moved to another path all fail', (t) => {
  const sealed = sealSecret('db/password', Buffer.from('v'), ring({ 1: k1 }, 1));
  decryptFails(t, () => openSecret('db/password', sealed, ring({ 1: k2 }, 1)), 'wrong KEK');
  decryptFails(t, () => openSecret('db/password', sealed, ring({ 2: k1 }, 2)), 'missing version');
  decryptFails(t, () => openSecret('db/other', sealed, ring({ 1: k1 }, 1)), 'moved to another path');
  const other = sealSecret('db/other', Buffer.from('w'), ring({ 1: k1 }, 1));
  decryptFails(t, () => openSecret('db/password', { ...sealed, dataKey: other.dataKey }, ring({ 1: k1 }, 1)), 'data key swapped from another secret');
});

test('rewrap moves the data key to the current KEK and leaves the value ciphertext alone', (t) => {
  const sealed = sealSecret('a/b', Buffer.from('payload'), ring({ 1: k1 }, 1));
  const both = ring({ 1: k1, 2: k2 }, 2);
  const next = rewrapSecret('a/b', sealed, both);
  t.is(next.kekVersion, 2);
  t.is(next.value, sealed.value);
  t.not(next.dataKey, sealed.dataKey);
  t.is(openSecret('a/b', next, ring({ 2: k2 }, 2)).toString(), 'payload', 'readable with only the new KEK');
  t.is(openSecret('a/b', sealed, both).toString(), 'payload', 'the old form still reads while both versions are kept');
  t.is(rewrapSecret('a/b', next, both), next, 'already current: unchanged');
  decryptFails(t, () => rewrapSecret('a/b', { ...sealed, dataKey: flip(sealed.dataKey, 5) }, both), 'a tampered data key is not re-wrapped');
});

import test from 'ava';
import { checkKey, checkPrefix, checkTxn, checkValue } from './limits.ts';
import { KEY_MAX_BYTES, TXN_MAX_OPS, VALUE_MAX_BYTES } from './port.ts';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

test('keys: empty, too long, lone surrogate, NUL and leading slash are refused with STORE_KEY_INVALID', (t) => {
  t.is(checkKey('strata/apps/web'), 'strata/apps/web');
  t.is(code(() => checkKey('')), 'STORE_KEY_INVALID');
  t.is(code(() => checkKey('a'.repeat(KEY_MAX_BYTES + 1))), 'STORE_KEY_INVALID');
  t.is(code(() => checkKey('é'.repeat(KEY_MAX_BYTES / 2 + 1))), 'STORE_KEY_INVALID', 'limit counts UTF-8 bytes');
  t.is(code(() => checkKey('bad\uD800key')), 'STORE_KEY_INVALID');
  t.is(code(() => checkKey('a\0b')), 'STORE_KEY_INVALID');
  t.is(code(() => checkKey('/abs')), 'STORE_KEY_INVALID');
  t.is(code(() => checkKey(42)), 'STORE_KEY_INVALID');
  t.is(checkPrefix(''), '');
});

test('values: oversized and ill-formed values are refused, the message names the key', (t) => {
  t.is(checkValue('k', 'x'.repeat(VALUE_MAX_BYTES)).length, VALUE_MAX_BYTES);
  const err = t.throws(() => checkValue('the/key', 'x'.repeat(VALUE_MAX_BYTES + 1)));
  t.is((err as { code?: string }).code, 'STORE_VALUE_TOO_LARGE');
  t.regex(err.message, /the\/key/);
  t.is(code(() => checkValue('k', '\uDFFF')), 'STORE_VALUE_INVALID');
});

test('transactions: empty, oversized, duplicate keys and bad indexes are refused', (t) => {
  t.is(code(() => checkTxn({ writes: [] })), 'STORE_TXN_INVALID');
  const many = Array.from({ length: TXN_MAX_OPS + 1 }, (_, i) => ({ op: 'delete' as const, key: `k${i}` }));
  t.is(code(() => checkTxn({ writes: many })), 'STORE_TXN_TOO_LARGE');
  t.is(code(() => checkTxn({ writes: [{ op: 'delete', key: 'a' }, { op: 'put', key: 'a', value: '' }] })), 'STORE_TXN_INVALID');
  t.is(code(() => checkTxn({ conditions: [{ key: 'a', modifyIndex: -1 }], writes: [] })), 'STORE_TXN_INVALID');
  t.notThrows(() => checkTxn({ conditions: [{ key: 'a', modifyIndex: 0 }], writes: [{ op: 'put', key: 'b', value: '1' }] }));
});

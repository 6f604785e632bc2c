/**
 * Input checks every backend applies before it writes or reads: keys,
 * prefixes, values, transactions. One place, so the three backends refuse
 * exactly the same inputs with exactly the same codes.
 */
import { StrataError } from '../../common/errors.ts';
import { KEY_MAX_BYTES, TXN_MAX_OPS, VALUE_MAX_BYTES, type StoreCapabilities, type TxnRequest } from './port.ts';

function describe(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

function checkText(kind: 'key' | 'prefix', text: unknown): string {
  if (typeof text !== 'string') {
    throw new StrataError('STORE_KEY_INVALID', `store ${kind} must be a string, got ${typeof text}`);
  }
  if (!text.isWellFormed()) {
    throw new StrataError('STORE_KEY_INVALID', `store ${kind} ${describe(text)} is not valid UTF-8 (it holds a lone surrogate)`);
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > KEY_MAX_BYTES) {
    throw new StrataError('STORE_KEY_INVALID', `store ${kind} ${describe(text)} is ${bytes} bytes; the limit is ${KEY_MAX_BYTES}`);
  }
  if (text.includes('\0')) {
    throw new StrataError('STORE_KEY_INVALID', `store ${kind} ${describe(text)} contains a NUL character`);
  }
  if (text.startsWith('/')) {
    throw new StrataError('STORE_KEY_INVALID', `store ${kind} ${describe(text)} must not start with "/"`);
  }
  return text;
}

export function checkKey(key: unknown): string {
  const text = checkText('key', key);
  if (text.length === 0) throw new StrataError('STORE_KEY_INVALID', 'store key must not be empty');
  return text;
}

export function checkPrefix(prefix: unknown): string {
  return checkText('prefix', prefix);
}

export function checkValue(key: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new StrataError('STORE_VALUE_INVALID', `value for key ${describe(key)} must be a string, got ${typeof value}`);
  }
  if (!value.isWellFormed()) {
    throw new StrataError('STORE_VALUE_INVALID', `value for key ${describe(key)} is not valid UTF-8 (it holds a lone surrogate)`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > VALUE_MAX_BYTES) {
    throw new StrataError('STORE_VALUE_TOO_LARGE', `value for key ${describe(key)} is ${bytes} bytes; the limit is ${VALUE_MAX_BYTES}`);
  }
  return value;
}

export function checkIndex(what: string, index: unknown): number {
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
    throw new StrataError('STORE_TXN_INVALID', `${what} must be a non-negative integer, got ${String(index)}`);
  }
  return index;
}

export function checkTxn(request: TxnRequest): void {
  const conditions = request.conditions ?? [];
  const total = conditions.length + request.writes.length;
  if (request.writes.length === 0 && conditions.length === 0) {
    throw new StrataError('STORE_TXN_INVALID', 'transaction has no operations');
  }
  if (total > TXN_MAX_OPS) {
    throw new StrataError('STORE_TXN_TOO_LARGE', `transaction has ${total} operations; the limit is ${TXN_MAX_OPS}`);
  }
  conditions.forEach((c, i) => {
    checkKey(c.key);
    checkIndex(`conditions[${i}].modifyIndex`, c.modifyIndex);
  });
  const written = new Set<string>();
  request.writes.forEach((w, i) => {
    checkKey(w.key);
    if (w.op === 'put') checkValue(w.key, w.value);
    else if (w.op !== 'delete') {
      throw new StrataError('STORE_TXN_INVALID', `writes[${i}].op must be "put" or "delete"`);
    }
    if (written.has(w.key)) {
      throw new StrataError('STORE_TXN_INVALID', `writes[${i}] writes key ${describe(w.key)} a second time in one transaction`);
    }
    written.add(w.key);
  });
}

/**
 * A session TTL within the backend's capabilities (`wholeSeconds` for
 * backends whose leases count whole seconds). `backendNote` is added to the
 * message, e.g. "Consul's limits".
 */
export function checkSessionTtl(
  ttl: unknown,
  capabilities: Pick<StoreCapabilities, 'minSessionTtlSeconds' | 'maxSessionTtlSeconds'>,
  options: { wholeSeconds?: boolean; backendNote?: string } = {},
): number {
  const { minSessionTtlSeconds: min, maxSessionTtlSeconds: max } = capabilities;
  const ok = typeof ttl === 'number' && Number.isFinite(ttl) && (!options.wholeSeconds || Number.isInteger(ttl)) && ttl >= min && ttl <= max;
  if (!ok) {
    const what = options.wholeSeconds ? 'a whole number of seconds' : 'a number of seconds';
    const note = options.backendNote ? ` (${options.backendNote})` : '';
    throw new StrataError('STORE_SESSION_TTL_INVALID', `session TTL must be ${what} from ${min} to ${max}${note}, got ${String(ttl)}`);
  }
  return ttl;
}

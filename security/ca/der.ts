/**
 * The small part of ASN.1 DER the cluster CA needs (X.690): writing
 * certificates, CSRs and CRLs, and reading CSRs and certificates back.
 * Node's crypto signs and verifies and parses certificates
 * (`X509Certificate`) but cannot build them; this module is that missing
 * piece, kept to definite lengths and the universal types X.509 uses.
 *
 * The reader is strict: definite lengths only, minimal length encodings, no
 * bytes past the end; anything else throws {@link DerError} (a malformed CSR is
 * refused, never half-read).
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ---------------------------------------------------------------------------
// Writing

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const seq = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(TAG.SET, Buffer.concat(items));
export const bool = (value: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
export const octets = (content: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, content);
export const nul = (): Buffer => tlv(TAG.NULL, Buffer.alloc(0));
export const utf8 = (text: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
export const ia5 = (text: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(text, 'ascii'));
/** A BIT STRING of whole bytes (keys, signatures). */
export const bits = (content: Uint8Array): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), content]));
/** `[n]` EXPLICIT (constructed) around `content`. */
export const explicit = (n: number, content: Uint8Array): Buffer => tlv(0xa0 | n, content);
/** `[n]` IMPLICIT primitive with raw `content` (e.g. a GeneralName's uniformResourceIdentifier is `[6]`). */
export const implicit = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);

/** A non-negative INTEGER from a bigint or unsigned big-endian bytes (a 0x00 is prefixed when the high bit is set). */
export function int(value: bigint | number | Uint8Array): Buffer {
  let bytes: Buffer;
  if (value instanceof Uint8Array) bytes = Buffer.from(value);
  else {
    let v = BigInt(value);
    if (v < 0n) throw new DerError('negative INTEGERs are not written here');
    const out: number[] = [];
    do {
      out.unshift(Number(v & 0xffn));
      v >>= 8n;
    } while (v > 0n);
    bytes = Buffer.from(out);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1]! & 0x80) === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if ((bytes[0]! & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(TAG.INTEGER, bytes);
}

export const enumerated = (value: number): Buffer => tlv(TAG.ENUMERATED, int(value).subarray(2));

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => BigInt(p));
  if (parts.length < 2) throw new DerError(`OID ${dotted} has fewer than two arcs`);
  const arcs = [parts[0]! * 40n + parts[1]!, ...parts.slice(2)];
  const out: number[] = [];
  for (const arc of arcs) {
    const chunk: number[] = [];
    let v = arc;
    do {
      chunk.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole seconds, UTC. */
export function time(date: Date): Buffer {
  const iso = date.toISOString();
  const year = date.getUTCFullYear();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return year >= 1950 && year < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'ascii')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'ascii'));
}

/** A BIT STRING of named bits (KeyUsage): bit 0 is the most significant; trailing zero bits dropped (DER). */
export function namedBits(set: readonly number[]): Buffer {
  if (set.length === 0) return tlv(TAG.BIT_STRING, Buffer.from([0]));
  const highest = Math.max(...set);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of set) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  const unused = 7 - (highest % 8);
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]));
}

// ---------------------------------------------------------------------------
// Reading

export interface DerNode {
  readonly tag: number;
  /** The whole element (tag, length and content). */
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** Read one element at `offset`; returns it and where the next starts. */
export function readNode(buf: Buffer, offset = 0): { node: DerNode; next: number } {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in X.509');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) length = first;
  else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite lengths are not DER');
    if (count > 4) throw new DerError('element too long');
    if (pos + count > buf.length) throw new DerError('truncated length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || buf[offset + 2] === 0) throw new DerError('non-minimal length encoding');
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError('element runs past the end of its container');
  return { node: { tag, raw: buf.subarray(offset, end), content: buf.subarray(pos, end) }, next: end };
}

/** Parse exactly one element filling `buf`. */
export function parse(buf: Buffer): DerNode {
  const { node, next } = readNode(buf, 0);
  if (next !== buf.length) throw new DerError('trailing bytes after the element');
  return node;
}

/** The elements inside a constructed node. */
export function children(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new DerError(`tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  for (let pos = 0; pos < node.content.length; ) {
    const { node: child, next } = readNode(node.content, pos);
    out.push(child);
    pos = next;
  }
  return out;
}

export function expect(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got ${node ? `0x${node.tag.toString(16)}` : 'nothing'}`);
  return node;
}

export function readOid(node: DerNode): string {
  expect(node, TAG.OID, 'OID');
  const c = node.content;
  if (c.length === 0) throw new DerError('empty OID');
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < c.length; i++) {
    v = (v << 7n) | BigInt(c[i]! & 0x7f);
    if ((c[i]! & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    } else if (i === c.length - 1) throw new DerError('OID ends inside an arc');
  }
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** A BIT STRING's bytes (whole bytes only: keys and signatures). */
export function readBits(node: DerNode): Buffer {
  expect(node, TAG.BIT_STRING, 'BIT STRING');
  if (node.content[0] !== 0) throw new DerError('BIT STRING with unused bits where whole bytes are expected');
  return node.content.subarray(1);
}

/** The bit numbers set in a named-bit BIT STRING (KeyUsage). */
export function readNamedBits(node: DerNode): number[] {
  expect(node, TAG.BIT_STRING, 'BIT STRING');
  const out: number[] = [];
  const bytes = node.content.subarray(1);
  for (let i = 0; i < bytes.length * 8; i++) if ((bytes[Math.floor(i / 8)]! & (0x80 >> (i % 8))) !== 0) out.push(i);
  return out;
}

export function readBool(node: DerNode): boolean {
  expect(node, TAG.BOOLEAN, 'BOOLEAN');
  if (node.content.length !== 1) throw new DerError('BOOLEAN of the wrong length');
  return node.content[0] !== 0;
}

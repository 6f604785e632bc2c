/**
 * Query parsing for the server's hot path: the header, the one question and
 * the EDNS0 OPT record, nothing else. Untrusted input: every count is checked
 * against the bytes left, the question may not use compression pointers,
 * labels are at most 63 bytes and names at most 255, and parsing never
 * throws. The outcome is a value: a query, an error the server answers with
 * a header-only reply (FORMERR, NOTIMP), or a datagram to drop without reply
 * (runts, responses).
 */
import {
  CLASS_IN,
  HEADER_BYTES,
  MAX_LABEL_BYTES,
  MAX_NAME_BYTES,
  MIN_RR_BYTES,
  OPCODE_QUERY,
  RCODE,
  TYPE,
} from './constants.ts';

export interface Edns {
  /** The client's advertised UDP payload size, as sent (may be below 512). */
  readonly udpPayloadBytes: number;
  /** DO bit: the client wants DNSSEC records. */
  readonly dnssecOk: boolean;
  readonly version: number;
}

export interface Query {
  readonly id: number;
  readonly opcode: number;
  readonly rd: boolean;
  readonly cd: boolean;
  /**
   * The question name in presentation form, in the case received, no
   * trailing dot (root is `''`). Bytes that are not printable ASCII, `.` and
   * `\` inside labels are escaped as `\DDD`, so two different wire names
   * never share a string.
   */
  readonly name: string;
  /** `name` with ASCII letters lowered: the lookup key. */
  readonly nameLower: string;
  readonly type: number;
  readonly class: number;
  /** Offset just after the question section: bytes 12..questionEnd are echoed as they came. */
  readonly questionEnd: number;
  readonly edns: Edns | undefined;
}

export type ParseResult =
  | { readonly kind: 'query'; readonly query: Query }
  /** Answer with a header-only reply carrying `rcode`. */
  | { readonly kind: 'error'; readonly id: number; readonly opcode: number; readonly rd: boolean; readonly rcode: number; readonly reason: string }
  /** Send nothing back. */
  | { readonly kind: 'drop'; readonly reason: string };

const formerr = (buf: Uint8Array, reason: string): ParseResult => ({
  kind: 'error',
  id: (buf[0]! << 8) | buf[1]!,
  opcode: (buf[2]! >> 3) & 0x0f,
  rd: (buf[2]! & 1) === 1,
  rcode: RCODE.FORMERR,
  reason,
});

/** True when a label byte must be escaped in presentation form. */
const needsEscape = (b: number): boolean => b <= 0x20 || b >= 0x7f || b === 0x2e || b === 0x5c;

function labelText(buf: Uint8Array, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    if (needsEscape(buf[i]!)) {
      plain = false;
      break;
    }
  }
  if (plain) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  let out = '';
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    out += needsEscape(b) ? `\\${b.toString().padStart(3, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/**
 * Skips one (possibly compressed) name starting at `offset`; returns the
 * offset after it or -1 when it is malformed or runs past `end`. Pointers
 * end a name, so there is nothing to follow and no loop to fear.
 */
export function skipName(buf: Uint8Array, offset: number, end: number): number {
  let pos = offset;
  let wire = 0;
  for (;;) {
    if (pos >= end) return -1;
    const len = buf[pos]!;
    if (len === 0) return pos + 1;
    if ((len & 0xc0) === 0xc0) return pos + 2 <= end ? pos + 2 : -1;
    if (len > MAX_LABEL_BYTES) return -1;
    wire += len + 1;
    if (wire + 1 > MAX_NAME_BYTES) return -1;
    pos += len + 1;
  }
}

/** Parses one datagram or TCP message. Never throws. */
export function parseQuery(buf: Uint8Array): ParseResult {
  const length = buf.length;
  if (length < HEADER_BYTES) return { kind: 'drop', reason: 'runt' };
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) return { kind: 'drop', reason: 'response' };
  const id = (buf[0]! << 8) | buf[1]!;
  const opcode = (flags >> 11) & 0x0f;
  const rd = (flags & 0x0100) !== 0;
  if (opcode !== OPCODE_QUERY) return { kind: 'error', id, opcode, rd, rcode: RCODE.NOTIMP, reason: 'opcode' };
  const qdcount = (buf[4]! << 8) | buf[5]!;
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  if (qdcount !== 1) return formerr(buf, 'qdcount');
  if ((ancount + nscount + arcount) * MIN_RR_BYTES > length - HEADER_BYTES - 5) return formerr(buf, 'counts');

  // Question name: labels only, no pointers (nothing precedes it to point at).
  let pos = HEADER_BYTES;
  let wire = 0;
  let name = '';
  for (;;) {
    if (pos >= length) return formerr(buf, 'truncated');
    const len = buf[pos]!;
    if (len === 0) {
      pos++;
      break;
    }
    if (len > MAX_LABEL_BYTES) return formerr(buf, (len & 0xc0) === 0xc0 ? 'pointer in question' : 'label');
    wire += len + 1;
    if (wire + 1 > MAX_NAME_BYTES) return formerr(buf, 'name too long');
    if (pos + 1 + len > length) return formerr(buf, 'truncated');
    const text = labelText(buf, pos + 1, pos + 1 + len);
    name = name.length === 0 ? text : `${name}.${text}`;
    pos += len + 1;
  }
  if (pos + 4 > length) return formerr(buf, 'truncated');
  const type = (buf[pos]! << 8) | buf[pos + 1]!;
  const klass = (buf[pos + 2]! << 8) | buf[pos + 3]!;
  pos += 4;
  const questionEnd = pos;

  // Skip answer and authority records; look for OPT among the additionals.
  let edns: Edns | undefined;
  const records = ancount + nscount + arcount;
  for (let i = 0; i < records; i++) {
    const nameStart = pos;
    pos = skipName(buf, pos, length);
    if (pos < 0 || pos + 10 > length) return formerr(buf, 'truncated record');
    const rrType = (buf[pos]! << 8) | buf[pos + 1]!;
    const rdlength = (buf[pos + 8]! << 8) | buf[pos + 9]!;
    const rdata = pos + 10;
    if (rdata + rdlength > length) return formerr(buf, 'truncated rdata');
    if (rrType === TYPE.OPT) {
      if (i < ancount + nscount) return formerr(buf, 'OPT outside additional section');
      if (edns) return formerr(buf, 'two OPT records');
      if (pos !== nameStart + 1 || buf[nameStart] !== 0) return formerr(buf, 'OPT owner not root');
      // Options must tile the RDATA exactly.
      let o = rdata;
      while (o < rdata + rdlength) {
        if (o + 4 > rdata + rdlength) return formerr(buf, 'OPT option truncated');
        o += 4 + ((buf[o + 2]! << 8) | buf[o + 3]!);
      }
      if (o !== rdata + rdlength) return formerr(buf, 'OPT option overruns');
      edns = {
        udpPayloadBytes: (buf[pos + 2]! << 8) | buf[pos + 3]!,
        version: buf[pos + 5]!,
        dnssecOk: (buf[pos + 6]! & 0x80) !== 0,
      };
    }
    pos = rdata + rdlength;
  }

  return {
    kind: 'query',
    query: {
      id,
      opcode,
      rd,
      cd: (flags & 0x0010) !== 0,
      name,
      nameLower: name.toLowerCase(),
      type,
      class: klass,
      questionEnd,
      edns,
    },
  };
}

/** True for the class the authoritative zones serve. */
export const isInternetClass = (query: Query): boolean => query.class === CLASS_IN;

/**
 * The little the forwarder and cache need to read of upstream replies, which
 * are relayed byte-for-byte (RFC 5625): the header, a check that the reply
 * answers our question, and the offsets of the TTL fields (for the cache to
 * age them). No name is decoded, no record is re-encoded. Never throws.
 */
import { HEADER_BYTES, MIN_RR_BYTES, TYPE } from './constants.ts';
import { skipName } from './query.ts';

export interface ReplyHeader {
  readonly id: number;
  readonly rcode: number;
  readonly truncated: boolean;
  readonly qdcount: number;
  readonly ancount: number;
}

/** The header of a reply, or undefined when the bytes are not a response. */
export function readReplyHeader(buf: Uint8Array): ReplyHeader | undefined {
  if (buf.length < HEADER_BYTES || (buf[2]! & 0x80) === 0) return undefined;
  return {
    id: (buf[0]! << 8) | buf[1]!,
    rcode: buf[3]! & 0x0f,
    truncated: (buf[2]! & 0x02) !== 0,
    qdcount: (buf[4]! << 8) | buf[5]!,
    ancount: (buf[6]! << 8) | buf[7]!,
  };
}

/** A copy of `buf` with the 16-bit message ID replaced. */
export function withId(buf: Uint8Array, id: number): Buffer {
  const out = Buffer.allocUnsafe(buf.length);
  out.set(buf);
  out[0] = id >>> 8;
  out[1] = id & 0xff;
  return out;
}

const lowerAscii = (b: number): number => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);

/**
 * True when `reply` carries exactly the question of `query` (bytes 12 to
 * `questionEnd`), letters compared without case: a reply to some other query
 * (spoofed, stale, or from a confused upstream) is not relayed.
 */
export function answersQuestion(reply: Uint8Array, query: Uint8Array, questionEnd: number): boolean {
  if (reply.length < questionEnd || reply[4] !== 0 || reply[5] !== 1) return false;
  for (let i = HEADER_BYTES; i < questionEnd; i++) {
    if (reply[i] !== query[i] && lowerAscii(reply[i]!) !== lowerAscii(query[i]!)) return false;
  }
  return true;
}

export interface TtlScan {
  /** Offsets of every record's 32-bit TTL, OPT excluded. */
  readonly ttlOffsets: readonly number[];
  /** Smallest TTL among answer records (undefined when there are none). */
  readonly minAnswerTtlSeconds: number | undefined;
  /** RFC 2308 negative TTL: min(SOA TTL, SOA MINIMUM) of an authority SOA. */
  readonly negativeTtlSeconds: number | undefined;
}

/** Walks every record of a reply. Undefined when the reply is malformed. */
export function scanTtls(buf: Uint8Array): TtlScan | undefined {
  const length = buf.length;
  if (length < HEADER_BYTES) return undefined;
  const qdcount = (buf[4]! << 8) | buf[5]!;
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  if ((ancount + nscount + arcount) * MIN_RR_BYTES + qdcount * 5 > length - HEADER_BYTES) return undefined;
  let pos = HEADER_BYTES;
  for (let i = 0; i < qdcount; i++) {
    pos = skipName(buf, pos, length);
    if (pos < 0 || pos + 4 > length) return undefined;
    pos += 4;
  }
  const ttlOffsets: number[] = [];
  let minAnswer: number | undefined;
  let negative: number | undefined;
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    pos = skipName(buf, pos, length);
    if (pos < 0 || pos + 10 > length) return undefined;
    const type = (buf[pos]! << 8) | buf[pos + 1]!;
    const ttl = ((buf[pos + 4]! << 24) | (buf[pos + 5]! << 16) | (buf[pos + 6]! << 8) | buf[pos + 7]!) >>> 0;
    const rdlength = (buf[pos + 8]! << 8) | buf[pos + 9]!;
    const rdata = pos + 10;
    if (rdata + rdlength > length) return undefined;
    if (type !== TYPE.OPT) {
      ttlOffsets.push(pos + 4);
      if (i < ancount) minAnswer = minAnswer === undefined ? ttl : Math.min(minAnswer, ttl);
      if (type === TYPE.SOA && i >= ancount && i < ancount + nscount) {
        let p = skipName(buf, rdata, rdata + rdlength);
        if (p >= 0) p = skipName(buf, p, rdata + rdlength);
        if (p >= 0 && p + 20 === rdata + rdlength) {
          const minimum = ((buf[p + 16]! << 24) | (buf[p + 17]! << 16) | (buf[p + 18]! << 8) | buf[p + 19]!) >>> 0;
          negative = Math.min(ttl, minimum);
        }
      }
    }
    pos = rdata + rdlength;
  }
  return { ttlOffsets, minAnswerTtlSeconds: minAnswer, negativeTtlSeconds: negative };
}

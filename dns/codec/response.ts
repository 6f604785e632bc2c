/**
 * Response encoding: header, the question echoed byte-for-byte from the
 * query, the records of a `ZoneAnswer` with suffix name compression, and an
 * OPT record when the client sent one. Owner names equal to the question are
 * written as a pointer to it, so answers carry the question's own case.
 * When the message exceeds `maxBytes`, additionals are dropped first; if the
 * answer or authority records still do not fit, the reply is cut to the
 * question (and OPT) with TC set, and the client retries over TCP.
 *
 * Records come from code, not the wire, but are still checked (IP syntax,
 * label and name lengths, 16/32-bit ranges): a bad one throws
 * `DNS_RECORD_INVALID` instead of putting a malformed packet on the wire.
 */
import { isIPv6 } from 'node:net';
import { StrataError } from '../../common/errors.ts';
import type { ResourceRecord } from '../zone/types.ts';
import { CLASS_IN, HEADER_BYTES, MAX_LABEL_BYTES, MAX_NAME_BYTES, TYPE } from './constants.ts';
import type { Query } from './query.ts';

/** The parts of a reply the server fills in (a `ZoneAnswer` fits). */
export interface ReplyContent {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answers: readonly ResourceRecord[];
  readonly authority: readonly ResourceRecord[];
  readonly additionals: readonly ResourceRecord[];
}

export interface EncodeOptions {
  /** Largest reply allowed (512, the negotiated EDNS size, or 65535 on TCP). */
  readonly maxBytes: number;
  /** The UDP payload size this server advertises in its OPT record. */
  readonly serverUdpPayloadBytes: number;
  /** Set RA: recursion is available (the server forwards). */
  readonly recursionAvailable: boolean;
}

export interface Encoded {
  readonly bytes: Buffer;
  readonly truncated: boolean;
}

const SCRATCH_BYTES = 65535 + 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

const invalid = (record: ResourceRecord | undefined, why: string): StrataError =>
  new StrataError('DNS_RECORD_INVALID', `dns: cannot encode ${record ? `${record.type} record ${JSON.stringify(record.name)}` : 'record'}: ${why}`, {
    details: { record },
  });

/** Writer over the module scratch buffer; one encode at a time (synchronous). */
class Writer {
  pos = 0;
  /** Lower-case name suffix -> offset, for compression pointers. */
  readonly names = new Map<string, number>();
  /** The question; its suffixes enter `names` only when a name other than it is written. */
  question: Query | undefined;
  questionRegistered = false;

  u8(v: number): void {
    scratch[this.pos++] = v;
  }
  u16(v: number): void {
    scratch[this.pos++] = v >>> 8;
    scratch[this.pos++] = v & 0xff;
  }
  u32(v: number): void {
    scratch.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  ensure(bytes: number): void {
    if (this.pos + bytes > SCRATCH_BYTES) throw new RangeError('message too large');
  }

  /** Writes a name (lower case, dotted, no trailing dot), compressing against earlier names. */
  name(name: string, record: ResourceRecord, compress: boolean): void {
    if (name.length === 0) {
      this.u8(0);
      return;
    }
    if (name.endsWith('.')) throw invalid(record, `name ${JSON.stringify(name)} has a trailing dot`);
    const key = name.toLowerCase();
    if (compress && this.question) {
      // Most owner names are the question: point at it, keeping its case.
      if (key === this.question.nameLower) {
        this.u16(0xc000 | HEADER_BYTES);
        return;
      }
      if (!this.questionRegistered) {
        this.questionRegistered = true;
        registerQuestion(this, this.question);
      }
    }
    if (Buffer.byteLength(name, 'utf8') + 2 > MAX_NAME_BYTES) {
      throw invalid(record, `name ${JSON.stringify(name)} is longer than 255 bytes`);
    }
    let start = 0;
    while (start < key.length) {
      const suffix = start === 0 ? key : key.slice(start);
      if (compress) {
        const at = this.names.get(suffix);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
      }
      let dot = key.indexOf('.', start);
      if (dot < 0) dot = key.length;
      const len = Buffer.byteLength(key.slice(start, dot), 'utf8');
      if (len === 0 || len > MAX_LABEL_BYTES) throw invalid(record, `name ${JSON.stringify(name)} has an empty or over-long label`);
      if (this.pos < 0x4000 && !this.names.has(suffix)) this.names.set(suffix, this.pos);
      this.ensure(len + 1);
      this.u8(len);
      this.pos += scratch.write(key.slice(start, dot), this.pos, 'utf8');
      start = dot + 1;
    }
    this.u8(0);
  }
}

function uint(record: ResourceRecord, field: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw invalid(record, `${field} ${value} is not an integer in 0..${max}`);
  return value;
}

/** Dotted quad without leading zeros (as `net.isIPv4`), written as 4 bytes; false when malformed. */
function writeIPv4Fast(w: Writer, address: string): boolean {
  const start = w.pos;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) break;
      w.u8(octet);
      octet = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && !(digits === 1 && octet === 0)) {
      octet = octet * 10 + (c - 0x30);
      if (++digits > 3 || octet > 255) break;
    } else {
      break;
    }
    if (i === address.length - 1 && dots === 3 && digits > 0) {
      w.u8(octet);
      return true;
    }
  }
  w.pos = start;
  return false;
}

function writeIPv4(w: Writer, record: ResourceRecord, address: string): void {
  if (!writeIPv4Fast(w, address)) throw invalid(record, `${JSON.stringify(address)} is not an IPv4 address`);
}

function writeIPv6(w: Writer, record: ResourceRecord, address: string): void {
  if (!isIPv6(address) || address.includes('%')) throw invalid(record, `${JSON.stringify(address)} is not an IPv6 address`);
  const groups: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(piece, 16));
    }
    return out;
  };
  const gap = address.indexOf('::');
  if (gap < 0) groups.push(...parse(address));
  else {
    const head = parse(address.slice(0, gap));
    const tail = parse(address.slice(gap + 2));
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  for (const g of groups) w.u16(g);
}

function writeRecord(w: Writer, record: ResourceRecord): void {
  w.ensure(MAX_NAME_BYTES + 10);
  w.name(record.name, record, true);
  const type = TYPE[record.type];
  w.u16(type);
  w.u16(CLASS_IN);
  w.u32(uint(record, 'ttlSeconds', record.ttlSeconds, 0x7fffffff));
  const lengthAt = w.pos;
  w.pos += 2;
  w.ensure(2 * MAX_NAME_BYTES + 24);
  switch (record.type) {
    case 'A':
      writeIPv4(w, record, record.address);
      break;
    case 'AAAA':
      writeIPv6(w, record, record.address);
      break;
    case 'SRV':
      w.u16(uint(record, 'priority', record.priority, 0xffff));
      w.u16(uint(record, 'weight', record.weight, 0xffff));
      w.u16(uint(record, 'port', record.port, 0xffff));
      // RFC 2782: the target is never compressed.
      w.name(record.target, record, false);
      break;
    case 'PTR':
    case 'NS':
    case 'CNAME':
      w.name(record.target, record, true);
      break;
    case 'SOA':
      w.name(record.mname, record, true);
      w.name(record.rname, record, true);
      w.u32(uint(record, 'serial', record.serial, 0xffffffff));
      w.u32(uint(record, 'refreshSeconds', record.refreshSeconds, 0x7fffffff));
      w.u32(uint(record, 'retrySeconds', record.retrySeconds, 0x7fffffff));
      w.u32(uint(record, 'expireSeconds', record.expireSeconds, 0x7fffffff));
      w.u32(uint(record, 'minimumSeconds', record.minimumSeconds, 0x7fffffff));
      break;
    case 'TXT': {
      if (record.text.length === 0) throw invalid(record, 'TXT needs at least one string');
      for (const text of record.text) {
        const bytes = Buffer.from(text, 'utf8');
        // Long strings are split into 255-byte character-strings.
        for (let i = 0; i === 0 || i < bytes.length; i += 255) {
          const chunk = bytes.subarray(i, i + 255);
          w.ensure(chunk.length + 1);
          w.u8(chunk.length);
          scratch.set(chunk, w.pos);
          w.pos += chunk.length;
        }
      }
      break;
    }
    default: {
      const unknown: { type: string } = record;
      throw invalid(undefined, `unknown record type ${JSON.stringify(unknown.type)}`);
    }
  }
  const rdlength = w.pos - lengthAt - 2;
  if (rdlength > 0xffff) throw invalid(record, 'RDATA longer than 65535 bytes');
  scratch[lengthAt] = rdlength >>> 8;
  scratch[lengthAt + 1] = rdlength & 0xff;
}

/** Registers the question name (and its suffixes) at their offsets in the echoed question. */
function registerQuestion(w: Writer, query: Query): void {
  const lower = query.nameLower;
  if (lower.length === 0 || lower.includes('\\')) return; // escaped names never match zone names
  // Owner names equal to the question point at it and so keep its case. Other
  // names may share only the suffixes of an all-lower-case question, so that
  // `Web.Marathon.Mesos` never turns the SOA owner into `Marathon.Mesos`.
  if (query.name !== lower) {
    w.names.set(lower, HEADER_BYTES);
    return;
  }
  let offset = HEADER_BYTES;
  let start = 0;
  while (start < lower.length) {
    let dot = lower.indexOf('.', start);
    if (dot < 0) dot = lower.length;
    w.names.set(start === 0 ? lower : lower.slice(start), offset);
    offset += 1 + (dot - start);
    start = dot + 1;
  }
}

function writeHeader(
  w: Writer,
  query: { id: number; opcode: number; rd: boolean; cd?: boolean },
  rcode: number,
  flags: { aa: boolean; tc: boolean; ra: boolean },
  counts: [number, number, number, number],
): void {
  w.pos = 0;
  w.u16(query.id);
  w.u8(0x80 | ((query.opcode & 0x0f) << 3) | (flags.aa ? 0x04 : 0) | (flags.tc ? 0x02 : 0) | (query.rd ? 0x01 : 0));
  w.u8((flags.ra ? 0x80 : 0) | (query.cd ? 0x10 : 0) | (rcode & 0x0f));
  for (const c of counts) w.u16(c);
}

function writeOpt(w: Writer, query: Query, options: EncodeOptions, rcode: number): void {
  w.u8(0);
  w.u16(TYPE.OPT);
  w.u16(options.serverUdpPayloadBytes);
  w.u8(rcode >> 4);
  w.u8(0); // version 0
  w.u8(query.edns?.dnssecOk ? 0x80 : 0);
  w.u8(0);
  w.u16(0);
}

const OPT_BYTES = 11;

function finish(w: Writer): Buffer {
  return Buffer.from(scratch.subarray(0, w.pos));
}

/**
 * Encodes the reply to `query` (whose raw bytes are `queryBytes`). Throws
 * `DNS_RECORD_INVALID` for a record it cannot encode; nothing else.
 */
export function encodeReply(query: Query, queryBytes: Uint8Array, content: ReplyContent, options: EncodeOptions): Encoded {
  const w = new Writer();
  const rcode = content.rcode;
  const questionBytes = query.questionEnd - HEADER_BYTES;
  w.pos = HEADER_BYTES;
  scratch.set(queryBytes.subarray(HEADER_BYTES, query.questionEnd), HEADER_BYTES);
  w.pos = query.questionEnd;
  if (query.nameLower.length > 0 && !query.nameLower.includes('\\')) w.question = query;
  const sections = [content.answers, content.authority, content.additionals] as const;
  const ends: number[][] = [[], [], []];
  let overflow = false;
  try {
    for (let s = 0; s < 3; s++) {
      for (const record of sections[s]!) {
        writeRecord(w, record);
        ends[s]!.push(w.pos);
      }
    }
  } catch (err) {
    // More than 64 KiB of records: nothing but TC can be said.
    if (!(err instanceof RangeError)) throw err;
    overflow = true;
  }
  const optBytes = query.edns ? OPT_BYTES : 0;
  const limit = Math.min(options.maxBytes, 65535) - optBytes;
  let an = content.answers.length;
  let ns = content.authority.length;
  let ar = content.additionals.length;
  let truncated = false;
  if (overflow) {
    truncated = true;
    an = ns = ar = 0;
    w.pos = query.questionEnd;
  } else if (w.pos > limit) {
    const required = ns > 0 ? ends[1]![ns - 1]! : an > 0 ? ends[0]![an - 1]! : query.questionEnd;
    if (required <= limit) {
      // Keep as many additionals as fit; dropping glue is not truncation (RFC 2181 9).
      while (ar > 0 && ends[2]![ar - 1]! > limit) ar--;
      w.pos = ar > 0 ? ends[2]![ar - 1]! : required;
    } else {
      truncated = true;
      an = ns = ar = 0;
      w.pos = query.questionEnd;
    }
  }
  if (query.edns) writeOpt(w, query, options, rcode);
  const end = w.pos;
  writeHeader(w, query, rcode, { aa: content.authoritative, tc: truncated, ra: options.recursionAvailable }, [
    questionBytes > 0 ? 1 : 0,
    an,
    ns,
    ar + (query.edns ? 1 : 0),
  ]);
  w.pos = end;
  return { bytes: finish(w), truncated };
}

/**
 * A reply with no records: the question echoed when there is one, an OPT when
 * the client sent one. For SERVFAIL, REFUSED, BADVERS and truncation.
 */
export function encodeEmptyReply(query: Query, queryBytes: Uint8Array, rcode: number, options: EncodeOptions): Buffer {
  return encodeReply(query, queryBytes, { rcode, authoritative: false, answers: [], authority: [], additionals: [] }, options).bytes;
}

/** Header-only reply for messages the parser rejected (FORMERR, NOTIMP). */
export function encodeHeaderOnly(header: { id: number; opcode: number; rd: boolean }, rcode: number): Buffer {
  const w = new Writer();
  writeHeader(w, header, rcode, { aa: false, tc: false, ra: false }, [0, 0, 0, 0]);
  return finish(w);
}

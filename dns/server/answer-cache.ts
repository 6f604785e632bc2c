/**
 * Encoded answers kept for reuse: the server's fast path for the internal
 * zones. An answer that a plugin marks reusable (`DnsReply.reuse`) is kept
 * as the wire bytes after the question; the next query with the same
 * question gets those bytes behind its own header and question, with only
 * the ID, RD and CD taken from the query. No parse into strings, no chain,
 * no encode.
 *
 * Why the bytes are the same for every such query:
 * - Owner names equal to the question are compression pointers to it
 *   (offset 12), so the answer carries each query's own spelling (0x20 case)
 *   without being rewritten; the question is copied from the query.
 * - The encoder compresses other names against the question's suffixes only
 *   when the question is all lower case, so lower-case and mixed-case
 *   questions are kept apart (the `variant` byte of the key), as are
 *   queries without EDNS, with EDNS, and with EDNS and DO (OPT in the tail).
 * - Only replies sent whole are kept (no TC, no glue dropped): one fits any
 *   query whose size limit holds it; a smaller limit takes the slow path.
 *
 * Only queries of the plain shape take the fast path: QUERY, one question
 * of printable labels (no escapes), no answer or authority records, and at
 * most one additional record which is an OPT of version 0 with no options.
 * Everything else (dig's cookies, BADVERS, malformed input) goes through
 * the parser and policy of server.ts as before.
 *
 * Validity: a reply's `reuse` names a source and the version it was read
 * at; an entry is used only while `source.version()` still returns that
 * version (the zones bump it on every change). Entries are bounded; the
 * oldest goes first.
 */
import { CLASSIC_UDP_BYTES, HEADER_BYTES, MAX_LABEL_BYTES, MAX_NAME_BYTES, TYPE } from '../codec/constants.ts';
import type { DnsReply, ReplyReuse, Transport } from './handler.ts';

/**
 * One kept answer, about 220 bytes with its key (a tail held as a Buffer
 * cost 100 more: a latin1 string holds bytes 0-255 as they are).
 */
interface Entry {
  /** The reply's bytes after the question (answers, authority, additionals, OPT), as latin1 text. */
  readonly tail: string;
  /** Header byte 2 without RD, byte 3 without CD. */
  readonly flags2: number;
  readonly flags3: number;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
  readonly source: ReplyReuse['source'];
  readonly version: number;
  /** Metric cells of `strata_dns_requests_total` for this answer, per transport. */
  readonly udpCount: { value: number };
  readonly tcpCount: { value: number };
}

export interface AnswerCacheOptions {
  /** Entries kept at most (the oldest is dropped first). */
  readonly maxEntries: number;
  /** The server's EDNS payload limit (`dns.maxUdpPayloadBytes`). */
  readonly maxUdpPayloadBytes: number;
  /** The metric cell counting one reply (transport, plugin, rcode). */
  readonly countCell: (transport: Transport, plugin: string, rcode: number) => { value: number };
}

const TCP_MAX_BYTES = 65535;
/** The key: a variant byte, then the question (name lowered, type and class as received). */
const KEY_MAX_BYTES = 1 + MAX_NAME_BYTES + 4;

export class AnswerCache {
  readonly #entries = new Map<string, Entry>();
  readonly #options: AnswerCacheOptions;
  readonly #scratch = Buffer.alloc(KEY_MAX_BYTES);
  /** The last probe that missed, for `fill` (the slow path runs synchronously right after). */
  #pendingKey: string | undefined;
  #pendingQuestionEnd = 0;
  hits = 0;
  misses = 0;

  constructor(options: AnswerCacheOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The reply to `bytes` when it is held and still valid, else undefined.
   * A query of the plain shape that missed is remembered for `fill`.
   */
  answer(bytes: Buffer, transport: Transport): Buffer | undefined {
    this.#pendingKey = undefined;
    const length = bytes.length;
    // Header: a QUERY (QR 0, opcode 0), one question, nothing else but maybe an OPT.
    if (length < HEADER_BYTES + 5 || (bytes[2]! & 0xf8) !== 0 || bytes[4] !== 0 || bytes[5] !== 1) return undefined;
    if (bytes[6] !== 0 || bytes[7] !== 0 || bytes[8] !== 0 || bytes[9] !== 0 || bytes[10] !== 0) return undefined;
    const arcount = bytes[11]!;
    if (arcount > 1) return undefined;
    // The question: printable labels only, lowered into the key.
    const key = this.#scratch;
    let pos = HEADER_BYTES;
    let k = 1;
    let mixed = 0;
    for (;;) {
      if (pos >= length) return undefined;
      const len = bytes[pos]!;
      key[k++] = len;
      pos++;
      if (len === 0) break;
      if (len > MAX_LABEL_BYTES || pos - HEADER_BYTES + len + 1 > MAX_NAME_BYTES || pos + len > length) return undefined;
      for (const end = pos + len; pos < end; pos++) {
        let b = bytes[pos]!;
        // Bytes the parser escapes (controls, space, high bytes, `.`, `\`) never take the fast path.
        if (b <= 0x20 || b >= 0x7f || b === 0x2e || b === 0x5c) return undefined;
        if (b >= 0x41 && b <= 0x5a) {
          b |= 0x20;
          mixed = 4;
        }
        key[k++] = b;
      }
    }
    if (pos + 4 > length) return undefined;
    key[k++] = bytes[pos]!;
    key[k++] = bytes[pos + 1]!;
    key[k++] = bytes[pos + 2]!;
    key[k++] = bytes[pos + 3]!;
    const questionEnd = pos + 4;
    let variant = mixed;
    let maxBytes = transport === 'tcp' ? TCP_MAX_BYTES : CLASSIC_UDP_BYTES;
    if (arcount === 1) {
      // OPT: root owner, version 0, no options.
      const o = questionEnd;
      if (o + 11 > length || bytes[o] !== 0 || bytes[o + 1] !== 0 || bytes[o + 2] !== TYPE.OPT) return undefined;
      if (bytes[o + 6] !== 0 || bytes[o + 9] !== 0 || bytes[o + 10] !== 0) return undefined;
      variant |= (bytes[o + 7]! & 0x80) !== 0 ? 3 : 1;
      if (transport === 'udp') {
        const advertised = (bytes[o + 3]! << 8) | bytes[o + 4]!;
        maxBytes = Math.min(Math.max(advertised, CLASSIC_UDP_BYTES), this.#options.maxUdpPayloadBytes);
      }
    }
    key[0] = variant;
    const keyText = key.toString('latin1', 0, k);
    const entry = this.#entries.get(keyText);
    if (entry === undefined || entry.source.version() !== entry.version) {
      if (entry !== undefined) this.#entries.delete(keyText);
      this.misses++;
      this.#pendingKey = keyText;
      this.#pendingQuestionEnd = questionEnd;
      return undefined;
    }
    const tail = entry.tail;
    if (questionEnd + tail.length > maxBytes) return undefined; // the slow path truncates
    this.hits++;
    const out = Buffer.allocUnsafe(questionEnd + tail.length);
    out[0] = bytes[0]!;
    out[1] = bytes[1]!;
    out[2] = entry.flags2 | (bytes[2]! & 0x01);
    out[3] = entry.flags3 | (bytes[3]! & 0x10);
    out[4] = 0;
    out[5] = 1;
    out[6] = entry.an >> 8;
    out[7] = entry.an & 0xff;
    out[8] = entry.ns >> 8;
    out[9] = entry.ns & 0xff;
    out[10] = entry.ar >> 8;
    out[11] = entry.ar & 0xff;
    for (let i = HEADER_BYTES; i < questionEnd; i++) out[i] = bytes[i]!;
    out.write(tail, questionEnd, 'latin1');
    (transport === 'udp' ? entry.udpCount : entry.tcpCount).value++;
    return out;
  }

  /**
   * Keeps `encoded`, the reply just sent for the query `answer` last missed,
   * when its plugin marked it reusable and it went out whole.
   */
  fill(reply: DnsReply, encoded: Buffer, hadEdns: boolean): void {
    const keyText = this.#pendingKey;
    this.#pendingKey = undefined;
    if (keyText === undefined || reply.kind !== 'records' || reply.reuse === undefined) return;
    const questionEnd = this.#pendingQuestionEnd;
    const an = (encoded[6]! << 8) | encoded[7]!;
    const ns = (encoded[8]! << 8) | encoded[9]!;
    const ar = (encoded[10]! << 8) | encoded[11]!;
    // Only whole replies: no TC, every record present.
    if ((encoded[2]! & 0x02) !== 0 || encoded.length < questionEnd) return;
    if (an !== reply.answers.length || ns !== reply.authority.length || ar !== reply.additionals.length + (hadEdns ? 1 : 0)) return;
    if (this.#entries.size >= this.#options.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) return;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(keyText, {
      tail: encoded.toString('latin1', questionEnd),
      flags2: encoded[2]! & 0xfe,
      flags3: encoded[3]! & 0xef,
      an,
      ns,
      ar,
      source: reply.reuse.source,
      version: reply.reuse.version,
      udpCount: this.#options.countCell('udp', reply.plugin, reply.rcode),
      tcpCount: this.#options.countCell('tcp', reply.plugin, reply.rcode),
    });
  }

  clear(): void {
    this.#entries.clear();
    this.#pendingKey = undefined;
  }
}

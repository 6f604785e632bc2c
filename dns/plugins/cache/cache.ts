/**
 * `cache`: a small LRU of forwarded replies. It sits after `authority` in
 * the chain, so internal names never reach it: a new task's name is answered
 * from the zones the moment it exists, never from a stale cached NXDOMAIN.
 *
 * Stored: relayed NOERROR replies with answers (for their smallest TTL),
 * and NXDOMAIN/NODATA with an SOA (for min(SOA TTL, MINIMUM), RFC 2308),
 * capped at `maxTtlSeconds`. Never stored: SERVFAIL, REFUSED, TC, anything
 * with a TTL of 0 or that does not parse. A hit is the stored bytes with the
 * client's ID, the client's spelling of the question, and every TTL reduced
 * by the time spent in the cache. The key includes type, class, the DO and
 * CD bits and whether the client spoke EDNS, so a reply is only reused for
 * a query that would have got the same one.
 */
import { RCODE } from '../../codec/constants.ts';
import { scanTtls } from '../../codec/relay.ts';
import type { DnsReply, DnsRequest, Handler, Plugin } from '../../server/handler.ts';
import type { CacheMetrics } from './metrics.ts';

export const NAME = 'cache';

export interface CacheOptions {
  readonly maxEntries: number;
  readonly maxTtlSeconds: number;
  readonly metrics: CacheMetrics;
  readonly now?: () => number;
}

interface Entry {
  readonly bytes: Buffer;
  readonly ttlOffsets: readonly number[];
  readonly storedMs: number;
  readonly expiresMs: number;
}

function keyOf(request: DnsRequest): string {
  const q = request.query;
  return `${q.nameLower}|${q.type}|${q.class}|${q.edns ? (q.edns.dnssecOk ? 2 : 1) : 0}|${q.cd ? 1 : 0}`;
}

/** How long a reply may be cached, in seconds (0: not at all). Pure. */
export function cacheableSeconds(bytes: Buffer, maxTtlSeconds: number): { seconds: number; ttlOffsets: readonly number[] } {
  if (bytes.length < 12 || (bytes[2]! & 0x02) !== 0) return { seconds: 0, ttlOffsets: [] };
  const rcode = bytes[3]! & 0x0f;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return { seconds: 0, ttlOffsets: [] };
  const scan = scanTtls(bytes);
  if (!scan) return { seconds: 0, ttlOffsets: [] };
  const ancount = (bytes[6]! << 8) | bytes[7]!;
  const ttl = rcode === RCODE.NOERROR && ancount > 0 ? scan.minAnswerTtlSeconds : scan.negativeTtlSeconds;
  return { seconds: Math.min(ttl ?? 0, maxTtlSeconds), ttlOffsets: scan.ttlOffsets };
}

export function cachePlugin(options: CacheOptions): Plugin {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const { metrics } = options;

  const hit = (request: DnsRequest, entry: Entry, nowMs: number): DnsReply => {
    const bytes = Buffer.from(entry.bytes);
    bytes[0] = request.bytes[0]!;
    bytes[1] = request.bytes[1]!;
    // Same name without case, same length: take the client's spelling.
    request.bytes.copy(bytes, 12, 12, request.query.questionEnd);
    const aged = Math.floor((nowMs - entry.storedMs) / 1000);
    if (aged > 0) {
      for (const at of entry.ttlOffsets) {
        const ttl = bytes.readUInt32BE(at);
        bytes.writeUInt32BE(Math.max(0, ttl - aged), at);
      }
    }
    return { kind: 'relay', plugin: NAME, bytes };
  };

  return (next: Handler): Handler => ({
    name: NAME,
    serve(request: DnsRequest): DnsReply | Promise<DnsReply> {
      const key = keyOf(request);
      const nowMs = now();
      const entry = entries.get(key);
      if (entry) {
        if (entry.expiresMs > nowMs) {
          // Refresh LRU position.
          entries.delete(key);
          entries.set(key, entry);
          metrics.hits.inc();
          return hit(request, entry, nowMs);
        }
        entries.delete(key);
      }
      metrics.misses.inc();
      const store = (reply: DnsReply): DnsReply => {
        if (reply.kind !== 'relay') return reply;
        const { seconds, ttlOffsets } = cacheableSeconds(reply.bytes, options.maxTtlSeconds);
        if (seconds <= 0) return reply;
        const storedMs = now();
        entries.set(key, { bytes: Buffer.from(reply.bytes), ttlOffsets, storedMs, expiresMs: storedMs + seconds * 1000 });
        while (entries.size > options.maxEntries) entries.delete(entries.keys().next().value!);
        metrics.entries.set(entries.size);
        return reply;
      };
      const reply = next.serve(request);
      return reply instanceof Promise ? reply.then(store) : store(reply);
    },
  });
}

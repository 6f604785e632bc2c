/**
 * The one handler contract of the DNS server (CoreDNS's `plugin.Handler`).
 * A request flows down a chain of plugins; each either answers it or passes
 * it to `next`. A plugin never writes to a socket: it returns a reply value
 * and the server encodes, truncates and sends it.
 *
 * Rules every plugin keeps:
 * - `serve` never throws for a query it cannot answer; it passes the request
 *   on, or returns SERVFAIL/REFUSED as a value. (The server still turns a
 *   thrown error or rejected promise into SERVFAIL.)
 * - `request` and its bytes are shared down the chain and are never mutated;
 *   a plugin that relays the query copies it first.
 * - A `relay` reply is a complete DNS message from elsewhere, with the
 *   client's message ID already restored; the server sends it as it is.
 */
import type { Query } from '../codec/query.ts';
import type { ResourceRecord } from '../zone/types.ts';

export type Transport = 'udp' | 'tcp';

/** Something whose answers stay the same while `version()` returns the same number. */
export interface VersionSource {
  version(): number;
}

/**
 * A plugin's promise that the same question gets the same records (in the
 * same order) while `source.version()` returns `version`, so the server may
 * send the encoded answer again without asking (answer-cache.ts). Never set
 * on answers that rotate or expire.
 */
export interface ReplyReuse {
  readonly source: VersionSource;
  readonly version: number;
}

export interface DnsRequest {
  readonly query: Query;
  /** The query exactly as received (read only). */
  readonly bytes: Buffer;
  readonly transport: Transport;
  /** The largest reply the client accepts (512, its EDNS size capped by the server, or 65535 on TCP). */
  readonly maxReplyBytes: number;
}

export type DnsReply =
  | {
      readonly kind: 'records';
      /** Name of the plugin that answered (metrics). */
      readonly plugin: string;
      /** Wire rcode (see codec/constants.ts RCODE). */
      readonly rcode: number;
      readonly authoritative: boolean;
      readonly answers: readonly ResourceRecord[];
      readonly authority: readonly ResourceRecord[];
      readonly additionals: readonly ResourceRecord[];
      /** Set when the same question may get these bytes again (see ReplyReuse). */
      readonly reuse?: ReplyReuse;
    }
  | {
      readonly kind: 'relay';
      readonly plugin: string;
      /** A whole reply message, ID already the client's. */
      readonly bytes: Buffer;
    };

export interface Handler {
  readonly name: string;
  serve(request: DnsRequest): DnsReply | Promise<DnsReply>;
}

/** A plugin wraps the rest of the chain. */
export type Plugin = (next: Handler) => Handler;

/** A reply without records (REFUSED, SERVFAIL). */
export function emptyReply(plugin: string, rcode: number, authoritative = false): DnsReply {
  return { kind: 'records', plugin, rcode, authoritative, answers: [], authority: [], additionals: [] };
}

/** The end of every chain: nobody answered, so the server refuses (as CoreDNS does for zones it does not serve). */
export const REFUSE: Handler = {
  name: 'end',
  serve: () => emptyReply('end', 5),
};

/** Builds the chain from plugins in order: the first plugin sees requests first. */
export function compose(plugins: readonly Plugin[]): Handler {
  let handler = REFUSE;
  for (let i = plugins.length - 1; i >= 0; i--) handler = plugins[i]!(handler);
  return handler;
}

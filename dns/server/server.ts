/**
 * The DNS server without sockets: bytes in, bytes out (fastify's split of
 * the app from `listen()`). Parses, applies the protocol policy (drop runts
 * and responses, FORMERR/NOTIMP, BADVERS, payload size, TC), runs the
 * handler chain, encodes. `respond` never throws and never rejects: a plugin
 * failure becomes SERVFAIL. Listeners live in udp.ts and tcp.ts.
 */
import { isStrataError } from '../../common/errors.ts';
import { CLASSIC_UDP_BYTES, RCODE, rcodeName } from '../codec/constants.ts';
import { parseQuery, type Query } from '../codec/query.ts';
import { encodeEmptyReply, encodeHeaderOnly, encodeReply, type EncodeOptions } from '../codec/response.ts';
import { AnswerCache } from './answer-cache.ts';
import type { DnsReply, DnsRequest, Handler, Transport } from './handler.ts';
import type { ServerMetrics } from './metrics.ts';

/** The logging this package does (a pino or fastify logger fits). */
export interface DnsLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface DnsServerOptions {
  readonly handler: Handler;
  readonly metrics: ServerMetrics;
  readonly logger: DnsLogger;
  /** Largest UDP reply this server sends to EDNS clients (1232 is the DNS Flag Day 2020 value). */
  readonly maxUdpPayloadBytes: number;
  /** Set RA in replies (the chain forwards to recursive resolvers). */
  readonly recursionAvailable: boolean;
  /** Encoded reusable answers kept (answer-cache.ts); 0 or absent: every query goes through the chain. */
  readonly answerCacheMaxEntries?: number;
}

export interface DnsServer {
  /**
   * Answers one message. `deliver` is called exactly once (synchronously
   * when the chain answers synchronously) and the result is true; or, for
   * messages that get no reply (runts, responses), never, and the result is
   * false.
   */
  respond(bytes: Buffer, transport: Transport, deliver: (reply: Buffer) => void): boolean;
  /** Promise form of `respond` for tests and tools: undefined when nothing is sent. */
  answer(bytes: Buffer, transport: Transport): Promise<Buffer | undefined>;
}

const TCP_MAX_BYTES = 65535;

export function buildDnsServer(options: DnsServerOptions): DnsServer {
  const { handler, metrics, logger } = options;
  /** Metric cells by transport, plugin and rcode, so counting a reply builds no label string. */
  const cells: Record<Transport, Map<string, { value: number }[]>> = { udp: new Map(), tcp: new Map() };
  const countCell = (transport: Transport, plugin: string, rcode: number): { value: number } => {
    let byRcode = cells[transport].get(plugin);
    if (!byRcode) cells[transport].set(plugin, (byRcode = []));
    let cell = byRcode[rcode];
    if (!cell) {
      const rcodeText = rcodeName(rcode);
      cell = byRcode[rcode] = metrics.requests.cell({ transport, plugin, rcode: rcodeText }, `${transport} ${plugin} ${rcodeText}`);
    }
    return cell;
  };
  const count = (transport: Transport, plugin: string, rcode: number): void => void countCell(transport, plugin, rcode).value++;
  const answers =
    (options.answerCacheMaxEntries ?? 0) > 0
      ? new AnswerCache({ maxEntries: options.answerCacheMaxEntries!, maxUdpPayloadBytes: options.maxUdpPayloadBytes, countCell })
      : undefined;
  if (answers) metrics.trackAnswerCache(answers);
  const encodeOptions = (maxBytes: number): EncodeOptions => ({
    maxBytes,
    serverUdpPayloadBytes: options.maxUdpPayloadBytes,
    recursionAvailable: options.recursionAvailable,
  });

  const maxReplyBytes = (query: Query, transport: Transport): number => {
    if (transport === 'tcp') return TCP_MAX_BYTES;
    if (!query.edns) return CLASSIC_UDP_BYTES;
    return Math.min(Math.max(query.edns.udpPayloadBytes, CLASSIC_UDP_BYTES), options.maxUdpPayloadBytes);
  };

  const servfail = (request: DnsRequest, err: unknown): Buffer => {
    metrics.handlerErrors.inc();
    logger.warn({ err, code: isStrataError(err) ? err.code : undefined, name: request.query.name, type: request.query.type }, 'dns: answering SERVFAIL');
    count(request.transport, 'server', RCODE.SERVFAIL);
    return encodeEmptyReply(request.query, request.bytes, RCODE.SERVFAIL, encodeOptions(request.maxReplyBytes));
  };

  const finish = (request: DnsRequest, reply: DnsReply): Buffer => {
    if (reply.kind === 'relay') {
      if (reply.bytes.length > request.maxReplyBytes) {
        // Only possible when the upstream ignored the size we passed on.
        // A limit of 0 forces the question-only TC form.
        const rcode = reply.bytes[3]! & 0x0f;
        metrics.truncated.inc({ transport: request.transport });
        count(request.transport, reply.plugin, rcode);
        return encodeReply(request.query, request.bytes, { rcode, authoritative: false, answers: [], authority: [], additionals: [] }, encodeOptions(0)).bytes;
      }
      count(request.transport, reply.plugin, reply.bytes[3]! & 0x0f);
      return reply.bytes;
    }
    const encoded = encodeReply(request.query, request.bytes, reply, encodeOptions(request.maxReplyBytes));
    if (encoded.truncated) metrics.truncated.inc({ transport: request.transport });
    count(request.transport, reply.plugin, reply.rcode);
    return encoded.bytes;
  };

  const respond = (bytes: Buffer, transport: Transport, deliver: (reply: Buffer) => void): boolean => {
    if (answers) {
      const cached = answers.answer(bytes, transport);
      if (cached !== undefined) {
        deliver(cached);
        return true;
      }
    }
    const parsed = parseQuery(bytes);
    if (parsed.kind === 'drop') {
      metrics.malformed.inc({ reason: parsed.reason });
      return false;
    }
    if (parsed.kind === 'error') {
      metrics.malformed.inc({ reason: parsed.reason });
      count(transport, 'server', parsed.rcode);
      deliver(encodeHeaderOnly(parsed, parsed.rcode));
      return true;
    }
    const query = parsed.query;
    const request: DnsRequest = { query, bytes, transport, maxReplyBytes: maxReplyBytes(query, transport) };
    if (query.edns && query.edns.version !== 0) {
      // RFC 6891 6.1.3: we speak version 0 only.
      count(transport, 'server', RCODE.BADVERS);
      deliver(encodeEmptyReply(query, bytes, RCODE.BADVERS, encodeOptions(request.maxReplyBytes)));
      return true;
    }
    let reply: DnsReply | Promise<DnsReply>;
    try {
      reply = handler.serve(request);
    } catch (err) {
      deliver(servfail(request, err));
      return true;
    }
    if (reply instanceof Promise) {
      reply.then(
        (r) => {
          let out: Buffer;
          try {
            out = finish(request, r);
          } catch (err) {
            out = servfail(request, err);
          }
          deliver(out);
        },
        (err: unknown) => deliver(servfail(request, err)),
      ).catch((err: unknown) => logger.error({ err }, 'dns: delivering a reply failed'));
      return true;
    }
    let out: Buffer;
    try {
      out = finish(request, reply);
      // Still synchronous: the cache's last miss is this query.
      if (answers && reply.kind === 'records' && reply.reuse) answers.fill(reply, out, query.edns !== undefined);
    } catch (err) {
      out = servfail(request, err);
    }
    deliver(out);
    return true;
  };

  return {
    respond,
    answer: (bytes, transport) =>
      new Promise((resolve) => {
        if (!respond(bytes, transport, resolve)) resolve(undefined);
      }),
  };
}

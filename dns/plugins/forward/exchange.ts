/**
 * `UpstreamExchange`: one query to one upstream, one validated reply back.
 * The forwarder's only I/O port; tests may replace it.
 *
 * UDP goes through a small shared set of sockets per upstream (not a socket
 * per query: the calibration measured that at 3-5x the cost), each one
 * connected to its upstream: a send then needs no address lookup in Node and
 * no route lookup in the kernel, and the kernel drops datagrams from any
 * other source. Each query leaves with a
 * fresh random ID from its socket's free IDs and the reply's ID is set back
 * to the client's; everything else is relayed as the upstream sent it. A
 * reply is accepted only from the address it was sent to, with a pending ID,
 * QR set and our question; anything else is counted and dropped (or, from
 * the right upstream, fails that attempt as garbage). Each socket is
 * replaced after {@link QUERIES_PER_SOCKET} queries, so the source port
 * moves as well as the ID.
 *
 * TCP (queries that came over TCP, e.g. after TC) opens one connection per
 * query, like Spartan, and reads one framed reply.
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { answersQuestion, readReplyHeader } from '../../codec/relay.ts';
import { FrameReader, frame } from '../../server/frames.ts';
import type { Transport } from '../../server/handler.ts';
import type { Upstream } from './upstream.ts';

export type FailureReason = 'timeout' | 'network' | 'garbage' | 'busy' | 'aborted';

export type ExchangeResult = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly reason: FailureReason };

export interface Attempt {
  readonly result: Promise<ExchangeResult>;
  /** Stop waiting (another upstream answered); resolves `result` as aborted. */
  cancel(): void;
}

export interface UpstreamExchange {
  /**
   * Sends `query` (read, never mutated) to `upstream`. The reply comes back
   * with the query's own ID. `questionEnd` is where the question section ends.
   * `result` settles within `timeoutMs` whatever the upstream does (reason
   * `timeout`): the forwarder relies on it.
   */
  exchange(upstream: Upstream, query: Buffer, questionEnd: number, transport: Transport, timeoutMs: number): Attempt;
  close(): Promise<void>;
}

export interface ExchangeOptions {
  /** UDP sockets per upstream (default 2). */
  readonly udpSockets?: number;
  /** Queries per UDP socket before it is replaced (default {@link QUERIES_PER_SOCKET}). */
  readonly queriesPerSocket?: number;
  /** Replies that matched no pending query, by reason (metrics). */
  readonly onUnmatched?: (reason: 'unknown-id' | 'wrong-source') => void;
}

interface Pending {
  readonly upstream: Upstream;
  readonly clientId: number;
  readonly query: Buffer;
  readonly questionEnd: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (result: ExchangeResult) => void;
}

interface UdpSlot {
  readonly socket: Socket;
  /** Connected to its upstream (else each send names the address). */
  readonly connected: boolean;
  readonly pending: Map<number, Pending>;
  /** Queries sent from this socket. */
  sent: number;
  /** Replaced by a fresh socket: takes no new queries, closes once its pending ones settle. */
  retired: boolean;
}

const MAX_PENDING_PER_SOCKET = 60_000;

/**
 * A socket is replaced after this many queries, so the source port an
 * off-path spoofer must guess changes too (dnsmasq picks a random port per
 * query; this keeps the shared-socket cost and still moves).
 */
export const QUERIES_PER_SOCKET = 10_000;

/** Canonical text of an IP address, so `::1` and `0::1` compare equal. */
function canonical(address: string): string {
  return address.includes(':') ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address;
}

export function createUpstreamExchange(options: ExchangeOptions = {}): UpstreamExchange {
  const perUpstream = options.udpSockets ?? 2;
  const queriesPerSocket = options.queriesPerSocket ?? QUERIES_PER_SOCKET;
  /** Sockets by upstream key, and the one used last. */
  const slots = new Map<string, { list: UdpSlot[]; next: number }>();
  /** Every open socket, retired ones included (for close()). */
  const open = new Set<UdpSlot>();
  const tcpAttempts = new Set<() => void>();
  const hostOf = new Map<string, string>();
  let closed = false;

  const newSlot = (upstream: Upstream): UdpSlot => {
    const family = upstream.family;
    // Upstreams are IP literals (upstream.ts): the lookup answers at once, so
    // bind and connect complete inside connect() (no dns.lookup tick).
    const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: (host, _options, callback) => callback(null, host, family) });
    // Errors (ICMP unreachable and such) surface per attempt as timeouts.
    socket.on('error', () => undefined);
    let connected = false;
    try {
      socket.connect(upstream.port, upstream.host);
      socket.remoteAddress(); // throws unless connected
      connected = true;
    } catch {
      // Not connected at once: every send names the upstream instead.
    }
    const slot: UdpSlot = { socket, connected, pending: new Map(), sent: 0, retired: false };
    socket.on('message', (msg, rinfo) => onMessage(slot, msg, rinfo.address, rinfo.port));
    socket.unref();
    open.add(slot);
    return slot;
  };

  /** Closes a retired socket once nothing waits on it. */
  const closeIfDrained = (slot: UdpSlot): void => {
    if (slot.retired && slot.pending.size === 0 && open.delete(slot)) slot.socket.close();
  };

  const slotFor = (upstream: Upstream): UdpSlot => {
    let pool = slots.get(upstream.key);
    if (!pool) slots.set(upstream.key, (pool = { list: [], next: 0 }));
    const list = pool.list;
    if (list.length < perUpstream) {
      const slot = newSlot(upstream);
      list.push(slot);
      return slot;
    }
    const i = (pool.next = (pool.next + 1) % list.length);
    const slot = list[i]!;
    if (slot.sent < queriesPerSocket) return slot;
    slot.retired = true;
    closeIfDrained(slot);
    return (list[i] = newSlot(upstream));
  };

  const settle = (slot: UdpSlot, id: number): Pending | undefined => {
    const pending = slot.pending.get(id);
    if (!pending) return undefined;
    slot.pending.delete(id);
    clearTimeout(pending.timer);
    closeIfDrained(slot);
    return pending;
  };

  const onMessage = (slot: UdpSlot, msg: Buffer, address: string, port: number): void => {
    if (msg.length < 2) return options.onUnmatched?.('unknown-id');
    const id = (msg[0]! << 8) | msg[1]!;
    const pending = slot.pending.get(id);
    if (!pending) return options.onUnmatched?.('unknown-id');
    const want = pending.upstream;
    if (port !== want.port || address !== (hostOf.get(want.host) ?? want.host)) return options.onUnmatched?.('wrong-source');
    settle(slot, id);
    const header = readReplyHeader(msg);
    if (!header || !answersQuestion(msg, pending.query, pending.questionEnd)) {
      pending.resolve({ ok: false, reason: 'garbage' });
      return;
    }
    // dgram hands us a fresh buffer per message: restoring the ID in place is safe.
    msg[0] = pending.clientId >>> 8;
    msg[1] = pending.clientId & 0xff;
    pending.resolve({ ok: true, bytes: msg });
  };

  const udp = (upstream: Upstream, query: Buffer, questionEnd: number, timeoutMs: number): Attempt => {
    if (!hostOf.has(upstream.host)) hostOf.set(upstream.host, canonical(upstream.host));
    const slot = slotFor(upstream);
    let resolveResult!: (r: ExchangeResult) => void;
    const result = new Promise<ExchangeResult>((resolve) => (resolveResult = resolve));
    if (slot.pending.size >= MAX_PENDING_PER_SOCKET) {
      resolveResult({ ok: false, reason: 'busy' });
      return { result, cancel: () => undefined };
    }
    let id = (Math.random() * 0x10000) | 0;
    while (slot.pending.has(id)) id = (Math.random() * 0x10000) | 0;
    const out = Buffer.allocUnsafe(query.length);
    query.copy(out);
    out[0] = id >>> 8;
    out[1] = id & 0xff;
    const timer = setTimeout(() => {
      if (slot.pending.get(id)?.timer === timer) settle(slot, id);
      resolveResult({ ok: false, reason: 'timeout' });
    }, timeoutMs);
    slot.pending.set(id, { upstream, clientId: (query[0]! << 8) | query[1]!, query, questionEnd, timer, resolve: resolveResult });
    slot.sent++;
    const sent = (err: Error | null): void => {
      if (err && slot.pending.get(id)?.timer === timer) {
        settle(slot, id);
        resolveResult({ ok: false, reason: 'network' });
      }
    };
    if (slot.connected) slot.socket.send(out, sent);
    else slot.socket.send(out, upstream.port, upstream.host, sent);
    return {
      result,
      cancel: () => {
        if (slot.pending.get(id)?.timer === timer) {
          settle(slot, id);
          resolveResult({ ok: false, reason: 'aborted' });
        }
      },
    };
  };

  const tcp = (upstream: Upstream, query: Buffer, questionEnd: number, timeoutMs: number): Attempt => {
    let settled = false;
    let resolveResult!: (r: ExchangeResult) => void;
    const result = new Promise<ExchangeResult>((resolve) => (resolveResult = resolve));
    const socket = connect({ host: upstream.host, port: upstream.port, noDelay: true });
    const settle = (r: ExchangeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tcpAttempts.delete(abort);
      socket.destroy();
      resolveResult(r);
    };
    const abort = (): void => settle({ ok: false, reason: 'aborted' });
    tcpAttempts.add(abort);
    const timer = setTimeout(() => settle({ ok: false, reason: 'timeout' }), timeoutMs);
    socket.write(frame(query));
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      const [reply] = reader.push(chunk);
      if (!reply) return;
      const header = readReplyHeader(reply);
      const ok = header !== undefined && header.id === ((query[0]! << 8) | query[1]!) && answersQuestion(reply, query, questionEnd);
      settle(ok ? { ok: true, bytes: reply } : { ok: false, reason: 'garbage' });
    });
    socket.on('error', () => settle({ ok: false, reason: 'network' }));
    socket.on('close', () => settle({ ok: false, reason: 'network' }));
    return { result, cancel: abort };
  };

  return {
    exchange(upstream, query, questionEnd, transport, timeoutMs) {
      if (closed) return { result: Promise.resolve({ ok: false, reason: 'aborted' }), cancel: () => undefined };
      return transport === 'tcp' ? tcp(upstream, query, questionEnd, timeoutMs) : udp(upstream, query, questionEnd, timeoutMs);
    },
    async close() {
      closed = true;
      for (const abort of [...tcpAttempts]) abort();
      for (const slot of [...open]) {
        open.delete(slot);
        for (const pending of slot.pending.values()) {
          clearTimeout(pending.timer);
          pending.resolve({ ok: false, reason: 'aborted' });
        }
        slot.pending.clear();
        await new Promise<void>((resolve) => slot.socket.close(() => resolve()));
      }
      slots.clear();
    },
  };
}

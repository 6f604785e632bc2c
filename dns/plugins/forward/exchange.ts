/**
 * `UpstreamExchange`: one query to one upstream, one validated reply back.
 * The forwarder's only I/O port; tests may replace it.
 *
 * UDP goes through a small shared set of sockets (not a socket per query:
 * the calibration measured that at 3-5x the cost). Each query leaves with a
 * fresh random ID from its socket's free IDs and the reply's ID is set back
 * to the client's; everything else is relayed as the upstream sent it. A
 * reply is accepted only from the address it was sent to, with a pending ID,
 * QR set and our question; anything else is counted and dropped (or, from
 * the right upstream, fails that attempt as garbage).
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
   */
  exchange(upstream: Upstream, query: Buffer, questionEnd: number, transport: Transport, timeoutMs: number): Attempt;
  close(): Promise<void>;
}

export interface ExchangeOptions {
  /** UDP sockets per address family (default 4). */
  readonly udpSockets?: number;
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
  readonly pending: Map<number, Pending>;
}

const MAX_PENDING_PER_SOCKET = 60_000;

/** Canonical text of an IP address, so `::1` and `0::1` compare equal. */
function canonical(address: string): string {
  return address.includes(':') ? new URL(`http://[${address}]`).hostname.slice(1, -1) : address;
}

export function createUpstreamExchange(options: ExchangeOptions = {}): UpstreamExchange {
  const perFamily = options.udpSockets ?? 4;
  const slots: Record<4 | 6, UdpSlot[]> = { 4: [], 6: [] };
  const next: Record<4 | 6, number> = { 4: 0, 6: 0 };
  const tcpAttempts = new Set<() => void>();
  const hostOf = new Map<string, string>();
  let closed = false;

  const slotFor = (family: 4 | 6): UdpSlot => {
    const list = slots[family];
    if (list.length < perFamily) {
      const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
      const slot: UdpSlot = { socket, pending: new Map() };
      socket.on('message', (msg, rinfo) => onMessage(slot, msg, rinfo.address, rinfo.port));
      // Errors on send (ICMP unreachable and such) surface per attempt as timeouts.
      socket.on('error', () => undefined);
      socket.unref();
      list.push(slot);
      return slot;
    }
    next[family] = (next[family] + 1) % list.length;
    return list[next[family]]!;
  };

  const onMessage = (slot: UdpSlot, msg: Buffer, address: string, port: number): void => {
    if (msg.length < 2) return options.onUnmatched?.('unknown-id');
    const id = (msg[0]! << 8) | msg[1]!;
    const pending = slot.pending.get(id);
    if (!pending) return options.onUnmatched?.('unknown-id');
    const want = pending.upstream;
    if (port !== want.port || address !== (hostOf.get(want.host) ?? want.host)) return options.onUnmatched?.('wrong-source');
    slot.pending.delete(id);
    clearTimeout(pending.timer);
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
    const slot = slotFor(upstream.family);
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
      if (slot.pending.get(id)?.timer === timer) slot.pending.delete(id);
      resolveResult({ ok: false, reason: 'timeout' });
    }, timeoutMs);
    slot.pending.set(id, { upstream, clientId: (query[0]! << 8) | query[1]!, query, questionEnd, timer, resolve: resolveResult });
    slot.socket.send(out, upstream.port, upstream.host, (err) => {
      if (err && slot.pending.get(id)?.timer === timer) {
        slot.pending.delete(id);
        clearTimeout(timer);
        resolveResult({ ok: false, reason: 'network' });
      }
    });
    return {
      result,
      cancel: () => {
        if (slot.pending.get(id)?.timer === timer) {
          slot.pending.delete(id);
          clearTimeout(timer);
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
      for (const slot of [...slots[4], ...slots[6]]) {
        for (const pending of slot.pending.values()) {
          clearTimeout(pending.timer);
          pending.resolve({ ok: false, reason: 'aborted' });
        }
        slot.pending.clear();
        await new Promise<void>((resolve) => slot.socket.close(() => resolve()));
      }
      slots[4] = [];
      slots[6] = [];
    },
  };
}

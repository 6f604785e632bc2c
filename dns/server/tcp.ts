/**
 * TCP listener (RFC 7766): 2-byte length framing, several queries in flight
 * per connection answered as they complete (possibly out of order), an idle
 * timeout, a cap on connections, and backpressure (a client that does not
 * read its replies stops being read). A half-closed connection still gets
 * the replies to what it sent.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { StrataError } from '../../common/errors.ts';
import { FrameReader, frame } from './frames.ts';
import type { ServerMetrics } from './metrics.ts';
import type { DnsLogger, DnsServer } from './server.ts';

export interface TcpOptions {
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** Queries in flight per connection before reading pauses. */
  readonly maxInFlightPerConnection?: number;
}

export interface TcpListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function listenTcp(
  server: DnsServer,
  address: { host: string; port: number; reusePort?: boolean },
  options: TcpOptions & { readonly logger: DnsLogger; readonly metrics: ServerMetrics },
): Promise<TcpListener> {
  const maxInFlight = options.maxInFlightPerConnection ?? 64;
  const sockets = new Set<Socket>();
  const tcp: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    options.metrics.tcpConnections.inc();
    const reader = new FrameReader();
    let inFlight = 0;
    let ended = false;
    socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
    const maybeEnd = (): void => {
      if (ended && inFlight === 0 && !socket.destroyed) socket.end();
    };
    const resumeIfIdle = (): void => {
      if (inFlight < maxInFlight && socket.writableLength < 256 * 1024 && socket.isPaused()) socket.resume();
    };
    socket.on('data', (chunk: Buffer) => {
      for (const message of reader.push(chunk)) {
        inFlight++;
        const replying = server.respond(message, 'tcp', (reply) => {
          inFlight--;
          if (!socket.destroyed && socket.writable) socket.write(frame(reply));
          resumeIfIdle();
          maybeEnd();
        });
        if (!replying) inFlight--; // runts and responses get no reply
      }
      if (inFlight >= maxInFlight || socket.writableLength >= 256 * 1024) socket.pause();
      maybeEnd();
    });
    socket.on('drain', resumeIfIdle);
    socket.on('end', () => {
      ended = true;
      maybeEnd();
    });
    socket.on('error', (err) => options.logger.debug({ err }, 'dns: TCP client error'));
    socket.on('close', () => {
      sockets.delete(socket);
      options.metrics.tcpConnections.dec();
    });
  });
  tcp.maxConnections = options.maxConnections;
  tcp.on('drop', () => options.metrics.tcpRefused.inc());
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err) =>
      reject(new StrataError('DNS_LISTEN_FAILED', `dns: cannot listen on TCP ${address.host}:${address.port}: ${err.message}`, { cause: err })),
    );
    tcp.listen({ port: address.port, host: address.host, reusePort: address.reusePort ?? false }, () => resolve());
  });
  tcp.removeAllListeners('error');
  tcp.on('error', (err) => options.logger.warn({ err }, 'dns: TCP listener error'));
  const bound = tcp.address();
  return {
    port: typeof bound === 'object' && bound ? bound.port : address.port,
    close: () =>
      new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

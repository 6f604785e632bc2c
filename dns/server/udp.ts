/**
 * UDP listener: one datagram in, at most one out. Socket errors are logged
 * and counted, never thrown: a bad client cannot take the listener down.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { StrataError } from '../../common/errors.ts';
import type { DnsLogger, DnsServer } from './server.ts';

export interface UdpListener {
  readonly port: number;
  close(): Promise<void>;
}

export async function listenUdp(server: DnsServer, address: { host: string; port: number; reusePort?: boolean }, logger: DnsLogger): Promise<UdpListener> {
  const socket: Socket = createSocket({ type: isIPv6(address.host) ? 'udp6' : 'udp4', reusePort: address.reusePort ?? false });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) =>
      reject(new StrataError('DNS_LISTEN_FAILED', `dns: cannot bind UDP ${address.host}:${address.port}: ${err.message}`, { cause: err })),
    );
    socket.bind(address.port, address.host, () => resolve());
  });
  socket.removeAllListeners('error');
  socket.on('error', (err) => logger.warn({ err }, 'dns: UDP socket error'));
  let closed = false;
  socket.on('message', (msg, rinfo) => {
    server.respond(msg, 'udp', (reply) => {
      if (closed) return; // a forwarded answer that arrived after close()
      socket.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) logger.debug({ err, client: rinfo.address }, 'dns: UDP send failed');
      });
    });
  });
  return {
    port: socket.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        socket.close(() => resolve());
      }),
  };
}

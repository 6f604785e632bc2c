/**
 * UDP listener: one datagram in, at most one out. Socket errors are logged
 * and counted, never thrown: a bad client cannot take the listener down.
 *
 * The send is the costliest part of a query in Node (a CPU profile under
 * dnsperf puts half the server's time in dgram's `doSend`), so it is kept
 * lean: replies go to `rinfo.address`, always an IP literal, so the
 * socket's `lookup` answers synchronously instead of dgram's default
 * (`dns.lookup`, which defers every send to a `process.nextTick`), and
 * sends carry no callback (no second tick per reply). A reply the kernel
 * refuses (a full buffer, an unreachable client) is lost as a UDP reply
 * may be; the client retries.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { StrataError } from '../../common/errors.ts';
import type { DnsLogger, DnsServer } from './server.ts';

export interface UdpListener {
  readonly port: number;
  /** The socket's receive buffer as the kernel granted it (Linux reports twice what it counts against the limit). */
  readonly recvBufferBytes: number;
  close(): Promise<void>;
}

/**
 * Receive buffer asked for. The default (net.core.rmem_default, 208 KiB)
 * queues ~270 small datagrams: fewer than arrive at 50k qps while the event
 * loop is busy for 50 ms (a slice of the first zone build, a major GC).
 * The kernel caps the request at net.core.rmem_max without an error.
 */
export const UDP_RECV_BUFFER_BYTES = 4 * 1024 * 1024;

export async function listenUdp(server: DnsServer, address: { host: string; port: number; reusePort?: boolean }, logger: DnsLogger): Promise<UdpListener> {
  const family = isIPv6(address.host) ? 6 : 4;
  const socket: Socket = createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    reusePort: address.reusePort ?? false,
    // Client addresses are IP literals: answer at once. A host name (the bind address) goes to dns.lookup.
    lookup: (host, options, callback) => (isIP(host) !== 0 ? callback(null, host, family) : dnsLookup(host, options, callback)),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', (err) =>
      reject(new StrataError('DNS_LISTEN_FAILED', `dns: cannot bind UDP ${address.host}:${address.port}: ${err.message}`, { cause: err })),
    );
    socket.bind(address.port, address.host, () => resolve());
  });
  socket.removeAllListeners('error');
  try {
    socket.setRecvBufferSize(UDP_RECV_BUFFER_BYTES);
  } catch (err) {
    logger.warn({ err }, 'dns: cannot enlarge the UDP receive buffer; keeping the default');
  }
  socket.on('error', (err) => logger.warn({ err }, 'dns: UDP socket error'));
  let closed = false;
  socket.on('message', (msg, rinfo) => {
    server.respond(msg, 'udp', (reply) => {
      if (closed) return; // a forwarded answer that arrived after close()
      socket.send(reply, rinfo.port, rinfo.address);
    });
  });
  return {
    port: socket.address().port,
    recvBufferBytes: socket.getRecvBufferSize(),
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        socket.close(() => resolve());
      }),
  };
}

/**
 * The upstream of the gateway benchmark, in a worker thread of its own (an
 * app task is another process; sharing the gateway's event loop would charge
 * its work to the gateway): answers every request with the same small JSON
 * over keep-alive, posts its port, and stops on any message.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort } from 'node:worker_threads';

const body = JSON.stringify({ ok: true, data: 'x'.repeat(200) });
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ port: (server.address() as AddressInfo).port }));
parentPort!.once('message', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

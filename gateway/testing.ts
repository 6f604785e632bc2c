/**
 * Test and benchmark helpers: a gateway in front of a test master (port 0,
 * recording log), an HTTPS client that trusts the cluster CA, and small
 * upstream HTTP servers standing in for app tasks.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import type { TestMaster } from '../test/harness/master.ts';
import { startGateway, type GatewayHandle } from './start.ts';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

export interface TestGateway {
  readonly gateway: GatewayHandle;
  readonly lines: LogLine[];
  readonly registry: Registry;
  readonly ca: string;
  close(): Promise<void>;
}

export async function startTestGateway(h: TestMaster, options: { readonly apiUrl?: string; readonly overrides?: Record<string, unknown> } = {}): Promise<TestGateway> {
  const config = loadConfig({ env: {}, overrides: { dataDir: h.dataDir, 'gateway.port': 0, ...options.overrides } });
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: Record<string, unknown>, message: string): void => {
    lines.push({ level, fields, message });
  };
  const registry = new Registry();
  const gateway = await startGateway({
    config,
    apiUrl: options.apiUrl ?? h.master.apiUrl,
    tokens: h.master.tokens,
    iam: h.master.iam,
    ca: h.master.ca,
    records: h.master.records,
    registry,
    logger: { info: at('info'), warn: at('warn'), error: at('error') },
  });
  return { gateway, lines, registry, ca: h.master.ca.rootPem, close: () => gateway.close() };
}

export interface Answer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly text: string;
  readonly reusedSocket: boolean;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTPS request to the gateway, trusting the cluster CA (buffered: for assertions, not for streams). */
export function call(
  gw: TestGateway,
  method: string,
  path: string,
  options: { readonly headers?: Record<string, string>; readonly body?: unknown; readonly agent?: HttpsAgent } = {},
): Promise<Answer> {
  const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const url = new URL(gw.gateway.url);
    // host/port/path, not one URL string: a URL would normalise "..", which the tests send on purpose.
    const req = httpsRequest({
      host: url.hostname,
      port: url.port,
      path,
      method,
      ca: gw.ca,
      ...(options.agent ? { agent: options.agent } : { agent: false }),
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }), ...options.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, reusedSocket: req.reusedSocket, json: <T>() => JSON.parse(text) as T });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function bootstrapCredentials(h: TestMaster): Promise<{ uid: string; password: string }> {
  return JSON.parse(await readFile(join(h.dataDir, 'bootstrap-credentials.json'), 'utf8')) as { uid: string; password: string };
}

export interface Upstream {
  readonly server: Server;
  readonly port: number;
  /** Requests seen, in order: url and headers. */
  readonly seen: { url: string; headers: IncomingMessage['headers'] }[];
  connections: number;
  close(): Promise<void>;
}

/**
 * An app task stand-in on 127.0.0.1: answers `{name, url}` as JSON; `/stream`
 * sends "first\n", then "second\n" only once `release()` of the returned
 * gate is called; upgrades echo bytes back after a 101.
 */
export async function startUpstream(name: string): Promise<Upstream & { releaseStream(): void }> {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const seen: Upstream['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      void gate.then(() => res.end('second\n'));
      return;
    }
    const body = JSON.stringify({ name, url: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req, socket) => {
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
    seen.push({ url: req.url ?? '', headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('error', () => socket.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const upstream = {
    server,
    port: (server.address() as AddressInfo).port,
    seen,
    connections: 0,
    releaseStream: () => release(),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      for (const s of upgraded) s.destroy();
      server.close(() => r());
    }),
  };
  server.on('connection', () => {
    upstream.connections++;
  });
  return upstream;
}

/**
 * The gateway's hot path: the headers sent on (one pass, hop-by-hop and
 * `Connection`-named ones dropped), TLS session resumption for clients that
 * reconnect, HTTP/1.1 pipelining (answers in request order), and request
 * bodies (piped) next to body-less requests (no pipe).
 */
import test from 'ava';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, createServer, type IncomingMessage } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { startTestMaster } from '../test/harness/master.ts';
import { mkApp, mkTask } from '../dns/zone/testing.ts';
import fc from 'fast-check';
import { forwardHeaders, proxyRequest, type ProxyOutcome } from './proxy.ts';
import { pathProblem } from './routes.ts';
import { call, startTestGateway, startUpstream } from './testing.ts';

test('forwardHeaders: hop-by-hop and Connection-named headers dropped, changes applied, host set, upgrade kept only when asked', (t) => {
  const incoming = {
    host: 'gw.example:8443',
    connection: 'keep-alive, X-Secret-Hop',
    'keep-alive': 'timeout=5',
    'x-secret-hop': 'drop me',
    'transfer-encoding': 'chunked',
    upgrade: 'websocket',
    te: 'trailers',
    accept: 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    cookie: 'x=1',
  };
  t.deepEqual(forwardHeaders(incoming, { cookie: undefined, 'x-forwarded-proto': 'https' }, false, '10.0.0.1:80'), {
    accept: 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    'x-forwarded-proto': 'https',
    host: '10.0.0.1:80',
  });
  t.deepEqual(forwardHeaders({ connection: 'Upgrade', upgrade: 'websocket', accept: '*/*' }, {}, true), { upgrade: 'websocket', accept: '*/*', connection: 'upgrade' });
  t.deepEqual(forwardHeaders({ connection: 'close', accept: '*/*' }), { accept: '*/*' }, 'the usual Connection values name nothing else');
});

test('pathProblem: the one-scan check of unencoded paths refuses exactly what the per-segment check refuses', (t) => {
  // The per-segment check (as for encoded paths), for reference.
  const slow = (path: string): boolean => path.split('/').some((s) => s === '.' || s === '..' || s.includes('\0'));
  t.notThrows(() => fc.assert(fc.property(fc.array(fc.constantFrom('a', '.', '/', '\0', '..', 'b.'), { maxLength: 12 }), (parts) => {
    const path = `/${parts.join('')}`;
    return (pathProblem(path) !== undefined) === slow(path);
  }), { numRuns: 2000 }));
});

async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const gw = await startTestGateway(h);
  t.teardown(() => gw.close());
  await h.master.whenLeader();
  return { h, gw };
}

function tlsOpen(url: URL, ca: string, session?: Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost', ...(session ? { session } : {}) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

test('upstream connections are kept alive and reused: opened far less often than requests; status and metrics show the pool', async (t) => {
  const { h, gw } = await setup(t);
  const upstream = await startUpstream('pool');
  t.teardown(() => upstream.close());
  await h.master.records.put('app', mkApp('/pool/web', { portDefinitions: [{ port: 0 }] }));
  await h.master.records.put('task', mkTask('pool_web.instance-1._app.1', '/pool/web', 'ag-S0', { host: '127.0.0.1', ports: [upstream.port] }));
  const token = await h.superuserToken();
  const headers = { authorization: `token=${token}` };
  let ready = 0;
  for (let i = 0; i < 100 && ready !== 200; i++) {
    ready = (await call(gw, 'GET', '/service/pool/web/ready', { headers })).status;
    if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  t.is(ready, 200, 'the app is served');
  const before = upstream.connections;
  for (let i = 0; i < 6; i++) t.is((await call(gw, 'GET', `/service/pool/web/${i}`, { headers })).status, 200);
  t.true(upstream.connections - before < 6, 'one request after another reuse the kept-alive upstream connection');
  const status = (await call(gw, 'GET', '/gateway/v1/status', { headers })).json<{ upstreamConnections: { active: number; idle: number } }>();
  // The task's connection is in the pool, idle or (if its answer's end is still being read) active.
  t.true(status.upstreamConnections.idle + status.upstreamConnections.active >= 1, JSON.stringify(status.upstreamConnections));
  const metrics = await gw.registry.metrics();
  const opened = Number(/^strata_gateway_upstream_connections_opened_total (\d+)/m.exec(metrics)?.[1]);
  // Each upstream connection the task saw was opened by the gateway (the API's too: /gateway/v1/status is served by the gateway itself).
  t.true(opened >= upstream.connections && opened < 8, `opened ${opened}, the task saw ${upstream.connections}`);
  const pooled = [...metrics.matchAll(/^strata_gateway_upstream_connections\{state="(?:idle|active)"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  t.true(pooled >= 1, 'the gauge counts the pooled connection');
});

test('a client that reconnects resumes its TLS session (no full handshake)', async (t) => {
  const { gw } = await setup(t);
  const url = new URL(gw.gateway.url);
  const first = await tlsOpen(url, gw.ca);
  // TLS 1.3 sends the ticket after the handshake: wait for it.
  const session = await new Promise<Buffer>((resolve) => first.once('session', resolve));
  t.false(first.isSessionReused());
  first.end();
  const second = await tlsOpen(url, gw.ca, session);
  t.true(second.isSessionReused(), 'the second connection resumed the first one\'s session');
  second.end();
});

test('pipelined requests on one connection are answered in order; bodies are piped to the task', async (t) => {
  const { h, gw } = await setup(t);
  // A task that echoes request bodies, slower for the first request than for the second.
  const echo = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = `${req.method} ${req.url} ${Buffer.concat(chunks).toString('utf8')}`;
      setTimeout(() => res.end(text), req.url === '/slow' ? 200 : 0);
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    echo.closeAllConnections();
    echo.close(() => r());
  }));
  await h.master.records.put('app', mkApp('/pipe/echo', { portDefinitions: [{ port: 0 }] }));
  await h.master.records.put('task', mkTask('pipe_echo.instance-1._app.1', '/pipe/echo', 'ag-S0', { host: '127.0.0.1', ports: [(echo.address() as AddressInfo).port] }));
  const token = await h.tokenFor('piper', [{ rid: 'dcos:adminrouter:service:pipe/echo', actions: ['full'] }]);

  // The gateway's app view follows the store: wait until the app is served.
  let ready = 0;
  for (let i = 0; i < 100 && ready !== 200; i++) {
    ready = (await call(gw, 'GET', '/service/pipe/echo/ready', { headers: { authorization: `token=${token}` } })).status;
    if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  t.is(ready, 200, 'the app is served');
  const socket = await tlsOpen(new URL(gw.gateway.url), gw.ca);
  t.teardown(() => socket.destroy());
  const head = (method: string, path: string, extra = ''): string => `${method} /service/pipe/echo${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: token=${token}\r\n${extra}\r\n`;
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  // Three requests in one write: a slow GET, a POST with a body, a fast GET.
  socket.write(head('GET', '/slow') + head('POST', '/post', 'content-type: text/plain\r\ncontent-length: 5\r\n') + 'hello' + head('GET', '/fast'));
  const text = await new Promise<string>((resolve, reject) => {
    const check = (): void => {
      const all = Buffer.concat(received).toString('utf8');
      if ((all.match(/HTTP\/1\.1 200/g) ?? []).length === 3 && all.includes('GET /fast')) resolve(all);
    };
    socket.on('data', check);
    socket.once('error', reject);
  });
  const bodies = ['GET /slow ', 'POST /post hello', 'GET /fast '].map((b) => text.indexOf(b));
  t.true(bodies.every((i) => i >= 0), text);
  t.deepEqual([...bodies].sort((a, b) => a - b), bodies, 'answers come back in the order asked, though the first took longest');
});

test('a new upstream connection that does not connect within connectTimeoutMs is a connect failure and is destroyed', async (t) => {
  // An agent whose connections never finish connecting (a blackholed address, without depending on the network).
  class NeverConnects extends Agent {
    created: Socket[] = [];
    override createConnection(): Socket {
      const socket = new Socket();
      (socket as { connecting: boolean }).connecting = true;
      this.created.push(socket);
      return socket;
    }
  }
  const agent = new NeverConnects({ keepAlive: true });
  const outcomes: ProxyOutcome[] = [];
  const server = createServer((req, res) => {
    proxyRequest(req, res, { host: '192.0.2.1', port: 9, path: '/' }, {
      agent, connectTimeoutMs: 50, responseTimeoutMs: 60_000,
      onOutcome: (outcome) => {
        outcomes.push(outcome);
        res.writeHead(502).end(outcome.kind);
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  const answer = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  t.is(answer.status, 502);
  t.is(await answer.text(), 'connect-failed');
  t.is(outcomes.length, 1);
  t.regex(outcomes[0]!.kind === 'connect-failed' ? outcomes[0]!.message : '', /could not connect within 50 ms/);
  t.true(agent.created.length === 1 && agent.created[0]!.destroyed, 'the stuck connection is destroyed');
});

/**
 * The gateway end to end over real HTTPS (certificate from the cluster CA),
 * in front of a real master and real upstream servers standing in for app
 * tasks: the authorisation matrix, the cookie and CSRF, /service/ proxying,
 * streaming, websockets, keepalive, upstream failures, path attacks, the
 * access log and the metrics.
 */
import test from 'ava';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestMaster, type TestMaster } from '../test/harness/master.ts';
import { mkApp, mkTask } from '../dns/zone/testing.ts';
import type { Permission } from '../security/iam.ts';
import { bootstrapCredentials, call, startTestGateway, startUpstream, type TestGateway } from './testing.ts';

async function setup(t: { teardown(fn: () => Promise<void> | void): void }): Promise<{ h: TestMaster; gw: TestGateway }> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const gw = await startTestGateway(h);
  t.teardown(() => gw.close());
  await h.master.whenLeader();
  return { h, gw };
}

const auth = (token: string): Record<string, string> => ({ authorization: `token=${token}` });

interface MatrixCase {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** The gateway's rid (undefined = public). */
  readonly rid?: string;
  /** What the upstream also wants of a permitted caller. */
  readonly upstream?: readonly Permission[];
  /** What a permitted caller and the superuser get. */
  readonly ok: number;
}

const APP_ID = '/matrix/web';
const MATRIX: readonly MatrixCase[] = [
  { name: 'ui', method: 'GET', path: '/', ok: 200 },
  { name: 'metadata', method: 'GET', path: '/dcos-metadata/dcos-version.json', ok: 200 },
  { name: 'acs public (jwks)', method: 'GET', path: '/acs/api/v1/auth/jwks', ok: 200 },
  { name: 'ca public (root)', method: 'GET', path: '/ca/dcos-ca.crt', ok: 200 },
  { name: 'acs', method: 'GET', path: '/acs/api/v1/users', rid: 'dcos:adminrouter:acs', ok: 200 },
  { name: 'ca (ro)', method: 'POST', path: '/ca/api/v2/certificates', body: {}, rid: 'dcos:adminrouter:ops:ca:ro', ok: 200 },
  { name: 'ca (rw)', method: 'POST', path: '/ca/api/v2/newcert', body: { request: { key: { algo: 'ecdsa', size: 256 } } }, rid: 'dcos:adminrouter:ops:ca:rw', ok: 200 },
  { name: 'marathon (/marathon prefix)', method: 'GET', path: '/marathon/v2/apps', rid: 'dcos:adminrouter:service:marathon', ok: 200 },
  { name: 'marathon (plain /v2)', method: 'GET', path: '/v2/info', rid: 'dcos:adminrouter:service:marathon', ok: 200 },
  { name: 'mesos (/v1)', method: 'GET', path: '/v1/leader', rid: 'dcos:adminrouter:ops:mesos', ok: 200 },
  { name: 'mesos_dns', method: 'GET', path: '/mesos_dns/v1/version', rid: 'dcos:adminrouter:ops:mesos-dns', ok: 200 },
  { name: 'networking', method: 'GET', path: '/networking/api/v1/vips', rid: 'dcos:adminrouter:ops:networking', ok: 200 },
  // A permitted caller reaches the API, which answers 404: no such secret (or, before the secrets store, no such route).
  { name: 'secrets', method: 'GET', path: '/secrets/v1/secret/default/x', rid: 'dcos:adminrouter:secrets', upstream: [{ rid: 'dcos:secrets:default:/x', actions: ['read'] }], ok: 404 },
  { name: 'metrics', method: 'GET', path: '/metrics', rid: 'dcos:adminrouter:ops:metrics', ok: 200 },
  { name: 'system health', method: 'GET', path: '/system/health/v1', rid: 'dcos:adminrouter:ops:system-health', ok: 200 },
  { name: 'gateway status', method: 'GET', path: '/gateway/v1/status', rid: 'dcos:adminrouter:ops:gateway', ok: 200 },
  { name: 'service', method: 'GET', path: `/service${APP_ID}/hello`, rid: 'dcos:adminrouter:service:matrix/web', ok: 200 },
];

test('authorisation matrix: every route class x {anonymous, authenticated without permission, permitted, superuser}', async (t) => {
  const { h, gw } = await setup(t);
  const upstream = await startUpstream('matrix');
  t.teardown(() => upstream.close());
  await h.master.records.put('app', mkApp(APP_ID, { portDefinitions: [{ port: 0, name: 'http' }] }));
  await h.master.records.put('task', mkTask('matrix_web.instance-1._app.1', APP_ID, 'ag-S0', { host: '127.0.0.1', ports: [upstream.port] }));
  const superuser = await h.superuserToken();
  const nobody = await h.tokenFor('nobody', []);
  for (const c of MATRIX) {
    const send = (headers: Record<string, string> = {}) => call(gw, c.method, c.path, { headers, ...(c.body === undefined ? {} : { body: c.body }) });
    const anonymous = await send();
    if (!c.rid) {
      // Public: every caller alike.
      t.is(anonymous.status, c.ok, `${c.name}: public, anonymous: ${anonymous.text.slice(0, 200)}`);
      t.is((await send(auth(nobody))).status, c.ok, `${c.name}: public, authenticated without permission`);
      t.is((await send(auth(superuser))).status, c.ok, `${c.name}: public, superuser`);
      continue;
    }
    t.is(anonymous.status, 401, `${c.name}: anonymous`);
    t.is(anonymous.headers['www-authenticate'], 'acsjwt', `${c.name}: 401 challenges acsjwt`);
    t.is(anonymous.json().code, 'API_UNAUTHENTICATED');

    const denied = await send(auth(nobody));
    t.is(denied.status, 403, `${c.name}: authenticated without permission`);
    t.deepEqual(denied.json(), { code: 'API_FORBIDDEN', message: `nobody lacks full on ${c.rid}`, details: { rid: c.rid, action: 'full' } });

    const uid = `permitted-${c.name.replace(/[^a-z]/g, '')}`;
    const permitted = await send(auth(await h.tokenFor(uid, [{ rid: c.rid, actions: ['full'] }, ...(c.upstream ?? [])])));
    t.is(permitted.status, c.ok, `${c.name}: permitted: ${permitted.text.slice(0, 300)}`);

    const su = await send(auth(superuser));
    t.is(su.status, c.ok, `${c.name}: superuser: ${su.text.slice(0, 300)}`);
  }
  // A read grant is not enough: Admin Router rids take only full.
  const reader = await h.tokenFor('reader', [{ rid: 'dcos:adminrouter:service:marathon', actions: ['read'] }]);
  t.is((await call(gw, 'GET', '/marathon/v2/apps', { headers: auth(reader) })).status, 403);
  // A revoked token is refused like a missing one.
  await h.master.iam.revokeTokensOf('nobody');
  await new Promise((r) => setTimeout(r, 1100));
  const revoked = await call(gw, 'GET', '/v2/info', { headers: auth(nobody) });
  t.is(revoked.status, 401);
  t.is(revoked.json().code, 'AUTH_TOKEN_REVOKED');
  t.is((await call(gw, 'GET', '/v2/info', { headers: { authorization: 'token=not-a-jwt' } })).status, 401);
});

test('login through the gateway sets a Secure, HttpOnly, SameSite=Strict cookie; cookie-only state changes need the gateway origin', async (t) => {
  const { h, gw } = await setup(t);
  const { uid, password } = await bootstrapCredentials(h);
  const foreignLogin = await call(gw, 'POST', '/acs/api/v1/auth/login', { body: { uid, password }, headers: { origin: 'https://evil.example' } });
  t.is(foreignLogin.status, 403, 'login CSRF: a foreign page cannot log the browser in');
  t.is(foreignLogin.json().code, 'GATEWAY_CSRF_REFUSED');
  t.is(foreignLogin.headers['set-cookie'], undefined);
  const login = await call(gw, 'POST', '/acs/api/v1/auth/login', { body: { uid, password } });
  t.is(login.status, 200, login.text);
  const token = login.json<{ token: string }>().token;
  const setCookie = String(login.headers['set-cookie']);
  t.regex(setCookie, new RegExp(`^dcos-acs-auth-cookie=${token.replace(/[.]/g, '\\.')}; Path=/; Max-Age=\\d+; HttpOnly; Secure; SameSite=Strict$`));
  const cookie = `dcos-acs-auth-cookie=${token}; theme=dark`;
  const host = new URL(gw.gateway.url).host;

  t.is((await call(gw, 'GET', '/marathon/v2/apps', { headers: { cookie } })).status, 200, 'a cookie authenticates a GET');
  const app = { id: '/csrf/app', cmd: 'sleep 100', cpus: 0.1, mem: 16, instances: 0 };
  const crossSite = await call(gw, 'POST', '/marathon/v2/apps', { headers: { cookie, origin: 'https://evil.example' }, body: app });
  t.is(crossSite.status, 403);
  t.is(crossSite.json().code, 'GATEWAY_CSRF_REFUSED');
  const noOrigin = await call(gw, 'POST', '/marathon/v2/apps', { headers: { cookie }, body: app });
  t.is(noOrigin.status, 403, 'no Origin nor Referer: refused');
  const plainHttpOrigin = await call(gw, 'PUT', '/marathon/v2/apps/csrf/app', { headers: { cookie, origin: `http://${host}` }, body: app });
  t.is(plainHttpOrigin.status, 403, 'the http:// origin of the same host is another origin');
  const badReferer = await call(gw, 'DELETE', '/marathon/v2/apps/csrf/app', { headers: { cookie, referer: `https://evil.example/https://${host}/` } });
  t.is(badReferer.status, 403);
  t.is((await h.master.records.get('app', '/csrf/app')), undefined, 'no refused request reached the API');

  const sameOrigin = await call(gw, 'POST', '/marathon/v2/apps', { headers: { cookie, origin: `https://${host}` }, body: app });
  t.is(sameOrigin.status, 201, sameOrigin.text);
  const byReferer = await call(gw, 'DELETE', '/marathon/v2/apps/csrf/app?force=true', { headers: { cookie, referer: `https://${host}/ui/apps` } });
  t.is(byReferer.status, 200, byReferer.text);
  // A token header is not a browser's ambient credential: no origin rule.
  const withHeader = await call(gw, 'POST', '/marathon/v2/apps', { headers: { ...auth(token), origin: 'https://evil.example' }, body: { ...app, id: '/csrf/other' } });
  t.is(withHeader.status, 201, withHeader.text);

  // A cross-site logout cannot ride the cookie either: the token survives it.
  const forcedLogout = await call(gw, 'POST', '/acs/api/v1/auth/logout', { headers: { cookie, origin: 'https://evil.example' } });
  t.is(forcedLogout.status, 204);
  t.is((await call(gw, 'GET', '/v2/info', { headers: { cookie } })).status, 200, 'still logged in');
  const logout = await call(gw, 'POST', '/acs/api/v1/auth/logout', { headers: { cookie, origin: `https://${host}` } });
  t.is(logout.status, 204);
  t.regex(String(logout.headers['set-cookie']), /^dcos-acs-auth-cookie=; Path=\/; Max-Age=0; HttpOnly; Secure; SameSite=Strict$/);
  const after = await call(gw, 'GET', '/v2/info', { headers: { cookie } });
  t.is(after.status, 401);
  t.is(after.json().code, 'AUTH_TOKEN_REVOKED');

  // The access log: a line per request with its latency, never a token.
  const logged = gw.lines.filter((l) => l.message === 'gateway request');
  t.true(logged.length >= 12);
  for (const line of logged) {
    t.is(typeof line.fields['ms'], 'number');
    t.false(JSON.stringify(line).includes(token), 'no token in the access log');
  }
  t.true(logged.some((l) => l.fields['status'] === 403 && l.fields['note'] === 'GATEWAY_CSRF_REFUSED' && l.fields['class'] === 'marathon'));
});

test('/service/<app>: proxies to the healthy tasks round robin (groups, prefix stripped), keepalive, streaming, websockets', async (t) => {
  const { h, gw } = await setup(t);
  const a = await startUpstream('a');
  const b = await startUpstream('b');
  const sick = await startUpstream('sick');
  t.teardown(async () => {
    await a.close();
    await b.close();
    await sick.close();
  });
  const appId = '/shop/web';
  await h.master.records.put('app', mkApp(appId, { portDefinitions: [{ port: 0, name: 'http' }], healthChecks: [{ protocol: 'HTTP', path: '/', portIndex: 0 }] }));
  const alive = [{ alive: true, consecutiveFailures: 0 }];
  await h.master.records.put('task', mkTask('shop_web.instance-a._app.1', appId, 'ag-S0', { host: '127.0.0.1', ports: [a.port], healthCheckResults: alive }));
  await h.master.records.put('task', mkTask('shop_web.instance-b._app.1', appId, 'ag-S0', { host: '127.0.0.1', ports: [b.port], healthCheckResults: alive }));
  await h.master.records.put('task', mkTask('shop_web.instance-c._app.1', appId, 'ag-S0', { host: '127.0.0.1', ports: [sick.port], healthCheckResults: [{ alive: false, consecutiveFailures: 3 }] }));
  const token = await h.tokenFor('shopper', [{ rid: 'dcos:adminrouter:service:shop/web', actions: ['full'] }]);

  const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: gw.ca });
  t.teardown(() => keepAlive.destroy());
  const names: string[] = [];
  const reused: boolean[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await call(gw, 'GET', '/service/shop/web/hello/there?x=1', { headers: auth(token), agent: keepAlive });
    t.is(res.status, 200, res.text);
    const body = res.json<{ name: string; url: string }>();
    t.is(body.url, '/hello/there?x=1', 'the /service/shop/web prefix is stripped');
    names.push(body.name);
    reused.push(res.reusedSocket);
  }
  t.deepEqual([...new Set(names)].sort(), ['a', 'b'], 'round robin over the healthy tasks; the failing one gets nothing');
  t.is(names.filter((n) => n === 'a').length, 3);
  t.is(sick.seen.length, 0);
  t.deepEqual(reused, [false, true, true, true, true, true], 'one client connection, kept alive');
  t.true(a.connections + b.connections < 6, 'upstream connections are kept alive too');
  const seen = a.seen[0]!;
  t.is(seen.headers['x-forwarded-prefix'], '/service/shop/web');
  t.is(seen.headers['x-forwarded-proto'], 'https');

  // Streaming: the first chunk arrives while the upstream still holds the rest.
  const streamed = await new Promise<string[]>((resolve, reject) => {
    const req = httpsRequest(`${gw.gateway.url}/service/shop/web/stream`, { ca: gw.ca, agent: false, headers: auth(token) }, (res) => {
      const chunks: string[] = [];
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        chunks.push(c);
        if (c.includes('first')) {
          a.releaseStream();
          b.releaseStream();
        }
      });
      res.on('end', () => resolve(chunks));
    });
    req.on('error', reject);
    req.end();
  });
  t.is(streamed.join(''), 'first\nsecond\n');
  t.true(streamed[0]!.startsWith('first') && !streamed[0]!.includes('second'), 'not buffered: the first chunk came alone');

  // Websockets (any Upgrade): joined byte for byte after the upstream's 101.
  const echoed = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${gw.gateway.url}/service/shop/web/ws`, {
      ca: gw.ca, agent: false, headers: { ...auth(token), connection: 'Upgrade', upgrade: 'websocket' },
    });
    req.on('upgrade', (res, socket) => {
      t.is(res.statusCode, 101);
      socket.once('data', (d: Buffer) => {
        resolve(d.toString());
        socket.destroy();
      });
      socket.write('ping over the gateway');
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  t.is(echoed, 'ping over the gateway');
  const refusedUpgrade = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(`${gw.gateway.url}/service/shop/web/ws`, { ca: gw.ca, agent: false, headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    req.on('response', (res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    req.on('upgrade', () => reject(new Error('an anonymous upgrade went through')));
    req.on('error', reject);
    req.end();
  });
  t.is(refusedUpgrade, 401);

  // Other apps' rids and Marathon's do not open this app.
  const marathonOnly = await h.tokenFor('marathon-only', [{ rid: 'dcos:adminrouter:service:marathon', actions: ['full'] }]);
  t.is((await call(gw, 'GET', '/service/shop/web/', { headers: auth(marathonOnly) })).status, 403);
  // The gateway never hands the browser's session cookie to a task.
  await call(gw, 'GET', '/service/shop/web/c', { headers: { cookie: `dcos-acs-auth-cookie=${token}; app=1`, ...auth(token) } });
  const withCookie = [...a.seen, ...b.seen].find((s) => s.url === '/c')!;
  t.is(withCookie.headers.cookie, 'app=1');
});

test('upstream failures: a dead task is a 502, no healthy task a 503, an unknown app a 404, a dead API a 502; each with a clear body', async (t) => {
  const { h, gw } = await setup(t);
  const superuser = await h.superuserToken();
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));

  await h.master.records.put('app', mkApp('/dead', { portDefinitions: [{ port: 0 }] }));
  await h.master.records.put('task', mkTask('dead.instance-1._app.1', '/dead', 'ag-S0', { host: '127.0.0.1', ports: [deadPort] }));
  const dead = await call(gw, 'GET', '/service/dead/', { headers: auth(superuser) });
  t.is(dead.status, 502);
  t.is(dead.json().code, 'GATEWAY_UPSTREAM_UNAVAILABLE');
  t.regex(String(dead.json().message), new RegExp(`service upstream \\(task dead\\.instance-1\\._app\\.1 at 127\\.0\\.0\\.1:${deadPort}\\) cannot be reached: ECONNREFUSED`));

  await h.master.records.put('app', mkApp('/starting', { portDefinitions: [{ port: 0 }] }));
  await h.master.records.put('task', mkTask('starting.instance-1._app.1', '/starting', 'ag-S0', { host: '127.0.0.1', ports: [deadPort], state: 'STAGING' }));
  const none = await call(gw, 'GET', '/service/starting/x', { headers: auth(superuser) });
  t.is(none.status, 503);
  t.deepEqual(none.json(), { code: 'GATEWAY_NO_HEALTHY_TASK', message: 'app /starting has no running, healthy task to take the request (of its 1 task(s): starting.instance-1._app.1 is STAGING)' });

  const unknown = await call(gw, 'GET', '/service/nope/x', { headers: auth(superuser) });
  t.is(unknown.status, 404);
  t.is(unknown.json().code, 'GATEWAY_NO_ROUTE');
  t.is((await call(gw, 'GET', '/service/nope/x')).status, 401, 'anonymous callers learn nothing about which apps exist');

  const orphan = await startTestGateway(h, { apiUrl: `http://127.0.0.1:${deadPort}` });
  t.teardown(() => orphan.close());
  const apiDown = await call(orphan, 'GET', '/marathon/v2/apps', { headers: auth(superuser) });
  t.is(apiDown.status, 502);
  t.regex(String(apiDown.json().message), /^the marathon upstream \(127\.0\.0\.1:\d+\) cannot be reached: ECONNREFUSED$/);
  const health = await call(orphan, 'GET', '/system/health/v1', { headers: auth(superuser) });
  t.is(health.status, 200);
  t.like(health.json<{ units: { id: string; health: number }[] }>().units[1], { id: 'strata-api', health: 1 });
});

test('paths that try to climb out of a prefix are refused; unknown paths are 404', async (t) => {
  const { h, gw } = await setup(t);
  const token = await h.tokenFor('svc-user', [{ rid: 'dcos:adminrouter:service:x', actions: ['full'] }]);
  for (const path of ['/service/x/../../acs/api/v1/users', '/service/x/%2e%2e/%2E%2E/acs/api/v1/users', '/marathon/./v2/apps', '/service/x/..%5c..%5cacs', '/service/x/a\\b']) {
    const res = await call(gw, 'GET', path, { headers: auth(token) });
    t.is(res.status, 400, path);
    t.is(res.json().code, 'API_BAD_REQUEST');
  }
  const unknown = await call(gw, 'GET', '/nothing/here');
  t.is(unknown.status, 404);
  t.deepEqual(unknown.json(), { code: 'GATEWAY_NO_ROUTE', message: 'the gateway serves no GET /nothing/here' });
  // An ACL rid with an encoded slash stays one segment and reaches the IAM.
  const su = await h.superuserToken();
  const acl = await call(gw, 'GET', '/acs/api/v1/acls/dcos:service:marathon:marathon:services:%2Fprod', { headers: auth(su) });
  t.is(acl.status, 404, acl.text);
  t.is(acl.json().code, 'IAM_ACL_NOT_FOUND');
});

test('metrics: requests by route class and status, upstream latency, auth decision latency; status lists the certificate', async (t) => {
  const { h, gw } = await setup(t);
  const su = await h.superuserToken();
  await call(gw, 'GET', '/v2/info');
  await call(gw, 'GET', '/v2/info', { headers: auth(su) });
  const text = await gw.registry.metrics();
  t.regex(text, /^strata_gateway_requests_total\{class="marathon",status="401"\} 1$/m);
  t.regex(text, /^strata_gateway_requests_total\{class="marathon",status="200"\} 1$/m);
  t.regex(text, /^strata_gateway_upstream_seconds_count\{class="marathon"\} 1$/m);
  t.regex(text, /^strata_gateway_auth_decision_seconds_count\{result="allowed"\} 1$/m);
  t.regex(text, /^strata_gateway_auth_decision_seconds_count\{result="unauthenticated"\} 1$/m);
  const status = await call(gw, 'GET', '/gateway/v1/status', { headers: auth(su) });
  const body = status.json<{ url: string; certificate: { names: string[]; notAfter: string }; caFingerprint: string }>();
  t.is(body.url, gw.gateway.url);
  t.true(body.certificate.names.includes('127.0.0.1') && body.certificate.names.includes('localhost'));
  t.true(Date.parse(body.certificate.notAfter) > Date.now());
  t.regex(body.caFingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
});

test('Marathon\'s event stream (SSE) flows through the gateway as events happen', async (t) => {
  const { h, gw } = await setup(t);
  const su = await h.superuserToken();
  const received: string[] = [];
  let onData: () => void = () => undefined;
  const req = httpsRequest({ host: '127.0.0.1', port: gw.gateway.port, path: '/marathon/v2/events', ca: gw.ca, agent: false, headers: { ...auth(su), accept: 'text/event-stream' } });
  const response = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        received.push(c);
        onData();
      });
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.end();
  t.teardown(() => req.destroy());
  const until = (pattern: RegExp): Promise<void> =>
    new Promise((resolve) => {
      onData = () => {
        if (pattern.test(received.join(''))) resolve();
      };
      onData();
    });
  t.is(await response, 200);
  await until(/event_stream_attached/);
  const added = await call(gw, 'POST', '/marathon/v2/apps', { headers: auth(su), body: { id: '/sse/app', cmd: 'sleep 100', cpus: 0.1, mem: 16, instances: 0 } });
  t.is(added.status, 201, added.text);
  await until(/\/sse\/app/);
  t.pass('the event about the new app arrived on the open stream');
});

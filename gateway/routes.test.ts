import test from 'ava';
import { credentialsOf, csrfProblem, withoutAuthCookie } from './access.ts';
import { certificateNames } from './certificate.ts';
import { classify, pathProblem, serviceRid } from './routes.ts';
import { resolveService, serviceBackends } from './services.ts';
import { mkApp, mkTask } from '../dns/zone/testing.ts';

const cases: [url: string, routeClass: string, upstream: string | undefined, rid: string | undefined][] = [
  ['/', 'ui', '/', undefined],
  ['/ui/app.js', 'ui', '/ui/app.js', undefined],
  ['/marathon/v2/apps?embed=apps.tasks', 'marathon', '/v2/apps?embed=apps.tasks', 'dcos:adminrouter:service:marathon'],
  ['/marathon', 'marathon', '/', 'dcos:adminrouter:service:marathon'],
  ['/v2/apps/shop/web', 'marathon', '/v2/apps/shop/web', 'dcos:adminrouter:service:marathon'],
  ['/ping', 'marathon', '/ping', 'dcos:adminrouter:service:marathon'],
  ['/service/marathon/v2/apps?x=1', 'marathon', '/v2/apps?x=1', 'dcos:adminrouter:service:marathon'],
  ['/service/marathon', 'marathon', '/', 'dcos:adminrouter:service:marathon'],
  ['/acs/api/v1/auth/login', 'acs', '/acs/api/v1/auth/login', undefined],
  ['/acs/api/v1/auth/jwks', 'acs', '/acs/api/v1/auth/jwks', undefined],
  ['/acs/api/v1/users/alice', 'acs', '/acs/api/v1/users/alice', 'dcos:adminrouter:acs'],
  ['/ca/dcos-ca.crt', 'ca', '/ca/dcos-ca.crt', undefined],
  ['/ca/api/v2/info', 'ca', '/ca/api/v2/info', undefined],
  ['/ca/api/v2/certificates', 'ca', '/ca/api/v2/certificates', 'dcos:adminrouter:ops:ca:ro'],
  ['/ca/api/v2/sign', 'ca', '/ca/api/v2/sign', 'dcos:adminrouter:ops:ca:rw'],
  ['/mesos_dns/v1/hosts/leader.mesos', 'mesos_dns', '/mesos_dns/v1/hosts/leader.mesos', 'dcos:adminrouter:ops:mesos-dns'],
  ['/networking/api/v1/vips', 'networking', '/networking/api/v1/vips', 'dcos:adminrouter:ops:networking'],
  ['/secrets/v1/secret/default/db', 'secrets', '/secrets/v1/secret/default/db', 'dcos:adminrouter:secrets'],
  ['/v1/agents', 'mesos', '/v1/agents', 'dcos:adminrouter:ops:mesos'],
  ['/metrics', 'metrics', '/metrics', 'dcos:adminrouter:ops:metrics'],
  ['/dcos-metadata/dcos-version.json', 'metadata', '/dcos-metadata/dcos-version.json', undefined],
];

test('classify: every route class, its upstream path and its rid', (t) => {
  for (const [url, routeClass, upstream, rid] of cases) {
    const route = classify(url);
    t.truthy(route && !('problem' in route), url);
    if (!route || 'problem' in route) continue;
    t.is(route.routeClass as string, routeClass, url);
    if (upstream !== undefined) t.deepEqual(route.target, { kind: 'api', path: upstream }, url);
    t.is(route.access.public ? undefined : route.access.rid, rid, url);
  }
  t.is(classify('/v2apps'), undefined, 'prefixes end at a segment');
  t.is(classify('/acs/api/v1x'), undefined);
  t.is(classify('/unknown'), undefined);
  t.like(classify('/service/marathonx/y'), { routeClass: 'service', target: { kind: 'service', rest: 'marathonx/y' } });
  t.like(classify('/service/shop/web/x?y=1'), { routeClass: 'service', target: { kind: 'service', rest: 'shop/web/x', query: '?y=1' } });
  t.like(classify('/acs/api/v1/auth/login'), { login: true });
});

test('pathProblem: dot segments (also encoded), backslashes, bad escapes; encoded slashes pass', (t) => {
  for (const bad of ['/a/../b', '/a/%2E%2e/b', '/a/./b', '/a\\b', '/a/%5c', '/a/%zz', 'relative', '/a/%00']) t.truthy(pathProblem(bad), bad);
  for (const good of ['/', '/acs/api/v1/acls/dcos:service:marathon:marathon:services:%2Fprod', '/service/a/b.c/..d', '/x/...']) t.is(pathProblem(good), undefined, good);
});

test('credentials: the Authorization header wins over the cookie; malformed headers present an empty token', (t) => {
  t.deepEqual(credentialsOf({ authorization: 'token=abc', cookie: 'dcos-acs-auth-cookie=zzz' }), { via: 'header', token: 'abc' });
  t.deepEqual(credentialsOf({ authorization: 'Bearer abc' }), { via: 'header', token: 'abc' });
  t.deepEqual(credentialsOf({ authorization: 'Basic abc' }), { via: 'header', token: '' });
  t.deepEqual(credentialsOf({ cookie: 'a=1; dcos-acs-auth-cookie=t.k.n; b=2' }), { via: 'cookie', token: 't.k.n' });
  t.deepEqual(credentialsOf({}), { via: 'none' });
  t.is(withoutAuthCookie('a=1; dcos-acs-auth-cookie=x; b=2'), 'a=1; b=2');
  t.is(withoutAuthCookie('dcos-acs-auth-cookie=x'), undefined);
});

test('csrfProblem: safe methods pass; others need an https Origin (or Referer) of the Host', (t) => {
  const host = 'gw.example:8443';
  t.is(csrfProblem('GET', { host }), undefined);
  t.is(csrfProblem('HEAD', { host, origin: 'https://evil.example' }), undefined);
  t.is(csrfProblem('POST', { host, origin: `https://${host}` }), undefined);
  t.is(csrfProblem('DELETE', { host, referer: `https://${host}/x` }), undefined);
  t.regex(csrfProblem('POST', { host })!, /needs an Origin/);
  t.regex(csrfProblem('POST', { host, origin: 'null' })!, /needs an Origin/);
  t.regex(csrfProblem('POST', { host, origin: 'https://evil.example' })!, /came from https:\/\/evil\.example/);
  t.regex(csrfProblem('PUT', { host, origin: `http://${host}` })!, /came from/);
  t.regex(csrfProblem('PATCH', { host, origin: 'https://gw.example:9443' })!, /came from/);
  t.regex(csrfProblem('POST', { host, origin: 'not a url' })!, /not a URL/);
});

test('services: the longest app id wins, the prefix is stripped unless the app says not to; only running healthy tasks serve', (t) => {
  const apps = new Map([
    ['/shop', mkApp('/shop')],
    ['/shop/web', mkApp('/shop/web', { portDefinitions: [{ port: 0 }, { port: 0 }], labels: { DCOS_SERVICE_PORT_INDEX: '1' }, healthChecks: [{ protocol: 'TCP', portIndex: 0 }] })],
    ['/keep', mkApp('/keep', { labels: { DCOS_SERVICE_REWRITE_REQUEST_URLS: 'false' } })],
  ]);
  t.deepEqual(resolveService('shop/web/a/b', '?q', apps), { appId: '/shop/web', prefix: '/service/shop/web', upstreamPath: '/a/b?q' });
  t.deepEqual(resolveService('shop/other', '', apps), { appId: '/shop', prefix: '/service/shop', upstreamPath: '/other' });
  t.deepEqual(resolveService('shop/web', '', apps), { appId: '/shop/web', prefix: '/service/shop/web', upstreamPath: '/' });
  t.deepEqual(resolveService('keep/x', '', apps), { appId: '/keep', prefix: '/service/keep', upstreamPath: '/service/keep/x' });
  t.is(resolveService('nope/x', '', apps), undefined);
  t.is(serviceRid('/shop/web'), 'dcos:adminrouter:service:shop/web');

  const web = apps.get('/shop/web')!;
  const ok = [{ alive: true, consecutiveFailures: 0 }];
  const tasks = [
    mkTask('a', '/shop/web', 'S0', { ports: [31000, 31001], healthCheckResults: ok }),
    mkTask('b', '/shop/web', 'S1', { ports: [31002, 31003], healthCheckResults: [{ alive: false, consecutiveFailures: 1 }] }),
    mkTask('c', '/shop/web', 'S1', { ports: [31004, 31005], healthCheckResults: [] }),
    mkTask('d', '/shop/web', 'S1', { ports: [31006, 31007], healthCheckResults: ok, state: 'KILLING' }),
  ];
  const { backends, excluded } = serviceBackends(web, tasks, (id) => (id === 'S0' ? '10.0.0.5' : undefined));
  t.deepEqual(backends, [{ taskId: 'a', host: '10.0.0.5', port: 31001 }], 'port index 1 of the label; the agent address');
  t.deepEqual(excluded, ['b is not healthy', 'c is not healthy', 'd is KILLING']);
});

test('certificateNames: loopback names, the host name, extra names; wildcard listen addresses left out', (t) => {
  t.deepEqual(certificateNames('0.0.0.0', ['gw.example.com', '10.0.0.9', '[fd00::1]'], 'node-1'), {
    dnsNames: ['localhost', 'node-1', 'gw.example.com'],
    ipAddresses: ['127.0.0.1', '::1', '10.0.0.9', 'fd00::1'],
  });
});

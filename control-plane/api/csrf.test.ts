/**
 * The web UI's session on the master: the login sets the cookie; a state
 * change authenticated by the cookie alone needs this origin; a login with a
 * foreign Origin is refused; a cross-origin logout does not revoke.
 */
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { startTestMaster } from '../../test/harness/master.ts';
import { cookieCsrfProblem, loginOriginProblem } from './csrf.ts';

test('cookieCsrfProblem: safe methods pass; others need an Origin (or Referer) naming the Host', (t) => {
  const host = '127.0.0.1:8080';
  t.is(cookieCsrfProblem('GET', { host }), undefined);
  t.is(cookieCsrfProblem('HEAD', { host, origin: 'https://evil.example' }), undefined);
  t.is(cookieCsrfProblem('POST', { host, origin: 'http://127.0.0.1:8080' }), undefined);
  t.is(cookieCsrfProblem('DELETE', { host, origin: 'https://127.0.0.1:8080' }), undefined, 'behind TLS termination');
  t.is(cookieCsrfProblem('PUT', { host, referer: 'http://127.0.0.1:8080/#/services' }), undefined);
  t.regex(cookieCsrfProblem('POST', { host })!, /needs an Origin/);
  t.regex(cookieCsrfProblem('POST', { host, origin: 'null' })!, /needs an Origin/);
  t.regex(cookieCsrfProblem('POST', { host, origin: 'http://127.0.0.1:10000' })!, /came from http:\/\/127\.0\.0\.1:10000/, 'another port of the same host is another origin');
  t.regex(cookieCsrfProblem('PATCH', { host, origin: 'not a url' })!, /not a URL/);
  t.regex(cookieCsrfProblem('POST', { origin: 'http://x' })!, /no Host/);
  t.is(loginOriginProblem({ host }), undefined, 'tools send no Origin');
  t.regex(loginOriginProblem({ host, origin: 'https://evil.example' })!, /a login from a browser came from https:\/\/evil\.example/);
});

test('master: the login sets the HttpOnly SameSite=Strict cookie; cookie-only state changes need this origin', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const { uid, password } = JSON.parse(await readFile(h.master.bootstrapCredentialsFile!, 'utf8')) as { uid: string; password: string };
  const host = 'strata.example:8080';

  const login = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', headers: { host, origin: `http://${host}` }, payload: { uid, password } });
  t.is(login.statusCode, 200);
  const setCookie = String(login.headers['set-cookie']);
  t.regex(setCookie, /^dcos-acs-auth-cookie=[\w-]+\.[\w-]+\.[\w-]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/, 'plain HTTP: not Secure');
  const token = login.json<{ token: string }>().token;
  t.true(setCookie.includes(token));
  const viaGateway = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', headers: { 'x-forwarded-proto': 'https' }, payload: { uid, password } });
  t.regex(String(viaGateway.headers['set-cookie']), /; Secure$/);

  const foreign = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', headers: { host, origin: 'http://evil.example' }, payload: { uid, password } });
  t.is(foreign.statusCode, 403);
  t.is(foreign.json().code, 'API_CSRF_REFUSED');
  t.is(foreign.headers['set-cookie'], undefined);

  const cookie = `dcos-acs-auth-cookie=${token}`;
  const app = { id: '/csrf/web', cmd: 'sleep 1000', instances: 0, cpus: 0.1, mem: 16 };
  const read = await h.master.app.inject({ method: 'GET', url: '/v2/apps', headers: { host, cookie } });
  t.is(read.statusCode, 200, 'reads need no Origin');
  const noOrigin = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { host, cookie }, payload: app });
  t.is(noOrigin.statusCode, 403);
  t.is(noOrigin.json().code, 'API_CSRF_REFUSED');
  const otherPort = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { host, cookie, origin: 'http://strata.example:10000' }, payload: app });
  t.is(otherPort.json().code, 'API_CSRF_REFUSED');
  const sameOrigin = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { host, cookie, origin: `http://${host}` }, payload: app });
  t.is(sameOrigin.statusCode, 201, sameOrigin.body);
  const header = await h.master.app.inject({ method: 'DELETE', url: '/v2/apps/csrf/web?force=true', headers: { host, authorization: `token=${token}` } });
  t.is(header.statusCode, 200, 'a token header needs no Origin');

  // A cross-origin logout clears the cookie but does not revoke the session.
  const crossLogout = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/logout', headers: { host, cookie, origin: 'http://evil.example' } });
  t.is(crossLogout.statusCode, 204);
  t.is((await h.master.app.inject({ method: 'GET', url: '/v2/apps', headers: { host, cookie } })).statusCode, 200, 'still logged in');
  const logout = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/logout', headers: { host, cookie, origin: `http://${host}` } });
  t.is(logout.statusCode, 204);
  t.is((await h.master.app.inject({ method: 'GET', url: '/v2/apps', headers: { host, cookie } })).statusCode, 401, 'revoked');
});

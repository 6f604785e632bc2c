/** Login, token forms, JWKS, validation errors and the JSON error shape. */
import { readFile, stat } from 'node:fs/promises';
import test from 'ava';
import { SignJWT, createRemoteJWKSet, generateKeyPair, jwtVerify } from 'jose';
import { startTestMaster } from '../../test/harness/master.ts';

test('bootstrap superuser: password in a 0600 file, login returns a JWT accepted in both header forms', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const file = h.master.bootstrapCredentialsFile;
  t.truthy(file);
  t.is((await stat(file!)).mode & 0o777, 0o600);
  const { uid, password } = JSON.parse(await readFile(file!, 'utf8')) as { uid: string; password: string };
  t.is(uid, 'admin');
  const login = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid, password } });
  t.is(login.statusCode, 200);
  const { token } = login.json<{ token: string }>();
  for (const authorization of [`token=${token}`, `Bearer ${token}`]) {
    const res = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users', headers: { authorization } });
    t.is(res.statusCode, 200, authorization.slice(0, 6));
  }
  const cookie = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users', headers: { cookie: `dcos-acs-auth-cookie=${token}` } });
  t.is(cookie.statusCode, 200);
});

test('the token verifies offline against the served JWKS with exp, iss, aud and uid', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const jwks = createRemoteJWKSet(new URL(`${h.master.apiUrl}/acs/api/v1/auth/jwks`));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: 'strata', audience: 'strata', requiredClaims: ['exp', 'uid'] });
  t.is(payload['uid'], 'admin');
  t.is(protectedHeader.alg, 'ES256');
  t.true(payload.exp! - payload.iat! === 5 * 86400);
});

test('wrong password, unknown uid and bad body are refused with stable codes; secrets never echo', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const wrong = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: 'admin', password: 'nope' } });
  t.is(wrong.statusCode, 401);
  t.is(wrong.json().code, 'AUTH_LOGIN_FAILED');
  const unknown = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: 'ghost', password: 'nope' } });
  t.deepEqual(unknown.json(), wrong.json(), 'an unknown uid is not told apart from a wrong password');
  const bad = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: '', extra: 1 } });
  t.is(bad.statusCode, 400);
  const body = bad.json<{ code: string; details: { path: string; errors: string[] }[] }>();
  t.is(body.code, 'API_BAD_REQUEST');
  t.deepEqual(body.details.map((d) => d.path).sort(), ['/extra', '/password', '/uid'], 'every wrong field is listed');
  const wrongType = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: 5, password: 'x' } });
  t.is(wrongType.statusCode, 400);
  t.deepEqual(wrongType.json().details, [{ path: '/uid', errors: ['must be string'] }], 'a number is not silently coerced to a string');
  const notJson = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"uid":' });
  t.is(notJson.statusCode, 400);
  t.is(notJson.json().code, 'API_BAD_REQUEST');
  const missing = await h.master.app.inject({ method: 'GET', url: '/no/such/route' });
  t.is(missing.statusCode, 404);
  t.is(missing.json().code, 'API_NOT_FOUND');
});

test('forged, expired, unsigned and foreign-key tokens get 401', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const good = await h.superuserToken();
  const [header, payload] = good.split('.');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
  const tampered = `${header}.${Buffer.from(JSON.stringify({ uid: 'admin', exp: 9999999999, iss: 'strata', aud: 'strata' })).toString('base64url')}.${good.split('.')[2]}`;
  const { privateKey } = await generateKeyPair('ES256');
  const foreign = await new SignJWT({ uid: 'admin' }).setProtectedHeader({ alg: 'ES256', kid: JSON.parse(Buffer.from(header!, 'base64url').toString()).kid })
    .setIssuer('strata').setAudience('strata').setExpirationTime('1h').sign(privateKey);
  const expired = (await h.master.tokens.issue('admin', { ttlSeconds: -10 })).token;
  const noExp = await new SignJWT({ uid: 'admin' }).setProtectedHeader({ alg: 'ES256' }).setIssuer('strata').setAudience('strata').sign(privateKey);
  for (const [name, token] of Object.entries({ none, tampered, foreign, expired, noExp, garbage: 'abc' })) {
    const res = await h.master.app.inject({ method: 'GET', url: '/v1/leader', headers: { authorization: `token=${token}` } });
    t.is(res.statusCode, 401, name);
    t.is(res.json().code, 'API_UNAUTHENTICATED', name);
  }
});

test('/health, /metrics and /openapi.json answer', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const health = await h.master.app.inject({ method: 'GET', url: '/health' });
  t.is(health.statusCode, 200);
  t.like(health.json(), { status: 'ok', role: 'leader', store: { backend: 'embedded', status: 'ok' } });
  const token = await h.superuserToken();
  await h.master.app.inject({ method: 'GET', url: '/health' });
  const metrics = await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${token}` } });
  t.is(metrics.statusCode, 200);
  t.regex(metrics.body, /strata_store_up\{backend="embedded"\} 1/);
  t.regex(metrics.body, /strata_master_is_leader 1/);
  t.regex(metrics.body, /strata_http_requests_total\{method="GET",route="\/health",status="200"\} [1-9]/);
  const openapi = await h.master.app.inject({ method: 'GET', url: '/openapi.json' });
  t.is(openapi.statusCode, 200);
  t.truthy(openapi.json().paths['/acs/api/v1/auth/login']);
});

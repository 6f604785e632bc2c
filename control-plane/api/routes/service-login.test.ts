/**
 * Service accounts end to end: created with a public key, logging in with an
 * RS256 (or ES256) login token they sign, and every login-token attack of the
 * security reference refused.
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import test from 'ava';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function rsa(bits = 2048): { publicPem: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
}

async function loginToken(key: KeyObject, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header }).sign(key);
}

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ h: TestMaster; su: string; key: { publicPem: string; privateKey: KeyObject }; login: (body: unknown) => Promise<{ statusCode: number; json: () => { token?: string; code?: string; message?: string } }> }> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const key = rsa();
  const created = await h.master.app.inject({ method: 'PUT', url: '/acs/api/v1/users/ci-bot', headers: { authorization: `token=${su}` }, payload: { description: 'CI', public_key: key.publicPem } });
  if (created.statusCode !== 201) throw new Error(created.body);
  const login = (body: unknown) => h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: body as object });
  return { h, su, key, login };
}

const now = (): number => Math.floor(Date.now() / 1000);

test('a service account logs in with a login token {uid, exp} it signed, once; the auth token it gets works', async (t) => {
  const { h, su, key, login } = await setup(t);
  const account = (await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users/ci-bot', headers: { authorization: `token=${su}` } })).json();
  t.true(account.is_service);
  t.is(account.public_key, key.publicPem);
  const listed = (await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users?type=service', headers: { authorization: `token=${su}` } })).json();
  t.true(listed.array.some((u: { uid: string }) => u.uid === 'ci-bot'));
  const token = await loginToken(key.privateKey, { uid: 'ci-bot', exp: now() + 300 });
  const res = await login({ uid: 'ci-bot', token });
  t.is(res.statusCode, 200, JSON.stringify(res.json()));
  const auth = res.json().token!;
  const leader = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users', headers: { authorization: `token=${auth}` } });
  t.is(leader.statusCode, 403, 'authenticated as ci-bot (which holds nothing yet)');
  const replay = await login({ uid: 'ci-bot', token });
  t.is(replay.statusCode, 401);
  t.is(replay.json().code, 'AUTH_LOGIN_TOKEN_REJECTED');
  t.regex(replay.json().message!, /already used/);
  const ec = await generateKeyPair('ES256', { extractable: true });
  const { createPublicKey } = await import('node:crypto');
  const ecPem = createPublicKey({ key: (await exportJWK(ec.publicKey)) as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  await h.master.app.inject({ method: 'PUT', url: '/acs/api/v1/users/ec-bot', headers: { authorization: `token=${su}` }, payload: { public_key: ecPem } });
  const ecToken = await new SignJWT({ uid: 'ec-bot', exp: now() + 60 }).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(ec.privateKey);
  t.is((await login({ uid: 'ec-bot', token: ecToken })).statusCode, 200, 'an EC P-256 account logs in with ES256');
  t.is((await login({ uid: 'ci-bot', password: 'anything' })).json().code, 'AUTH_LOGIN_FAILED', 'a service account has no password');
});

test('login tokens: every attack of the reference table is refused', async (t) => {
  const { h, su, key, login } = await setup(t);
  const header = b64({ alg: 'RS256', typ: 'JWT' });
  const claims = { uid: 'ci-bot', exp: now() + 300 };
  const cases: [string, () => Promise<string>, string][] = [
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, 'AUTH_LOGIN_FAILED'],
    ['alg NoNe', async () => `${b64({ alg: 'NoNe', typ: 'JWT' })}.${b64(claims)}.`, 'AUTH_LOGIN_FAILED'],
    ['HS256 keyed with the public key PEM', async () => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
      return `${input}.${createHmac('sha256', key.publicPem).update(input).digest('base64url')}`;
    }, 'AUTH_LOGIN_FAILED'],
    ['signed by an attacker key embedded as jwk', async () => {
      const attacker = rsa();
      const jwk = await exportJWK(attacker.privateKey);
      return loginToken(attacker.privateKey, claims, { jwk: { kty: jwk.kty, n: jwk.n, e: jwk.e } });
    }, 'AUTH_LOGIN_FAILED'],
    ['jku pointing at loopback', async () => loginToken(rsa().privateKey, claims, { jku: 'http://127.0.0.1:1/jwks' }), 'AUTH_LOGIN_FAILED'],
    ['stripped signature', async () => `${header}.${b64(claims)}.`, 'AUTH_LOGIN_FAILED'],
    ['swapped payload', async () => {
      const good = await loginToken(key.privateKey, claims);
      const [h0, , s0] = good.split('.');
      return `${h0}.${b64({ ...claims, uid: 'admin' })}.${s0}`;
    }, 'AUTH_LOGIN_FAILED'],
    ['unknown crit (hand-signed with the right key)', async () => {
      const input = `${b64({ alg: 'RS256', typ: 'JWT', crit: ['x-strata'], 'x-strata': 1 })}.${b64(claims)}`;
      return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
    }, 'AUTH_LOGIN_FAILED'],
    ['no exp', async () => loginToken(key.privateKey, { uid: 'ci-bot' }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['expired', async () => loginToken(key.privateKey, { uid: 'ci-bot', exp: now() - 5 }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['future nbf', async () => loginToken(key.privateKey, { ...claims, nbf: now() + 120 }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['lives 11 minutes', async () => loginToken(key.privateKey, { uid: 'ci-bot', exp: now() + 660 }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['exp - iat over 10 minutes', async () => loginToken(key.privateKey, { uid: 'ci-bot', iat: now() - 600, exp: now() + 60 }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['names another uid', async () => loginToken(key.privateKey, { uid: 'admin', exp: now() + 60 }), 'AUTH_LOGIN_TOKEN_REJECTED'],
    ['an auth token used as a login token', async () => su, 'AUTH_LOGIN_FAILED'],
    ['not a JWT', async () => 'hello', 'AUTH_LOGIN_FAILED'],
  ];
  for (const [name, make, code] of cases) {
    const res = await login({ uid: 'ci-bot', token: await make() });
    t.is(res.statusCode, 401, name);
    t.is(res.json().code, code, `${name}: ${res.json().message}`);
  }
  const unknown = await login({ uid: 'ghost', token: await loginToken(key.privateKey, { uid: 'ghost', exp: now() + 60 }) });
  t.is(unknown.json().code, 'AUTH_LOGIN_FAILED');
  // The reverse confusion: a (valid, unused) login token presented as an auth token.
  const fresh = await loginToken(key.privateKey, { uid: 'ci-bot', exp: now() + 60 });
  const asAuth = await h.master.app.inject({ method: 'GET', url: '/v1/leader', headers: { authorization: `token=${fresh}` } });
  t.is(asAuth.statusCode, 401);
  t.is(asAuth.json().code, 'API_UNAUTHENTICATED');
  const both = await login({ uid: 'ci-bot', token: fresh, password: 'x' });
  t.is(both.statusCode, 400);
});

test('service account keys: RSA under 2048 bits and unsupported curves are refused at creation; a disabled account cannot log in', async (t) => {
  const { h, su, key, login } = await setup(t);
  const put = (uid: string, publicPem: string) =>
    h.master.app.inject({ method: 'PUT', url: `/acs/api/v1/users/${uid}`, headers: { authorization: `token=${su}` }, payload: { public_key: publicPem } });
  const weak = await put('weak', rsa(1024).publicPem);
  t.is(weak.statusCode, 400);
  t.regex(weak.json().message, /1024 bits; at least 2048/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.regex((await put('curvy', p384)).json().message, /secp384r1.*RSA \(2048 bits or more\) or EC P-256/);
  await h.master.app.inject({ method: 'PATCH', url: '/acs/api/v1/users/ci-bot', headers: { authorization: `token=${su}` }, payload: { disabled: true } });
  const res = await login({ uid: 'ci-bot', token: await loginToken(key.privateKey, { uid: 'ci-bot', exp: now() + 60 }) });
  t.is(res.json().code, 'AUTH_LOGIN_FAILED');
  t.is((await h.master.app.inject({ method: 'PATCH', url: '/acs/api/v1/users/ci-bot', headers: { authorization: `token=${su}` }, payload: { password: 'a long password' } })).json().code, 'IAM_PRINCIPAL_KIND');
});

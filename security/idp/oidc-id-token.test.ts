/**
 * ID token checks against a provider that lies: a minimal OIDC provider in
 * the test (discovery, JWKS, a token endpoint) hands Strata crafted ID
 * tokens. Refused: `alg: none`, a signature by a key the JWKS does not hold
 * (same kid), another issuer (mix-up), another audience, expired, without
 * the login's nonce. A genuine token passes, so the fake is a fair one. And an
 * https provider is reached through its `ca_certs` (discovery, token
 * endpoint, JWKS) and refused without them.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { startTestMaster } from '../../test/harness/master.ts';
import { makeTestCa } from '../../test/harness/pki.ts';

interface Claims { iss?: string; aud?: string; exp?: number; nonce?: string; sub?: string; email?: string }
type Craft = (nonce: string) => Promise<string>;

async function startLyingIdp(tls?: { key: string; cert: string }): Promise<{ issuer: string; goodKey: CryptoKey; otherKey: CryptoKey; setCraft(c: Craft): void; close(): Promise<void> }> {
  const good = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(good.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let craft: Craft = () => Promise.reject(new Error('no craft set'));
  let lastNonce = '';
  let issuer = '';
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      json({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256'] });
    } else if (url.pathname === '/jwks') {
      json({ keys: [jwk] });
    } else if (url.pathname === '/token') {
      req.resume();
      req.on('end', () => {
        void craft(lastNonce).then((idToken) => json({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: idToken }));
      });
    } else if (url.pathname === '/auth') {
      lastNonce = url.searchParams.get('nonce') ?? '';
      res.writeHead(204).end();
    } else res.writeHead(404).end();
  };
  const server: Server = tls ? (createHttpsServer(tls, handler) as unknown as Server) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    issuer,
    goodKey: good.privateKey,
    otherKey: other.privateKey,
    setCraft: (c) => {
      craft = c;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('crafted ID tokens: alg none, a foreign key, issuer mix-up, wrong audience, expired and a wrong nonce are refused', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const idp = await startLyingIdp();
  t.teardown(() => idp.close());
  const su = await h.superuserToken();
  const put = await h.master.app.inject({
    method: 'PUT', url: '/acs/api/v1/auth/oidc/providers/liar', headers: { authorization: `token=${su}` },
    payload: { issuer: idp.issuer, base_url: h.master.apiUrl, client_id: 'strata', client_secret: 'secret-0123456789' },
  });
  t.is(put.statusCode, 201, put.body);
  const now = Math.floor(Date.now() / 1000);
  const sign = (claims: Claims, key = idp.goodKey): Promise<string> =>
    new SignJWT({ email: claims.email ?? 'liar-victim@example.test', ...(claims.nonce === undefined ? {} : { nonce: claims.nonce }) })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(claims.iss ?? idp.issuer)
      .setAudience(claims.aud ?? 'strata')
      .setSubject(claims.sub ?? 'victim')
      .setIssuedAt(now - 5)
      .setExpirationTime(claims.exp ?? now + 300)
      .sign(key);
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

  /** One login whose token endpoint answers `craft`; returns the callback's answer. */
  const login = async (craft: Craft) => {
    idp.setCraft(craft);
    const start = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/auth/oidc/providers/liar/login' });
    const auth = new URL(start.headers.location as string);
    await fetch(auth); // the "browser" visits the provider, which notes the nonce
    const state = auth.searchParams.get('state')!;
    return h.master.app.inject({ method: 'GET', url: `/acs/api/v1/auth/oidc/providers/liar/callback?code=c0de&state=${state}&iss=${encodeURIComponent(idp.issuer)}` });
  };

  const cases: [string, Craft][] = [
    ['alg none', async (nonce) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: idp.issuer, aud: 'strata', sub: 'victim', email: 'x@example.test', nonce, iat: now, exp: now + 300 })}.`],
    ['signed by a key the JWKS does not hold (same kid)', (nonce) => sign({ nonce }, idp.otherKey)],
    ['another issuer (mix-up)', (nonce) => sign({ nonce, iss: 'https://other-idp.example' })],
    ['another audience', (nonce) => sign({ nonce, aud: 'someone-else' })],
    ['expired', (nonce) => sign({ nonce, exp: now - 600 })],
    ['without the login\'s nonce', () => sign({ nonce: 'not-the-nonce' })],
  ];
  for (const [name, craft] of cases) {
    const res = await login(craft);
    t.is(res.statusCode, 401, `${name}: ${res.body}`);
    t.is(res.json().code, 'IDP_RESPONSE_REJECTED', name);
    // openid-client does not check the signature of a token from the token endpoint: this one is ours (jose, against the JWKS).
    if (name.startsWith('signed by')) t.regex(res.json().message, /ID token: signature verification failed/);
  }
  t.is((await h.master.iam.readPrincipal('liar-victim@example.test')), undefined, 'no user was created by a refused token');
  const genuine = await login((nonce) => sign({ nonce }));
  t.is(genuine.statusCode, 200, genuine.body);
  t.is(genuine.json().uid, 'liar-victim@example.test');
});

test('an https provider is trusted through ca_certs (discovery, token endpoint and JWKS), and refused without it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-oidc-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  makeTestCa(dir, 'idp', '127.0.0.1');
  const idp = await startLyingIdp({ key: readFileSync(join(dir, 'idp-server.key'), 'utf8'), cert: readFileSync(join(dir, 'idp-server.crt'), 'utf8') });
  t.teardown(() => idp.close());
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const configure = (extra: object) => h.master.app.inject({
    method: 'PUT', url: '/acs/api/v1/auth/oidc/providers/tls', headers: { authorization: `token=${su}` },
    payload: { issuer: idp.issuer, base_url: h.master.apiUrl, client_id: 'strata', client_secret: 'secret-0123456789', ...extra },
  });
  t.is((await configure({})).statusCode, 201);
  const untrusted = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/auth/oidc/providers/tls/login' });
  t.is(untrusted.statusCode, 502, untrusted.body);
  t.is(untrusted.json().code, 'IDP_UNAVAILABLE');
  t.is((await configure({ ca_certs: readFileSync(join(dir, 'idp-ca.crt'), 'utf8') })).statusCode, 200);
  const now = Math.floor(Date.now() / 1000);
  idp.setCraft((nonce) => new SignJWT({ email: 'tls-user@example.test', nonce }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(idp.issuer).setAudience('strata').setSubject('tls-user').setIssuedAt(now).setExpirationTime(now + 300).sign(idp.goodKey));
  const start = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/auth/oidc/providers/tls/login' });
  t.is(start.statusCode, 302, start.body);
  const auth = new URL(start.headers.location as string);
  // The "browser" trusts the test CA too (it is not the code under test).
  const { request } = await import('node:https');
  await new Promise<void>((resolve, reject) => request(auth, { ca: readFileSync(join(dir, 'idp-ca.crt'), 'utf8') }, (res) => res.resume().on('end', resolve)).on('error', reject).end());
  const done = await h.master.app.inject({ method: 'GET', url: `/acs/api/v1/auth/oidc/providers/tls/callback?code=c0de&state=${auth.searchParams.get('state')}&iss=${encodeURIComponent(idp.issuer)}` });
  t.is(done.statusCode, 200, done.body);
  t.is(done.json().uid, 'tls-user@example.test');
});

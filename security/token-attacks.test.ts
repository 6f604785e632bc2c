/**
 * The JWT attacks of the security reference's table, against the auth-token
 * verifier (the service login token's are in
 * control-plane/api/routes/service-login.test.ts). Each forged token must be
 * refused with AUTH_TOKEN_INVALID; a jku must never be fetched.
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import fc from 'fast-check';
import { SignJWT, exportJWK, importJWK, type CryptoKey, type JWK } from 'jose';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { TokenService } from './tokens.ts';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function service(t: { teardown(fn: () => Promise<void>): void }, algorithm: 'ES256' | 'RS256' = 'ES256') {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const records = new Records(store);
  const tokens = await TokenService.open(records, { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm });
  const key = (await records.list('signingKey')).records[0]!.value;
  return { tokens, key };
}

const now = (): number => Math.floor(Date.now() / 1000);
const goodClaims = () => ({ uid: 'admin', iss: 'strata', aud: 'strata', exp: now() + 600, iat: now() });

async function rejected(tokens: TokenService, token: string): Promise<string> {
  try {
    await tokens.verify(token);
    return 'ACCEPTED';
  } catch (err) {
    return (err as { code?: string }).code ?? 'threw';
  }
}

test('auth tokens: alg none, HS256 keyed with the public key, embedded jwk, stripped or swapped signature, unknown crit are refused', async (t) => {
  const { tokens, key } = await service(t, 'RS256');
  const signer = (await importJWK(key.privateJwk as JWK, 'RS256')) as CryptoKey;
  const good = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(signer);
  t.is((await tokens.verify(good)).uid, 'admin', 'the control case verifies');
  const [h, p, s] = good.split('.') as [string, string, string];
  const publicPem = createPublicKey({ key: key.publicJwk as JWK & { kty: string }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const hs = (secret: string | Buffer): string => {
    const input = `${b64({ alg: 'HS256', kid: key.kid })}.${p}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const cases: [string, string][] = [
    ['alg none', `${b64({ alg: 'none', kid: key.kid })}.${p}.`],
    ['alg NoNe', `${b64({ alg: 'NoNe', kid: key.kid })}.${p}.`],
    ['HS256 keyed with the SPKI PEM', hs(publicPem)],
    ['HS256 keyed with the JWK JSON', hs(JSON.stringify(key.publicJwk))],
    ['an attacker key embedded as jwk', await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', jwk: attackerJwk, kid: key.kid }).sign(attacker.privateKey)],
    ['x5c from the attacker', await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'RS256', kid: key.kid, x5c: ['MIIB'] }).sign(attacker.privateKey)],
    ['stripped signature', `${h}.${p}.`],
    ['swapped payload', `${h}.${b64({ ...goodClaims(), uid: 'root' })}.${s}`],
    ['not a JWT', 'a.b'],
  ];
  for (const [name, token] of cases) t.is(await rejected(tokens, token), 'AUTH_TOKEN_INVALID', name);
  // crit with the genuine key: jose refuses the unknown extension before the signature matters.
  const critInput = `${b64({ alg: 'RS256', kid: key.kid, crit: ['x-strata'], 'x-strata': 1 })}.${p}`;
  const realCrit = `${critInput}.${sign('sha256', Buffer.from(critInput), createPrivateKey({ key: key.privateJwk as JWK & { kty: string }, format: 'jwk' })).toString('base64url')}`;
  t.is(await rejected(tokens, realCrit), 'AUTH_TOKEN_INVALID', 'unknown crit with a genuine signature');
});

test('auth tokens: missing exp, iss, aud or uid, expired, future nbf, and a wrong issuer or audience are refused', async (t) => {
  const { tokens, key } = await service(t);
  const signer = (await importJWK(key.privateJwk as JWK, 'ES256')) as CryptoKey;
  const mint = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid }).sign(signer);
  const { exp: _e, ...noExp } = goodClaims();
  const { iss: _i, ...noIss } = goodClaims();
  const { aud: _a, ...noAud } = goodClaims();
  const { uid: _u, ...noUid } = goodClaims();
  for (const [name, claims] of [
    ['no exp (jose alone would accept it)', noExp],
    ['no iss', noIss],
    ['no aud', noAud],
    ['no uid', noUid],
    ['empty uid', { ...goodClaims(), uid: '' }],
    ['expired', { ...goodClaims(), exp: now() - 10 }],
    ['future nbf', { ...goodClaims(), nbf: now() + 300 }],
    ['another issuer (an OIDC id_token, say)', { ...goodClaims(), iss: 'https://idp.example' }],
    ['another audience', { ...goodClaims(), aud: 'other' }],
    ['pidx not an integer', { ...goodClaims(), pidx: 'x' }],
  ] as const) t.is(await rejected(tokens, await mint(claims)), 'AUTH_TOKEN_INVALID', name);
});

test('auth tokens: a jku is never fetched, and fuzzed kids (path traversal, SQL, LDAP metacharacters) resolve to no key', async (t) => {
  const { tokens } = await service(t);
  let fetched = 0;
  const server = createServer((_q, r) => {
    fetched++;
    r.end('{"keys":[]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jku = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  const withJku = await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'ES256', kid: 'attacker', jku }).sign(attacker.privateKey);
  t.is(await rejected(tokens, withJku), 'AUTH_TOKEN_INVALID');
  const kids = fc.oneof(fc.constantFrom('../../dev/null', "' OR 1=1 --", '*)(uid=*', '%00', '/etc/passwd', ''), fc.string({ maxLength: 80 }));
  await fc.assert(
    fc.asyncProperty(kids, async (kid) => (await rejected(tokens, await new SignJWT(goodClaims()).setProtectedHeader({ alg: 'ES256', kid }).sign(attacker.privateKey))) === 'AUTH_TOKEN_INVALID'),
    { numRuns: 50 },
  );
  t.is(fetched, 0, 'no request reached the jku');
});

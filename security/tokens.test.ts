import test from 'ava';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { TokenService } from './tokens.ts';

const DAY_MS = 86_400_000;

test('a key past notAfter no longer signs: the next token is signed by a freshly rotated key; old tokens still verify', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  let now = Date.now();
  const tokens = await TokenService.open(new Records(store), {
    issuer: 'strata', audience: 'strata', tokenTtlSeconds: 200 * 86400, algorithm: 'ES256', keySigningSeconds: 90 * 86400, now: () => now,
  });
  const first = await tokens.issue('admin');
  const kid = (token: string): string => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
  now += 91 * DAY_MS;
  const second = await tokens.issue('admin');
  t.not(kid(second.token), kid(first.token), 'rotated');
  t.is(tokens.jwks().keys.length, 2, 'both keys are published');
  t.is((await tokens.verify(first.token)).uid, 'admin', 'a token signed before rotation still verifies until it expires');
  t.is((await tokens.verify(second.token)).uid, 'admin');
});

test('another master\'s key is found by reloading, not by minting a key per master', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  let now = Date.now();
  const options = { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm: 'ES256' as const, now: () => now };
  const a = await TokenService.open(new Records(store), options);
  const b = await TokenService.open(new Records(store), options);
  t.is(b.jwks().keys.length, 1, 'b uses the key a created');
  const fromA = await a.issue('admin');
  t.is((await b.verify(fromA.token)).uid, 'admin');
  await a.rotate();
  const rotated = await a.issue('admin');
  now += 1500; // unknown kids re-read the store at most once a second
  t.is((await b.verify(rotated.token)).uid, 'admin', 'b reloads on an unknown kid');
});

test('a verified token is remembered until its exp, never past it', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  let now = Date.now();
  const tokens = await TokenService.open(new Records(store), { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 60, algorithm: 'ES256', now: () => now });
  const { token } = await tokens.issue('admin');
  const first = await tokens.verify(token);
  t.is(await tokens.verify(token), first, 'the second verification is the remembered result');
  now += 61_000;
  const err = await t.throwsAsync(tokens.verify(token));
  t.regex(err.message, /expired/, 'a remembered token still expires');
});

/**
 * OIDC login (authorization code + PKCE, state, nonce) against a real
 * `oidc-provider` started in-process on 127.0.0.1; the browser steps are
 * plain HTTP requests (test/harness/browser.ts). Checks: the user is created
 * on first login and linked by (issuer, sub) after; the normal auth token and
 * cookie; the CLI hand-off (loopback target, one-time code); a replayed
 * callback, a forged state, a PKCE verifier or nonce that does not match, a
 * uid that belongs to someone else and an open-redirect target are refused.
 */
import test from 'ava';
import { browse } from '../../test/harness/browser.ts';
import { startOidcIdp as startIdp } from '../../test/harness/oidc-idp.ts';
import { startTestMaster } from '../../test/harness/master.ts';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const callback = `${h.master.apiUrl}/acs/api/v1/auth/oidc/providers/test-idp/callback`;
  const idp = await startIdp(callback, 'client-secret-0123456789');
  t.teardown(() => idp.close());
  const call = (method: string, url: string, token?: string, payload?: unknown) =>
    h.master.app.inject({ method: method as 'GET', url, ...(token ? { headers: { authorization: `token=${token}` } } : {}), ...(payload === undefined ? {} : { payload: payload as object }) });
  const put = await call('PUT', '/acs/api/v1/auth/oidc/providers/test-idp', su, {
    description: 'test IdP', issuer: idp.issuer, base_url: h.master.apiUrl, client_id: 'strata', client_secret: 'client-secret-0123456789',
  });
  if (put.statusCode !== 201) throw new Error(put.body);
  /** Start a login at Strata, log in at the IdP as `login`, and stop at Strata's callback (not yet requested). */
  const loginAtIdp = async (login: string, target?: string): Promise<string> => {
    const start = await call('GET', `/acs/api/v1/auth/oidc/providers/test-idp/login${target ? `?target=${encodeURIComponent(target)}` : ''}`);
    if (start.statusCode !== 302) throw new Error(start.body);
    const done = await browse(start.headers.location as string, { fill: { login, password: 'any' }, stopAt: callback });
    return done.url.slice(h.master.apiUrl.length);
  };
  return { h, su, idp, call, callback, loginAtIdp };
}

test('code flow with PKCE: first login creates the user, the next links it; token, cookie, metrics; replay and forged state refused', async (t) => {
  const { su, call, loginAtIdp, idp, h } = await setup(t);
  const shown = (await call('GET', '/acs/api/v1/auth/oidc/providers/test-idp', su)).json();
  t.false('client_secret' in shown, 'the client secret is never read back');
  t.is(shown.callback_url, `${h.master.apiUrl}/acs/api/v1/auth/oidc/providers/test-idp/callback`);
  const providers = (await call('GET', '/acs/api/v1/auth/providers')).json();
  t.like(providers['test-idp'], { 'authentication-type': 'oidc-authorization-code-flow', description: 'test IdP' });

  const dcosStart = await call('GET', '/acs/api/v1/auth/login?oidc-provider=test-idp');
  t.is(dcosStart.statusCode, 302, 'DC/OS\'s SSO start');
  t.true(String(dcosStart.headers.location).startsWith(idp.issuer));
  t.is((await call('GET', '/acs/api/v1/auth/login')).statusCode, 400, 'a provider is required');
  const start = await call('GET', '/acs/api/v1/auth/oidc/providers/test-idp/login');
  const auth = new URL(start.headers.location as string);
  t.true(auth.href.startsWith(idp.issuer));
  t.is(auth.searchParams.get('code_challenge_method'), 'S256');
  t.truthy(auth.searchParams.get('code_challenge'));
  t.regex(auth.searchParams.get('state') ?? '', /^[0-9a-f]{32}$/);
  t.truthy(auth.searchParams.get('nonce'));

  const callbackPath = await loginAtIdp('alice');
  const res = await call('GET', callbackPath);
  t.is(res.statusCode, 200, res.body);
  const { uid, token } = res.json();
  t.is(uid, 'alice@example.test', 'the email claim names the uid');
  const cookie = String(res.headers['set-cookie']);
  t.regex(cookie, /^dcos-acs-auth-cookie=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/, 'http base_url: no Secure flag');
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 403, 'a valid token without permissions');
  const user = (await call('GET', `/acs/api/v1/users/${encodeURIComponent(uid)}`, su)).json();
  t.like(user, { is_remote: true, provider_type: 'oidc', provider_id: 'test-idp', description: 'User alice' });

  const replay = await call('GET', callbackPath);
  t.is(replay.statusCode, 401, 'the same callback (code and state) works once');
  t.is(replay.json().code, 'IDP_RESPONSE_REJECTED');

  // Second login: linked to the same user by (issuer, sub), even after an admin renames nothing.
  const again = await call('GET', await loginAtIdp('alice'));
  t.is(again.json().uid, 'alice@example.test');
  t.is((await call('GET', '/acs/api/v1/users', su)).json().array.filter((u: { provider_type: string }) => u.provider_type === 'oidc').length, 1);

  // A forged state: no flow.
  const forged = new URL(`http://x${await loginAtIdp('alice')}`);
  forged.searchParams.set('state', '0'.repeat(32));
  t.is((await call('GET', `${forged.pathname}${forged.search}`)).json().code, 'IDP_RESPONSE_REJECTED');

  // The provider's error comes back as a rejection, not a crash.
  t.is((await call('GET', '/acs/api/v1/auth/oidc/providers/test-idp/callback?error=access_denied&state=abc')).json().code, 'IDP_RESPONSE_REJECTED');

  const metrics = (await call('GET', '/metrics', su)).body;
  t.regex(metrics, /strata_iam_provider_logins_total\{provider="oidc.test-idp",result="ok"\} 2/);
  t.regex(metrics, /strata_iam_provider_logins_total\{provider="oidc.test-idp",result="IDP_RESPONSE_REJECTED"\} 3/);
});

test('the PKCE verifier and nonce bind the callback to the login that started it', async (t) => {
  const { call, loginAtIdp, h } = await setup(t);
  for (const field of ['codeVerifier', 'nonce'] as const) {
    const path = await loginAtIdp('bob');
    const state = new URL(`http://x${path}`).searchParams.get('state')!;
    const flow = await h.master.records.get('loginFlow', state);
    await h.master.records.put('loginFlow', { ...flow!.value, [field]: field === 'nonce' ? 'another-nonce' : 'A'.repeat(43) });
    const res = await call('GET', path);
    t.is(res.statusCode, 401, `${field}: ${res.body}`);
    t.is(res.json().code, 'IDP_RESPONSE_REJECTED');
    t.regex(res.json().message, field === 'nonce' ? /nonce|unexpected JWT claim value/ : /invalid_grant|PKCE|code_verifier/i);
  }
  t.is((await call('GET', '/acs/api/v1/users/bob%40example.test')).statusCode, 401, 'anonymous');
});

test('CLI hand-off: a loopback target gets a one-time code for the token; other targets and taken uids refused', async (t) => {
  const { su, call, loginAtIdp } = await setup(t);
  const res = await call('GET', await loginAtIdp('carol', 'http://127.0.0.1:45678/callback'));
  t.is(res.statusCode, 302);
  const back = new URL(res.headers.location as string);
  t.is(`${back.origin}${back.pathname}`, 'http://127.0.0.1:45678/callback');
  t.is(res.headers['set-cookie'], undefined, 'no cookie for the loopback hand-off');
  const code = back.searchParams.get('code')!;
  const exchanged = await call('POST', '/acs/api/v1/auth/handoff', undefined, { code });
  t.is(exchanged.statusCode, 200);
  t.is(exchanged.json().uid, 'carol@example.test');
  t.is((await call('POST', '/acs/api/v1/auth/handoff', undefined, { code })).statusCode, 401, 'the code works once');

  const toPath = await call('GET', await loginAtIdp('carol', '/dashboard'));
  t.is(toPath.statusCode, 302);
  t.is(toPath.headers.location, '/dashboard');
  t.regex(String(toPath.headers['set-cookie']), /^dcos-acs-auth-cookie=/);

  for (const target of ['https://evil.example/steal', '//evil.example/x', '/\\evil.example', '/\t/evil.example', 'http://10.0.0.1:8080/cb', 'http://127.0.0.1@evil.example/', 'javascript:alert(1)']) {
    const r = await call('GET', `/acs/api/v1/auth/oidc/providers/test-idp/login?target=${encodeURIComponent(target)}`);
    t.is(r.statusCode, 400, target);
    t.deepEqual(r.json().details.map((d: { path: string }) => d.path), ['/target']);
  }

  t.is((await call('PUT', '/acs/api/v1/users/dave%40example.test', su, { password: 'local password' })).statusCode, 201);
  const taken = await call('GET', await loginAtIdp('dave'));
  t.is(taken.statusCode, 409);
  t.is(taken.json().code, 'IDP_USER_CONFLICT', 'a local account is not taken over by an IdP that names its uid');
  t.is((await call('GET', '/acs/api/v1/auth/oidc/providers/nope/login')).json().code, 'IDP_NOT_CONFIGURED');
});

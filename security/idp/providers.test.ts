/** The pure decisions of external logins (where a browser may be sent, which uid a provider names, which user a login links to), and the sweep of expired flows. */
import test from 'ava';
import type { Principal } from '../../control-plane/model/schemas.ts';
import { isLoopbackTarget, linkedPrincipal, targetProblem, uidFromClaims } from './providers.ts';

test('targets: paths on the cluster and http loopback URLs only', (t) => {
  for (const ok of ['/', '/dashboard', '/ui/#/services?x=1', 'http://127.0.0.1:5000/callback', 'http://localhost:1/cb', 'http://[::1]:8/cb']) t.is(targetProblem(ok), undefined, ok);
  for (const bad of ['//evil.example', '/\\evil.example', '/\t/evil.example', '/a b', '/\n/x', 'https://127.0.0.1/cb', 'http://127.0.0.1.evil.example/', 'http://user:pw@127.0.0.1/', 'http://127.0.0.1@evil.example/', 'javascript:alert(1)', 'data:text/html,x', 'relative/path', '']) {
    t.not(targetProblem(bad), undefined, JSON.stringify(bad));
  }
  t.false(isLoopbackTarget('/dashboard'));
  t.true(isLoopbackTarget('http://127.0.0.1:5000/callback'));
});

test('uid from a claim: a valid uid string (the first of a list), else nothing', (t) => {
  t.is(uidFromClaims({ email: 'alice@example.test' }, 'email'), 'alice@example.test');
  t.is(uidFromClaims({ groups: ['ops', 'dev'] }, 'groups'), 'ops');
  t.is(uidFromClaims({ email: 'has space@example.test' }, 'email'), undefined);
  t.is(uidFromClaims({ email: '../etc' }, 'email'), undefined);
  t.is(uidFromClaims({ email: 42 }, 'email'), undefined);
  t.is(uidFromClaims({}, 'email'), undefined);
  t.is(uidFromClaims({ email: `${'a'.repeat(97)}` }, 'email'), undefined, 'longer than a uid may be');
});

test('linking: only the same (type, id, subject) finds a user', (t) => {
  const users: Principal[] = [
    { uid: 'local', kind: 'user', permissions: [] },
    { uid: 'a@x', kind: 'user', permissions: [], provider: { type: 'oidc', id: 'corp', subject: 'https://idp 123' } },
    { uid: 'b@x', kind: 'user', permissions: [], provider: { type: 'saml', id: 'corp', subject: 'https://idp 123' } },
  ];
  t.is(linkedPrincipal(users, { type: 'oidc', id: 'corp', subject: 'https://idp 123' })?.uid, 'a@x');
  t.is(linkedPrincipal(users, { type: 'saml', id: 'corp', subject: 'https://idp 123' })?.uid, 'b@x');
  t.is(linkedPrincipal(users, { type: 'oidc', id: 'other', subject: 'https://idp 123' }), undefined, 'another provider with the same subject');
  t.is(linkedPrincipal(users, { type: 'oidc', id: 'corp', subject: 'https://evil 123' }), undefined, 'another issuer with the same sub');
});

test('the IAM sweeper deletes login flows (and used SAML assertions) once expired, keeps live ones', async (t) => {
  const { startTestMaster } = await import('../../test/harness/master.ts');
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const old = new Date(Date.now() - 5 * 60_000).toISOString();
  const later = new Date(Date.now() + 5 * 60_000).toISOString();
  await h.master.records.put('loginFlow', { id: 'a'.repeat(32), kind: 'oidc', provider: 'oidc.x', expiresAt: old, nonce: 'n', codeVerifier: 'v' });
  await h.master.records.put('loginFlow', { id: 'b'.repeat(32), kind: 'handoff', provider: 'oidc.x', expiresAt: later, uid: 'u', token: 't' });
  await h.master.records.put('usedLoginToken', { digest: 'c'.repeat(64), uid: 'saml-assertion', expiresAt: old });
  t.is(await h.master.iam.sweep(), 2);
  t.is(await h.master.records.get('loginFlow', 'a'.repeat(32)), undefined);
  t.truthy(await h.master.records.get('loginFlow', 'b'.repeat(32)));
  t.is(await h.master.records.get('usedLoginToken', 'c'.repeat(64)), undefined);
});

/** The IAM API (/acs/api/v1): users, groups, ACLs, the permission query, token revocation. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { Iam } from '../../../security/iam.ts';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import { loadConfig } from '../../config/load.ts';
import { startMaster } from '../../master.ts';

const SVC = 'dcos:service:marathon:marathon:services:';

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ h: TestMaster; su: string; call: (method: string, url: string, token: string | undefined, payload?: unknown) => Promise<{ statusCode: number; json: () => any; body: string; headers: Record<string, unknown> }> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const call = async (method: string, url: string, token: string | undefined, payload?: unknown) =>
    h.master.app.inject({ method: method as 'GET', url, ...(token ? { headers: { authorization: `token=${token}` } } : {}), ...(payload === undefined ? {} : { payload: payload as object }) });
  return { h, su, call };
}

async function login(h: TestMaster, uid: string, password: string): Promise<string> {
  const res = await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid, password } });
  if (res.statusCode !== 200) throw new Error(`login ${uid}: ${res.body}`);
  return res.json<{ token: string }>().token;
}

test('users: create with an argon2id password, DC/OS list shape, login, duplicate and bad bodies refused', async (t) => {
  const { h, su, call } = await setup(t);
  t.is((await call('PUT', '/acs/api/v1/users/alice', su, { description: 'Alice', password: 'correct horse' })).statusCode, 201);
  const stored = await h.master.iam.readPrincipal('alice');
  t.regex(stored!.value.kind === 'user' ? stored!.value.passwordHash ?? '' : '', /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const list = (await call('GET', '/acs/api/v1/users', su)).json();
  const alice = list.array.find((u: { uid: string }) => u.uid === 'alice');
  t.deepEqual(alice, { uid: 'alice', url: '/acs/api/v1/users/alice', description: 'Alice', is_remote: false, is_service: false, provider_type: 'internal', provider_id: '', disabled: false });
  t.false(JSON.stringify(list).includes('argon2'), 'no password hash leaves the API');
  t.deepEqual((await call('GET', '/acs/api/v1/users?type=service', su)).json().array.map((u: { uid: string }) => u.uid), [], 'no service accounts yet');
  const token = await login(h, 'alice', 'correct horse');
  const forbidden = await call('GET', '/acs/api/v1/users', token);
  t.is(forbidden.statusCode, 403, 'a user without permission may not read the IAM');
  const again = await call('PUT', '/acs/api/v1/users/alice', su, { password: 'another one' });
  t.is(again.statusCode, 409);
  t.is(again.json().code, 'RECORD_CONFLICT');
  const short = await call('PUT', '/acs/api/v1/users/bob', su, { password: 'short' });
  t.is(short.statusCode, 400);
  t.deepEqual(short.json().details.map((d: { path: string }) => d.path), ['/password']);
  const both = await call('PUT', '/acs/api/v1/users/bob', su, { password: 'long enough', public_key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' });
  t.is(both.statusCode, 400);
  const badUid = await call('PUT', '/acs/api/v1/users/b%20ob', su, { password: 'long enough' });
  t.is(badUid.statusCode, 400);
  t.is((await call('GET', '/acs/api/v1/users/ghost', su)).statusCode, 404);
  t.is((await call('PATCH', '/acs/api/v1/users/alice', su, { password: 'a new password' })).statusCode, 204);
  t.is((await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: 'alice', password: 'correct horse' } })).statusCode, 401, 'the old password no longer works');
  await t.notThrowsAsync(login(h, 'alice', 'a new password'));
});

test('groups: members hold the group\'s permissions, lose them on leaving; deleting a group removes memberships', async (t) => {
  const { h, su, call } = await setup(t);
  await call('PUT', '/acs/api/v1/users/alice', su, { password: 'correct horse' });
  const token = await login(h, 'alice', 'correct horse');
  t.is((await call('PUT', '/acs/api/v1/groups/auditors', su, { description: 'read the IAM' })).statusCode, 201);
  t.is((await call('PUT', '/acs/api/v1/groups/auditors', su, {})).statusCode, 409);
  t.is((await call('PATCH', '/acs/api/v1/groups/auditors', su, { description: 'read the IAM API' })).statusCode, 204);
  t.deepEqual((await call('GET', '/acs/api/v1/groups/auditors', su)).json(), { gid: 'auditors', url: '/acs/api/v1/groups/auditors', description: 'read the IAM API', provider_type: 'internal' });
  t.deepEqual((await call('GET', '/acs/api/v1/groups', su)).json().array.map((g: { gid: string }) => g.gid), ['auditors']);
  const noAcl = await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs/groups/auditors/read', su);
  t.is(noAcl.statusCode, 404);
  t.is(noAcl.json().code, 'IAM_ACL_NOT_FOUND', 'DC/OS: create the ACL first');
  t.is((await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs', su, { description: 'IAM API' })).statusCode, 201);
  t.is((await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs/groups/auditors/read', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 403, 'not a member yet');
  t.is((await call('PUT', '/acs/api/v1/groups/auditors/users/alice', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 200, 'the same token now carries the group\'s permission');
  t.is((await call('PUT', '/acs/api/v1/groups/auditors', token, {})).statusCode, 403, 'read does not cover writes');
  const members = (await call('GET', '/acs/api/v1/groups/auditors/users', su)).json();
  t.deepEqual(members.array.map((m: { membershipurl: string; user: { uid: string } }) => [m.membershipurl, m.user.uid]), [['/acs/api/v1/groups/auditors/users/alice', 'alice']]);
  t.deepEqual((await call('GET', '/acs/api/v1/users/alice/groups', su)).json().array.map((m: { group: { gid: string } }) => m.group.gid), ['auditors']);
  const perms = (await call('GET', '/acs/api/v1/users/alice/permissions', su)).json();
  t.deepEqual(perms.direct, []);
  t.deepEqual(perms.groups.map((p: { rid: string; gid: string; actions: { name: string }[] }) => [p.rid, p.gid, p.actions.map((a) => a.name)]), [['dcos:adminrouter:acs', 'auditors', ['read']]]);
  t.deepEqual((await call('GET', '/acs/api/v1/groups/auditors/permissions', su)).json().array.map((p: { rid: string }) => p.rid), ['dcos:adminrouter:acs']);
  t.is((await call('DELETE', '/acs/api/v1/groups/auditors/users/alice', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 403, 'left the group, lost its permission');
  await call('PUT', '/acs/api/v1/groups/auditors/users/alice', su);
  t.is((await call('DELETE', '/acs/api/v1/groups/auditors', su)).statusCode, 204);
  t.is((await h.master.iam.readPrincipal('alice'))!.value.groups, undefined, 'deleting the group removed the membership');
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 403);
  t.is((await call('PUT', '/acs/api/v1/groups/ghost/users/alice', su)).statusCode, 404);
});

test('ACLs: create (409 again), encoded rids, grant, the {allowed} query with superuser, groups and group-path inheritance, revoke, delete', async (t) => {
  const { h, su, call } = await setup(t);
  await call('PUT', '/acs/api/v1/users/alice', su, { password: 'correct horse' });
  await call('PUT', '/acs/api/v1/groups/prod-ops', su, {});
  await call('PUT', '/acs/api/v1/groups/prod-ops/users/alice', su);
  const prod = encodeURIComponent(`${SVC}/prod`);
  t.is((await call('PUT', `/acs/api/v1/acls/${prod}`, su, { description: 'first words' })).statusCode, 201);
  t.is((await call('PUT', `/acs/api/v1/acls/${prod}`, su, { description: 'again' })).statusCode, 409);
  t.is((await call('PATCH', `/acs/api/v1/acls/${prod}`, su, { description: 'apps under /prod' })).statusCode, 204);
  t.is((await call('PATCH', `/acs/api/v1/acls/${encodeURIComponent(`${SVC}/nope`)}`, su, { description: 'x' })).json().code, 'IAM_ACL_NOT_FOUND');
  const doubly = `/acs/api/v1/acls/${prod.replace(/%2F/g, '%252F')}`;
  t.is((await call('GET', doubly, su)).json().description, 'apps under /prod', 'the %252F spelling of the DC/OS docs works too');
  t.deepEqual((await call('GET', '/acs/api/v1/acls', su)).json().array, [{ rid: `${SVC}/prod`, url: `/acs/api/v1/acls/${prod}`, description: 'apps under /prod' }]);
  const allowed = async (rid: string, action: string): Promise<boolean> =>
    (await call('GET', `/acs/api/v1/acls/${encodeURIComponent(rid)}/users/alice/${action}`, su)).json().allowed;
  t.false(await allowed(`${SVC}/prod/web`, 'update'));
  t.is((await call('PUT', `/acs/api/v1/acls/${prod}/users/alice/read`, su)).statusCode, 204);
  t.is((await call('PUT', `/acs/api/v1/acls/${prod}/groups/prod-ops/update`, su)).statusCode, 204);
  t.true(await allowed(`${SVC}/prod`, 'read'));
  t.true(await allowed(`${SVC}/prod/web`, 'read'), 'a group path covers the apps nested under it');
  t.true(await allowed(`${SVC}/prod/web`, 'update'), 'through the group');
  t.false(await allowed(`${SVC}/prod/web`, 'delete'));
  t.false(await allowed(`${SVC}/production`, 'read'), 'a path boundary, not a string prefix');
  t.true((await call('GET', `/acs/api/v1/acls/${encodeURIComponent('dcos:anything:at:all')}/users/admin/delete`, su)).json().allowed, 'the superuser holds everything');
  t.true((await call('GET', `/acs/api/v1/acls/${prod}/groups/prod-ops/update`, su)).json().allowed);
  t.deepEqual((await call('GET', `/acs/api/v1/acls/${prod}/users/alice`, su)).json(), { actions: [{ name: 'read', url: `/acs/api/v1/acls/${prod}/users/alice/read` }] });
  const holders = (await call('GET', `/acs/api/v1/acls/${prod}/permissions`, su)).json();
  t.deepEqual(holders.users.map((u: { uid: string }) => u.uid), ['alice']);
  t.deepEqual(holders.groups.map((g: { gid: string; actions: { name: string }[] }) => [g.gid, g.actions.map((a) => a.name)]), [['prod-ops', ['update']]]);
  // The enforced decision is the queried one: alice may now read an app under /prod.
  const token = await login(h, 'alice', 'correct horse');
  t.not((await call('GET', '/v2/apps/prod/web', token)).statusCode, 403);
  t.is((await call('DELETE', `/acs/api/v1/acls/${prod}/users/alice/read`, su)).statusCode, 204);
  t.false(await allowed(`${SVC}/prod/web`, 'read'));
  t.is((await call('DELETE', `/acs/api/v1/acls/${prod}`, su)).statusCode, 204);
  t.false(await allowed(`${SVC}/prod/web`, 'update'), 'deleting the ACL took back the group grant too');
  t.deepEqual((await h.master.iam.readGroup('prod-ops'))!.value.permissions, []);
  t.is((await call('GET', `/acs/api/v1/acls/${prod}`, su)).statusCode, 404);
  const badAction = await call('PUT', `/acs/api/v1/acls/${prod}/users/alice/write`, su);
  t.is(badAction.statusCode, 400);
  const badRid = await call('PUT', '/acs/api/v1/acls/superuser', su, { description: 'x' });
  t.is(badRid.statusCode, 400);
  t.regex(badRid.json().message, /resource id "superuser" is invalid/);
});

test('revocation: logout kills one token; disabling, deleting and revoke-tokens kill them all, and a re-created uid does not revive them', async (t) => {
  const { h, su, call } = await setup(t);
  await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs', su, { description: 'IAM API' });
  await call('PUT', '/acs/api/v1/users/alice', su, { password: 'correct horse' });
  await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs/users/alice/read', su);
  const first = await login(h, 'alice', 'correct horse');
  const second = await login(h, 'alice', 'correct horse');
  t.is((await call('GET', '/acs/api/v1/users', first)).statusCode, 200);
  const out = await call('POST', '/acs/api/v1/auth/logout', first);
  t.is(out.statusCode, 204);
  t.regex(String(out.headers['set-cookie']), /dcos-acs-auth-cookie=; Path=\/; Max-Age=0; HttpOnly; Secure; SameSite=Strict/);
  const afterLogout = await call('GET', '/acs/api/v1/users', first);
  t.is(afterLogout.statusCode, 401);
  t.is(afterLogout.json().code, 'AUTH_TOKEN_REVOKED');
  t.is(afterLogout.headers['www-authenticate'], 'oauthjwt');
  t.is((await call('GET', '/acs/api/v1/users', second)).statusCode, 200, 'logout revokes the presented token only');
  t.is((await call('POST', '/acs/api/v1/auth/logout', undefined)).statusCode, 204, 'logout without a token just clears the cookie');
  const metrics = (await call('GET', '/metrics', su)).body;
  t.regex(metrics, /^strata_iam_revoked_tokens 1$/m);
  t.regex(metrics, /^strata_iam_principals\{kind="user"\} 2$/m);
  t.regex(metrics, /^strata_iam_logouts_total 1$/m);
  t.regex(metrics, /^strata_iam_logins_total\{method="password",result="ok"\} 2$/m);

  t.is((await call('PATCH', '/acs/api/v1/users/alice', su, { disabled: true })).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', second)).json().code, 'AUTH_TOKEN_REVOKED');
  t.is((await h.master.app.inject({ method: 'POST', url: '/acs/api/v1/auth/login', payload: { uid: 'alice', password: 'correct horse' } })).statusCode, 401, 'a disabled user cannot log in');
  t.true((await call('GET', '/acs/api/v1/users/alice', su)).json().disabled);
  await call('PATCH', '/acs/api/v1/users/alice', su, { disabled: false });
  t.is((await call('GET', '/acs/api/v1/users', second)).statusCode, 401, 'enabling again does not revive tokens issued before the disable');
  await new Promise((r) => setTimeout(r, 1100)); // tokens of the revoking second stay refused
  const third = await login(h, 'alice', 'correct horse');
  t.is((await call('GET', '/acs/api/v1/users', third)).statusCode, 200);

  t.is((await call('POST', '/acs/api/v1/users/alice/revoke-tokens', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', third)).statusCode, 401);
  await new Promise((r) => setTimeout(r, 1100));
  const fourth = await login(h, 'alice', 'correct horse');
  t.is((await call('DELETE', '/acs/api/v1/users/alice', su)).statusCode, 204);
  t.is((await call('GET', '/acs/api/v1/users', fourth)).statusCode, 401, 'deleted');
  await call('PUT', '/acs/api/v1/users/alice', su, { password: 'correct horse' });
  await h.master.iam.grant({ uid: 'alice' }, 'dcos:adminrouter:acs', 'read');
  t.is((await call('GET', '/acs/api/v1/users', fourth)).statusCode, 401, 'a re-created alice does not revive the old alice\'s tokens');
  t.is((await call('DELETE', '/acs/api/v1/users/alice', su)).statusCode, 204);
  t.is((await call('DELETE', '/acs/api/v1/users/alice', su)).statusCode, 404);
});

test('revocations expire with their token: the sweep deletes them after exp', async (t) => {
  const { h, su, call } = await setup(t);
  await call('POST', '/acs/api/v1/auth/logout', su);
  t.is((await h.master.records.list('revokedToken')).records.length, 1);
  t.is(await h.master.iam.sweep(), 0, 'not yet expired');
  const later = new Iam(h.master.records, { now: () => Date.now() + 6 * 86400_000 });
  t.is(await later.sweep(), 1);
  t.is((await h.master.records.list('revokedToken')).records.length, 0);
});

test('two masters on one store: a logout, a disable and a group grant on one are enforced by the other (watched views)', async (t) => {
  const { h, su, call } = await setup(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-test-b-'));
  const other = await startMaster({ config: loadConfig({ env: {}, overrides: { dataDir, 'api.port': 0, 'master.leaderTtlSeconds': 2 } }), logger: pino({ level: 'silent' }), store: h.store });
  t.teardown(async () => {
    await other.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  t.is(other.ca.rootPem, h.master.ca.rootPem, 'one cluster CA: the second master loaded the first one\'s');
  const onB = (token: string) => other.app.inject({ method: 'GET', url: '/acs/api/v1/users', headers: { authorization: `token=${token}` } });
  const eventually = async (check: () => Promise<boolean>): Promise<boolean> => {
    for (let i = 0; i < 100; i++) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  await call('PUT', '/acs/api/v1/users/alice', su, { password: 'correct horse' });
  await call('PUT', '/acs/api/v1/groups/auditors', su, {});
  await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs', su, { description: 'IAM API' });
  await call('PUT', '/acs/api/v1/acls/dcos:adminrouter:acs/groups/auditors/read', su);
  const token = await login(h, 'alice', 'correct horse');
  t.is((await onB(token)).statusCode, 403);
  await call('PUT', '/acs/api/v1/groups/auditors/users/alice', su);
  t.true(await eventually(async () => (await onB(token)).statusCode === 200), 'B applies the membership');
  await call('POST', '/acs/api/v1/auth/logout', token);
  t.true(await eventually(async () => (await onB(token)).json().code === 'AUTH_TOKEN_REVOKED'), 'B applies the logout');
  const second = await login(h, 'alice', 'correct horse');
  t.is((await onB(second)).statusCode, 200);
  await call('PATCH', '/acs/api/v1/users/alice', su, { disabled: true });
  t.true(await eventually(async () => (await onB(second)).statusCode === 401), 'B applies the disable');
});

test('the last superuser cannot be deleted, disabled, stripped of dcos:superuser or lose it with its group', async (t) => {
  const { h, su, call } = await setup(t);
  const refused = async (method: string, url: string, payload?: unknown): Promise<void> => {
    const res = await call(method, url, su, payload);
    t.is(res.statusCode, 409, `${method} ${url}: ${res.body}`);
    t.is(res.json().code, 'IAM_LAST_SUPERUSER');
  };
  await call('PUT', '/acs/api/v1/acls/dcos:superuser', su, { description: 'everything' });
  await refused('DELETE', '/acs/api/v1/users/admin');
  await refused('PATCH', '/acs/api/v1/users/admin', { disabled: true });
  await refused('DELETE', '/acs/api/v1/acls/dcos:superuser/users/admin/full');
  await refused('DELETE', '/acs/api/v1/acls/dcos:superuser');
  // Superuser through a group only: the group and the membership are guarded too.
  await call('PUT', '/acs/api/v1/groups/admins', su, {});
  await call('PUT', '/acs/api/v1/acls/dcos:superuser/groups/admins/full', su);
  await call('PUT', '/acs/api/v1/groups/admins/users/admin', su);
  t.is((await call('DELETE', '/acs/api/v1/acls/dcos:superuser/users/admin/full', su)).statusCode, 204, 'admin stays superuser through admins');
  await refused('DELETE', '/acs/api/v1/groups/admins/users/admin');
  await refused('DELETE', '/acs/api/v1/groups/admins');
  // With a second superuser, the first may go.
  await call('PUT', '/acs/api/v1/users/root2', su, { password: 'correct horse' });
  await call('PUT', '/acs/api/v1/acls/dcos:superuser/users/root2/full', su);
  t.is((await call('DELETE', '/acs/api/v1/groups/admins', su)).statusCode, 204);
  const root2 = await login(h, 'root2', 'correct horse');
  t.is((await call('GET', '/acs/api/v1/acls/dcos:superuser/users/admin/read', root2)).json().allowed, false, 'admin is no longer superuser');
  t.is((await call('GET', '/acs/api/v1/users', su)).statusCode, 403, 'and its token carries no more than it holds');
  t.is((await call('DELETE', '/acs/api/v1/users/admin', root2)).statusCode, 204, 'a non-superuser may go');
});

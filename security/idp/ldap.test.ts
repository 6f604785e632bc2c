/**
 * LDAP as an identity provider: escaping (pure), then against a real slapd
 * the test starts: the DC/OS-shaped config API, StartTLS and ldaps with a
 * test CA (and an untrusted CA refused), direct and search bind, user and
 * group import, login at /auth/login falling back to LDAP for LDAP users,
 * and filter injection refused.
 */
import test from 'ava';
import { escapeDnValue, escapeFilterValue, fillTemplate } from './ldap.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { LDAP_SUFFIX, slapdUnavailable, startSlapd, type Slapd } from '../../test/harness/slapd.ts';

test('filter values are escaped per RFC 4515: injection input stays one value', (t) => {
  t.is(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
  t.is(escapeFilterValue('a\\b\0c'), 'a\\5cb\\00c');
  t.is(escapeFilterValue('alice'), 'alice');
  t.is(escapeFilterValue('jürgen'), 'j\\c3\\bcrgen');
  t.is(fillTemplate('(&(objectClass=person)(uid=%(username)s))', 'username', escapeFilterValue('x)(|(uid=*')), '(&(objectClass=person)(uid=x\\29\\28|\\28uid=\\2a))');
});

test('DN values are escaped per RFC 4514: no extra RDNs or attributes', (t) => {
  t.is(escapeDnValue('alice,ou=admins'), 'alice\\2cou\\3dadmins');
  t.is(escapeDnValue(' #lead'), '\\20#lead');
  t.is(escapeDnValue('#x'), '\\23x');
  t.is(escapeDnValue('trail '), 'trail\\20');
  t.is(escapeDnValue('a+b"c\\d<e>f;g'), 'a\\2bb\\22c\\5cd\\3ce\\3ef\\3bg');
});

const skip = slapdUnavailable();
const slapdTest = skip ? test.skip : test;

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const slapd = await startSlapd();
  t.teardown(() => slapd.close());
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const call = (method: string, url: string, token: string | undefined, payload?: unknown) =>
    h.master.app.inject({ method: method as 'GET', url, ...(token ? { headers: { authorization: `token=${token}` } } : {}), ...(payload === undefined ? {} : { payload: payload as object }) });
  return { h, su, slapd, call };
}

const searchBind = (slapd: Slapd) => ({
  host: '127.0.0.1',
  port: slapd.ldapPort,
  'enforce-starttls': true,
  'use-ldaps': false,
  'lookup-dn': `cn=admin,${LDAP_SUFFIX}`,
  'lookup-password': 'adminpw',
  'user-search': { 'search-base': `ou=people,${LDAP_SUFFIX}`, 'search-filter-template': '(&(objectClass=inetOrgPerson)(uid=%(username)s))' },
  'group-search': { 'search-base': `ou=groups,${LDAP_SUFFIX}`, 'search-filter-template': '(cn=%(groupname)s)' },
  'ca-certs': slapd.caPem,
});

slapdTest('StartTLS + search bind: config API, test, import user and group, LDAP login through /auth/login, injection refused', async (t) => {
  const { h, su, slapd, call } = await setup(t);
  t.is((await call('GET', '/acs/api/v1/ldap/config', su)).json().code, 'IDP_NOT_CONFIGURED');
  const bad = await call('PUT', '/acs/api/v1/ldap/config', su, { host: '127.0.0.1', port: 0, 'enforce-starttls': true, 'use-ldaps': true });
  t.is(bad.statusCode, 400);
  t.true(bad.json().details.some((d: { path: string }) => d.path === '/port'), 'the wrong field is named');
  const neither = await call('PUT', '/acs/api/v1/ldap/config', su, { host: '127.0.0.1', port: 389, 'enforce-starttls': true, 'use-ldaps': true });
  t.is(neither.statusCode, 422, 'neither a dntemplate nor a user-search, and StartTLS over ldaps');
  t.deepEqual(neither.json().details.map((d: { path: string }) => d.path).sort(), ['/config/dntemplate', '/config/enforce-starttls']);
  t.is((await call('PUT', '/acs/api/v1/ldap/config', su, searchBind(slapd))).statusCode, 201);
  const shown = (await call('GET', '/acs/api/v1/ldap/config', su)).json();
  t.is(shown['lookup-dn'], `cn=admin,${LDAP_SUFFIX}`);
  t.false('lookup-password' in shown, 'the lookup password is never read back');

  t.deepEqual((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'alice', password: 'alicepw' })).json().code, 'TEST_PASSED');
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'alice', password: 'wrong' })).json().code, 'AUTHENTICATION_FAILURE');
  // Filter injection: the name is one escaped value, matching no entry (not every entry).
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: '*)(uid=*', password: 'alicepw' })).json().code, 'AUTHENTICATION_FAILURE');
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: '*', password: 'alicepw' })).json().code, 'AUTHENTICATION_FAILURE');
  const injectedImport = await call('POST', '/acs/api/v1/ldap/importuser', su, { username: '*)(uid=*' });
  t.is(injectedImport.statusCode, 404, 'no user is imported by an injected filter');

  // Not imported yet: no login.
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'alice', password: 'alicepw' })).statusCode, 401);
  t.is((await call('POST', '/acs/api/v1/ldap/importuser', su, { username: 'alice' })).statusCode, 201);
  const alice = (await call('GET', '/acs/api/v1/users/alice', su)).json();
  t.like(alice, { uid: 'alice', description: 'Alice Liddell', is_remote: true, provider_type: 'ldap', provider_id: 'default' });
  const login = await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'alice', password: 'alicepw' });
  t.is(login.statusCode, 200, login.body);
  const token = login.json().token as string;
  t.is((await call('GET', '/acs/api/v1/users', token)).statusCode, 403, 'a normal token, with alice\'s (no) permissions');
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'alice', password: 'wrong' })).json().code, 'AUTH_LOGIN_FAILED');
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'alice', password: '' })).statusCode, 400, 'an empty password never reaches the directory');

  // A local user keeps its local password even if the directory has the same uid.
  t.is((await call('PUT', '/acs/api/v1/users/bob', su, { password: 'local-bob-pw' })).statusCode, 201);
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'bob', password: 'bobpw' })).statusCode, 401, 'the directory password does not open a local account');
  t.is((await call('POST', '/acs/api/v1/ldap/importuser', su, { username: 'bob' })).json().code, 'IDP_USER_CONFLICT');

  // Group import: groupOfNames members by DN; a member whose uid is local is skipped.
  const ops = await call('POST', '/acs/api/v1/ldap/importgroup', su, { groupname: 'ops' });
  t.is(ops.statusCode, 201, ops.body);
  t.deepEqual(ops.json(), { members: ['alice'], skipped: ['bob'] });
  t.like((await call('GET', '/acs/api/v1/groups/ops', su)).json(), { gid: 'ops', provider_type: 'ldap' });
  t.deepEqual((await call('GET', '/acs/api/v1/groups/ops/users', su)).json().array.map((m: { user: { uid: string } }) => m.user.uid), ['alice']);
  // posixGroup members by memberUid; imported users log in.
  t.deepEqual((await call('POST', '/acs/api/v1/ldap/importgroup', su, { groupname: 'devs' })).json(), { members: ['mallory'], skipped: [] });
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'mallory', password: 'mallorypw' })).statusCode, 200);
  t.is((await call('POST', '/acs/api/v1/ldap/importgroup', su, { groupname: '*' })).statusCode, 404, 'a wildcard group name matches nothing');

  const metrics = (await call('GET', '/metrics', su)).body;
  t.regex(metrics, /strata_iam_provider_logins_total\{provider="ldap.default",result="ok"\} 2/);
  t.regex(metrics, /strata_iam_provider_logins_total\{provider="ldap.default",result="AUTH_LOGIN_FAILED"\} 1/);

  // Only administrators configure it.
  t.is((await call('GET', '/acs/api/v1/ldap/config', token)).statusCode, 403);
  t.is((await call('PUT', '/acs/api/v1/ldap/config', token, searchBind(slapd))).statusCode, 403);
  t.is((await call('DELETE', '/acs/api/v1/ldap/config', su)).statusCode, 204);
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'alice', password: 'alicepw' })).json().code, 'IDP_NOT_CONFIGURED', 'without the configuration LDAP users cannot log in');
  void h;
});

slapdTest('ldaps with a direct-bind DN template; an untrusted CA or a wrong port is a connection failure', async (t) => {
  const { su, slapd, call } = await setup(t);
  const direct = { host: '127.0.0.1', port: slapd.ldapsPort, 'enforce-starttls': false, 'use-ldaps': true, dntemplate: `uid=%(username)s,ou=people,${LDAP_SUFFIX}`, 'ca-certs': slapd.caPem };
  t.is((await call('PUT', '/acs/api/v1/ldap/config', su, direct)).statusCode, 201);
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'bob', password: 'bobpw' })).json().code, 'TEST_PASSED');
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'bob,ou=people', password: 'bobpw' })).json().code, 'AUTHENTICATION_FAILURE', 'a DN-injection name is one escaped RDN value');
  t.is((await call('POST', '/acs/api/v1/ldap/importuser', su, { username: 'bob' })).statusCode, 201, 'direct-bind configs import by reading the entry at the template DN');
  t.is((await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'bob', password: 'bobpw' })).statusCode, 200);
  t.is((await call('PUT', '/acs/api/v1/ldap/config', su, { ...direct, 'ca-certs': slapd.otherCaPem })).statusCode, 200);
  const untrusted = (await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'bob', password: 'bobpw' })).json();
  t.is(untrusted.code, 'CONNECTION_FAILURE');
  t.regex(untrusted.description, /certificate/);
  const login = await call('POST', '/acs/api/v1/auth/login', undefined, { uid: 'bob', password: 'bobpw' });
  t.is(login.statusCode, 502, 'a directory that cannot be trusted is an outage, not a wrong password');
  t.is(login.json().code, 'IDP_UNAVAILABLE');
  // StartTLS enforced against the ldaps port (TLS expected from the first byte) fails closed.
  t.is((await call('PUT', '/acs/api/v1/ldap/config', su, { ...direct, 'use-ldaps': false, 'enforce-starttls': true, 'ca-certs': slapd.caPem })).statusCode, 200);
  t.is((await call('POST', '/acs/api/v1/ldap/config/test', su, { uid: 'bob', password: 'bobpw' })).json().code, 'CONNECTION_FAILURE');
});

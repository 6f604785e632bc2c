/**
 * `strata iam ldap|oidc|saml ...` and `strata auth login --provider ID` as a
 * user runs them: real processes against a test master, a real slapd, an
 * in-process OIDC provider (the browser steps as plain HTTP requests) and a
 * samlify IdP's metadata.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import * as samlify from 'samlify';
import { browse } from '../test/harness/browser.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { startOidcIdp } from '../test/harness/oidc-idp.ts';
import { makeSigningCert } from '../test/harness/pki.ts';
import { runStrata, startStrata } from '../test/harness/process.ts';
import { LDAP_SUFFIX, slapdUnavailable, startSlapd } from '../test/harness/slapd.ts';

async function setup(t: { teardown(fn: () => Promise<void>): void; is(a: unknown, b: unknown, m?: string): void }) {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-idp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const admin = { STRATA_CLI_CONFIG: join(dir, 'admin.json') };
  await writeFile(admin.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const run = async (args: string[], env: Record<string, string> = admin, code = 0): Promise<string> => {
    const r = await runStrata(args, { env });
    t.is(r.code, code, `strata ${args.join(' ')}: ${r.output}`);
    return r.output;
  };
  return { h, dir, admin, run };
}

(slapdUnavailable() ? test.skip : test)('iam ldap config set|show|test|remove, import-user, import-group; the LDAP user logs in with auth login', async (t) => {
  const { dir, run, h } = await setup(t);
  const slapd = await startSlapd();
  t.teardown(() => slapd.close());
  const config = join(dir, 'ldap.json');
  await writeFile(config, JSON.stringify({
    host: '127.0.0.1', port: slapd.ldapPort, 'enforce-starttls': true, 'use-ldaps': false,
    'lookup-dn': `cn=admin,${LDAP_SUFFIX}`, 'lookup-password': 'adminpw',
    'user-search': { 'search-base': `ou=people,${LDAP_SUFFIX}`, 'search-filter-template': '(uid=%(username)s)' },
    'group-search': { 'search-base': `ou=groups,${LDAP_SUFFIX}`, 'search-filter-template': '(cn=%(groupname)s)' },
    'ca-certs': slapd.caPem,
  }));
  t.regex(await run(['iam', 'ldap', 'config', 'set', config]), /LDAP configuration set/);
  const shown = JSON.parse(await run(['iam', 'ldap', 'config', 'show'])) as Record<string, unknown>;
  t.is(shown['port'], slapd.ldapPort);
  t.false('lookup-password' in shown);
  await writeFile(join(dir, 'alice.pw'), 'alicepw\n');
  t.regex(await run(['iam', 'ldap', 'config', 'test', 'alice', '--password-file', join(dir, 'alice.pw')]), /^TEST_PASSED: bound as uid=alice,ou=people,dc=example,dc=test$/m);
  await writeFile(join(dir, 'wrong.pw'), 'nope\n');
  t.regex(await run(['iam', 'ldap', 'config', 'test', 'alice', '--password-file', join(dir, 'wrong.pw')], undefined, 1), /AUTHENTICATION_FAILURE/);
  t.regex(await run(['iam', 'ldap', 'import-user', 'mallory']), /Imported LDAP user mallory/);
  t.regex(await run(['iam', 'ldap', 'import-group', 'ops']), /Imported LDAP group ops with 2 member\(s\): alice, bob/);
  t.regex(await run(['iam', 'user', 'list']), /^alice\s+user\s+no\s+Alice Liddell$/m);
  const aliceEnv = { STRATA_CLI_CONFIG: join(dir, 'alice.json'), STRATA_PASSWORD: 'alicepw' };
  t.regex(await run(['auth', 'login', '--url', h.master.apiUrl, '--uid', 'alice'], aliceEnv), /Logged in .* as alice/);
  t.regex(await run(['iam', 'ldap', 'config', 'remove']), /removed/);
  t.regex(await run(['iam', 'ldap', 'config', 'show'], undefined, 1), /IDP_NOT_CONFIGURED/);
});

test('iam oidc add|list|remove and auth login --provider: browser login through the loopback hand-off', async (t) => {
  const { dir, run, h } = await setup(t);
  const idp = await startOidcIdp(`${h.master.apiUrl}/acs/api/v1/auth/oidc/providers/corp-oidc/callback`, 'cli-client-secret-0123');
  t.teardown(() => idp.close());
  await writeFile(join(dir, 'secret'), 'cli-client-secret-0123\n', { mode: 0o600 });
  t.regex(
    await run(['iam', 'oidc', 'add', 'corp-oidc', '--issuer', idp.issuer, '--base-url', h.master.apiUrl, '--client-id', 'strata', '--client-secret-file', join(dir, 'secret'), '--description', 'Corp']),
    new RegExp(`redirect URI at the provider: ${h.master.apiUrl}/acs/api/v1/auth/oidc/providers/corp-oidc/callback`),
  );
  t.regex(await run(['iam', 'oidc', 'list']), new RegExp(`^corp-oidc\\s+${idp.issuer.replace(/[.]/g, '\\.')}\\s+strata\\s+Corp$`, 'm'));

  const userEnv = { STRATA_CLI_CONFIG: join(dir, 'user.json') };
  const login = startStrata(['auth', 'login', '--url', h.master.apiUrl, '--provider', 'corp-oidc', '--timeout', '120'], { env: userEnv });
  t.teardown(() => login.kill('SIGKILL'));
  const [, url] = await login.waitFor(/^\s+(http:\/\/\S+)$/m);
  const target = new URL(url!).searchParams.get('target')!;
  t.regex(target, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
  const landed = await browse(url!, { fill: { login: 'erin', password: 'any' }, stopAt: target });
  const page = await fetch(landed.url);
  t.regex(await page.text(), /Logged in to Strata/);
  t.is(await login.exited(), 0, login.output());
  t.regex(login.output(), /Logged in to .* as erin@example\.test \(via corp-oidc\)/);
  const state = JSON.parse(await readFile(userEnv.STRATA_CLI_CONFIG, 'utf8')) as { uid: string; token: string };
  t.is(state.uid, 'erin@example.test');
  t.is((await h.master.tokens.verify(state.token)).uid, 'erin@example.test', 'the kept token is a Strata auth token');

  t.regex(await run(['auth', 'login', '--url', h.master.apiUrl, '--provider', 'nope'], userEnv, 1), /no OIDC or SAML provider "nope".*known: corp-oidc/);
  t.regex(await run(['iam', 'oidc', 'remove', 'corp-oidc']), /Removed OIDC provider corp-oidc/);
  t.notRegex(await run(['iam', 'oidc', 'list']), /corp-oidc/);
});

test('iam saml add|list|remove from IdP metadata', async (t) => {
  const { dir, run, h } = await setup(t);
  const signing = makeSigningCert(dir, 'idp');
  const idp = samlify.IdentityProvider({
    entityID: 'https://idp.example.test/metadata', signingCert: signing.certPem, privateKey: signing.keyPem,
    singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: 'https://idp.example.test/sso' }],
  });
  await writeFile(join(dir, 'idp.xml'), idp.getMetadata());
  const base = `${h.master.apiUrl}/acs/api/v1/auth/saml/providers/corp-saml`;
  t.regex(await run(['iam', 'saml', 'add', 'corp-saml', '--idp-metadata', join(dir, 'idp.xml'), '--sp-base-url', h.master.apiUrl]), new RegExp(`entity id ${base}/sp-metadata and ACS URL ${base}/acs-callback`));
  t.regex(await run(['iam', 'saml', 'list']), new RegExp(`^corp-saml\\s+${base.replace(/[.]/g, '\\.')}/sp-metadata`, 'm'));
  await writeFile(join(dir, 'bad.xml'), '<nope/>');
  t.regex(await run(['iam', 'saml', 'add', 'bad', '--idp-metadata', join(dir, 'bad.xml'), '--sp-base-url', h.master.apiUrl], undefined, 1), /idp_metadata/);
  t.regex(await run(['iam', 'saml', 'remove', 'corp-saml']), /Removed SAML provider corp-saml/);
});

/**
 * `strata iam ...` and `strata auth login --service-account` as a user runs
 * them: real processes against a test master.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

test('iam user/group/acl/serviceaccount verbs, service-account login, and logout revoking the token', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-iam-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const admin = { STRATA_CLI_CONFIG: join(dir, 'admin.json') };
  await writeFile(admin.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const run = async (args: string[], env: Record<string, string> = admin): Promise<string> => {
    const r = await runStrata(args, { env });
    t.is(r.code, 0, `strata ${args.join(' ')}: ${r.output}`);
    return r.output;
  };

  await writeFile(join(dir, 'pw'), 'correct horse\n', { mode: 0o600 });
  t.regex(await run(['iam', 'user', 'add', 'alice', '--password-file', join(dir, 'pw'), '--description', 'Alice']), /Created user alice/);
  t.regex(await run(['iam', 'group', 'add', 'ops']), /Created group ops/);
  t.regex(await run(['iam', 'group', 'member', 'add', 'ops', 'alice']), /alice is a member of ops/);
  t.regex(await run(['iam', 'acl', 'grant', 'dcos:adminrouter:acs', 'read', '--group', 'ops']), /Granted read on dcos:adminrouter:acs to groups\/ops/);
  t.regex(await run(['iam', 'acl', 'grant', 'dcos:service:marathon:marathon:services:/prod', 'update', '--user', 'alice']), /Granted update/);
  const acls = await run(['iam', 'acl', 'list']);
  t.regex(acls, /^dcos:adminrouter:acs\s+group:ops=read\s/m);
  t.regex(acls, /^dcos:service:marathon:marathon:services:\/prod\s+user:alice=update\s/m);
  t.regex(await run(['iam', 'group', 'list']), /^ops\s+alice\s*$/m);
  t.regex(await run(['iam', 'user', 'list']), /^alice\s+user\s+no\s+Alice$/m);

  // alice logs in and reads the IAM through her group.
  const aliceEnv = { STRATA_CLI_CONFIG: join(dir, 'alice.json'), STRATA_PASSWORD: 'correct horse' };
  await run(['auth', 'login', '--url', h.master.apiUrl, '--uid', 'alice'], aliceEnv);
  t.regex(await run(['iam', 'user', 'list'], aliceEnv), /alice/);
  const denied = await runStrata(['iam', 'group', 'add', 'x'], { env: aliceEnv });
  t.is(denied.code, 1);
  t.regex(denied.output, /403 API_FORBIDDEN alice lacks full on dcos:adminrouter:acs/);
  const aliceToken = (JSON.parse(await readFile(aliceEnv.STRATA_CLI_CONFIG, 'utf8')) as { token: string }).token;
  t.regex(await run(['auth', 'logout'], aliceEnv), /Revoked and forgot/);
  const after = await h.master.app.inject({ method: 'GET', url: '/acs/api/v1/users', headers: { authorization: `token=${aliceToken}` } });
  t.is(after.json().code, 'AUTH_TOKEN_REVOKED', 'logout revoked the token on the server');

  // A service account with a key pair made by the CLI, logging in with it.
  const keyFile = join(dir, 'ci.key');
  t.regex(await run(['iam', 'serviceaccount', 'add', 'ci-bot', '--private-key-out', keyFile]), /Created service account ci-bot/);
  t.is((await stat(keyFile)).mode & 0o777, 0o600);
  await run(['iam', 'acl', 'grant', 'dcos:adminrouter:acs', 'read', '--user', 'ci-bot']);
  const ciEnv = { STRATA_CLI_CONFIG: join(dir, 'ci.json') };
  t.regex(await run(['auth', 'login', '--url', h.master.apiUrl, '--service-account', 'ci-bot', '--private-key', keyFile], ciEnv), /Logged in .* as ci-bot/);
  t.regex(await run(['iam', 'user', 'list'], ciEnv), /^ci-bot\s+service\s+no/m);

  // Take it all back.
  await run(['iam', 'acl', 'revoke', 'dcos:adminrouter:acs', 'read', '--user', 'ci-bot']);
  t.is((await runStrata(['iam', 'user', 'list'], { env: ciEnv })).code, 1);
  await run(['iam', 'user', 'disable', 'alice']);
  t.regex(await run(['iam', 'user', 'list']), /^alice\s+user\s+yes/m);
  await run(['iam', 'group', 'member', 'remove', 'ops', 'alice']);
  await run(['iam', 'group', 'remove', 'ops']);
  await run(['iam', 'user', 'remove', 'alice']);
  t.notRegex(await run(['iam', 'user', 'list']), /alice/);
  const usage = await runStrata(['iam', 'acl', 'grant', 'dcos:superuser', 'write', '--user', 'x'], { env: admin });
  t.is(usage.code, 2);
  t.regex(usage.output, /ACTION must be one of create, read, update, delete, full/);
});

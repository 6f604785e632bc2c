/**
 * `strata up` as a new user meets it: start, read the printed addresses and
 * credentials file, log in through the CLI, use the API, stop with SIGTERM,
 * start again on the same data.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runStrata, startStrata } from './harness/process.ts';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-up-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('strata up: prints where it listens, logs in through the CLI, serves its agent, stops on SIGTERM and restarts on the same data', async (t) => {
  const dir = await tempDir(t);
  const dataDir = join(dir, 'data');
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const up = startStrata(['up', '--data-dir', dataDir, '--api-port', '0', '--agent-port', '0', '--xds-port', '0'], { env });
  t.teardown(() => up.kill('SIGKILL'));
  const [, apiUrl] = await up.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/);
  const [, credentials] = await up.waitFor(/bootstrap superuser credentials: (\S+) \(uid admin\) \(new\)/);
  t.is(credentials, join(dataDir, 'bootstrap-credentials.json'));
  t.is((await stat(credentials!)).mode & 0o777, 0o600);
  t.is((await stat(join(dataDir, 'state.db'))).mode & 0o777, 0o600, 'the store (hashes, signing keys) is owner-only');
  const { password } = JSON.parse(await readFile(credentials!, 'utf8')) as { password: string };
  t.false(up.output().includes(password), 'the password is never printed');
  t.false((await readFile(join(dataDir, 'strata.log'), 'utf8')).includes(password), 'nor logged');

  const login = await runStrata(['auth', 'login', '--url', apiUrl!, '--password-file', credentials!], { env });
  t.is(login.code, 0, login.output);
  const { token } = JSON.parse(await readFile(env.STRATA_CLI_CONFIG, 'utf8')) as { token: string };
  t.is((await runStrata(['auth', 'token'], { env })).output.trim(), token, '`strata auth token` prints the kept token');
  const agents = (await (await fetch(`${apiUrl}/v1/agents`, { headers: { authorization: `token=${token}` } })).json()) as { agents: { id: string; health: { status: string } }[] };
  t.is(agents.agents.length, 1);
  t.is(agents.agents[0]!.health.status, 'healthy');
  const agentId = agents.agents[0]!.id;
  t.is((await fetch(`${apiUrl}/v1/agents`)).status, 401);
  const list = await runStrata(['agent', 'list'], { env });
  t.is(list.code, 0, list.output);
  t.regex(list.output, new RegExp(`^ID\\s+HOSTNAME[^\\n]*\\n${agentId}\\s+\\S+\\s+127\\.0\\.0\\.1\\s+\\d+\\s+\\d+\\s+healthy`, 'm'));
  const leader = await runStrata(['leader', '--json'], { env });
  t.is(leader.code, 0, leader.output);
  t.is((JSON.parse(leader.output) as { apiUrl: string }).apiUrl, apiUrl!);

  up.kill('SIGTERM');
  t.is(await up.exited(), 0, 'graceful exit on SIGTERM');

  const again = startStrata(['up', '--data-dir', dataDir, '--api-port', '0', '--agent-port', '0', '--xds-port', '0'], { env });
  t.teardown(() => again.kill('SIGKILL'));
  const [, apiUrl2] = await again.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/);
  await again.waitFor(/Stop:/);
  t.false(/\(new\)/.test(again.output()), 'no second superuser on restart');
  const relogin = await runStrata(['auth', 'login', '--url', apiUrl2!, '--password-file', credentials!], { env });
  t.is(relogin.code, 0, relogin.output);
  const { token: token2 } = JSON.parse(await readFile(env.STRATA_CLI_CONFIG, 'utf8')) as { token: string };
  const after = (await (await fetch(`${apiUrl2}/v1/agents`, { headers: { authorization: `token=${token2}` } })).json()) as { agents: { id: string }[] };
  t.deepEqual(after.agents.map((a) => a.id), [agentId], 'the agent comes back under the same id; state survived');
  const oldToken = await fetch(`${apiUrl2}/v1/agents`, { headers: { authorization: `token=${token}` } });
  t.is(oldToken.status, 200, 'tokens signed before the restart still verify (keys live in the store)');
  again.kill('SIGTERM');
  t.is(await again.exited(), 0);
});

test('bad configuration exits non-zero with one line naming the field', async (t) => {
  const dir = await tempDir(t);
  const res = await runStrata(['up', '--data-dir', dir, '--api-port', '99999']);
  t.is(res.code, 1);
  t.is(res.output.trim(), 'strata: config: api.port (from --api-port) must be <= 65535');
  const env = await runStrata(['master', '--data-dir', dir], { env: { STRATA_STORE_BACKEND: 'mysql' } });
  t.is(env.code, 1);
  t.regex(env.output, /store\.backend \(from STRATA_STORE_BACKEND\) must be one of/);
});

test('a corrupt or foreign data file is refused, named, and left untouched', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'state.db');
  const bytes = 'this is not a strata store\n';
  await writeFile(file, bytes);
  const res = await runStrata(['up', '--data-dir', dir, '--api-port', '0', '--agent-port', '0', '--xds-port', '0']);
  t.is(res.code, 1);
  t.true(res.output.includes(file), res.output);
  t.is(await readFile(file, 'utf8'), bytes);
});

test('every verb answers --help; unknown verbs and flags are usage errors', async (t) => {
  for (const verb of [['up'], ['master'], ['agent'], ['agent', 'list'], ['leader'], ['auth', 'login'], ['auth', 'token'], ['auth', 'logout']]) {
    const res = await runStrata([...verb, '--help']);
    t.is(res.code, 0, verb.join(' '));
    t.regex(res.output, /Usage: strata /, verb.join(' '));
  }
  t.regex((await runStrata(['up', '--help'])).output, /--store-etcd-endpoints\s+STRATA_STORE_ETCD_ENDPOINTS/);
  const unknown = await runStrata(['frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.output, /unknown verb "frobnicate"/);
  const notLoggedIn = await runStrata(['agent', 'list'], { env: { STRATA_CLI_CONFIG: '/nonexistent/cli.json' } });
  t.is(notLoggedIn.code, 2);
  t.regex(notLoggedIn.output, /not logged in: run `strata auth login` first/);
  const badFlag = await runStrata(['auth', 'logout', '--nope', '1']);
  t.is(badFlag.code, 2);
  t.regex(badFlag.output, /unknown flag --nope/);
});

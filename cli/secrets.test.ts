/**
 * `strata secret ...` as a user runs it (real processes) against a test
 * master: values from a file or STRATA_SECRET_VALUE (never an argument),
 * create, update, get (text and --json), list, delete, rotate-key --wait and
 * --status, and the errors users see.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

test('secret create|update|get|list|delete|rotate-key', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-secrets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  await writeFile(join(dir, 'v1'), 'first value\n');
  await writeFile(join(dir, 'v2'), 'second value');

  const noValue = await runStrata(['secret', 'create', 'team/a'], { env });
  t.is(noValue.code, 2, noValue.output);
  t.regex(noValue.output, /--value-file FILE .* STRATA_SECRET_VALUE/);
  t.is((await runStrata(['secret', 'create', 'team/a', '--value-file', join(dir, 'v1'), '--description', 'first'], { env })).code, 0);
  t.is((await runStrata(['secret', 'create', 'team/b'], { env: { ...env, STRATA_SECRET_VALUE: 'from env' } })).code, 0);
  const again = await runStrata(['secret', 'create', 'team/a', '--value-file', join(dir, 'v1')], { env });
  t.is(again.code, 1);
  t.regex(again.output, /SECRET_EXISTS/);
  t.is((await runStrata(['secret', 'get', 'team/a'], { env })).output, 'first value\n');
  t.is((await runStrata(['secret', 'update', 'team/a', '--value-file', join(dir, 'v2')], { env })).code, 0);
  const json = JSON.parse((await runStrata(['secret', 'get', 'team/a', '--json'], { env })).output) as Record<string, string>;
  t.like(json, { value: 'second value', description: 'first', author: 'admin' });
  t.is((await runStrata(['secret', 'list'], { env })).output, 'team/a\nteam/b\n');
  t.deepEqual(JSON.parse((await runStrata(['secret', 'list', 'team', '--json'], { env })).output), ['a', 'b']);
  const badPath = await runStrata(['secret', 'get', 'team/../x'], { env });
  t.is(badPath.code, 1);

  const rotated = await runStrata(['secret', 'rotate-key', '--wait', '--json'], { env });
  t.is(rotated.code, 0, rotated.output);
  t.like(JSON.parse(rotated.output), { kekVersion: 2, running: false, pending: 0, total: 2, rewrapped: 2 });
  const status = await runStrata(['secret', 'rotate-key', '--status'], { env });
  t.regex(status.output, /KEK VERSION[\s\S]*2 +1,2 +2 +2 +every data key is wrapped by the current version/);
  t.is((await runStrata(['secret', 'get', 'team/b'], { env })).output, 'from env\n');

  t.is((await runStrata(['secret', 'delete', 'team/a'], { env })).code, 0);
  const gone = await runStrata(['secret', 'get', 'team/a'], { env });
  t.is(gone.code, 1);
  t.regex(gone.output, /404 SECRET_NOT_FOUND no secret at team\/a/);
});

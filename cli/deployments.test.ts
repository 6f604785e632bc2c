/**
 * `strata deployment list` and `--wait` against a master running the
 * deployment controller with a fake agent: wait reasons shown, and a
 * deployment that misses its `--deadline` reported failed (exit 1) and
 * rolled back (`--rollback-on-failure`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { eventually, startControlledCluster } from '../test/harness/fake-agent.ts';
import { runStrata } from '../test/harness/process.ts';
import { parseArgs } from './args.ts';
import { writeQuery } from './apps.ts';

test('writeQuery: force, deadline and rollback-on-failure; bad values refused', (t) => {
  const q = (argv: string[]): string => writeQuery(parseArgs(argv, new Set(['force', 'rollback-on-failure'])));
  t.is(q(['app', 'add', 'f']), '');
  t.is(q(['app', 'add', 'f', '--force', '--deadline', '30', '--rollback-on-failure']), '?force=true&deadlineSeconds=30&rollbackOnFailure=true');
  t.throws(() => q(['app', 'add', 'f', '--deadline', '1.5']), { message: /--deadline must be a whole number of seconds/ });
  t.throws(() => q(['app', 'add', 'f', '--rollback-on-failure']), { message: /--rollback-on-failure needs --deadline/ });
});

test('deployment list says why a deployment waits; --wait with --deadline reports the failure and the rollback', async (t) => {
  const { h, api } = await startControlledCluster(t);
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-deployments-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json'), STRATA_CLI_POLL_MS: '100' };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });

  t.is((await api('POST', '/v2/apps', { id: '/huge', cmd: 'x', cpus: 1000, mem: 16 })).statusCode, 201);
  await eventually(async () => (await runStrata(['deployment', 'list'], { env })).output.includes('no-capacity'), 'the reason listed');
  const list = await runStrata(['deployment', 'list'], { env });
  t.is(list.code, 0, list.output);
  t.regex(list.output, /^ID\s+APPS\s+STEPS\s+STEP\s+STATE\s+CREATED\s+WAITING ON$/m);
  t.regex(list.output, /\/huge\s+Start \/huge > Scale \/huge\s+2\/2\s+running\s+\S+\s+\/huge no-capacity$/m);
  t.regex(list.output, /^ {2}waiting: \/huge no-capacity: 1 instance\(s\) fit on no agent: the closest \(agent-1\) lacks cpus 992$/m);

  const web = join(dir, 'web.json');
  await writeFile(web, JSON.stringify({ id: '/web', cmd: 'web-1', cpus: 0.1, mem: 16 }));
  const added = await runStrata(['app', 'add', web, '--wait'], { env });
  t.is(added.code, 0, added.output);
  t.regex(added.output, /finished$/m);
  const update = join(dir, 'update.json');
  await writeFile(update, JSON.stringify({ cmd: 'web-2', constraints: [['hostname', 'LIKE', 'nowhere']] }));
  const failed = await runStrata(['app', 'update', 'web', update, '--deadline', '1', '--rollback-on-failure', '--wait'], { env });
  t.is(failed.code, 1, failed.output);
  t.regex(failed.output, /waiting: \/web constraint-unmet: 1 instance\(s\) fit on no agent: constraint hostname:LIKE:nowhere/);
  t.regex(failed.output, /strata: deployment \S+ failed \(its deadline passed\)/);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 1, 'only /huge still deploying');
  t.is(((await api('GET', '/v2/apps/web')).json() as { app: { cmd: string } }).app.cmd, 'web-1', 'rolled back');
});

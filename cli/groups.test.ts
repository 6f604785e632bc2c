/**
 * `strata group …` as a user runs it: real processes against a test master,
 * logged in through the CLI state file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';
import { groupPath, groupRows } from './groups.ts';

test('groupPath and groupRows', (t) => {
  t.is(groupPath('/prod/web'), '/v2/groups/prod/web');
  t.throws(() => groupPath('/'), { message: /not a group id/ });
  t.deepEqual(groupRows({ id: '/', version: 'v', dependencies: [], apps: [], groups: [{ id: '/a', version: 'v', dependencies: ['/b'], apps: [{ id: '/a/x', instances: 1 }] }] }), [
    ['/', '0', '1', '-', 'v'],
    ['/a', '1', '0', '/b', 'v'],
  ]);
});

test('strata group add|list|show|update|remove', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-groups-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const file = join(dir, 'shop.json');
  await writeFile(file, JSON.stringify({ id: 'shop', groups: [{ id: 'db', apps: [{ id: 'pg', cmd: 'x', cpus: 0.1, mem: 16 }] }, { id: 'web', dependencies: ['../db'], apps: [{ id: 'srv', cmd: 'x', cpus: 0.1, mem: 16 }] }] }));

  const add = await runStrata(['group', 'add', file], { env });
  t.is(add.code, 0, add.output);
  t.regex(add.output, /^Created group shop \(version \S+\); deployment \S+$/m);
  const [list, show] = await Promise.all([runStrata(['group', 'list'], { env }), runStrata(['group', 'show', 'shop/web'], { env })]);
  t.is(list.code, 0, list.output);
  t.regex(list.output, /^\/shop\/web\s+1\s+0\s+\/shop\/db\s+\S+$/m);
  t.is(show.code, 0, show.output);
  t.like(JSON.parse(show.output), { id: '/shop/web', dependencies: ['/shop/db'], apps: [{ id: '/shop/web/srv', tasksRunning: 0 }] });

  const locked = await runStrata(['group', 'update', 'shop', '--scale-by', '2'], { env });
  t.is(locked.code, 1);
  t.regex(locked.output, /409 APP_LOCKED/);
  const scaled = await runStrata(['group', 'update', 'shop', '--scale-by', '2', '--force'], { env });
  t.is(scaled.code, 0, scaled.output);
  t.regex(scaled.output, /^Updating group shop \(version \S+\); deployment \S+$/m);
  const bad = await runStrata(['group', 'update', 'shop'], { env });
  t.is(bad.code, 2);
  t.regex(bad.output, /give exactly one of FILE\.json, --scale-by FACTOR and --version VERSION/);
  const removed = await runStrata(['group', 'remove', 'shop', '--force'], { env });
  t.is(removed.code, 0, removed.output);
  const gone = await runStrata(['group', 'show', 'shop'], { env });
  t.is(gone.code, 1);
  t.regex(gone.output, /404 RECORD_NOT_FOUND Group '\/shop' does not exist/);
});

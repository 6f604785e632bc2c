/**
 * `strata app …` and `strata deployment list` as a user runs them: real
 * processes against a test master, logged in through the CLI state file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';
import { appPath } from './apps.ts';

test('appPath encodes each element of an app id', (t) => {
  t.is(appPath('/group/web'), '/v2/apps/group/web');
  t.is(appPath('web'), '/v2/apps/web');
  t.throws(() => appPath('/'), { message: /not an app id/ });
});

test('strata app add|list|show|remove and deployment list', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-apps-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const file = join(dir, 'web.json');
  // A Marathon app definition as Marathon's docs write it.
  await writeFile(file, JSON.stringify({ id: 'group/web', cmd: 'python3 -m http.server $PORT0', cpus: 0.5, mem: 64, instances: 2 }));

  const add = await runStrata(['app', 'add', file], { env });
  t.is(add.code, 0, add.output);
  const [, deployment] = /^Created app \/group\/web \(version \S+\); deployment (\S+)$/m.exec(add.output) ?? [];
  t.truthy(deployment, add.output);

  const [list, show, deployments, help, missing] = await Promise.all([
    runStrata(['app', 'list'], { env }),
    runStrata(['app', 'show', '/group/web'], { env }),
    runStrata(['deployment', 'list'], { env }),
    runStrata(['app', 'add', '--help'], { env }),
    runStrata(['app', 'show'], { env }),
  ]);
  t.is(list.code, 0, list.output);
  t.regex(list.output, new RegExp(`^ID\\s+RUNNING\\s+CPUS\\s+MEM\\s+VERSION\\s+DEPLOYMENTS\\n/group/web\\s+0/2\\s+0\\.5\\s+64\\s+\\S+\\s+${deployment}$`, 'm'));
  t.is(show.code, 0, show.output);
  t.like(JSON.parse(show.output), { id: '/group/web', instances: 2, deployments: [{ id: deployment }], tasks: [] });
  t.is(deployments.code, 0, deployments.output);
  t.regex(deployments.output, new RegExp(`^${deployment}\\s+/group/web\\s+Start /group/web > Scale /group/web\\s+0/2\\s+pending\\s`, 'm'));
  t.is(help.code, 0);
  t.regex(help.output, /Usage: strata app add FILE\.json \[--force\]/);
  t.is(missing.code, 2);
  t.regex(missing.output, /strata: missing ID \(see --help\)/);

  const locked = await runStrata(['app', 'remove', 'group/web'], { env });
  t.is(locked.code, 1);
  t.regex(locked.output, /409 APP_LOCKED App is locked by one or more deployments/);
  const removed = await runStrata(['app', 'remove', 'group/web', '--force'], { env });
  t.is(removed.code, 0, removed.output);
  t.regex(removed.output, /^Removing app group\/web; deployment \S+$/m);
  const gone = await runStrata(['app', 'show', 'group/web'], { env });
  t.is(gone.code, 1);
  t.regex(gone.output, /404 RECORD_NOT_FOUND App '\/group\/web' does not exist/);
});

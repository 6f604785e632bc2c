/**
 * End to end through `strata up` as a process: `strata group add` of a
 * group whose web app depends on its db app (with a readiness check on a
 * real HTTP server). The web app starts only once db is ready; the
 * deployment says so meanwhile (`strata deployment list`); then the group
 * is removed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { waitFor } from '../scheduler/executor/test-helpers.ts';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

test('strata up: a group starts its apps in dependency order, gated by readiness', async (t) => {
  const { dir, env, apiUrl, token } = await startUpLoggedIn(t, 'up-groups');
  const pids = new Set<number>();
  t.teardown(() => {
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const get = async (path: string): Promise<unknown> => (await fetch(`${apiUrl}${path}`, { headers: { authorization: `token=${token}` } })).json();
  const flag = join(dir, 'db-ready');
  const dbOut = join(dir, 'db.pid');
  const webOut = join(dir, 'web.pid');
  const server = `require('http').createServer((q, r) => { r.writeHead(require('fs').existsSync('${flag}') ? 200 : 503); r.end(); }).listen(+process.env.PORT0, '127.0.0.1')`;
  const group = {
    id: '/e2e/shop',
    apps: [
      {
        id: 'db', cmd: `echo $$ > ${dbOut}; exec ${process.execPath} -e "${server}"`, cpus: 0.1, mem: 64, portDefinitions: [{ port: 0, name: 'http' }], taskKillGracePeriodSeconds: 1,
        readinessChecks: [{ name: 'db-ready', protocol: 'HTTP', path: '/', portName: 'http', intervalSeconds: 2, timeoutSeconds: 1 }],
      },
      { id: 'web', cmd: `echo $$ > ${webOut}; exec sleep 300`, cpus: 0.1, mem: 32, portDefinitions: [], dependencies: ['db'], taskKillGracePeriodSeconds: 1 },
    ],
  };
  await writeFile(join(dir, 'group.json'), JSON.stringify(group));
  const added = await runStrata(['group', 'add', join(dir, 'group.json')], { env });
  t.is(added.code, 0, added.output);
  await waitFor('db running', async () => /^\d+\n/.test(await readFile(dbOut, 'utf8').catch(() => '')), 30_000);
  pids.add(Number((await readFile(dbOut, 'utf8')).trim()));
  await waitFor('the deployment waits for db readiness', async () => (await runStrata(['deployment', 'list'], { env })).output.includes('/e2e/shop/db readiness-failing'), 20_000);
  const list = await runStrata(['deployment', 'list'], { env });
  t.regex(list.output, /waiting: \/e2e\/shop\/web dependency-not-ready: waits for step 2 of 3: \/e2e\/shop\/db not yet ready/);
  t.regex(list.output, /waiting: \/e2e\/shop\/db readiness-failing: 1 healthy new task\(s\) not ready yet \(readiness check db-ready\)/);
  t.is(await readFile(webOut, 'utf8').catch(() => ''), '', 'web has not started');

  await writeFile(flag, 'ok');
  await waitFor('web running', async () => /^\d+\n/.test(await readFile(webOut, 'utf8').catch(() => '')), 30_000);
  pids.add(Number((await readFile(webOut, 'utf8')).trim()));
  await waitFor('the deployment done', async () => ((await get('/v2/deployments')) as unknown[]).length === 0, 20_000);
  const tasks = (await get('/v2/apps/e2e/shop/db/tasks')) as { tasks: { readinessCheckResults?: { ready: boolean }[] }[] };
  t.true(tasks.tasks[0]!.readinessCheckResults![0]!.ready);
  const shown = await runStrata(['group', 'show', 'e2e/shop'], { env });
  t.is(shown.code, 0, shown.output);
  t.like(JSON.parse(shown.output), { id: '/e2e/shop', apps: [{ id: '/e2e/shop/db', tasksRunning: 1 }, { id: '/e2e/shop/web', tasksRunning: 1, dependencies: ['/e2e/shop/db'] }] });

  const removed = await runStrata(['group', 'remove', 'e2e/shop', '--wait'], { env });
  t.is(removed.code, 0, removed.output);
  t.regex(removed.output, /finished$/m);
});

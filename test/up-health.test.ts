/**
 * End to end through `strata up` as a process: an app with an HTTP health
 * check on `$PORT0`. Its deployment stays open while the task is RUNNING but
 * not yet healthy, and completes once the agent reports it alive; when the
 * check then fails `maxConsecutiveFailures` times the agent kills the task
 * and the controller launches a replacement.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { gone, waitFor } from '../scheduler/executor/test-helpers.ts';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

test('strata up: a deployment waits for health; an unhealthy task is killed and replaced', async (t) => {
  const { dir, env, apiUrl, token } = await startUpLoggedIn(t, 'up-health');
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
  const get = async (path: string): Promise<Record<string, unknown>> => (await (await fetch(`${apiUrl}${path}`, { headers: { authorization: `token=${token}` } })).json()) as Record<string, unknown>;

  const out = join(dir, 'out');
  const flag = join(dir, 'healthy');
  const server = `require('http').createServer((q, r) => { r.writeHead(require('fs').existsSync('${flag}') ? 200 : 503); r.end(); }).listen(+process.env.PORT0, '127.0.0.1')`;
  const app = {
    id: '/e2e/health',
    cmd: `echo "$PORT0 $$" > ${out}; exec ${process.execPath} -e "${server}"`,
    instances: 1,
    cpus: 0.1,
    mem: 64,
    portDefinitions: [{ port: 0 }],
    taskKillGracePeriodSeconds: 1,
    healthChecks: [{ protocol: 'MESOS_HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 60, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 2 }],
  };
  await writeFile(join(dir, 'app.json'), JSON.stringify(app));
  const added = await runStrata(['app', 'add', join(dir, 'app.json')], { env });
  t.is(added.code, 0, added.output);

  const pidOf = async (): Promise<number> => {
    let text = '';
    await waitFor('the task to write its pid', async () => /^\d+ \d+\n/.test((text = await readFile(out, 'utf8').catch(() => ''))), 30_000);
    const pid = Number(text.trim().split(' ')[1]);
    pids.add(pid);
    return pid;
  };
  const pid1 = await pidOf();
  const appInfo = async (): Promise<{ tasksRunning: number; tasksHealthy: number; deployments: unknown[] }> => (await get('/v2/apps/e2e/health')).app as never;
  await waitFor('the task RUNNING', async () => (await appInfo()).tasksRunning === 1, 15_000);
  await new Promise((r) => setTimeout(r, 1500));
  t.is((await appInfo()).tasksHealthy, 0);
  t.true(((await get('/v2/deployments')) as unknown as unknown[]).length > 0, 'RUNNING but not healthy: the deployment is not done');

  await writeFile(flag, 'ok');
  await waitFor('healthy', async () => (await appInfo()).tasksHealthy === 1, 15_000);
  await waitFor('the deployment to complete', async () => ((await get('/v2/deployments')) as unknown as unknown[]).length === 0, 15_000);

  // Unhealthy: killed by the agent after 2 failures, replaced by the controller.
  await writeFile(out, '');
  await rm(flag);
  await waitFor('the unhealthy task killed', () => gone(pid1), 20_000);
  const pid2 = await pidOf();
  t.not(pid2, pid1, 'a replacement task runs');
  await writeFile(flag, 'ok');
  await waitFor('the replacement healthy', async () => (await appInfo()).tasksHealthy === 1, 20_000);
});

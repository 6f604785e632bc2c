/**
 * End to end through `strata up` as a process: `strata app add` of an app
 * serving HTTP on `$PORT0`, the agent runs it as a real process, it answers;
 * `strata app remove --force` kills it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { gone, waitFor } from '../scheduler/executor/test-helpers.ts';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

test('strata up runs an app added with `strata app add`, kills it on `strata app remove --force`, and stops its tasks on SIGTERM', async (t) => {
  const { dir, env, up, portBase: base } = await startUpLoggedIn(t, 'up-tasks');

  const out = join(dir, 'out');
  const server = `require('http').createServer((q, r) => r.end('hello from ' + process.pid)).listen(+process.env.PORT0, '127.0.0.1')`;
  const app = {
    id: '/e2e/web',
    cmd: `echo "$PORT0 $$" > ${out}; exec ${process.execPath} -e "${server}"`,
    instances: 1,
    cpus: 0.1,
    mem: 64,
    portDefinitions: [{ port: 0 }],
    taskKillGracePeriodSeconds: 2,
  };
  await writeFile(join(dir, 'app.json'), JSON.stringify(app));
  const added = await runStrata(['app', 'add', join(dir, 'app.json')], { env });
  t.is(added.code, 0, added.output);

  let text = '';
  await waitFor('the task to write its port and pid', async () => /^\d+ \d+\n/.test((text = await readFile(out, 'utf8').catch(() => ''))), 30_000);
  const [port, pid] = text.trim().split(' ').map(Number) as [number, number];
  t.true(port >= base && port <= base + 99, `PORT0 ${port} comes from the agent's configured range`);
  t.teardown(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  let body = '';
  await waitFor('the task to answer on $PORT0', async () => {
    body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text(), () => '');
    return body !== '';
  }, 15_000);
  t.is(body, `hello from ${pid}`, 'the process serving $PORT0 is the task (exec keeps the pid)');

  const removed = await runStrata(['app', 'remove', 'e2e/web', '--force'], { env });
  t.is(removed.code, 0, removed.output);
  await waitFor('the task process to be gone', () => gone(pid), 20_000);
  t.true(gone(pid), 'removing the app killed its task');

  // A task still running when `strata up` is stopped ends with it.
  await writeFile(out, '');
  const again = await runStrata(['app', 'add', join(dir, 'app.json')], { env });
  t.is(again.code, 0, again.output);
  await waitFor('the new task to write its pid', async () => /^\d+ \d+\n/.test((text = await readFile(out, 'utf8').catch(() => ''))), 30_000);
  const pid2 = Number(text.trim().split(' ')[1]);
  t.teardown(() => {
    try {
      process.kill(-pid2, 'SIGKILL');
    } catch {
      // gone
    }
  });
  t.false(gone(pid2));
  up.kill('SIGTERM');
  t.is(await up.exited(), 0);
  t.true(gone(pid2), 'stopping strata up stopped its tasks');
});

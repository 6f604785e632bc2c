/**
 * Secrets end to end through `strata up` as a process and the CLI: two
 * secrets created with `strata secret create` (from a file and from
 * STRATA_SECRET_VALUE), an app using one as an environment variable and one
 * as a file (`container.volumes[].secret`), run for real by the agent. The
 * task proves it saw both values by printing their SHA-256 (never the
 * values). Then the values are looked for everywhere they must not be: the
 * logs (`strata up`'s output and strata.log, the task's stdout/stderr and
 * its record), every /v2 answer, the store's files on disk, and every
 * process's command line. A KEK rotation (`strata secret rotate-key --wait`)
 * follows, and a task started after it still gets the values.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { waitFor } from '../scheduler/executor/test-helpers.ts';
import { runStrata, startUpLoggedIn } from './harness/process.ts';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

interface ListedTask { id: string; state: string }

/** Every file under `dir` (recursively), with its bytes. */
async function filesUnder(dir: string): Promise<{ path: string; bytes: Buffer }[]> {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes) out.push({ path, bytes });
  }
  return out;
}

/** The command line of every process (what `ps` shows). */
async function commandLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const raw = await readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
    if (raw && raw.length > 0) lines.push(raw.toString('utf8').replaceAll('\0', ' '));
  }
  return lines;
}

test('an app with a secret env var and a secret file runs with both values, which appear in no log, API answer, store file or process listing; rotation keeps them readable', async (t) => {
  const { dir, dataDir, env, up, apiUrl, token } = await startUpLoggedIn(t, 'up-secrets');
  const dbPass = `db-${randomUUID()}`;
  const tlsKey = `tls-${randomUUID()}`;
  await writeFile(join(dir, 'db-pass'), `${dbPass}\n`, { mode: 0o600 });
  const created = await runStrata(['secret', 'create', 'e2e/db-pass', '--value-file', join(dir, 'db-pass'), '--description', 'the database'], { env });
  t.is(created.code, 0, created.output);
  const created2 = await runStrata(['secret', 'create', '/e2e/tls-key'], { env: { ...env, STRATA_SECRET_VALUE: tlsKey } });
  t.is(created2.code, 0, created2.output);
  const listed = await runStrata(['secret', 'list', 'e2e'], { env });
  t.is(listed.output, 'db-pass\ntls-key\n');
  const got = await runStrata(['secret', 'get', 'e2e/db-pass'], { env });
  t.is(got.output, `${dbPass}\n`, 'the trailing newline of the file was dropped');

  const app = {
    id: '/e2e/secret-app',
    cmd: [
      'printf "env %s\\n" "$(printf %s "$DB_PASS" | sha256sum | cut -d" " -f1)"',
      'printf "file %s\\n" "$(sha256sum < "$MESOS_SANDBOX/tls/key.pem" | cut -d" " -f1)"',
      'stat -c "mode %a" "$MESOS_SANDBOX/tls/key.pem"',
      'exec sleep 300',
    ].join('; '),
    instances: 1,
    cpus: 0.05,
    mem: 16,
    portDefinitions: [],
    taskKillGracePeriodSeconds: 1,
    env: { DB_PASS: { secret: 'db' }, PLAIN: 'visible' },
    secrets: { db: { source: 'e2e/db-pass' }, tls: { source: 'e2e/tls-key' } },
    container: { type: 'MESOS', volumes: [{ containerPath: 'tls/key.pem', secret: 'tls' }] },
  };
  await writeFile(join(dir, 'app.json'), JSON.stringify(app));
  const added = await runStrata(['app', 'add', join(dir, 'app.json')], { env });
  t.is(added.code, 0, added.output);

  const expectedLog = `env ${sha256(dbPass)}\nfile ${sha256(tlsKey)}\nmode 400\n`;
  const running = async (): Promise<ListedTask[]> => {
    const list = await runStrata(['task', 'list', '--app', 'e2e/secret-app', '--json'], { env });
    return list.code === 0 ? (JSON.parse(list.output) as ListedTask[]).filter((x) => x.state === 'TASK_RUNNING') : [];
  };
  let tasks: ListedTask[] = [];
  await waitFor('the task to run', async () => (tasks = await running()).length === 1, 60_000).catch(async (err: unknown) => {
    const logText = await readFile(join(dataDir, 'strata.log'), 'utf8').catch(() => '');
    throw new Error(`${(err as Error).message}: ${logText.split('\n').filter((l) => /launch/.test(l)).slice(0, 3).join('\n')}`);
  });
  let log = '';
  await waitFor('the task to print what it saw', async () => (log = (await runStrata(['task', 'log', tasks[0]!.id], { env })).output) === expectedLog, 20_000);
  t.is(log, expectedLog, 'the task saw both values (their hashes) and the file is 0400');

  // Nowhere else: process listings (while the task runs), API answers, logs, files on disk.
  const secrets = [dbPass, tlsKey];
  const leaks: string[] = [];
  for (const line of await commandLines()) for (const s of secrets) if (line.includes(s)) leaks.push(`process listing: ${line.slice(0, 200)}`);
  const api = async (path: string): Promise<string> => (await fetch(`${apiUrl}${path}`, { headers: { authorization: `token=${token}` } })).text();
  for (const path of ['/v2/apps', '/v2/apps/e2e/secret-app', '/v2/apps/e2e/secret-app/versions', '/v2/tasks', '/v2/apps/e2e/secret-app/tasks', '/v2/deployments', '/v2/groups?embed=group.apps', '/v2/queue', '/v1/agents', '/metrics']) {
    const body = await api(path);
    t.true(body.length > 0, path);
    for (const s of secrets) if (body.includes(s)) leaks.push(`API ${path}`);
  }
  const versions = JSON.parse(await api('/v2/apps/e2e/secret-app/versions')) as { versions: string[] };
  for (const v of versions.versions) for (const s of secrets) if ((await api(`/v2/apps/e2e/secret-app/versions/${v}`)).includes(s)) leaks.push(`API version ${v}`);
  for (const s of secrets) if (up.output().includes(s)) leaks.push('strata up output');
  const sandboxFile = /sandboxes\/.*\/tls\/key\.pem$/;
  for (const { path, bytes } of await filesUnder(dataDir)) {
    if (sandboxFile.test(path)) continue; // the file secret itself, where the app asked for it
    for (const s of secrets) if (bytes.includes(Buffer.from(s))) leaks.push(`file ${path}`);
  }
  t.deepEqual(leaks, [], 'no secret value outside the task');
  t.truthy((await filesUnder(dataDir)).find((f) => /state\.db/.test(f.path)), 'the store files were searched');

  // Rotate the KEK; reads keep working, and a task started after it gets the values too.
  const rotated = await runStrata(['secret', 'rotate-key', '--wait'], { env });
  t.is(rotated.code, 0, rotated.output);
  t.regex(rotated.output, /Key-encryption key version 2 is current/);
  t.regex(rotated.output, /every data key is wrapped by the current version/);
  t.is((await runStrata(['secret', 'get', 'e2e/tls-key'], { env })).output, `${tlsKey}\n`);
  const scaled = await runStrata(['app', 'scale', 'e2e/secret-app', '2'], { env });
  t.is(scaled.code, 0, scaled.output);
  await waitFor('the second task to run', async () => (tasks = await running()).length === 2, 60_000);
  for (const task of tasks) {
    await waitFor(`task ${task.id} to print what it saw`, async () => (await runStrata(['task', 'log', task.id], { env })).output === expectedLog, 20_000);
  }

  const removed = await runStrata(['app', 'remove', 'e2e/secret-app', '--force'], { env });
  t.is(removed.code, 0, removed.output);
  const deleted = await runStrata(['secret', 'delete', 'e2e/db-pass'], { env });
  t.is(deleted.code, 0, deleted.output);
  const missing = await runStrata(['secret', 'get', 'e2e/db-pass'], { env });
  t.is(missing.code, 1);
  t.regex(missing.output, /SECRET_NOT_FOUND/);
});

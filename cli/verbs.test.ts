/**
 * `strata app update|scale|restart`, `task list|kill`, `deployment
 * rollback`, `node list` and `--wait` as a user runs them: real processes
 * against a test master (no deployment controller runs here, so the test
 * finishes deployments itself by removing them).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Deployment, Task } from '../control-plane/model/schemas.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

function mkTask(id: string, appId: string, version: string): Task {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    id, appId, agentId: 'a1', host: 'a1.example', state: 'RUNNING', stagedAt: now, stateChangedAt: now,
    ports: [31000], servicePorts: [], ipAddresses: [], healthCheckResults: [], version,
    resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 }, role: '*',
  };
}

test('app update|scale|restart with --wait, task list|kill, deployment rollback, node list', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-verbs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json'), STRATA_CLI_POLL_MS: '100' };
  const token = await h.superuserToken();
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  const call = (method: 'GET' | 'DELETE', url: string) => h.master.app.inject({ method, url, headers: { authorization: `token=${token}` } });
  const deployments = async (): Promise<Deployment[]> => (await call('GET', '/v2/deployments')).json();
  const finishAll = async (): Promise<void> => {
    for (const d of await deployments()) await call('DELETE', `/v2/deployments/${d.id}?force=true`);
  };
  const file = join(dir, 'web.json');
  await writeFile(file, JSON.stringify({ id: '/web', cmd: 'sleep 100', instances: 2 }));

  // --wait with a timeout: nothing runs the deployment, so it times out (exit 1) after printing its progress.
  const timedOut = await runStrata(['app', 'add', file, '--wait', '--timeout', '0.5'], { env });
  t.is(timedOut.code, 1, timedOut.output);
  t.regex(timedOut.output, /^Deployment \S+: pending, step 0\/2 \(StartApplication \/web\)$/m);
  t.regex(timedOut.output, /still pending, step 0\/2 .* after 0\.5s \(--timeout\)/);

  // --wait until done: the deployment disappears while the CLI polls.
  await finishAll();
  const update = join(dir, 'update.json');
  await writeFile(update, JSON.stringify({ cmd: 'sleep 200' }));
  const waiting = runStrata(['app', 'update', 'web', update, '--wait'], { env });
  for (let i = 0; i < 100 && (await deployments()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  await finishAll();
  const updated = await waiting;
  t.is(updated.code, 0, updated.output);
  t.regex(updated.output, /^Updating app web to version \S+; deployment (\S+)$/m);
  t.regex(updated.output, /^Deployment \S+: pending, step 0\/1 \(RestartApplication \/web\)$/m);
  t.regex(updated.output, /^Deployment \S+ finished$/m);
  t.is((await call('GET', '/v2/apps/web')).json().app.cmd, 'sleep 200');

  const scaled = await runStrata(['app', 'scale', 'web', '3'], { env });
  t.is(scaled.code, 0, scaled.output);
  t.regex(scaled.output, /^Scaling app web to 3 instances \(version \S+\); deployment \S+$/m);
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 3);
  const badN = await runStrata(['app', 'scale', 'web', 'many'], { env });
  t.is(badN.code, 2);

  // Roll the scale back: instances go back to 2.
  const [scaleDeployment] = await deployments();
  const rollback = await runStrata(['deployment', 'rollback', scaleDeployment!.id], { env });
  t.is(rollback.code, 0, rollback.output);
  t.regex(rollback.output, /^Rolling deployment \S+ back; deployment \S+$/m);
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 2);
  await finishAll();

  const restart = await runStrata(['app', 'restart', '/web'], { env });
  t.is(restart.code, 0, restart.output);
  t.regex(restart.output, /^Restarting app \/web \(version \S+\); deployment \S+$/m);
  t.deepEqual((await deployments())[0]!.steps, [{ actions: [{ action: 'RestartApplication', app: '/web' }] }]);
  await finishAll();

  const version = (await call('GET', '/v2/apps/web')).json().app.version as string;
  await h.master.records.put('task', mkTask('web.instance-1._app.1', '/web', version));
  await h.master.records.put('task', mkTask('web.instance-2._app.1', '/web', version));
  const [tasks, appTasks, none] = await Promise.all([
    runStrata(['task', 'list'], { env }),
    runStrata(['task', 'list', '--app', 'web', '--json'], { env }),
    runStrata(['task', 'list', '--app', 'nope'], { env }),
  ]);
  t.is(tasks.code, 0, tasks.output);
  t.regex(tasks.output, /^ID\s+APP\s+HOST\s+STATE\s+PORTS\s+VERSION\nweb\.instance-1\._app\.1\s+\/web\s+a1\.example\s+TASK_RUNNING\s+31000\s+\S+$/m);
  t.deepEqual(JSON.parse(appTasks.output).map((x: { id: string }) => x.id).sort(), ['web.instance-1._app.1', 'web.instance-2._app.1']);
  t.is(none.code, 1);

  const kill = await runStrata(['task', 'kill', 'web.instance-1._app.1'], { env });
  t.is(kill.code, 0, kill.output);
  t.regex(kill.output, /^Killing task web\.instance-1\._app\.1 \(TASK_KILLING\); its app replaces it$/m);
  const killScale = await runStrata(['task', 'kill', 'web.instance-2._app.1', '--scale'], { env });
  t.is(killScale.code, 0, killScale.output);
  t.regex(killScale.output, /^Killing task web\.instance-2\._app\.1 and scaling its app down; deployment \S+$/m);
  t.is((await call('GET', '/v2/apps/web')).json().app.instances, 1);

  const [nodes, agents, helps] = await Promise.all([
    runStrata(['node', 'list'], { env }),
    runStrata(['agent', 'list'], { env }),
    Promise.all(['app update', 'app scale', 'app restart', 'task list', 'task kill', 'deployment rollback', 'node list'].map((v) => runStrata([...v.split(' '), '--help'], { env }))),
  ]);
  t.is(nodes.code, 0, nodes.output);
  t.is(nodes.output, agents.output);
  for (const help of helps) {
    t.is(help.code, 0, help.output);
    t.regex(help.output, /^Usage: strata /m);
  }
  t.regex(helps[0]!.output, /--timeout\s+with --wait/);
});

test('app kill: all tasks, --host, --wipe; --scale with --wipe refused', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-kill-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const token = await h.superuserToken();
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/web', cmd: 'sleep 100', instances: 2 } });
  const version = created.json().version as string;
  await h.master.records.put('task', mkTask('web.instance-1._app.1', '/web', version));
  await h.master.records.put('task', mkTask('web.instance-2._app.1', '/web', version));

  const none = await runStrata(['app', 'kill', 'web', '--host', 'other.example'], { env });
  t.is(none.code, 0, none.output);
  t.regex(none.output, /^No live task of web to kill$/m);
  const killed = await runStrata(['app', 'kill', 'web', '--host', 'a1.example', '--wipe'], { env });
  t.is(killed.code, 0, killed.output);
  t.regex(killed.output, /^Killing 2 task\(s\) of web; the app replaces them:\n {2}web\.instance-\d\._app\.1\n {2}web\.instance-\d\._app\.1$/m);
  const tasks = (await h.master.records.list('task')).records.map((r) => r.value);
  t.true(tasks.every((x) => x.state === 'KILLING' && x.wipe === true));
  const refused = await runStrata(['app', 'kill', 'web', '--scale', '--wipe'], { env });
  t.is(refused.code, 1);
  t.regex(refused.output, /400 API_BAD_REQUEST You cannot use scale and wipe at the same time/);
  const unknown = await runStrata(['app', 'kill', 'nope'], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.output, /404 RECORD_NOT_FOUND App '\/nope' does not exist/);
});

/**
 * `strata task show` as a user runs it against a test master: a task on a
 * virtual network shows its container IP, a host-networking task says so,
 * part of an id finds the task, `--json` prints Marathon's task.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Task } from '../control-plane/model/schemas.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

function mkTask(id: string, version: string, ipAddresses: Task['ipAddresses']): Task {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    id, appId: '/web', agentId: 'a1', host: 'a1.example', state: 'RUNNING', stagedAt: now, startedAt: now, stateChangedAt: now,
    ports: ipAddresses.length > 0 ? [] : [31000], servicePorts: [], ipAddresses, healthCheckResults: [], version,
    resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 }, role: '*',
  };
}

test('task show: the container IP of a task on a virtual network, host networking otherwise', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-task-show-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const token = await h.superuserToken();
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  await writeFile(join(dir, 'web.json'), JSON.stringify({ id: '/web', cmd: 'sleep 100', instances: 1 }));
  t.is((await runStrata(['app', 'add', join(dir, 'web.json')], { env })).code, 0);
  const version = (await h.master.app.inject({ method: 'GET', url: '/v2/apps/web', headers: { authorization: `token=${token}` } })).json().app.version as string;
  await h.master.records.put('task', mkTask('web.instance-aaa._app.1', version, [{ ipAddress: '9.0.3.2', protocol: 'IPv4' }]));
  await h.master.records.put('task', mkTask('web.instance-bbb._app.1', version, []));

  const [overlay, host, json, none] = await Promise.all([
    runStrata(['task', 'show', 'instance-aaa'], { env }),
    runStrata(['task', 'show', 'web.instance-bbb._app.1'], { env }),
    runStrata(['task', 'show', 'aaa', '--json'], { env }),
    runStrata(['task', 'show', 'zzz'], { env }),
  ]);
  t.is(overlay.code, 0, overlay.output);
  t.regex(overlay.output, /^ID +web\.instance-aaa\._app\.1$/m);
  t.regex(overlay.output, /^CONTAINER IP +9\.0\.3\.2 \(IPv4\)$/m);
  t.regex(overlay.output, /^HOST PORTS +-$/m);
  t.regex(host.output, /^CONTAINER IP +- \(host networking\)$/m);
  t.regex(host.output, /^HOST PORTS +31000$/m);
  t.deepEqual(JSON.parse(json.output).ipAddresses, [{ ipAddress: '9.0.3.2', protocol: 'IPv4' }]);
  t.is(none.code, 1);
  t.regex(none.output, /no task matches "zzz"/);
});

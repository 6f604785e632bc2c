/** `strata vip watch` as a user runs it: a real process against a test master, following the delta feed. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Task } from '../control-plane/model/schemas.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata, startStrata } from '../test/harness/process.ts';

test('vip watch prints every VIP, then each VIP as its backends change; --count stops it; a bad --count is refused', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-vips-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const token = await h.superuserToken();
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/web', cmd: 'x', instances: 0, portDefinitions: [{ port: 0, labels: { VIP_0: '/web:80' } }] } });
  t.is(created.statusCode, 201, created.body);
  await h.master.records.put('vip', { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.3', ports: [{ port: 80, protocol: 'tcp' }] });

  const watch = startStrata(['vip', 'watch', '--count', '1'], { env });
  t.teardown(() => watch.kill());
  await watch.waitFor(/vip \/web 11\.0\.0\.3 80\/tcp backends 0\/0/, 60_000);
  const app = (await h.master.records.get('app', '/web'))!.value;
  const now = new Date().toISOString();
  const task: Task = {
    id: 'web.1', appId: '/web', agentId: 'a1', host: '10.0.0.7', state: 'RUNNING', stagedAt: now, startedAt: now, stateChangedAt: now, ports: [31001],
    servicePorts: [], ipAddresses: [], healthCheckResults: [], version: app.version, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  };
  await h.master.records.put('task', task);
  t.is(await watch.exited(), 0, watch.output());
  t.regex(watch.output(), /changed \/web 11\.0\.0\.3 80\/tcp backends 1\/1/);

  const bad = await runStrata(['vip', 'watch', '--count', 'many'], { env });
  t.not(bad.code, 0);
  t.regex(bad.output, /--count must be a whole number/);
});

/** `strata policy ruleset` as a user runs it, against a test master. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { Task } from '../control-plane/model/schemas.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

test('policy ruleset shows what agents enforce: destinations and nft rules per policy, or the whole table with --nft', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-policy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const token = await h.superuserToken();
  const auth = { authorization: `token=${token}` };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token }), { mode: 0o600 });
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id: '/db', cmd: 'x', instances: 0, labels: { tier: 'data' }, networks: [{ mode: 'container', name: 'dcos' }] } });
  t.is(created.statusCode, 201, created.body);
  const now = new Date().toISOString();
  await h.master.records.put('task', {
    id: 'db.1', appId: '/db', agentId: 'a1', host: 'h', state: 'RUNNING', stagedAt: now, stateChangedAt: now, ports: [], servicePorts: [],
    ipAddresses: [{ ipAddress: '9.0.2.7', protocol: 'IPv4' }], healthCheckResults: [], version: (await h.master.records.get('app', '/db'))!.value.version,
    resources: { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 }, role: '*',
  } as Task);
  const put = await h.master.app.inject({ method: 'PUT', url: '/networking/api/v1/policies/db-ingress', headers: auth, payload: { to: [{ appLabels: { tier: 'data' } }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ cidr: '10.0.0.0/8' }], ports: [{ protocol: 'tcp', port: 5432 }] }] } });
  t.is(put.statusCode, 200, put.body);

  const out = await runStrata(['policy', 'ruleset'], { env });
  t.is(out.code, 0, out.output);
  t.regex(out.output, /1 task addresses, 1 policies: \d+ nftables rules, 1 address sets/);
  t.regex(out.output, /p_db_ingress: destinations 9\.0\.2\.7\n {2}ip saddr @s_\w+_4 tcp dport 5432 return\n {2}counter name "drops" drop/);
  const nft = await runStrata(['policy', 'ruleset', '--nft'], { env });
  t.is(nft.code, 0, nft.output);
  t.regex(nft.output, /^add table inet strata_policy\n/);
  t.regex(nft.output, /add element inet strata_policy s_\w+_4 \{ 10\.0\.0\.0\/8 \}/);
});

import test from 'ava';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Task } from '../../control-plane/model/schemas.ts';
import { MasterUrls } from '../../scheduler/agent/masters.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { RecordingNft } from '../l4lb/nft.ts';
import { startPolicyAgent } from './follow.ts';

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('an agent follows the masters\' policy view: a full load first, then a small transaction per task or policy change; a dead master is skipped', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const auth = { authorization: `token=${token}` };
  for (const [id, labels] of [['/shop/db', { tier: 'data' }], ['/shop/web', {}]] as const) {
    const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id, cmd: 'x', instances: 0, labels, networks: [{ mode: 'container', name: 'dcos' }] } });
    t.is(created.statusCode, 201, created.body);
  }
  const policy = await h.master.app.inject({
    method: 'PUT', url: '/networking/api/v1/policies/db-ingress', headers: auth,
    payload: { to: [{ appLabels: { tier: 'data' } }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ appId: '/shop/web' }], ports: [{ protocol: 'tcp', port: 5432 }] }] },
  });
  t.is(policy.statusCode, 200, policy.body);
  const now = new Date().toISOString();
  const version = (await h.master.records.get('app', '/shop/db'))!.value.version;
  const task = (id: string, appId: string, ip: string): Task => ({
    id, appId, agentId: 'agent-1', host: '127.0.0.1', state: 'RUNNING', stagedAt: now, startedAt: now, stateChangedAt: now, ports: [], servicePorts: [],
    ipAddresses: [{ ipAddress: ip, protocol: 'IPv4' }], healthCheckResults: [], version, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  await h.master.records.put('task', task('shop_db.1', '/shop/db', '9.0.2.7'));
  await h.master.records.put('task', task('shop_web.1', '/shop/web', '9.0.1.5'));

  // The view itself (what `strata policy view` prints).
  const view = await h.master.app.inject({ method: 'GET', url: '/networking/api/v1/policy-view', headers: auth });
  t.is(view.statusCode, 200, view.body);
  t.like(view.json(), { policies: [{ name: 'db-ingress' }] });
  t.deepEqual((view.json() as { endpoints: { appId: string; ips: string[] }[] }).endpoints.map((e) => [e.appId, e.ips]).sort(), [['/shop/db', ['9.0.2.7']], ['/shop/web', ['9.0.1.5']]]);

  const nft = new RecordingNft();
  const metrics = new Registry();
  // The first master URL refuses connections: the follower moves to the live one.
  const agent = startPolicyAgent({ masters: new MasterUrls(['http://127.0.0.1:1', h.master.apiUrl]), token: async () => token, nft, logger: pino({ level: 'silent' }), metrics, reconcileSeconds: 0, waitSeconds: 5 });
  t.teardown(() => agent.close());
  await agent.ready;
  const first = nft.loads.at(-1)!;
  t.regex(first, /add element inet strata_policy dispatch4 \{ 9\.0\.2\.7 : jump d_/);
  t.regex(first, /chain p_db_ingress \{ ip saddr @s_\w+_4 tcp dport 5432 return; counter name "drops" drop; \}/);
  t.regex(first, /add element inet strata_policy s_\w+_4 \{ 9\.0\.1\.5 \}/);

  // A second web task: its address joins the source set in one small transaction.
  await h.master.records.put('task', task('shop_web.2', '/shop/web', '9.0.1.6'));
  await until(() => nft.applied.length > 0, 'the new task\'s address added');
  t.deepEqual(nft.applied.at(-1), [nft.applied.at(-1)![0]!]);
  t.regex(nft.applied.at(-1)![0]!, /^add element inet strata_policy s_\w+_4 \{ 9\.0\.1\.6 \}$/);

  // The policy changes port: its chain is rewritten, nothing else.
  await h.master.app.inject({
    method: 'PUT', url: '/networking/api/v1/policies/db-ingress', headers: auth,
    payload: { to: [{ appLabels: { tier: 'data' } }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ appId: '/shop/web' }], ports: [{ protocol: 'tcp', port: 6432 }] }] },
  });
  await until(() => nft.applied.some((c) => c.join('\n').includes('tcp dport 6432 return')), 'the changed rule');
  t.is(nft.applied.at(-1)![0], 'flush chain inet strata_policy p_db_ingress');
  t.is(nft.loads.length, 1, 'no full reload for small changes');

  // A refused update (a hand edit) is repaired with a full load.
  nft.failNext = { apply: 'Error: No such file or directory' };
  await h.master.records.delete('task', 'shop_web.2');
  await until(() => nft.loads.length === 2, 'a full reload after the refused update');
  t.false(nft.loads[1]!.includes('9.0.1.6'));
  const text = await metrics.metrics();
  t.regex(text, /strata_policy_applies_total\{mode="incremental"\} 2/);
  t.regex(text, /strata_policy_apply_failures_total\{mode="incremental"\} 1/);
  t.regex(text, /strata_policy_rules \d+/);
});

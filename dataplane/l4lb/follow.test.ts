import test from 'ava';
import { pino } from 'pino';
import { startTestMaster } from '../../test/harness/master.ts';
import type { Task } from '../../control-plane/model/schemas.ts';
import { vipAllocator } from '../../control-plane/vips/allocator.ts';
import { vipRangesOf } from '../../control-plane/vips/plan.ts';
import { startL4lbAgent } from './follow.ts';
import { RecordingNft } from './nft.ts';
import { MasterUrls } from '../../scheduler/agent/masters.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('an agent\'s load balancer follows the master\'s VIPs: a full load first, then one small transaction per backend change', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [vipAllocator({ ranges: vipRangesOf({ vips: { ipv4Range: '11.0.0.0/8', ipv6Range: 'fd01:c::/64' } }), debounceMs: 5 })] });
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const auth = { authorization: `token=${token}` };
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id: '/web', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: '/web:80' } }] } });
  t.is(created.statusCode, 201, created.body);
  const app = (await h.master.records.get('app', '/web'))!.value;
  const now = new Date().toISOString();
  const task = (id: string, state: Task['state'], port: number): Task => ({
    id, appId: '/web', agentId: 'agent-1', host: '127.0.0.1', state, stagedAt: now, startedAt: now, stateChangedAt: now, ports: [port],
    servicePorts: [], ipAddresses: [], healthCheckResults: [], version: app.version, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  await h.master.records.put('task', task('web.1', 'RUNNING', 31001));
  // The allocator runs on its own: with the address in the first snapshot, the first load holds the backend.
  let allocated = false;
  await until(() => {
    void h.master.records.get('vip', 'marathon//web').then((r) => (allocated = r !== undefined));
    return allocated;
  }, 'the VIP address');

  const nft = new RecordingNft();
  const lb = startL4lbAgent({ masters: new MasterUrls(h.master.apiUrl), token: async () => token, agentId: 'agent-1', nft, logger: pino({ level: 'silent' }), reconcileSeconds: 0, waitSeconds: 5 });
  t.teardown(() => lb.close());
  await until(() => nft.loads.some((s) => s.includes('127.0.0.1 . 31001')), 'the first full load with the backend');
  const vip = (await h.master.records.get('vip', 'marathon//web'))!.value;
  t.true(nft.loads.at(-1)!.includes(`${vip.ipv4} . tcp . 80 : jump pick_tcp_1`), nft.loads.at(-1));

  await h.master.records.put('task', task('web.2', 'RUNNING', 31002));
  await until(() => nft.applied.some((c) => c.join('\n').includes('127.0.0.1 . 31002')), 'an incremental update adding the second backend');
  const existing = (await h.master.records.get('task', 'web.1'))!;
  await h.master.records.put('task', { ...existing.value, state: 'KILLING' }, { casIndex: existing.modifyIndex });
  await until(() => nft.applied.at(-1)!.some((c) => c.includes(`${vip.ipv4} . tcp . 80 : jump pick_tcp_1`)), 'the draining backend taken out');
  t.is(nft.loads.length, 1, 'no full reload for small changes');
});

test('with several masters, the load balancer follows the next one when the first is down or answers 5xx', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [vipAllocator({ ranges: vipRangesOf({ vips: { ipv4Range: '11.0.0.0/8', ipv6Range: 'fd01:c::/64' } }), debounceMs: 5 })] });
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/db', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: '/db:5432' } }] } });
  t.is(created.statusCode, 201, created.body);
  // A master without its store (503) and a master that is down (nothing listens), then the working one.
  const broken = createServer((_req, res) => {
    res.statusCode = 503;
    res.end('{"code":"STORE_UNAVAILABLE"}');
  });
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
  t.teardown(() => broken.close());
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const downUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((r) => gone.close(r));
  const masters = new MasterUrls([`http://127.0.0.1:${(broken.address() as AddressInfo).port}`, downUrl, h.master.apiUrl]);

  const nft = new RecordingNft();
  const lb = startL4lbAgent({ masters, token: async () => token, agentId: 'agent-1', nft, logger: pino({ level: 'silent' }), reconcileSeconds: 0, waitSeconds: 5 });
  t.teardown(() => lb.close());
  await lb.ready;
  t.is(masters.current, h.master.apiUrl);
  await until(() => nft.loads.some((s) => s.includes('. tcp . 5432')), 'the VIP from the third master');
});

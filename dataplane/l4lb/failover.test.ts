/**
 * The agent's load balancer with several masters, against the real kernel
 * in namespaces this test creates: the first master is down, the follower
 * reads the VIPs from the next one and programs the host namespace; a
 * client namespace reaches the backend through the VIP, and a backend that
 * starts draining is taken out through the nft coprocess. Skipped without
 * root or nft.
 */
import test from 'ava';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Task } from '../../control-plane/model/schemas.ts';
import { vipAllocator } from '../../control-plane/vips/allocator.ts';
import { vipRangesOf } from '../../control-plane/vips/plan.ts';
import { MasterUrls } from '../../scheduler/agent/masters.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { netnsSet, netnsUnavailable, routedVeth, type Netns } from '../../test/harness/netns.ts';
import { startL4lbAgent } from './follow.ts';
import { NftProcess } from './nft.ts';
import { ensureLocalRoute } from './routes.ts';

const skip = netnsUnavailable();

const SERVER = `
const net = require('node:net');
const [ip, port, name] = process.argv.slice(-3);
net.createServer((s) => { s.on('error', () => {}); s.end(name); }).listen(Number(port), ip, () => console.log('listening'));
`;
const CLIENT = `
const net = require('node:net');
const [host, port, n] = process.argv.slice(-3);
const counts = {};
let failures = 0;
(async () => {
  for (let i = 0; i < Number(n); i++) {
    const name = await new Promise((resolve) => {
      const s = net.connect({ host, port: Number(port), timeout: 3000 });
      let data = '';
      s.setEncoding('utf8');
      s.on('data', (d) => { data += d; });
      s.on('end', () => resolve(data));
      s.on('timeout', () => { s.destroy(); resolve(''); });
      s.on('error', () => resolve(''));
    });
    if (name) counts[name] = (counts[name] ?? 0) + 1; else failures++;
  }
  console.log(JSON.stringify({ counts, failures }));
})();
`;

async function serve(ns: Netns, ip: string, port: number, name: string): Promise<void> {
  const child = ns.spawn(process.execPath, ['-e', SERVER, ip, String(port), name]);
  child.stdout!.setEncoding('utf8');
  await once(child.stdout!, 'data');
}

async function until<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

(skip ? test.skip : test)('the first master down: the load balancer follows the next one and the VIP works in the kernel', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [vipAllocator({ ranges: vipRangesOf({ vips: { ipv4Range: '11.0.0.0/8', ipv6Range: 'fd01:c::/64' } }), debounceMs: 5 })] });
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/web', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: '/web:80' } }] } });
  t.is(created.statusCode, 201, created.body);
  const app = (await h.master.records.get('app', '/web'))!.value;
  const now = new Date().toISOString();
  const task = (id: string, ip: string, port: number, state: Task['state'] = 'RUNNING'): Task => ({
    id, appId: '/web', agentId: 'agent-1', host: ip, state, stagedAt: now, startedAt: now, stateChangedAt: now, ports: [port],
    servicePorts: [], ipAddresses: [], healthCheckResults: [], version: app.version, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });

  const set = netnsSet('sxfo');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const client = await set.create('c');
  const backend = await set.create('b');
  await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await routedVeth(set, host, client, 'vc', '10.79.1');
  await routedVeth(set, host, backend, 'vb', '10.79.2');
  await serve(backend, '10.79.2.2', 8080, 'one');
  await serve(backend, '10.79.2.2', 8081, 'two');
  await ensureLocalRoute('11.0.0.0/8', { netns: host.name });
  await h.master.records.put('task', task('web.1', '10.79.2.2', 8080));
  await h.master.records.put('task', task('web.2', '10.79.2.2', 8081));

  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const downUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((r) => gone.close(r));
  const masters = new MasterUrls([downUrl, h.master.apiUrl]);
  const nft = new NftProcess({ netns: host.name });
  const lb = startL4lbAgent({ masters, token: async () => token, agentId: 'agent-2', nft, logger: pino({ level: 'silent' }), reconcileSeconds: 0, waitSeconds: 5 });
  t.teardown(() => lb.close({ removeRules: true }));
  await lb.ready;
  t.is(masters.current, h.master.apiUrl, 'moved past the master that is down');

  const vip = (await h.master.records.get('vip', 'marathon//web'))!.value.ipv4!;
  const call = async (n: number): Promise<{ counts: Record<string, number>; failures: number }> =>
    JSON.parse(await client.exec(process.execPath, ['-e', CLIENT, vip, '80', String(n)])) as { counts: Record<string, number>; failures: number };
  const both = await until(async () => {
    const r = await call(40);
    return r.failures === 0 && Object.keys(r.counts).length === 2 ? r : undefined;
  }, 'both backends through the VIP');
  t.is(both.failures, 0);

  // web.2 starts draining: the follower sends one change through the coprocess.
  const two = (await h.master.records.get('task', 'web.2'))!;
  await h.master.records.put('task', { ...two.value, state: 'KILLING' }, { casIndex: two.modifyIndex });
  const one = await until(async () => {
    const r = await call(20);
    return r.failures === 0 && Object.keys(r.counts).join() === 'one' ? r : undefined;
  }, 'only the backend that is not draining');
  t.is(one.counts['one'], 20);
  t.is(nft.shell.starts, 1, 'the change went through the long-lived nft -i');
});

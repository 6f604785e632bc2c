/**
 * The load balancer against the real kernel, in network namespaces this
 * test creates: a host namespace holding the rules, routed veths to a
 * client and to backends, a backend on the host itself, and the client as
 * its own backend (hairpin). Skipped without root or nft.
 */
import test from 'ava';
import { once } from 'node:events';
import { pino } from 'pino';
import { netnsSet, netnsUnavailable, routedVeth, type Netns } from '../../test/harness/netns.ts';
import { L4lbManager } from './manager.ts';
import { NftProcess, defaultNftPath } from './nft.ts';
import { ensureLocalRoute } from './routes.ts';
import { servicesFromVips, type VipViewInput } from './services.ts';

const skip = netnsUnavailable();
const logger = pino({ level: 'silent' });

const SERVER = `
const net = require('node:net');
const [ip, name] = process.argv.slice(-2);
net.createServer((s) => { s.on('error', () => {}); s.end(name); }).listen(8080, ip, () => console.log('listening'));
`;

const CLIENT = `
const net = require('node:net');
const [target, countText] = process.argv.slice(-2);
const [host, port] = target.split(':');
const counts = {};
let failures = 0;
(async () => {
  for (let i = 0; i < Number(countText); i++) {
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

async function serve(ns: Netns, ip: string, name: string): Promise<void> {
  const child = ns.spawn(process.execPath, ['-e', SERVER, ip, name]);
  child.stdout!.setEncoding('utf8');
  await once(child.stdout!, 'data');
}

async function connectMany(ns: Netns, target: string, count: number): Promise<{ counts: Record<string, number>; failures: number }> {
  return JSON.parse(await ns.exec(process.execPath, ['-e', CLIENT, target, String(count)])) as { counts: Record<string, number>; failures: number };
}

function vipView(backends: { ip: string; weight: number }[]): VipViewInput[] {
  return [{ name: '/web', ipv4: '11.0.0.1', ports: [{ port: 80, protocol: 'tcp' }], backends: backends.map((b) => ({ ip: b.ip, port: 8080, protocol: 'tcp', vipPort: 80, weight: b.weight })) }];
}

(skip ? test.skip : test)('a client reaches every healthy backend through the VIP, evenly, never the unhealthy one; updates and a restart keep it working', async (t) => {
  const set = netnsSet('sxl4');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const client = await set.create('c');
  const b1 = await set.create('b1');
  const b2 = await set.create('b2');
  const b3 = await set.create('b3');
  await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await routedVeth(set, host, client, 'vc', '10.77.1');
  await routedVeth(set, host, b1, 'vb1', '10.77.11');
  await routedVeth(set, host, b2, 'vb2', '10.77.12');
  await routedVeth(set, host, b3, 'vb3', '10.77.13');
  await serve(b1, '10.77.11.2', 'b1');
  await serve(b2, '10.77.12.2', 'b2');
  await serve(b3, '10.77.13.2', 'b3');
  await serve(host, '10.77.1.1', 'host');
  await serve(client, '10.77.1.2', 'self');

  const backends = [
    { ip: '10.77.11.2', weight: 1 },
    { ip: '10.77.12.2', weight: 1 },
    { ip: '10.77.13.2', weight: 0 }, // unhealthy: never chosen
    { ip: '10.77.1.1', weight: 1 }, // a backend on the client's own host
    { ip: '10.77.1.2', weight: 1 }, // the client itself (hairpin)
  ];
  await ensureLocalRoute('11.0.0.0/8', { netns: host.name });
  const nft = new NftProcess({ netns: host.name });
  const manager = new L4lbManager({ nft, logger, table: 'strata_l4lb' });
  t.teardown(() => manager.close());
  t.is(await manager.sync({ services: servicesFromVips(vipView(backends)), localBackendIps: ['10.77.1.2'] }), 'full');

  const first = await connectMany(client, '11.0.0.1:80', 1000);
  t.is(first.failures, 0, JSON.stringify(first));
  t.deepEqual(Object.keys(first.counts).sort(), ['b1', 'b2', 'host', 'self']);
  for (const [name, n] of Object.entries(first.counts)) t.true(n >= 200 && n <= 300, `${name} got ${n} of 1000 (expected 250 ± 20%)`);

  // The host itself reaches the VIP too (output chain).
  const fromHost = await connectMany(host, '11.0.0.1:80', 100);
  t.is(fromHost.failures, 0, JSON.stringify(fromHost));

  // b2 turns unhealthy: one small transaction, and it gets no new connection.
  backends[1]!.weight = 0;
  t.is(await manager.sync({ services: servicesFromVips(vipView(backends)), localBackendIps: ['10.77.1.2'] }), 'incremental');
  const second = await connectMany(client, '11.0.0.1:80', 200);
  t.is(second.failures, 0, JSON.stringify(second));
  t.false('b2' in second.counts, JSON.stringify(second));

  // No backend at all: the VIP refuses at once (TCP reset), it does not hang.
  t.is(await manager.sync({ services: servicesFromVips(vipView([])), localBackendIps: [] }), 'incremental');
  const started = Date.now();
  const refused = await connectMany(client, '11.0.0.1:80', 3);
  t.is(refused.failures, 3);
  t.true(Date.now() - started < 2500, 'refused, not timed out');

  // An agent restart: a new process loads the whole table over the old one in one transaction.
  const restarted = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger, table: 'strata_l4lb' });
  t.teardown(() => restarted.close());
  t.is(await restarted.sync({ services: servicesFromVips(vipView(backends)), localBackendIps: ['10.77.1.2'] }), 'full');
  const third = await connectMany(client, '11.0.0.1:80', 200);
  t.is(third.failures, 0, JSON.stringify(third));
  t.deepEqual(Object.keys(third.counts).sort(), ['b1', 'host', 'self']);

  // The table deleted by hand: the next update fails, and the manager repairs with a full load.
  await host.exec(defaultNftPath(), ['delete', 'table', 'inet', 'strata_l4lb']);
  backends[1]!.weight = 1;
  t.is(await restarted.sync({ services: servicesFromVips(vipView(backends)), localBackendIps: ['10.77.1.2'] }), 'full');
  const fourth = await connectMany(client, '11.0.0.1:80', 200);
  t.is(fourth.failures, 0, JSON.stringify(fourth));
  // A partial hand edit an update does not notice is repaired by the periodic reconcile (what `invalidate` starts).
  await host.exec(defaultNftPath(), ['delete', 'element', 'inet', 'strata_l4lb', 'vips', '{ 11.0.0.1 . tcp . 80 }']);
  restarted.invalidate();
  t.is(await restarted.sync({ services: servicesFromVips(vipView(backends)), localBackendIps: ['10.77.1.2'] }), 'full');
  const fifth = await connectMany(client, '11.0.0.1:80', 200);
  t.is(fifth.failures, 0, JSON.stringify(fifth));
  t.true('b2' in fifth.counts);
});

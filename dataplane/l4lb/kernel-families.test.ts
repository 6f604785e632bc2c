/**
 * IPv6 and UDP VIPs against the real kernel, in namespaces this test
 * creates: a host namespace holding the rules (one inet table), routed
 * veths with IPv4 and IPv6 to a client and two backends, and an unhealthy
 * third backend. Skipped without root or nft.
 */
import test from 'ava';
import { once } from 'node:events';
import { pino } from 'pino';
import { netnsSet, netnsUnavailable, routedVeth, type Netns, type NetnsSet } from '../../test/harness/netns.ts';
import { L4lbManager } from './manager.ts';
import { NftProcess } from './nft.ts';
import { ensureLocalRoute } from './routes.ts';
import { servicesFromVips, type VipViewInput } from './services.ts';

const skip = netnsUnavailable();
const logger = pino({ level: 'silent' });

// Answers its name on TCP 8080 and UDP 5353 of the given address.
const SERVER = `
const net = require('node:net');
const dgram = require('node:dgram');
const [ip, name] = process.argv.slice(-2);
const udp = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
udp.on('message', (_m, from) => udp.send(name, from.port, from.address));
udp.bind(5353, ip, () => net.createServer((s) => { s.on('error', () => {}); s.end(name); }).listen(8080, ip, () => console.log('listening')));
`;

// N TCP connections or UDP exchanges (each from a new socket: a new flow) to host:port; counts answers by name.
const CLIENT = `
const net = require('node:net');
const dgram = require('node:dgram');
const [proto, host, port, countText] = process.argv.slice(-4);
const counts = {};
let failures = 0;
const tcp = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port), timeout: 3000 });
  let data = '';
  s.setEncoding('utf8');
  s.on('data', (d) => { data += d; });
  s.on('end', () => resolve(data));
  s.on('timeout', () => { s.destroy(); resolve(''); });
  s.on('error', () => resolve(''));
});
// A connected UDP socket only accepts datagrams from host:port: an answer proves the reply was un-NATed to the VIP.
const udp = () => new Promise((resolve) => {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let tries = 0;
  const done = (v) => { clearInterval(timer); s.close(); resolve(v); };
  const timer = setInterval(() => { if (++tries > 5) done(''); else s.send('who'); }, 500);
  s.on('message', (m) => done(m.toString()));
  s.on('error', () => done(''));
  s.connect(Number(port), host, () => s.send('who'));
});
(async () => {
  for (let i = 0; i < Number(countText); i++) {
    const name = await (proto === 'udp' ? udp() : tcp());
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

async function exchange(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, count: number): Promise<{ counts: Record<string, number>; failures: number }> {
  return JSON.parse(await ns.exec(process.execPath, ['-e', CLIENT, proto, host, String(port), String(count)])) as { counts: Record<string, number>; failures: number };
}

/** IPv6 on a routed veth made by `routedVeth`: `<prefix>::1/64` on the host side, `<prefix>::2/64` and a default route in `ns` (no DAD wait). */
async function addIpv6(set: NetnsSet, host: Netns, ns: Netns, hostIf: string, prefix: string): Promise<void> {
  await set.ip(['-n', host.name, '-6', 'addr', 'add', `${prefix}::1/64`, 'dev', hostIf, 'nodad']);
  await set.ip(['-n', ns.name, '-6', 'addr', 'add', `${prefix}::2/64`, 'dev', 'eth0', 'nodad']);
  await set.ip(['-n', ns.name, '-6', 'route', 'add', 'default', 'via', `${prefix}::1`]);
}

(skip ? test.skip : test)('IPv6 and UDP VIPs: balanced over the healthy backends of their family, never the unhealthy one, from other namespaces and the host', async (t) => {
  const set = netnsSet('sxl6');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const client = await set.create('c');
  const backends = await Promise.all(['b1', 'b2', 'b3'].map((n) => set.create(n)));
  await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await host.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  await routedVeth(set, host, client, 'vc', '10.78.1');
  await addIpv6(set, host, client, 'vc', 'fd78:1');
  for (const [i, b] of backends.entries()) {
    await routedVeth(set, host, b, `vb${i + 1}`, `10.78.1${i + 1}`);
    await addIpv6(set, host, b, `vb${i + 1}`, `fd78:1${i + 1}`);
    await serve(b, `10.78.1${i + 1}.2`, `b${i + 1}`);
    await serve(b, `fd78:1${i + 1}::2`, `b${i + 1}v6`);
  }
  await ensureLocalRoute('11.0.0.0/8', { netns: host.name });
  await ensureLocalRoute('fd01:c::/64', { netns: host.name });

  const ports = [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }];
  const backend = (ip: string, port: number, protocol: string, vipPort: number, weight: number): VipViewInput['backends'][number] => ({ ip, port, protocol, vipPort, weight });
  const all = (ip: (i: number) => string): VipViewInput['backends'][number][] => [1, 2, 3].flatMap((i) => [
    backend(ip(i), 8080, 'tcp', 80, i === 3 ? 0 : 1), // b3 unhealthy: never chosen
    backend(ip(i), 5353, 'udp', 53, i === 3 ? 0 : 1),
  ]);
  const view: VipViewInput[] = [
    // A named VIP with both addresses and backends of both families.
    { name: '/web', ipv4: '11.0.0.5', ipv6: 'fd01:c::5', ports, backends: [...all((i) => `10.78.1${i}.2`), ...all((i) => `fd78:1${i}::2`)] },
  ];
  const manager = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger });
  t.teardown(() => manager.close());
  t.is(await manager.sync({ services: servicesFromVips(view), localBackendIps: [] }), 'full');

  const balanced = (r: { counts: Record<string, number>; failures: number }, names: string[], n: number): void => {
    t.is(r.failures, 0, JSON.stringify(r));
    t.deepEqual(Object.keys(r.counts).sort(), names, JSON.stringify(r));
    for (const name of names) t.true(r.counts[name]! >= n / 4, `${name} got ${r.counts[name]} of ${n}: ${JSON.stringify(r)}`);
  };
  balanced(await exchange(client, 'tcp', 'fd01:c::5', 80, 200), ['b1v6', 'b2v6'], 200);
  balanced(await exchange(client, 'udp', 'fd01:c::5', 53, 40), ['b1v6', 'b2v6'], 40);
  balanced(await exchange(client, 'udp', '11.0.0.5', 53, 40), ['b1', 'b2'], 40);
  // From the host itself (output chain), both families.
  balanced(await exchange(host, 'tcp', 'fd01:c::5', 80, 40), ['b1v6', 'b2v6'], 40);
  balanced(await exchange(host, 'udp', '11.0.0.5', 53, 40), ['b1', 'b2'], 40);

  // b1's IPv6 backends turn unhealthy: one small transaction through the coprocess, and only b2 answers on IPv6.
  const drained: VipViewInput[] = [{ ...view[0]!, backends: view[0]!.backends.map((b) => (b.ip === 'fd78:11::2' ? { ...b, weight: 0 } : b)) }];
  t.is(await manager.sync({ services: servicesFromVips(drained), localBackendIps: [] }), 'incremental');
  balanced(await exchange(client, 'tcp', 'fd01:c::5', 80, 20), ['b2v6'], 20);
  balanced(await exchange(client, 'udp', 'fd01:c::5', 53, 10), ['b2v6'], 10);
  balanced(await exchange(client, 'tcp', '11.0.0.5', 80, 40), ['b1', 'b2'], 40);
});

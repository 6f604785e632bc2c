/**
 * IPv6 overlays against the real kernel, in namespaces this test creates
 * (the layout of `kernel.test.ts`): an IPv4 underlay bridge, two agent
 * hosts, and on each host a container on DC/OS's IPv6-only `dcos6`
 * (fd01:b::/64, /80 per agent) and one on a dual-stack network. The hosts'
 * overlays are programmed by `reconcile-once.ts` inside each host namespace;
 * the containers are attached by `ContainerNetworks`. ICMPv6 echo (a raw
 * socket from Python: no ping binary needed) and TCP cross the VXLAN over
 * IPv6; a restart keeps an open IPv6 connection; a removed IPv6 route and a
 * removed IPv6 next-hop neighbour are repaired. Skipped without root or the
 * strata_netns addon.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseCidr } from '../common/ip.ts';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { DEFAULT_NETWORKS } from '../control-plane/model/schemas.ts';
import { firstFreeAddress, gatewayOf, planLease } from '../control-plane/networks/ipam.ts';
import { netnsSet, netnsUnavailable, type Netns } from '../test/harness/netns.ts';
import type { ContainerAddress } from './attach.ts';
import { ContainerNetworks } from './attach.ts';
import { linkLocalOf } from './desired.ts';
import { nativeNetns, netnsAddonMissing } from './netns.ts';
import type { OverlayStateFile } from './reconcile-once.ts';
import { NetlinkRtnl } from './rtnl/socket.ts';

const skip = netnsUnavailable() ?? netnsAddonMissing();
const ONCE = fileURLToPath(new URL('./reconcile-once.ts', import.meta.url));

/** A TCP echo server on the address given (IPv4 or IPv6). */
const SERVER = `
const net = require('node:net');
const ip = process.argv.at(-1);
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(7000, ip, () => console.log('listening'));
`;

/** One TCP connection kept open: each stdin line is sent, each echoed line printed. */
const KEEP = `
const net = require('node:net'); const rl = require('node:readline');
const s = net.connect({ host: process.argv.at(-1), port: 7000 }, () => console.log('connected'));
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
rl.createInterface({ input: s }).on('line', (l) => console.log('echo ' + l));
rl.createInterface({ input: process.stdin }).on('line', (l) => s.write(l + '\\n'));
`;

/** A fresh connection that sends \`bytes\` and expects them back; prints JSON with the local address used. */
const TRANSFER = `
const net = require('node:net');
const [host, n] = process.argv.slice(-2); const bytes = Number(n);
const s = net.connect({ host, port: 7000, timeout: 3000 });
let got = 0;
s.on('connect', () => s.write(Buffer.alloc(bytes, 7)));
s.on('data', (d) => { got += d.length; if (got >= bytes) { console.log(JSON.stringify({ ok: true, got, from: s.localAddress })); s.destroy(); } });
s.on('timeout', () => { console.log(JSON.stringify({ ok: false, error: 'timeout', got })); s.destroy(); });
s.on('error', (e) => console.log(JSON.stringify({ ok: false, error: e.code, got })));
`;

/** ping6: one ICMPv6 echo request over a raw socket (the kernel fills in the checksum), the matching reply awaited. */
const PING6 = `
import json, os, socket, struct, sys, time
host = sys.argv[1]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(3)
ident = os.getpid() & 0xffff
s.sendto(struct.pack('!BBHHH', 128, 0, 0, ident, 1) + b'strata', (host, 0))
deadline = time.time() + 3
try:
    while time.time() < deadline:
        data, addr = s.recvfrom(2048)
        if data[0] == 129 and struct.unpack('!H', data[4:6])[0] == ident:
            print(json.dumps({"ok": True, "from": addr[0]}))
            break
    else:
        print(json.dumps({"ok": False, "error": "no reply"}))
except OSError as e:
    print(json.dumps({"ok": False, "error": str(e)}))
`;

async function reconcile(host: Netns, dir: string, state: OverlayStateFile): Promise<{ ops: number; failures: unknown[] }> {
  const file = join(dir, `${host.name}.json`);
  await writeFile(file, JSON.stringify(state));
  return JSON.parse(await host.exec(process.execPath, [ONCE, file])) as { ops: number; failures: unknown[] };
}

async function attach(host: Netns, container: Netns, bridge: string, hostIf: string, addresses: readonly ContainerAddress[]): Promise<void> {
  const netns = nativeNetns();
  const hostRtnl = netns.within(`/run/netns/${host.name}`, () => new NetlinkRtnl());
  try {
    await new ContainerNetworks({ host: hostRtnl, netns }).attachNetns(`/run/netns/${container.name}`, { bridge, hostIf, ifName: 'eth0', addresses, mtu: 1420 });
  } finally {
    hostRtnl.close();
  }
}

/** The container address of a subnet: its first after the gateway, as the master hands out. */
const addressIn = (subnet: string): ContainerAddress => ({ ip: firstFreeAddress(subnet, new Set())!, prefixLength: parseCidr(subnet)!.prefixLength, gateway: gatewayOf(subnet) });

(skip ? test.skip : test)('IPv6 overlays across two agent hosts: dcos6 containers ping6 and TCP each other, a dual-stack container gets both; a restart keeps an IPv6 connection; a removed IPv6 route and neighbour are repaired', async (t) => {
  const set = netnsSet('sxov6');
  const dir = await mkdtemp(join(tmpdir(), 'strata-overlay6-'));
  t.teardown(async () => {
    await set.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const underlay = await set.create('u');
  const h1 = await set.create('h1');
  const h2 = await set.create('h2');
  const c1 = await set.create('c1');
  const c2 = await set.create('c2');
  const d2 = await set.create('d2');
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${n}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.78.${n}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
  }

  // DC/OS's networks plus a dual-stack one; IPAM as the master does it.
  const dual: Network = { name: 'dual', subnet: '10.77.0.0/16', subnet6: 'fd01:e::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 1030, labels: {} };
  const networks: Network[] = [...DEFAULT_NETWORKS, dual];
  const claims = new Map<string, Set<string>>();
  const leases: OverlayLease[] = [];
  for (const n of [1, 2]) {
    const plan = planLease({ agentId: `agent-${n}`, underlayIp: `192.168.78.${n}`, networks, claims, now: new Date().toISOString() });
    for (const c of plan.newClaims) claims.set(c.pool, (claims.get(c.pool) ?? new Set()).add(c.cidr));
    leases.push(plan.lease);
  }
  t.like(leases[0], { networks: { dcos6: { subnet6: 'fd01:b::/80' }, dual: { subnet: '10.77.0.0/24', subnet6: 'fd01:e::/80' } } });
  t.like(leases[1], { networks: { dcos6: { subnet6: 'fd01:b:0:0:1::/80' }, dual: { subnet: '10.77.1.0/24', subnet6: 'fd01:e:0:0:1::/80' } } });
  const state = (n: number): OverlayStateFile => ({ agentId: `agent-${n}`, leases, networks });

  // h1's underlay learns its IPv6 default route from router advertisements: turning IPv6 forwarding on must not stop that.
  await h1.exec('sh', ['-c', 'echo 0 > /proc/sys/net/ipv6/conf/all/forwarding && echo 1 > /proc/sys/net/ipv6/conf/eth0/accept_ra']);
  const first = [await reconcile(h1, dir, state(1)), await reconcile(h2, dir, state(2))];
  t.deepEqual(first.map((r) => r.failures), [[], []]);
  // The bridge holds the gateway of the agent's IPv6 subnet; the peer's IPv6 subnet is routed via its VTEP MAC's link-local address.
  t.regex(await h1.exec('ip', ['-6', 'addr', 'show', 'dev', 'm-dcos6']), /inet6 fd01:b::1\/80 scope global/);
  t.notRegex(await h1.exec('ip', ['-4', 'addr', 'show', 'dev', 'm-dcos6']), /inet /, 'an IPv6-only network has no IPv4 gateway');
  const peerNextHop = linkLocalOf(leases[1]!.vtepMac);
  t.regex(await h1.exec('ip', ['-6', 'route', 'show', 'fd01:b:0:0:1::/80']), new RegExp(`fd01:b:0:0:1::/80 via ${peerNextHop} dev vtep1025 proto 83 .*onlink`));
  t.regex(await h1.exec('ip', ['-6', 'neigh', 'show', 'dev', 'vtep1025']), new RegExp(`${peerNextHop} lladdr ${leases[1]!.vtepMac} PERMANENT`));
  t.regex(await h1.exec('ip', ['-6', 'route', 'show', 'fd01:e:0:0:1::/80']), /via .* dev vtep1030 proto 83/);
  t.regex(await h1.exec('ip', ['route', 'show', '10.77.1.0/24']), /10\.77\.1\.0\/24 via 44\.128\.0\.2 dev vtep1030 proto 83 onlink/);
  t.is((await h1.exec('cat', ['/proc/sys/net/ipv6/conf/all/forwarding'])).trim(), '1');
  t.is((await h1.exec('cat', ['/proc/sys/net/ipv6/conf/eth0/accept_ra'])).trim(), '2', 'router advertisements still accepted while forwarding');

  const a1 = addressIn(leases[0]!.networks['dcos6']!.subnet6!);
  const a2 = addressIn(leases[1]!.networks['dcos6']!.subnet6!);
  await attach(h1, c1, 'm-dcos6', 'vc1', [a1]);
  await attach(h2, c2, 'm-dcos6', 'vc2', [a2]);
  const dual2 = [addressIn(leases[1]!.networks['dual']!.subnet!), addressIn(leases[1]!.networks['dual']!.subnet6!)];
  await attach(h2, d2, 'm-dual', 'vd2', dual2);
  t.regex(await c1.exec('ip', ['-6', 'route', 'show', 'default']), new RegExp(`default via ${a1.gateway} dev eth0`));
  t.deepEqual(JSON.parse(await d2.exec('ip', ['-j', 'addr', 'show', 'dev', 'eth0'])).flatMap((l: { addr_info: { local: string; scope: string }[] }) => l.addr_info.filter((a) => a.scope === 'global').map((a) => a.local)), [dual2[0]!.ip, dual2[1]!.ip]);

  // ping6 across hosts, both ways.
  t.deepEqual(JSON.parse(await c1.exec('python3', ['-c', PING6, a2.ip])), { ok: true, from: a2.ip });
  t.deepEqual(JSON.parse(await c2.exec('python3', ['-c', PING6, a1.ip])), { ok: true, from: a1.ip });
  // To the dual-stack container's IPv6 address on another network (routed through both hosts, no isolation, as DC/OS).
  t.deepEqual(JSON.parse(await c1.exec('python3', ['-c', PING6, dual2[1]!.ip])), { ok: true, from: dual2[1]!.ip });

  // TCP over IPv6 across hosts.
  const server = c2.spawn(process.execPath, ['-e', SERVER, a2.ip]);
  server.stdout!.setEncoding('utf8');
  await once(server.stdout!, 'data');
  const transfer = async (): Promise<{ ok: boolean; from?: string; error?: string }> => JSON.parse(await c1.exec(process.execPath, ['-e', TRANSFER, a2.ip, String(1 << 20)])) as { ok: boolean };
  t.deepEqual(await transfer(), { ok: true, got: 1 << 20, from: a1.ip });
  const stats = JSON.parse(await h1.exec('ip', ['-s', '-j', 'link', 'show', 'vtep1025'])) as { stats64: { tx: { bytes: number } } }[];
  t.true(stats[0]!.stats64.tx.bytes > 1 << 20, `vtep1025 sent ${stats[0]!.stats64.tx.bytes} bytes`);

  // An agent restart: a new process reconciles, changes nothing, and an open IPv6 connection keeps working.
  const keep = spawn('ip', ['netns', 'exec', c1.name, process.execPath, '-e', KEEP, a2.ip], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => keep.kill('SIGKILL'));
  const lines = createInterface({ input: keep.stdout! })[Symbol.asyncIterator]();
  t.is((await lines.next()).value, 'connected');
  keep.stdin!.write('before\n');
  t.is((await lines.next()).value, 'echo before');
  const again = [await reconcile(h1, dir, state(1)), await reconcile(h2, dir, state(2))];
  t.deepEqual(again, [{ ...again[0]!, ops: 0, failures: [] }, { ...again[1]!, ops: 0, failures: [] }], 'a restart changes nothing');
  keep.stdin!.write('after\n');
  t.is((await lines.next()).value, 'echo after', 'the IPv6 connection open across the restart still works');

  // The IPv6 route removed by hand: new connections fail; the next reconcile puts back exactly that route.
  await h1.exec('ip', ['-6', 'route', 'del', 'fd01:b:0:0:1::/80']);
  t.like(await transfer(), { ok: false });
  const repair = await reconcile(h1, dir, state(1));
  t.is(repair.ops, 1);
  t.deepEqual(await transfer(), { ok: true, got: 1 << 20, from: a1.ip });
  // So is the next hop's permanent IPv6 neighbour entry.
  await h1.exec('ip', ['-6', 'neigh', 'del', peerNextHop, 'dev', 'vtep1025']);
  const neighRepair = await reconcile(h1, dir, state(1));
  t.is(neighRepair.ops, 1);
  t.regex(await h1.exec('ip', ['-6', 'neigh', 'show', 'dev', 'vtep1025']), new RegExp(`${peerNextHop} lladdr ${leases[1]!.vtepMac} PERMANENT`));
  t.deepEqual(JSON.parse(await c1.exec('python3', ['-c', PING6, a2.ip])), { ok: true, from: a2.ip });
  keep.stdin!.write('end\n');
  t.is((await lines.next()).value, 'echo end');
  keep.kill();
});

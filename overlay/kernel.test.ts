/**
 * The overlay against the real kernel, in network namespaces this test
 * creates: an "underlay" namespace holding a bridge, two agent "hosts"
 * attached to it by veths, and a "container" namespace on each host
 * attached to the host's overlay bridge with an IP from the host's subnet.
 * Each host's overlay is programmed by this code (`reconcile-once.ts`
 * run inside the host namespace: a netlink socket belongs to the namespace
 * of the process that opens it); the containers are attached by
 * `ContainerNetworks` (the code tasks and the CNI plugin use); test setup
 * uses `ip` for the underlay. Skipped without root or the strata_netns addon.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { DEFAULT_NETWORKS } from '../control-plane/model/schemas.ts';
import { planLease } from '../control-plane/networks/ipam.ts';
import { netnsSet, netnsUnavailable, type Netns } from '../test/harness/netns.ts';
import type { OverlayStateFile } from './reconcile-once.ts';
import { ContainerNetworks } from './attach.ts';
import { nativeNetns, netnsAddonMissing } from './netns.ts';
import { NetlinkRtnl } from './rtnl/socket.ts';

const skip = netnsUnavailable() ?? netnsAddonMissing();
const ONCE = fileURLToPath(new URL('./reconcile-once.ts', import.meta.url));

/** TCP echo server (lines) and UDP echo server on the container's address. */
const SERVER = `
const net = require('node:net'); const dgram = require('node:dgram');
const ip = process.argv.at(-1);
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(7000, ip, () => {
  const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(7001, ip, () => console.log('listening'));
});
`;

/** One TCP connection kept open: each stdin line is sent, each echoed line printed. */
const KEEP = `
const net = require('node:net'); const rl = require('node:readline');
const s = net.connect({ host: process.argv.at(-1), port: 7000 }, () => console.log('connected'));
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
rl.createInterface({ input: s }).on('line', (l) => console.log('echo ' + l));
rl.createInterface({ input: process.stdin }).on('line', (l) => s.write(l + '\\n'));
`;

/** A fresh connection that sends \`bytes\` and expects them back; prints JSON. */
const TRANSFER = `
const net = require('node:net');
const [host, n] = process.argv.slice(-2); const bytes = Number(n);
const s = net.connect({ host, port: 7000, timeout: 3000 });
let got = 0;
s.on('connect', () => s.write(Buffer.alloc(bytes, 7)));
s.on('data', (d) => { got += d.length; if (got >= bytes) { console.log(JSON.stringify({ ok: true, got })); s.destroy(); } });
s.on('timeout', () => { console.log(JSON.stringify({ ok: false, error: 'timeout', got })); s.destroy(); });
s.on('error', (e) => console.log(JSON.stringify({ ok: false, error: e.code, got })));
`;

/** One UDP datagram of \`size\` bytes of IP packet with DF set (IP_PMTUDISC_DO), echoed back. */
const DF = `
import json, socket, sys
host, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO: DF set, never fragment
s.settimeout(3)
try:
    s.sendto(b'x' * (size - 28), (host, 7001))
    data, _ = s.recvfrom(65535)
    print(json.dumps({"ok": len(data) == size - 28}))
except OSError as e:
    print(json.dumps({"ok": False, "error": e.strerror}))
`;

async function reconcile(host: Netns, dir: string, state: OverlayStateFile): Promise<{ ops: number; failures: unknown[] }> {
  const file = join(dir, `${host.name}.json`);
  await writeFile(file, JSON.stringify(state));
  return JSON.parse(await host.exec(process.execPath, [ONCE, file])) as { ops: number; failures: unknown[] };
}

/** The container's veth, IP, MTU and default route, by the agent's own code (`ContainerNetworks`, as tasks and the CNI plugin are attached). */
async function attachContainer(host: Netns, container: Netns, hostIf: string, ip: string, gateway: string): Promise<void> {
  const netns = nativeNetns();
  const hostRtnl = netns.within(`/run/netns/${host.name}`, () => new NetlinkRtnl());
  try {
    await new ContainerNetworks({ host: hostRtnl, netns }).attachNetns(`/run/netns/${container.name}`, { bridge: 'm-dcos', hostIf, ifName: 'eth0', addresses: [{ ip, prefixLength: 24, gateway }], mtu: 1420 });
  } finally {
    hostRtnl.close();
  }
}

(skip ? test.skip : test)('two agent hosts: containers reach each other over VXLAN (TCP, DF packets at the 1420 MTU); a restart keeps a connection; a removed route is repaired', async (t) => {
  const set = netnsSet('sxov');
  const dir = await mkdtemp(join(tmpdir(), 'strata-overlay-'));
  t.teardown(async () => {
    await set.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const underlay = await set.create('u');
  const h1 = await set.create('h1');
  const h2 = await set.create('h2');
  const c1 = await set.create('c1');
  const c2 = await set.create('c2');
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${n}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.77.${n}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
  }

  // IPAM as the master does it (pure planLease over the claims so far), for DC/OS's networks.
  const networks: Network[] = [...DEFAULT_NETWORKS];
  const claims = new Map<string, Set<string>>();
  const leases: OverlayLease[] = [];
  for (const n of [1, 2]) {
    const plan = planLease({ agentId: `agent-${n}`, underlayIp: `192.168.77.${n}`, networks, claims, now: new Date().toISOString() });
    for (const c of plan.newClaims) claims.set(c.pool, (claims.get(c.pool) ?? new Set()).add(c.cidr));
    leases.push(plan.lease);
  }
  t.like(leases[0], { vtepIp: '44.128.0.1', vtepMac: '70:b3:d5:80:00:01', networks: { dcos: { subnet: '9.0.0.0/24' } } });
  t.like(leases[1], { vtepIp: '44.128.0.2', networks: { dcos: { subnet: '9.0.1.0/24' } } });
  const state = (n: number): OverlayStateFile => ({ agentId: `agent-${n}`, leases, networks });

  const first1 = await reconcile(h1, dir, state(1));
  const first2 = await reconcile(h2, dir, state(2));
  t.deepEqual([first1.failures, first2.failures], [[], []]);
  t.true(first1.ops >= 7, `h1 sent ${first1.ops} changes`);
  const link = JSON.parse(await h1.exec('ip', ['-d', '-j', 'link', 'show', 'vtep1024'])) as { mtu: number; address: string; linkinfo: { info_kind: string; info_data: { id: number; local: string; port: number; learning: boolean } } }[];
  t.like(link[0], { mtu: 1420, address: '70:b3:d5:80:00:01', linkinfo: { info_kind: 'vxlan', info_data: { id: 1024, local: '192.168.77.1', port: 64000, learning: false } } });
  t.regex(await h1.exec('ip', ['route', 'show', '9.0.1.0/24']), /9\.0\.1\.0\/24 via 44\.128\.0\.2 dev vtep1024 proto 83 onlink/);
  t.regex(await h1.exec('bridge', ['fdb', 'show', 'dev', 'vtep1024']), /70:b3:d5:80:00:02 dst 192\.168\.77\.2 self permanent/);
  t.regex(await h1.exec('ip', ['neigh', 'show', 'dev', 'vtep1024']), /44\.128\.0\.2 lladdr 70:b3:d5:80:00:02 PERMANENT/);

  await attachContainer(h1, c1, 'vc1', '9.0.0.2', '9.0.0.1');
  await attachContainer(h2, c2, 'vc2', '9.0.1.2', '9.0.1.1');
  const server = c2.spawn(process.execPath, ['-e', SERVER, '9.0.1.2']);
  server.stdout!.setEncoding('utf8');
  await once(server.stdout!, 'data');

  // TCP across hosts (1 MB: full-sized segments, DF set as TCP always does).
  const transfer = async (): Promise<{ ok: boolean; error?: string }> => JSON.parse(await c1.exec(process.execPath, ['-e', TRANSFER, '9.0.1.2', String(1 << 20)])) as { ok: boolean };
  t.deepEqual(await transfer(), { ok: true, got: 1 << 20 });
  // A 1420-byte IP packet with DF passes; 1421 bytes is refused at the sender (the container MTU is 1420, nothing fragments).
  t.deepEqual(JSON.parse(await c1.exec('python3', ['-c', DF, '9.0.1.2', '1420'])), { ok: true });
  t.like(JSON.parse(await c1.exec('python3', ['-c', DF, '9.0.1.2', '1421'])), { ok: false, error: 'Message too long' });
  // The container's traffic really went through the VXLAN device.
  const stats = JSON.parse(await h1.exec('ip', ['-s', '-j', 'link', 'show', 'vtep1024'])) as { stats64: { tx: { bytes: number } } }[];
  t.true(stats[0]!.stats64.tx.bytes > 1 << 20, `vtep1024 sent ${stats[0]!.stats64.tx.bytes} bytes`);

  // An agent restart: a new process reconciles, changes nothing, and an open connection keeps working.
  // (the harness's spawn has no stdin; this child is killed below and at teardown)
  const keep = spawn('ip', ['netns', 'exec', c1.name, process.execPath, '-e', KEEP, '9.0.1.2'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => keep.kill('SIGKILL'));
  const lines = createInterface({ input: keep.stdout! })[Symbol.asyncIterator]();
  t.is((await lines.next()).value, 'connected');
  keep.stdin!.write('before\n');
  t.is((await lines.next()).value, 'echo before');
  const again1 = await reconcile(h1, dir, state(1));
  const again2 = await reconcile(h2, dir, state(2));
  t.deepEqual([again1.ops, again2.ops, again1.failures, again2.failures], [0, 0, [], []], 'a restart changes nothing');
  keep.stdin!.write('after\n');
  t.is((await lines.next()).value, 'echo after', 'the connection open across the restart still works');

  // A route removed by hand: new connections fail; the next reconcile puts back exactly that route.
  await h1.exec('ip', ['route', 'del', '9.0.1.0/24']);
  t.like(await transfer(), { ok: false });
  const repair = await reconcile(h1, dir, state(1));
  t.is(repair.ops, 1);
  t.deepEqual(await transfer(), { ok: true, got: 1 << 20 });
  // So is an FDB entry.
  await h1.exec('bridge', ['fdb', 'del', '70:b3:d5:80:00:02', 'dev', 'vtep1024', 'dst', '192.168.77.2', 'self']);
  const fdbRepair = await reconcile(h1, dir, state(1));
  t.is(fdbRepair.ops, 1);
  t.deepEqual(await transfer(), { ok: true, got: 1 << 20 });
  keep.stdin!.write('end\n');
  t.is((await lines.next()).value, 'echo end');
  keep.kill();
});

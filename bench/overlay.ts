/**
 * `npm run bench -- overlay`: the VXLAN overlay's kernel programming
 * (overlay/) in network namespaces of its own (root needed):
 * - one agent's reconcile from nothing with 1,000 remote agents on `dcos`:
 *   VXLAN device, bridge, and per remote agent an FDB entry, a permanent
 *   neighbour and an onlink route (3,000 objects; goal <= 250 ms), median
 *   of 5, measured inside the reconciling process (no process start);
 *   against the peer in the same run: the same objects through `ip -batch`
 *   + `bridge -batch` (two processes, wall clock);
 * - a reconcile with nothing to change, and one repairing a deleted route;
 * - TCP throughput container → container across two hosts over VXLAN
 *   versus a direct veth between two namespaces (goal >= 0.9x), median of 3;
 *   the same over IPv6 on `dcos6` (`throughputIpv6MBps`).
 * - task network attach (`--parts attach`): a task's namespace, veth into
 *   the bridge, address, MTU and default route through `ContainerNetworks`
 *   (what the agent does per task), p50/p99 over `--attaches N` (200)
 *   tasks (goal p99 <= 20 ms), and their detach; against the peer in the
 *   same run: the same steps as `ip -batch` (one process on the host side,
 *   one inside the namespace, after `ip netns add`), for fewer tasks.
 * `--peers N` changes the number of remote agents; `--parts a,b` picks
 * parts (program, throughput, attach; default all).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { DEFAULT_NETWORKS } from '../control-plane/model/schemas.ts';
import { firstFreeAddress, gatewayOf, planLease } from '../control-plane/networks/ipam.ts';
import type { OverlayStateFile } from '../overlay/reconcile-once.ts';
import { netnsSet, netnsUnavailable, startTcpSink, tcpThroughputMBps, type Netns, type NetnsSet } from '../test/harness/netns.ts';
import { ContainerNetworks } from '../overlay/attach.ts';
import { nativeNetns, netnsAddonMissing } from '../overlay/netns.ts';
import { NetlinkRtnl } from '../overlay/rtnl/socket.ts';

const execFileP = promisify(execFile);
const ONCE = fileURLToPath(new URL('../overlay/reconcile-once.ts', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
const r2 = (x: number): number => Math.round(x * 100) / 100;

function leasesFor(count: number, networks: readonly Network[]): OverlayLease[] {
  const claims = new Map<string, Set<string>>();
  const leases: OverlayLease[] = [];
  const now = new Date().toISOString();
  for (let n = 0; n < count; n++) {
    const plan = planLease({ agentId: `agent-${n}`, underlayIp: `172.${16 + ((n + 1) >> 16)}.${((n + 1) >> 8) & 255}.${(n + 1) & 255}`, networks, claims, now });
    for (const c of plan.newClaims) claims.set(c.pool, (claims.get(c.pool) ?? new Set()).add(c.cidr));
    leases.push(plan.lease);
  }
  return leases;
}

async function once_(ns: Netns, file: string): Promise<{ ops: number; failures: unknown[]; ms: number }> {
  const out = JSON.parse(await ns.exec(process.execPath, [ONCE, file])) as { ops: number; failures: unknown[]; ms: number };
  if (out.failures.length > 0) throw new Error(`reconcile failed: ${JSON.stringify(out.failures.slice(0, 3))}`);
  return out;
}

/** The same objects as `ip -batch` and `bridge -batch` input. */
function batches(self: OverlayLease, peers: readonly OverlayLease[]): { ip: string; bridge: string } {
  const ip = [
    `link add vtep1024 mtu 1420 address ${self.vtepMac} type vxlan id 1024 local ${self.underlayIp} dstport 64000 nolearning`,
    'link set vtep1024 up',
    'link add m-dcos mtu 1420 type bridge',
    'link set m-dcos up',
    `addr add ${self.vtepIp}/32 dev vtep1024`,
    `addr add ${self.networks['dcos']!.subnet!.replace(/0\/24$/, '1/24')} dev m-dcos`,
  ];
  const bridge: string[] = [];
  for (const p of peers) {
    bridge.push(`fdb replace ${p.vtepMac} dev vtep1024 dst ${p.underlayIp} self permanent`);
    ip.push(`neigh replace ${p.vtepIp} lladdr ${p.vtepMac} dev vtep1024 nud permanent`);
    ip.push(`route replace ${p.networks['dcos']!.subnet} via ${p.vtepIp} dev vtep1024 onlink proto 83`);
  }
  return { ip: ip.join('\n') + '\n', bridge: bridge.join('\n') + '\n' };
}

async function reset(set: NetnsSet, ns: Netns): Promise<void> {
  for (const dev of ['vtep1024', 'm-dcos']) await set.ip(['-n', ns.name, 'link', 'del', dev]).catch(() => undefined);
}

interface ThroughputRuns { overlay: number[]; direct: number[]; overlay6: number[]; direct6: number[] }

async function throughputPaths(set: NetnsSet, dir: string): Promise<ThroughputRuns> {
  // Overlay: underlay bridge, two hosts programmed by reconcile-once, a container on each.
  const underlay = await set.create('u');
  const hosts = [await set.create('h1'), await set.create('h2')];
  const containers = [await set.create('c1'), await set.create('c2')];
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  const networks = [...DEFAULT_NETWORKS];
  const leases = leasesFor(2, networks).map((l, i) => ({ ...l, underlayIp: `192.168.78.${i + 1}` }));
  for (let i = 0; i < 2; i++) {
    const host = hosts[i]!;
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${i}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.78.${i + 1}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
    const file = join(dir, `tp-${i}.json`);
    await writeFile(file, JSON.stringify({ agentId: leases[i]!.agentId, leases, networks } satisfies OverlayStateFile));
    await once_(host, file);
    const c = containers[i]!;
    const subnet = leases[i]!.networks['dcos']!.subnet!.slice(0, -4); // "9.0.0."
    await set.ip(['-n', host.name, 'link', 'add', 'vc', 'mtu', '1420', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1420', 'netns', c.name]);
    await set.ip(['-n', host.name, 'link', 'set', 'vc', 'master', 'm-dcos', 'up']);
    await set.ip(['-n', c.name, 'addr', 'add', `${subnet}2/24`, 'dev', 'eth0']);
    await set.ip(['-n', c.name, 'link', 'set', 'eth0', 'up']);
    await set.ip(['-n', c.name, 'route', 'add', 'default', 'via', `${subnet}1`]);
    // IPv6: a second interface on dcos6 (fd01:b::/64, /80 per host), routed via the peer's VTEP link-local next hop.
    const subnet6 = leases[i]!.networks['dcos6']!.subnet6!;
    await set.ip(['-n', host.name, 'link', 'add', 'vc6', 'mtu', '1420', 'type', 'veth', 'peer', 'name', 'eth1', 'mtu', '1420', 'netns', c.name]);
    await set.ip(['-n', host.name, 'link', 'set', 'vc6', 'master', 'm-dcos6', 'up']);
    await set.ip(['-n', c.name, 'addr', 'add', `${firstFreeAddress(subnet6, new Set())!}/80`, 'dev', 'eth1', 'nodad']);
    await set.ip(['-n', c.name, 'link', 'set', 'eth1', 'up']);
    await set.ip(['-n', c.name, '-6', 'route', 'add', 'default', 'via', gatewayOf(subnet6)]);
  }
  // Direct: a veth between two namespaces, same MTU.
  const d1 = await set.create('d1');
  const d2 = await set.create('d2');
  await set.ip(['-n', d1.name, 'link', 'add', 'eth0', 'mtu', '1420', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1420', 'netns', d2.name]);
  for (const [ns, ip, ip6] of [[d1, '10.89.0.1', 'fd00:89::1'], [d2, '10.89.0.2', 'fd00:89::2']] as const) {
    await set.ip(['-n', ns.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await set.ip(['-n', ns.name, 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad']);
    await set.ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  }
  const target = `${leases[1]!.networks['dcos']!.subnet!.slice(0, -4)}2`;
  const target6 = firstFreeAddress(leases[1]!.networks['dcos6']!.subnet6!, new Set())!;
  for (const [ns, ip] of [[containers[1]!, target], [d2, '10.89.0.2'], [containers[1]!, target6], [d2, 'fd00:89::2']] as const) {
    await startTcpSink(ns, ip);
  }
  const measure = (from: Netns, to: string): Promise<number> => tcpThroughputMBps(from, to, 9000, 256);
  const runs: ThroughputRuns = { overlay: [], direct: [], overlay6: [], direct6: [] };
  for (let i = 0; i < 3; i++) {
    runs.overlay.push(await measure(containers[0]!, target));
    runs.direct.push(await measure(d1, '10.89.0.2'));
    runs.overlay6.push(await measure(containers[0]!, target6));
    runs.direct6.push(await measure(d1, 'fd00:89::2'));
  }
  return runs;
}

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Task network attach and detach, through the agent's code and through `ip -batch`. */
async function attachPart(set: NetnsSet, dir: string, count: number): Promise<object> {
  const host = await set.create('a');
  await set.ip(['-n', host.name, 'link', 'add', 'm-dcos', 'mtu', '1420', 'type', 'bridge']);
  await set.ip(['-n', host.name, 'addr', 'add', '9.0.0.1/16', 'dev', 'm-dcos']);
  await set.ip(['-n', host.name, 'link', 'set', 'm-dcos', 'up']);
  const netns = nativeNetns();
  const hostRtnl = netns.within(`/run/netns/${host.name}`, () => new NetlinkRtnl());
  const nsDir = await mkdtemp(join(dir, 'netns-'));
  const networks = new ContainerNetworks({ host: hostRtnl, netns, netnsDir: nsDir });
  const ids = Array.from({ length: count }, (_, k) => `bench.instance-${process.pid}-${k}._app.1`);
  const attachMs: number[] = [];
  try {
    for (let k = 0; k < count; k++) {
      const t0 = performance.now();
      await networks.attachTask(ids[k]!, { bridge: 'm-dcos', addresses: [{ ip: `9.0.${1 + (k >> 8)}.${(k & 255) || 1}`, prefixLength: 16, gateway: '9.0.0.1' }], mtu: 1420 });
      attachMs.push(performance.now() - t0);
    }
    const d0 = performance.now();
    for (const id of ids) await networks.detachTask(id);
    const detachTotalMs = performance.now() - d0;

    // The peer: per task `ip netns add`, then one `ip -batch` on the host side and one inside.
    const peerCount = Math.min(count, 50);
    const peerMs: number[] = [];
    for (let k = 0; k < peerCount; k++) {
      const name = `${host.name}-p${k}`;
      const hostBatch = join(dir, `peer-host-${k}`);
      const innerBatch = join(dir, `peer-inner-${k}`);
      await writeFile(hostBatch, `link add pv${k} mtu 1420 master m-dcos up type veth peer name eth0 mtu 1420 netns ${name}
`);
      await writeFile(innerBatch, `link set lo up
addr add 9.0.200.${k + 2}/16 dev eth0
link set eth0 up
route add default via 9.0.0.1
`);
      const t0 = performance.now();
      await execFileP('ip', ['netns', 'add', name]);
      await execFileP('ip', ['-n', host.name, '-batch', hostBatch]);
      await execFileP('ip', ['-n', name, '-batch', innerBatch]);
      peerMs.push(performance.now() - t0);
      await execFileP('ip', ['-n', host.name, 'link', 'del', `pv${k}`]).catch(() => undefined);
      await execFileP('ip', ['netns', 'del', name]).catch(() => undefined);
    }
    return {
      tasks: count,
      attachMs: { p50: r2(percentile(attachMs, 50)), p99: r2(percentile(attachMs, 99)), max: r2(Math.max(...attachMs)), goalP99Ms: 20 },
      detachMsPerTask: r2(detachTotalMs / count),
      peerIpBatch: { tasks: peerCount, p50: r2(percentile(peerMs, 50)), p99: r2(percentile(peerMs, 99)), note: 'ip netns add + ip -batch on the host + ip -batch inside: 3 process starts per task' },
      ratioP50: r2(percentile(attachMs, 50) / percentile(peerMs, 50)),
    };
  } finally {
    for (const id of ids) await networks.detachTask(id).catch(() => undefined);
    hostRtnl.close();
  }
}

export async function run(args: string[]): Promise<unknown> {
  const why = netnsUnavailable();
  if (why) return { area: 'overlay', skipped: why };
  const i = args.indexOf('--peers');
  const peerCount = i >= 0 ? Number(args[i + 1]) || 1000 : 1000;
  const pi = args.indexOf('--parts');
  const parts = new Set((pi >= 0 ? args[pi + 1] ?? '' : 'program,throughput,attach').split(','));
  const ai = args.indexOf('--attaches');
  const attaches = ai >= 0 ? Number(args[ai + 1]) || 200 : 200;
  const set = netnsSet('sxovb');
  const dir = await mkdtemp(join(tmpdir(), 'strata-overlay-bench-'));
  try {
    const out: Record<string, unknown> = { area: 'overlay' };
    if (parts.has('attach')) {
      const missing = netnsAddonMissing();
      out.taskAttach = missing ? { skipped: missing } : await attachPart(set, dir, attaches);
    }
    if (!parts.has('program') && !parts.has('throughput')) return out;
    const networks = [DEFAULT_NETWORKS[0]!];
    const leases = leasesFor(peerCount + 1, networks);
    const self = leases[0]!;
    const file = join(dir, 'state.json');
    await writeFile(file, JSON.stringify({ agentId: self.agentId, leases, networks } satisfies OverlayStateFile));
    const { ip, bridge } = batches(self, leases.slice(1));
    await writeFile(join(dir, 'ip.batch'), ip);
    await writeFile(join(dir, 'bridge.batch'), bridge);

    const host = await set.create('p');
    const fullMs: number[] = [];
    const peerMs: number[] = [];
    let ops = 0;
    for (let rep = 0; rep < 5; rep++) {
      await reset(set, host);
      const full = await once_(host, file);
      fullMs.push(full.ms);
      ops = full.ops;
      await reset(set, host);
      const t0 = performance.now();
      await execFileP('ip', ['-n', host.name, '-batch', join(dir, 'ip.batch')]);
      await execFileP('bridge', ['-n', host.name, '-batch', join(dir, 'bridge.batch')]);
      peerMs.push(performance.now() - t0);
    }
    // From the peer's state (same objects): nothing to change; then one route deleted by hand.
    const noChange: number[] = [];
    const repair: number[] = [];
    for (let rep = 0; rep < 5; rep++) {
      const steady = await once_(host, file);
      if (rep > 0 && steady.ops !== 0) throw new Error(`a steady reconcile sent ${steady.ops} changes`);
      noChange.push(steady.ms);
      await set.ip(['-n', host.name, 'route', 'del', leases[1 + rep]!.networks['dcos']!.subnet!]);
      const fixed = await once_(host, file);
      if (fixed.ops !== 1) throw new Error(`the repair sent ${fixed.ops} changes`);
      repair.push(fixed.ms);
    }
    const tp = parts.has('throughput') ? await throughputPaths(set, dir) : undefined;
    return {
      ...out,
      remoteAgents: peerCount,
      objects: ops,
      programFromScratchMs: { median: r2(median(fullMs)), runs: fullMs.map(r2), goalMs: 250 },
      peerIpBatchMs: { median: r2(median(peerMs)), runs: peerMs.map(r2), note: 'ip -batch + bridge -batch, wall clock incl. 2 process starts' },
      steadyReconcileMs: { median: r2(median(noChange.slice(1))) },
      repairOneRouteMs: { median: r2(median(repair)) },
      ...(tp ? { throughputMBps: { overlay: r2(median(tp.overlay)), directVeth: r2(median(tp.direct)), ratio: r2(median(tp.overlay) / median(tp.direct)), runs: { overlay: tp.overlay.map(r2), direct: tp.direct.map(r2) }, goalRatio: 0.9 } } : {}),
      ...(tp ? { throughputIpv6MBps: { overlay: r2(median(tp.overlay6)), directVeth: r2(median(tp.direct6)), ratio: r2(median(tp.overlay6) / median(tp.direct6)), runs: { overlay: tp.overlay6.map(r2), direct: tp.direct6.map(r2) }, note: 'dcos6 container → container across the two hosts (IPv4 underlay) vs a direct veth over IPv6' } } : {}),
    };
  } finally {
    await set.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

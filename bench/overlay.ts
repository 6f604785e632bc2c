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
 *   versus a direct veth between two namespaces (goal >= 0.9x), median of 3.
 * `--peers N` changes the number of remote agents.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { DEFAULT_NETWORKS } from '../control-plane/model/schemas.ts';
import { planLease } from '../control-plane/networks/ipam.ts';
import type { OverlayStateFile } from '../overlay/reconcile-once.ts';
import { netnsSet, netnsUnavailable, startTcpSink, tcpThroughputMBps, type Netns, type NetnsSet } from '../test/harness/netns.ts';

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

async function throughputPaths(set: NetnsSet, dir: string): Promise<{ overlay: number[]; direct: number[] }> {
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
  }
  // Direct: a veth between two namespaces, same MTU.
  const d1 = await set.create('d1');
  const d2 = await set.create('d2');
  await set.ip(['-n', d1.name, 'link', 'add', 'eth0', 'mtu', '1420', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1420', 'netns', d2.name]);
  for (const [ns, ip] of [[d1, '10.89.0.1'], [d2, '10.89.0.2']] as const) {
    await set.ip(['-n', ns.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await set.ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  }
  const target = `${leases[1]!.networks['dcos']!.subnet!.slice(0, -4)}2`;
  for (const [ns, ip] of [[containers[1]!, target], [d2, '10.89.0.2']] as const) {
    await startTcpSink(ns, ip);
  }
  const measure = (from: Netns, to: string): Promise<number> => tcpThroughputMBps(from, to, 9000, 256);
  const overlay: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < 3; i++) {
    overlay.push(await measure(containers[0]!, target));
    direct.push(await measure(d1, '10.89.0.2'));
  }
  return { overlay, direct };
}

export async function run(args: string[]): Promise<unknown> {
  const why = netnsUnavailable();
  if (why) return { area: 'overlay', skipped: why };
  const i = args.indexOf('--peers');
  const peerCount = i >= 0 ? Number(args[i + 1]) || 1000 : 1000;
  const set = netnsSet('sxovb');
  const dir = await mkdtemp(join(tmpdir(), 'strata-overlay-bench-'));
  try {
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
    const tp = await throughputPaths(set, dir);
    return {
      area: 'overlay',
      remoteAgents: peerCount,
      objects: ops,
      programFromScratchMs: { median: r2(median(fullMs)), runs: fullMs.map(r2), goalMs: 250 },
      peerIpBatchMs: { median: r2(median(peerMs)), runs: peerMs.map(r2), note: 'ip -batch + bridge -batch, wall clock incl. 2 process starts' },
      steadyReconcileMs: { median: r2(median(noChange.slice(1))) },
      repairOneRouteMs: { median: r2(median(repair)) },
      throughputMBps: { overlay: r2(median(tp.overlay)), directVeth: r2(median(tp.direct)), ratio: r2(median(tp.overlay) / median(tp.direct)), runs: { overlay: tp.overlay.map(r2), direct: tp.direct.map(r2) }, goalRatio: 0.9 },
    };
  } finally {
    await set.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- vip`: the kernel L4 load balancer (dataplane/l4lb) in a
 * network namespace of its own (root and nft needed):
 * - full sync of 10,000 VIPs × 5 backends (goal <= 1.5 s), median of 3;
 * - one backend change applied by the manager (diff plus the long-lived
 *   `nft -i` coprocess), p50/p99 over 200 changes (goal p99 <= 20 ms),
 *   against the peer: the same element change through a new `nft` process
 *   each time (what the manager did before the coprocess);
 * - the agent's per-change step as the delta feed drives it (`VipTable`
 *   rebuilds the changed VIP's services, `syncChanges` diffs only those,
 *   nft applies), p50/p99 over 200 changes (goal p99 <= 20 ms), against
 *   the whole-state diff of the same changes (what the agent did before);
 * - TCP throughput client → backend through the VIP versus direct, same
 *   route through the host namespace (goal >= 0.95×), median of 3;
 * - end to end: a real master in this process (embedded store) holding
 *   10,000 VIPs × 5 backends (10,000 apps, 50,000 tasks), an agent follower
 *   (`startL4lbAgent`) programming nft in the namespace: one task record
 *   written to the store (RUNNING ↔ KILLING: one backend in or out of one
 *   VIP) → the kernel took the change, p50/p99 over `--changes` (60);
 *   against the peer in the same run: the previous path (the whole VIP view
 *   as a blocking query, parsed, every service rebuilt and diffed).
 * `--vips N` changes the VIP count; `--parts kernel,e2e` picks parts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { L4lbManager } from '../dataplane/l4lb/manager.ts';
import { NftProcess, defaultNftPath, type NftRunner } from '../dataplane/l4lb/nft.ts';
import { ensureLocalRoute } from '../dataplane/l4lb/routes.ts';
import { serviceKey, servicesFromVips, type L4Service } from '../dataplane/l4lb/services.ts';
import { startL4lbAgent } from '../dataplane/l4lb/follow.ts';
import { VipTable, type FeedVip } from '../dataplane/l4lb/vip-table.ts';
import type { Task } from '../control-plane/model/schemas.ts';
import { app as appRecord, task as taskRecord } from '../control-plane/xds/testing.ts';
import { MasterUrls } from '../scheduler/agent/masters.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { netnsSet, netnsUnavailable, routedVeth, startTcpSink, tcpThroughputMBps, type Netns } from '../test/harness/netns.ts';

const execFileP = promisify(execFile);
const logger = pino({ level: 'silent' });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r2 = (x: number): number => Math.round(x * 100) / 100;

const backendIp = (v: number, b: number): string => `10.${100 + (v % 100)}.${b}.${(v >> 7) & 255}`;
const vipIp = (v: number): string => `11.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`;

/** `n` VIPs × 5 backends as the feed gives them. */
function feedVips(n: number): FeedVip[] {
  return Array.from({ length: n }, (_, v) => ({
    id: `marathon//s${v}`, name: `/s${v}`, ipv4: vipIp(v), ports: [{ port: 80, protocol: 'tcp' }],
    backends: Array.from({ length: 5 }, (_, b) => ({ ip: backendIp(v, b), port: 8080 + b, protocol: 'tcp', vipPort: 80, weight: 1, agentId: 'agent-x' })),
  }));
}

/** `n` VIPs × 5 backends, sorted by service key as `servicesFromVips` gives them. */
function services(n: number): L4Service[] {
  const list = Array.from({ length: n }, (_, v) => ({
    vip: vipIp(v),
    protocol: 'tcp' as const,
    port: 80,
    backends: Array.from({ length: 5 }, (_, b) => ({ ip: backendIp(v, b), port: 8080 + b })),
  }));
  return list.sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1));
}

/** One backend of VIP `k` moved to another port (change `i`). */
function changedVip(vip: FeedVip, i: number): FeedVip {
  return { ...vip, backends: vip.backends.map((b, j) => (j === i % 5 ? { ...b, port: 20000 + i } : b)) };
}

/**
 * The agent's per-change step as the delta feed drives it, against the
 * whole-state path it replaced (every service rebuilt from the view and
 * diffed), on one manager and table in `host`.
 */
async function perChangeStep(host: Netns, vipCount: number): Promise<Record<string, unknown>> {
  const vips = feedVips(vipCount);
  const table = new VipTable('agent-1');
  const manager = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger });
  await manager.sync(table.replace(vips));
  const deltaMs: number[] = [];
  for (let i = 0; i < 200; i++) {
    const k = (i * 37) % vipCount;
    vips[k] = changedVip(vips[k]!, i);
    const t0 = performance.now();
    const mode = await manager.syncChanges(table.apply([vips[k]!], []), () => table.desired());
    deltaMs.push(performance.now() - t0);
    if (mode !== 'incremental') throw new Error(`delta change ${i} was ${mode}`);
  }
  const wholeMs: number[] = [];
  for (let i = 200; i < 250; i++) {
    const k = (i * 37) % vipCount;
    vips[k] = changedVip(vips[k]!, i);
    const t0 = performance.now();
    const mode = await manager.sync({ services: servicesFromVips(vips), localBackendIps: [] });
    wholeMs.push(performance.now() - t0);
    if (mode !== 'incremental') throw new Error(`whole change ${i} was ${mode}`);
  }
  await manager.close();
  return {
    deltaChangeMs: { p50: r2(pct(deltaMs, 50)), p99: r2(pct(deltaMs, 99)), max: r2(Math.max(...deltaMs)), changes: deltaMs.length, goalP99Ms: 20 },
    peerWholeViewChangeMs: { p50: r2(pct(wholeMs, 50)), p99: r2(pct(wholeMs, 99)), changes: wholeMs.length },
    ratioP50: r2(pct(wholeMs, 50) / pct(deltaMs, 50)),
  };
}

/**
 * End to end: a store change on a real master (in this process) → the
 * agent's follower → nft in `host`; the delta feed against the previous
 * path (the whole view as a blocking query).
 */
async function endToEnd(host: Netns, vipCount: number, changeCount: number): Promise<Record<string, unknown>> {
  const h = await startTestMaster();
  try {
    const t0 = performance.now();
    const tasks: Task[][] = [];
    for (let from = 0; from < vipCount; from += 200) {
      const writes: Promise<unknown>[] = [];
      for (let v = from; v < Math.min(vipCount, from + 200); v++) {
        const id = `/s${v}`;
        writes.push(h.master.records.put('app', appRecord({ id, instances: 5, portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: `${id}:80` } }] } as Parameters<typeof appRecord>[0])));
        writes.push(h.master.records.put('vip', { framework: 'marathon', name: id, kind: 'named', ipv4: vipIp(v), ports: [{ port: 80, protocol: 'tcp' }] }));
        tasks[v] = Array.from({ length: 5 }, (_, b) => taskRecord(`s${v}.${b}`, id, 8080 + b, { host: backendIp(v, b) }));
        for (const t of tasks[v]!) writes.push(h.master.records.put('task', t));
      }
      await Promise.all(writes);
    }
    const populateMs = performance.now() - t0;
    const token = await h.superuserToken();
    const masters = new MasterUrls(h.master.apiUrl);

    // The delta feed, through the agent's own follower.
    const nft = new NftProcess({ netns: host.name });
    let applied: (() => void) | undefined;
    const timed: NftRunner = {
      load: (script) => nft.load(script),
      apply: async (table, commands) => {
        await nft.apply(table, commands);
        applied?.();
      },
      close: () => nft.close(),
    };
    const t1 = performance.now();
    const agent = startL4lbAgent({ masters, token: async () => token, agentId: 'bench-agent', nft: timed, logger, reconcileSeconds: 0 });
    await agent.ready;
    const firstSyncMs = performance.now() - t1;
    if (agent.manager.state.services.size !== vipCount) throw new Error(`the first sync holds ${agent.manager.state.services.size} services, not ${vipCount}`);
    const flip = async (i: number): Promise<void> => {
      const v = (i * 37) % vipCount;
      const b = i % 5;
      const now = tasks[v]![b]!;
      const next: Task = { ...now, state: now.state === 'RUNNING' ? 'KILLING' : 'RUNNING' };
      tasks[v]![b] = next;
      await h.master.records.put('task', next);
    };
    const deltaMs: number[] = [];
    for (let i = 0; i < changeCount; i++) {
      const done = new Promise<void>((resolve) => (applied = resolve));
      const t = performance.now();
      await flip(i);
      await done;
      deltaMs.push(performance.now() - t);
    }
    applied = undefined;
    await agent.close();

    // Peer: the previous path, the whole view as a blocking query, every service rebuilt and diffed.
    const peer = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger, table: 'strata_l4lb_peer' });
    const auth = { authorization: `token=${token}` };
    const read = async (index: number): Promise<{ index: number; vips: FeedVip[] }> => {
      const res = await fetch(`${h.master.apiUrl}/networking/api/v1/vips?index=${index}&wait=30`, { headers: auth });
      return (await res.json()) as { index: number; vips: FeedVip[] };
    };
    let view = await read(0);
    await peer.sync({ services: servicesFromVips(view.vips), localBackendIps: [] });
    const peerMs: number[] = [];
    const peerCount = Math.max(5, Math.floor(changeCount / 2));
    for (let i = changeCount; i < changeCount + peerCount; i++) {
      const t = performance.now();
      await flip(i);
      view = await read(view.index);
      await peer.sync({ services: servicesFromVips(view.vips), localBackendIps: [] });
      peerMs.push(performance.now() - t);
    }
    await peer.removeAll();
    await peer.close();
    return {
      vips: vipCount, tasks: vipCount * 5, populateStoreMs: Math.round(populateMs), agentFirstSyncMs: Math.round(firstSyncMs),
      storeChangeToKernelMs: {
        p50: r2(pct(deltaMs, 50)), p90: r2(pct(deltaMs, 90)), p99: r2(pct(deltaMs, 99)), max: r2(Math.max(...deltaMs)), changes: deltaMs.length,
        // Which changes were slowest (0 = the first after the initial sync): a pause early on is the first sync's garbage.
        slowest: deltaMs.map((ms, i) => [i, r2(ms)]).sort((a, b) => b[1]! - a[1]!).slice(0, 3),
      },
      peerWholeViewStoreChangeToKernelMs: { p50: r2(pct(peerMs, 50)), p99: r2(pct(peerMs, 99)), changes: peerMs.length },
      ratioP50: r2(pct(peerMs, 50) / pct(deltaMs, 50)),
    };
  } finally {
    await h.close();
  }
}

export async function run(args: string[]): Promise<unknown> {
  const why = netnsUnavailable();
  if (why) return { area: 'vip', skipped: why };
  const vipCount = Number(args[args.indexOf('--vips') + 1] ?? 10_000) || 10_000;
  const changeCount = args.includes('--changes') ? Number(args[args.indexOf('--changes') + 1]) || 60 : 60;
  const parts = args.includes('--parts') ? args[args.indexOf('--parts') + 1]!.split(',') : ['kernel', 'e2e'];
  const set = netnsSet('sxbench');
  try {
    const host = await set.create('h');
    const out: Record<string, unknown> = { area: 'vip', vips: vipCount, backendsPerVip: 5 };
    if (parts.includes('e2e')) out['endToEnd'] = await endToEnd(host, vipCount, changeCount);
    if (!parts.includes('kernel')) return out;
    out['agentStep'] = await perChangeStep(host, vipCount);
    const all = services(vipCount);

    // Full sync: a fresh manager (first sync = whole table) each time.
    const fullMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const m = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger });
      const t0 = performance.now();
      await m.sync({ services: all, localBackendIps: [] });
      fullMs.push(performance.now() - t0);
      await m.close();
    }

    // One backend change, 200 times, through the long-lived nft process.
    // The nft part of each change, timed apart from the manager's diff.
    const nft = new NftProcess({ netns: host.name });
    const applyMs: number[] = [];
    const timed: NftRunner = {
      load: (script) => nft.load(script),
      apply: async (table, commands) => {
        const t0 = performance.now();
        await nft.apply(table, commands);
        applyMs.push(performance.now() - t0);
      },
      close: () => nft.close(),
    };
    const manager = new L4lbManager({ nft: timed, logger });
    await manager.sync({ services: all, localBackendIps: [] });
    const changeMs: number[] = [];
    for (let i = 0; i < 200; i++) {
      const next = all.slice();
      const k = (i * 37) % vipCount;
      next[k] = { ...next[k]!, backends: next[k]!.backends.map((b, j) => (j === i % 5 ? { ...b, port: 20000 + i } : b)) };
      const t0 = performance.now();
      const mode = await manager.sync({ services: next, localBackendIps: [] });
      changeMs.push(performance.now() - t0);
      if (mode !== 'incremental') throw new Error(`change ${i} was ${mode}`);
    }
    // Peer: the same kind of change (one backend slot replaced) through a new `nft` process each time.
    const perProcessMs: number[] = [];
    for (let i = 0; i < 50; i++) {
      const slot = `${all[(i * 53) % vipCount]!.vip} . 80 . ${i % 5}`;
      const t0 = performance.now();
      await execFileP('ip', ['netns', 'exec', host.name, defaultNftPath(), `delete element inet strata_l4lb be_tcp { ${slot} } ; add element inet strata_l4lb be_tcp { ${slot} : 10.99.0.${i} . 9 }`]);
      perProcessMs.push(performance.now() - t0);
    }
    await manager.close();

    // Throughput: client → backend, direct and through the VIP (both routed through the host namespace).
    const client = await set.create('c');
    const backend = await set.create('b');
    await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await routedVeth(set, host, client, 'vc', '10.88.1');
    await routedVeth(set, host, backend, 'vb', '10.88.2');
    await ensureLocalRoute('11.0.0.0/8', { netns: host.name });
    await startTcpSink(backend, '10.88.2.2');
    const lb = new L4lbManager({ nft: new NftProcess({ netns: host.name }), logger });
    await lb.sync({ services: [{ vip: '11.0.0.1', protocol: 'tcp', port: 80, backends: [{ ip: '10.88.2.2', port: 9000 }] }], localBackendIps: [] });
    const throughput = (target: string, port: number): Promise<number> => tcpThroughputMBps(client, target, port, 512);
    const direct: number[] = [];
    const viaVip: number[] = [];
    for (let i = 0; i < 3; i++) {
      direct.push(await throughput('10.88.2.2', 9000));
      viaVip.push(await throughput('11.0.0.1', 80));
    }
    await lb.close();
    return {
      ...out,
      fullSyncMs: { median: r2(median(fullMs)), runs: fullMs.map(r2), goalMs: 1500 },
      backendChangeMs: { p50: r2(pct(changeMs, 50)), p99: r2(pct(changeMs, 99)), max: r2(Math.max(...changeMs)), changes: changeMs.length, goalP99Ms: 20 },
      nftShellApplyMs: { p50: r2(pct(applyMs, 50)), p99: r2(pct(applyMs, 99)), max: r2(Math.max(...applyMs)) },
      nftShellStarts: nft.shell.starts,
      peerNftProcessPerChangeMs: { p50: r2(pct(perProcessMs, 50)), p99: r2(pct(perProcessMs, 99)), changes: perProcessMs.length },
      throughputMBps: { direct: r2(median(direct)), viaVip: r2(median(viaVip)), ratio: r2(median(viaVip) / median(direct)), goalRatio: 0.95 },
    };
  } finally {
    await set.cleanup();
  }
}

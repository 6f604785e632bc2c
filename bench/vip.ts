/**
 * `npm run bench -- vip`: the kernel L4 load balancer (dataplane/l4lb) in a
 * network namespace of its own (root and nft needed):
 * - full sync of 10,000 VIPs × 5 backends (goal <= 1.5 s), median of 3;
 * - one backend change applied by the manager (diff plus the long-lived
 *   `nft -i` coprocess), p50/p99 over 200 changes (goal p99 <= 20 ms),
 *   against the peer: the same element change through a new `nft` process
 *   each time (what the manager did before the coprocess);
 * - TCP throughput client → backend through the VIP versus direct, same
 *   route through the host namespace (goal >= 0.95×), median of 3.
 * `--vips N` changes the VIP count.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { L4lbManager } from '../dataplane/l4lb/manager.ts';
import { NftProcess, defaultNftPath, type NftRunner } from '../dataplane/l4lb/nft.ts';
import { ensureLocalRoute } from '../dataplane/l4lb/routes.ts';
import { serviceKey, type L4Service } from '../dataplane/l4lb/services.ts';
import { netnsSet, netnsUnavailable, routedVeth, startTcpSink, tcpThroughputMBps } from '../test/harness/netns.ts';

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

/** `n` VIPs × 5 backends, sorted by service key as `servicesFromVips` gives them. */
function services(n: number): L4Service[] {
  const list = Array.from({ length: n }, (_, v) => ({
    vip: `11.${(v >> 16) & 255}.${(v >> 8) & 255}.${v & 255}`,
    protocol: 'tcp' as const,
    port: 80,
    backends: Array.from({ length: 5 }, (_, b) => ({ ip: `10.${100 + (v % 100)}.${b}.${(v >> 7) & 255}`, port: 8080 + b })),
  }));
  return list.sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1));
}

export async function run(args: string[]): Promise<unknown> {
  const why = netnsUnavailable();
  if (why) return { area: 'vip', skipped: why };
  const vipCount = Number(args[args.indexOf('--vips') + 1] ?? 10_000) || 10_000;
  const set = netnsSet('sxbench');
  try {
    const host = await set.create('h');
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
      area: 'vip',
      vips: vipCount,
      backendsPerVip: 5,
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

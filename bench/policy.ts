/**
 * `npm run bench -- policy`: network policy enforcement (dataplane/policy)
 * in a network namespace of its own (root and nft needed):
 * - 10,000 rules (1,000 policies × 10 rules, 1,000 apps × 3 task
 *   addresses, so 1,000 distinct source sets): compile time (pure), and a
 *   full load (compile + one `nft -f` transaction), median of 3;
 * - one policy change (one rule's port) applied incrementally (its chain
 *   flushed and refilled), p50/p99 over 20 changes, against the peer in the
 *   same run: the same change applied as a whole-table reload;
 * - one task added (its address into the sets it belongs to), p50 over 20.
 * `--rules N` changes the rule count (policies = N / 10); `--distinct`
 * gives every rule its own source app (N source sets: the kernel's cost
 * grows with the number of sets, measured once).
 */
import { pino } from 'pino';
import type { Policy } from '../control-plane/model/schemas.ts';
import { NftProcess } from '../dataplane/l4lb/nft.ts';
import { compilePolicies, ruleCount, type PolicyEndpoint, type PolicyInputs } from '../dataplane/policy/compile.ts';
import { PolicyManager } from '../dataplane/policy/manager.ts';
import { netnsSet, netnsUnavailable } from '../test/harness/netns.ts';

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

const ip = (n: number): string => `9.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function inputs(rules: number, distinct: boolean): { policies: Policy[]; endpoints: PolicyEndpoint[] } {
  const policyCount = Math.max(1, Math.floor(rules / 10));
  const apps = distinct ? rules + policyCount : policyCount;
  const endpoints: PolicyEndpoint[] = Array.from({ length: apps }, (_, a) => ({ appId: `/bench/app-${a}`, labels: {}, networks: ['dcos'], ips: [ip(a * 4 + 1), ip(a * 4 + 2), ip(a * 4 + 3)] }));
  const policies: Policy[] = Array.from({ length: policyCount }, (_, p) => ({
    name: `pol-${p}`,
    to: [{ appId: `/bench/app-${p}` }],
    defaultAction: 'deny' as const,
    rules: Array.from({ length: 10 }, (_, j) => ({
      action: j === 9 ? 'deny' as const : 'allow' as const,
      from: [{ appId: `/bench/app-${distinct ? policyCount + p * 10 + j : (p + j + 1) % policyCount}` }],
      ports: [{ protocol: 'tcp' as const, port: 8000 + j }],
    })),
  }));
  return { policies, endpoints };
}

export async function run(args: string[]): Promise<unknown> {
  const why = netnsUnavailable();
  if (why) return { area: 'policy', skipped: why };
  const at = args.indexOf('--rules');
  const ruleTarget = (at >= 0 ? Number(args[at + 1]) : 10_000) || 10_000;
  const distinct = args.includes('--distinct');
  const set = netnsSet('sxpbench');
  try {
    const host = await set.create('h');
    const base = inputs(ruleTarget, distinct);
    const compileMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      compilePolicies(base);
      compileMs.push(performance.now() - t0);
    }
    const compiled = compilePolicies(base);

    const fullMs: number[] = [];
    for (let i = 0; i < (distinct ? 1 : 3); i++) {
      const m = new PolicyManager({ nft: new NftProcess({ netns: host.name }), logger });
      const t0 = performance.now();
      if ((await m.sync(base)) !== 'full') throw new Error('first sync was not a full load');
      fullMs.push(performance.now() - t0);
      await m.close();
    }

    const manager = new PolicyManager({ nft: new NftProcess({ netns: host.name }), logger });
    await manager.sync(base);
    const changed = (i: number): PolicyInputs => {
      const policies = base.policies.slice();
      const k = (i * 37) % policies.length;
      const p = policies[k]!;
      policies[k] = { ...p, rules: p.rules.map((r, j) => (j === 0 ? { ...r, ports: [{ protocol: 'tcp', port: 20000 + i }] } : r)) };
      return { policies, endpoints: base.endpoints };
    };
    const changes = distinct ? 5 : 20;
    const changeMs: number[] = [];
    for (let i = 0; i < changes; i++) {
      const t0 = performance.now();
      const mode = await manager.sync(changed(i));
      changeMs.push(performance.now() - t0);
      if (mode !== 'incremental') throw new Error(`policy change ${i} was ${mode}`);
    }
    // Peer: the same change as a whole-table reload (what an agent without incremental updates would do).
    const reloadMs: number[] = [];
    for (let i = 0; i < (distinct ? 1 : 5); i++) {
      manager.invalidate();
      const t0 = performance.now();
      await manager.sync(changed(100 + i));
      reloadMs.push(performance.now() - t0);
    }
    const taskMs: number[] = [];
    let endpoints = base.endpoints;
    for (let i = 0; i < changes; i++) {
      endpoints = [...endpoints, { ...endpoints[i]!, ips: [ip(4_000_000 + i)] }];
      const t0 = performance.now();
      const mode = await manager.sync({ policies: changed(104).policies, endpoints });
      taskMs.push(performance.now() - t0);
      if (mode !== 'incremental') throw new Error(`task change ${i} was ${mode}`);
    }
    await manager.close();
    return {
      area: 'policy',
      rules: ruleCount(compiled),
      policyRules: base.policies.length * 10,
      policies: base.policies.length,
      sourceSets: compiled.sets.size,
      taskAddresses: base.endpoints.length * 3,
      compileMs: { median: r2(median(compileMs)), runs: compileMs.map(r2) },
      fullLoadMs: { median: r2(median(fullMs)), runs: fullMs.map(r2) },
      policyChangeMs: { p50: r2(pct(changeMs, 50)), p99: r2(pct(changeMs, 99)), changes: changeMs.length },
      peerWholeTableReloadMs: { median: r2(median(reloadMs)), runs: reloadMs.map(r2), ratioToIncremental: r2(median(reloadMs) / pct(changeMs, 50)) },
      taskAddedMs: { p50: r2(pct(taskMs, 50)), p99: r2(pct(taskMs, 99)), changes: taskMs.length },
    };
  } finally {
    await set.cleanup();
  }
}

/**
 * The VIP allocator: a leader loop that keeps `strata/vips/` equal to what
 * the apps' `VIP_n` port labels publish. It watches apps and VIPs, plans
 * with the pure {@link planVips} and writes the plan with fenced,
 * check-and-set transactions, so an address is allocated once, by one
 * leader, and read the same by every node (DNS `l4lb`, xDS, dataplane).
 * A write that loses a race (the record changed since it was read) is
 * simply planned again from the fresh view.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { runLeaderRounds } from '../leader-rounds.ts';
import type { LeaderLoop, LeaderLoopContext } from '../master.ts';
import { keyOf, vipId } from '../model/keys.ts';
import { openView, type RecordView } from '../model/records.ts';
import { assertRecord } from '../model/validate.ts';
import type { Leadership } from '../store/election.ts';
import type { TxnCondition, TxnWrite } from '../store/port.ts';
import { desiredVips, planVips, type ExistingVip, type VipRanges, type VipWrite } from './plan.ts';

export interface VipAllocatorOptions {
  readonly ranges: VipRanges;
  /** Coalesce bursts of app changes (ms; default 20). */
  readonly debounceMs?: number;
}

/** Each fenced transaction carries the fence condition; a VIP write is a condition and a write. */
const WRITES_PER_TXN = 30;

interface VipMetrics {
  readonly vips: Gauge<'kind'>;
  readonly writes: Counter<'op'>;
  readonly unallocated: Gauge;
}
const metricsByRegistry = new WeakMap<Registry, VipMetrics>();

function vipMetrics(registry: Registry): VipMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      vips: new Gauge({ name: 'strata_vips', help: 'VIPs in the store, by kind (named, ip)', labelNames: ['kind'], registers: [registry] }),
      writes: new Counter({ name: 'strata_vip_writes_total', help: 'VIP records written by the allocator, by operation (put, delete)', labelNames: ['op'], registers: [registry] }),
      unallocated: new Gauge({ name: 'strata_vips_unallocated', help: 'Named VIP addresses the allocator could not allocate (range full)', registers: [registry] }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

/** `startMaster({leaderLoops: [vipAllocator({ranges})]})`. */
export function vipAllocator(options: VipAllocatorOptions): LeaderLoop {
  return (leadership, context) => runAllocator(leadership, context, options);
}

async function runAllocator(leadership: Leadership, context: LeaderLoopContext, options: VipAllocatorOptions): Promise<void> {
  const { signal } = leadership;
  if (signal.aborted) return;
  const log = context.logger.child({ component: 'vip-allocator' });
  const metrics = vipMetrics(context.metrics);
  const onError = (err: unknown): void => log.error({ err }, 'VIP view listener failed');
  const apps = await openView(context.records, 'app', { signal, onError });
  const vips = await openView(context.records, 'vip', { signal, onError });

  const toTxn = (batch: readonly VipWrite[]): { conditions: TxnCondition[]; writes: TxnWrite[] } => {
    const conditions: TxnCondition[] = [];
    const writes: TxnWrite[] = [];
    for (const w of batch) {
      if (w.op === 'put') {
        assertRecord('vip', w.vip);
        const key = keyOf('vip', vipId(w.vip.framework, w.vip.name));
        conditions.push({ key, modifyIndex: w.casIndex });
        writes.push({ op: 'put', key, value: JSON.stringify(w.vip) });
      } else {
        conditions.push({ key: w.key, modifyIndex: w.casIndex });
        writes.push({ op: 'delete', key: w.key });
      }
    }
    return { conditions, writes };
  };

  log.info('VIP allocator started');
  try {
    await runLeaderRounds({
      leadership,
      log,
      what: 'VIP allocation',
      views: [apps, vips] as RecordView<unknown>[],
      debounceMs: options.debounceMs ?? 20,
      round: async () => {
        const desired = desiredVips([...apps.records.values()].map((r) => r.value));
        const existing = new Map<string, ExistingVip>([...vips.records].map(([id, r]) => [id, { key: r.key, modifyIndex: r.modifyIndex, value: r.value }]));
        const plan = planVips(desired, existing, options.ranges);
        metrics.unallocated.set(plan.unallocated.length);
        if (plan.unallocated.length > 0) log.error({ unallocated: plan.unallocated }, 'VIP range full: some named VIPs have no address');
        for (let i = 0; i < plan.writes.length; i += WRITES_PER_TXN) {
          const batch = plan.writes.slice(i, i + WRITES_PER_TXN);
          const result = await leadership.fencedTxn(toTxn(batch));
          if (!result.ok) {
            log.debug('a VIP changed while being written; planning again');
            return 'again';
          }
          for (const w of batch) {
            metrics.writes.inc({ op: w.op });
            if (w.op === 'put') log.info({ vip: vipId(w.vip.framework, w.vip.name), ipv4: w.vip.ipv4, ipv6: w.vip.ipv6, ports: w.vip.ports }, 'VIP published');
            else log.info({ vip: w.id }, 'VIP released');
          }
          await vips.waitFor(result.index);
        }
        const counts = { named: 0, ip: 0 };
        for (const r of vips.records.values()) counts[r.value.kind]++;
        metrics.vips.set({ kind: 'named' }, counts.named);
        metrics.vips.set({ kind: 'ip' }, counts.ip);
        return undefined;
      },
    });
  } finally {
    log.info('VIP allocator stopped');
  }
}

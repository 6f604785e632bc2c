/**
 * Container IP release: a leader loop that watches tasks and container
 * addresses and marks an address `released` (starting its quarantine) once
 * its task can no longer hold it — the task ended in a state its agent
 * confirmed (FINISHED, FAILED, KILLED, ERROR, DROPPED), an operator said
 * its agent is gone (GONE_BY_OPERATOR), or its record is gone. A LOST or
 * UNREACHABLE task keeps its address: it may still run on an agent the
 * master cannot reach. Writes are fenced check-and-set, so a deposed leader
 * or a concurrent reassignment never releases an address in use.
 */
import { Counter, type Registry } from 'prom-client';
import type { LeaderLoop, LeaderLoopContext } from '../master.ts';
import { runLeaderRounds } from '../leader-rounds.ts';
import { openView, type RecordView } from '../model/records.ts';
import type { Leadership } from '../store/election.ts';
import { released, shouldRelease } from './ipam.ts';

const metricsByRegistry = new WeakMap<Registry, Counter>();
function releasedCounter(registry: Registry): Counter {
  let c = metricsByRegistry.get(registry);
  if (!c) {
    c = new Counter({ name: 'strata_overlay_addresses_released_total', help: 'Container IPs released (quarantine started) because their task ended', registers: [registry] });
    metricsByRegistry.set(registry, c);
  }
  return c;
}

/** `startMaster({leaderLoops: [overlayAddressReaper()]})`. */
export function overlayAddressReaper(options: { readonly debounceMs?: number } = {}): LeaderLoop {
  return (leadership, context) => runReaper(leadership, context, options.debounceMs ?? 50);
}

async function runReaper(leadership: Leadership, context: LeaderLoopContext, debounceMs: number): Promise<void> {
  const { signal } = leadership;
  if (signal.aborted) return;
  const log = context.logger.child({ component: 'overlay-address-reaper' });
  const counter = releasedCounter(context.metrics);
  const onError = (err: unknown): void => log.error({ err }, 'overlay address view listener failed');
  const tasks = await openView(context.records, 'task', { signal, onError });
  const addresses = await openView(context.records, 'overlayAddress', { signal, onError });
  await runLeaderRounds({
    leadership,
    log,
    what: 'overlay address release',
    views: [tasks, addresses] as RecordView<unknown>[],
    debounceMs,
    round: async () => {
      for (const [, record] of addresses.records) {
        if (signal.aborted) return undefined;
        const address = record.value;
        if (!shouldRelease(address, tasks.records.get(address.taskId)?.value)) continue;
        const next = released(address, new Date().toISOString());
        const result = await leadership.fencedTxn({ conditions: [{ key: record.key, modifyIndex: record.modifyIndex }], writes: [{ op: 'put', key: record.key, value: JSON.stringify(next) }] });
        if (!result.ok) return 'again'; // changed under us: look again from the fresh view
        counter.inc();
        log.info({ network: address.network, ip: address.ip, taskId: address.taskId }, 'container IP released (quarantined before reuse)');
        await addresses.waitFor(result.index);
      }
      return undefined;
    },
  });
}

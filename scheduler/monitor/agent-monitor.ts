/**
 * The agent health monitor: a leader loop (`control-plane/master.ts`) that
 * marks an agent `unreachable` (its `health.status`, with a `detail`) once
 * it has not heartbeat for `unreachableAfterSeconds`. The deployment
 * controller then applies each app's `unreachableStrategy` to its tasks.
 * An agent's next registration (`PUT /v1/agents/{id}`) sets it healthy again.
 *
 * Timeout: 15 s by default, three missed heartbeats at the agent's default
 * `heartbeatSeconds` of 5 (Mesos waits 15 s × 5 pings = 75 s; Strata's
 * agents heartbeat over HTTP, so a shorter window is cheap to keep and an app
 * with `unreachableStrategy.inactiveAfterSeconds` adds its own delay).
 *
 * No flapping on a leader change: a new leader gives every agent a full
 * timeout from its own start (the old leader's heartbeats may have been
 * missed while there was none), and it also counts a heartbeat from the
 * moment its view saw it change, so a master clock ahead of the one that
 * stamped `lastSeenAt` marks nobody early. Writes are fenced and
 * check-and-set on the record read: a heartbeat that lands first wins, and
 * the monitor decides again from the new record.
 */
import { Counter, type Registry } from 'prom-client';
import type { LeaderLoop, LeaderLoopContext } from '../../control-plane/master.ts';
import { runLeaderRounds } from '../../control-plane/leader-rounds.ts';
import { openView, type RecordView } from '../../control-plane/model/records.ts';
import type { Agent } from '../../control-plane/model/schemas.ts';
import { assertRecord } from '../../control-plane/model/validate.ts';
import type { Leadership } from '../../control-plane/store/election.ts';

/** Default timeout: three heartbeats at the agent's default 5 s. */
export const DEFAULT_UNREACHABLE_AFTER_SECONDS = 15;

export interface UnreachableDecisionOptions {
  /** Now, ms since the epoch. */
  readonly now: number;
  /** When this leader's monitor started: nobody is marked before `leaderSince + timeoutMs`. */
  readonly leaderSince: number;
  readonly timeoutMs: number;
  /** When this leader last saw each agent's heartbeat change (its own clock), by agent id. */
  readonly observed?: ReadonlyMap<string, number>;
}

export interface UnreachableMark {
  readonly agentId: string;
  /** How long the agent has been silent, by the latest of its heartbeat stamps (ms). */
  readonly silentMs: number;
  readonly detail: string;
}

export interface UnreachableDecision {
  readonly mark: readonly UnreachableMark[];
  /** When to decide again if nothing changes (the next deadline), ms since the epoch. */
  readonly nextCheckAt: number | undefined;
}

/** The last sign of life the leader may count for an agent (never before its own start). */
function lastSign(agent: Agent, options: UnreachableDecisionOptions): number {
  const stamped = Date.parse(agent.health.lastSeenAt);
  return Math.max(Number.isNaN(stamped) ? -Infinity : stamped, options.observed?.get(agent.id) ?? -Infinity, options.leaderSince);
}

/** Pure: which agents to mark unreachable now, and when to look again. */
export function decideUnreachable(agents: readonly Agent[], options: UnreachableDecisionOptions): UnreachableDecision {
  const mark: UnreachableMark[] = [];
  let nextCheckAt: number | undefined;
  for (const agent of [...agents].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (agent.health.status === 'unreachable') continue;
    const deadline = lastSign(agent, options) + options.timeoutMs;
    if (options.now >= deadline) {
      const silentMs = options.now - Math.max(Date.parse(agent.health.lastSeenAt) || -Infinity, options.observed?.get(agent.id) ?? -Infinity);
      const seconds = Number.isFinite(silentMs) ? `${Math.round(silentMs / 1000)} s` : 'ever';
      mark.push({
        agentId: agent.id,
        silentMs,
        detail: `no heartbeat for ${seconds} (last seen ${agent.health.lastSeenAt}; unreachable after ${options.timeoutMs / 1000} s)`,
      });
    } else if (nextCheckAt === undefined || deadline < nextCheckAt) {
      nextCheckAt = deadline;
    }
  }
  return { mark, nextCheckAt };
}

/** The record to write for a mark. */
export function markedUnreachable(agent: Agent, mark: UnreachableMark): Agent {
  return { ...agent, health: { status: 'unreachable', lastSeenAt: agent.health.lastSeenAt, detail: mark.detail.slice(0, 1024) } };
}

export interface AgentMonitorOptions {
  /** Seconds without a heartbeat before an agent is unreachable (default 15; config `agent.unreachableAfterSeconds`). */
  readonly unreachableAfterSeconds?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

const countersByRegistry = new WeakMap<Registry, Counter>();

function markedCounter(registry: Registry): Counter {
  let c = countersByRegistry.get(registry);
  if (!c) {
    c = new Counter({ name: 'strata_agents_marked_unreachable_total', help: 'Agents the leader marked unreachable after missing heartbeats', registers: [registry] });
    countersByRegistry.set(registry, c);
  }
  return c;
}

/** The agent monitor as a leader loop: `startMaster({leaderLoops: [agentMonitor({unreachableAfterSeconds})]})`. */
export function agentMonitor(options: AgentMonitorOptions = {}): LeaderLoop {
  return (leadership, context) => runMonitor(leadership, context, options);
}

async function runMonitor(leadership: Leadership, context: LeaderLoopContext, options: AgentMonitorOptions): Promise<void> {
  const { signal } = leadership;
  if (signal.aborted) return;
  const log = context.logger.child({ component: 'agent-monitor' });
  const now = options.now ?? Date.now;
  const timeoutMs = (options.unreachableAfterSeconds ?? DEFAULT_UNREACHABLE_AFTER_SECONDS) * 1000;
  const counter = markedCounter(context.metrics);
  const leaderSince = now();
  const observed = new Map<string, number>();
  const lastSeenOf = new Map<string, string>();

  const view = await openView(context.records, 'agent', { signal, onError: (err) => log.error({ err }, 'agent view listener failed') });
  for (const r of view.records.values()) lastSeenOf.set(r.id, r.value.health.lastSeenAt);
  // Before each wake-up: note when this leader saw each heartbeat change (its own clock).
  view.subscribe((update) => {
    const t = now();
    for (const r of update.upserted) {
      if (lastSeenOf.get(r.id) !== r.value.health.lastSeenAt) observed.set(r.id, t);
      lastSeenOf.set(r.id, r.value.health.lastSeenAt);
    }
    for (const id of update.removed) {
      observed.delete(id);
      lastSeenOf.delete(id);
    }
  });
  log.info({ unreachableAfterSeconds: timeoutMs / 1000 }, 'agent monitor started');
  try {
    await runLeaderRounds({
      leadership,
      log,
      what: 'agent monitor',
      views: [view] as RecordView<unknown>[],
      round: async () => {
        const decision = decideUnreachable([...view.records.values()].map((r) => r.value), { now: now(), leaderSince, timeoutMs, observed });
        for (const m of decision.mark) {
          const current = view.records.get(m.agentId);
          if (!current) continue;
          const next = markedUnreachable(current.value, m);
          assertRecord('agent', next);
          const result = await leadership.fencedTxn({
            conditions: [{ key: current.key, modifyIndex: current.modifyIndex }],
            writes: [{ op: 'put', key: current.key, value: JSON.stringify(next) }],
          });
          if (!result.ok) {
            log.debug({ agentId: m.agentId }, 'agent changed while being marked unreachable; deciding again');
            continue;
          }
          counter.inc();
          log.warn({ agentId: m.agentId, silentMs: m.silentMs }, 'agent marked unreachable');
          await view.waitFor(result.index);
        }
        // The next deadline, on the wall clock the timer runs on (`now` may be a test's clock).
        return decision.nextCheckAt === undefined ? undefined : Date.now() + (decision.nextCheckAt - now()) + 5;
      },
    });
  } finally {
    log.info('agent monitor stopped');
  }
}

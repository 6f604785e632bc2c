/**
 * The policy table of one host: keeps the nftables table equal to the
 * compiled policies. The first sync replaces the whole table in one
 * transaction, so an agent that restarts swaps the old rules for the new
 * ones with no moment without rules (the old table enforces until then:
 * nothing opens, nothing is blackholed). Later syncs send only what
 * changed (set elements when tasks come and go, the changed chains when a
 * policy changes), one transaction each. A refused update (someone edited
 * the table by hand) repairs with a full load, and `invalidate` makes the
 * next sync a full load (the periodic reconcile).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { NftRunner } from '../l4lb/nft.ts';
import { compilePolicies, ruleCount, DEFAULT_POLICY_TABLE, type CompiledPolicy, type PolicyInputs } from './compile.ts';
import { fullScript, removeScript, updateCommands } from './ruleset.ts';

export interface PolicyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface PolicyMetrics {
  readonly applies: Counter<'mode'>;
  readonly failures: Counter<'mode'>;
  readonly applySeconds: Histogram<'mode'>;
  readonly rules: Gauge;
  readonly sets: Gauge;
  readonly drops: Gauge;
}
const byRegistry = new WeakMap<Registry, PolicyMetrics>();

export function policyMetrics(registry: Registry): PolicyMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      applies: new Counter({ name: 'strata_policy_applies_total', help: 'Policy table changes applied to the kernel, by mode (full, incremental)', labelNames: ['mode'], registers: [registry] }),
      failures: new Counter({ name: 'strata_policy_apply_failures_total', help: 'Policy table changes the kernel refused, by mode (an incremental failure is repaired by a full load)', labelNames: ['mode'], registers: [registry] }),
      applySeconds: new Histogram({
        name: 'strata_policy_apply_seconds', help: 'Time to compile and apply a policy change to the kernel', labelNames: ['mode'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
      }),
      rules: new Gauge({ name: 'strata_policy_rules', help: 'nftables rules in the policy table', registers: [registry] }),
      sets: new Gauge({ name: 'strata_policy_sets', help: 'Address sets (one per distinct from-list and family) in the policy table', registers: [registry] }),
      drops: new Gauge({ name: 'strata_policy_dropped_packets', help: 'Packets the policy table dropped since it was last loaded whole (read at each reconcile)', registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

export type PolicySyncMode = 'full' | 'incremental' | 'none';

export class PolicyManager {
  readonly #nft: NftRunner;
  readonly #log: PolicyLogger;
  readonly #metrics: PolicyMetrics | undefined;
  readonly #table: string;
  #current: CompiledPolicy | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: { nft: NftRunner; logger: PolicyLogger; metrics?: Registry; table?: string }) {
    this.#nft = options.nft;
    this.#log = options.logger;
    this.#metrics = options.metrics ? policyMetrics(options.metrics) : undefined;
    this.#table = options.table ?? DEFAULT_POLICY_TABLE;
  }

  get table(): string {
    return this.#table;
  }

  /** What the kernel holds, as far as this process knows (`undefined` before the first load). */
  get current(): CompiledPolicy | undefined {
    return this.#current;
  }

  /** Make the kernel enforce `inputs`. Calls run one at a time, in order. */
  sync(inputs: PolicyInputs): Promise<PolicySyncMode> {
    const run = this.#queue.then(() => this.#sync(inputs));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Forget what the kernel holds: the next sync loads the whole table. */
  invalidate(): void {
    this.#current = undefined;
  }

  async #sync(inputs: PolicyInputs): Promise<PolicySyncMode> {
    const started = performance.now();
    const next = compilePolicies(inputs, this.#table);
    const current = this.#current;
    if (current) {
      const commands = updateCommands(current, next);
      if (commands.length === 0) return 'none';
      try {
        await this.#nft.apply(this.#table, commands);
        this.#done('incremental', next, started);
        return 'incremental';
      } catch (err) {
        this.#metrics?.failures.inc({ mode: 'incremental' });
        this.#log.warn({ err, commands: commands.length }, 'incremental policy update refused; reloading the whole table');
      }
    }
    try {
      await this.#nft.load(fullScript(next));
    } catch (err) {
      this.#current = undefined;
      this.#metrics?.failures.inc({ mode: 'full' });
      throw err;
    }
    this.#done('full', next, started);
    this.#log.info({ rules: ruleCount(next), sets: next.sets.size, policies: next.policyChains.size }, 'policy table loaded');
    return 'full';
  }

  #done(mode: 'full' | 'incremental', next: CompiledPolicy, started: number): void {
    this.#current = next;
    if (!this.#metrics) return;
    this.#metrics.applies.inc({ mode });
    this.#metrics.applySeconds.observe({ mode }, (performance.now() - started) / 1000);
    this.#metrics.rules.set(ruleCount(next));
    this.#metrics.sets.set(next.sets.size);
  }

  /** Record the kernel's drop counter (read by the caller). */
  recordDrops(packets: number): void {
    this.#metrics?.drops.set(packets);
  }

  /** Take the table out of the kernel (a single-node Strata stopping as a whole). */
  removeAll(): Promise<void> {
    const run = this.#queue.then(async () => {
      await this.#nft.load(removeScript(this.#table));
      this.#current = undefined;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#nft.close();
  }
}

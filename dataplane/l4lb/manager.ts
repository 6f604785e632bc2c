/**
 * The kernel L4 load balancer of one host: keeps the nftables table equal
 * to the desired services. The first sync replaces the whole table in one
 * transaction (so an agent restart swaps the old rules for the new ones
 * with no moment without rules: nothing is blackholed); later syncs send
 * only what changed, as one transaction each. A failed update (someone
 * changed the table by hand, the kernel refused) repairs with a full load.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { NftRunner } from './nft.ts';
import { commitPlan, DEFAULT_TABLE, emptyState, fullRuleset, planChanges, planUpdate, type DesiredChanges, type DesiredState, type ProgrammedService, type RulesetPlan, type RulesetState } from './ruleset.ts';

export interface L4lbLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface L4lbMetrics {
  readonly syncs: Counter<'mode' | 'result'>;
  readonly syncSeconds: Histogram<'mode'>;
  readonly services: Gauge;
  readonly backends: Gauge;
  readonly nftShellStarts: Counter;
}
const byRegistry = new WeakMap<Registry, L4lbMetrics>();

export function l4lbMetrics(registry: Registry): L4lbMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      syncs: new Counter({ name: 'strata_l4lb_syncs_total', help: 'Kernel load balancer syncs, by mode (full, incremental) and result (ok, error)', labelNames: ['mode', 'result'], registers: [registry] }),
      syncSeconds: new Histogram({
        name: 'strata_l4lb_sync_seconds', help: 'Time to apply a load balancer change to the kernel', labelNames: ['mode'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
      }),
      services: new Gauge({ name: 'strata_l4lb_services', help: 'VIP ports programmed in the kernel', registers: [registry] }),
      backends: new Gauge({ name: 'strata_l4lb_backends', help: 'Backends programmed in the kernel', registers: [registry] }),
      nftShellStarts: new Counter({ name: 'strata_l4lb_nft_shell_starts_total', help: 'Starts of the long-lived nft -i process that applies changes (more than one: it died or hung and was replaced)', registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

export type SyncMode = 'full' | 'incremental' | 'none';

type OwnedState = RulesetState & { readonly services: Map<string, ProgrammedService>; readonly chains: Set<string> };

function owned(state: RulesetState): OwnedState {
  return { ...state, services: new Map(state.services), chains: new Set(state.chains) };
}

export class L4lbManager {
  readonly #nft: NftRunner;
  readonly #log: L4lbLogger;
  readonly #metrics: L4lbMetrics | undefined;
  /** What the kernel holds; its services map and chain set are this manager's own, updated in place after each committed change. */
  #state: OwnedState;
  #loaded = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: { nft: NftRunner; logger: L4lbLogger; metrics?: Registry; table?: string }) {
    this.#nft = options.nft;
    this.#log = options.logger;
    this.#metrics = options.metrics ? l4lbMetrics(options.metrics) : undefined;
    this.#state = owned(emptyState(options.table ?? DEFAULT_TABLE));
  }

  /** What the kernel holds now (a live view: later syncs update it). */
  get state(): RulesetState {
    return this.#state;
  }

  /** Make the kernel serve `desired`. Calls run one at a time, in order. */
  sync(desired: DesiredState): Promise<SyncMode> {
    const run = this.#queue.then(() => this.#run(() => planUpdate(this.#state, desired), () => desired));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Apply a change to some services (the agent's delta feed) without
   * looking at the others: one lookup per named service. When the kernel's
   * table is not loaded yet (or was invalidated), or the update fails, the
   * whole table is loaded from `whole()` instead (read only then, so it
   * sees every change applied so far). Calls run one at a time, in order,
   * with {@link sync}'s.
   */
  syncChanges(changes: DesiredChanges, whole: () => DesiredState): Promise<SyncMode> {
    const run = this.#queue.then(() => this.#run(() => planChanges(this.#state, changes), whole));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Forget what the kernel holds: the next sync loads the whole table (after a reconcile timer, or a hand edit). */
  invalidate(): void {
    this.#loaded = false;
  }

  async #run(plan: () => RulesetPlan, whole: () => DesiredState): Promise<SyncMode> {
    if (this.#loaded) {
      const planned = plan();
      if (planned.commands.length === 0) return 'none';
      const started = performance.now();
      try {
        await this.#nft.apply(this.#state.table, planned.commands);
        this.#state = commitPlan(this.#state, planned);
        this.#record('incremental', 'ok', started);
        return 'incremental';
      } catch (err) {
        this.#record('incremental', 'error', started);
        this.#log.warn({ err, commands: planned.commands.length }, 'incremental load balancer update failed; reloading the whole table');
      }
    }
    return this.#loadWhole(whole());
  }

  async #loadWhole(desired: DesiredState): Promise<SyncMode> {
    const full = fullRuleset(desired, this.#state.table);
    const started = performance.now();
    try {
      await this.#nft.load(full.script);
    } catch (err) {
      this.#loaded = false;
      this.#record('full', 'error', started);
      throw err;
    }
    this.#state = owned(full.state);
    this.#loaded = true;
    this.#record('full', 'ok', started);
    this.#log.info({ services: full.state.services.size }, 'load balancer table loaded');
    return 'full';
  }

  #record(mode: 'full' | 'incremental', result: 'ok' | 'error', started: number): void {
    if (!this.#metrics) return;
    this.#metrics.syncs.inc({ mode, result });
    if (result === 'ok') {
      this.#metrics.syncSeconds.observe({ mode }, (performance.now() - started) / 1000);
      this.#metrics.services.set(this.#state.services.size);
      let n = 0;
      for (const s of this.#state.services.values()) n += s.backends.length;
      this.#metrics.backends.set(n);
    }
  }


  /** Take the whole table out of the kernel (a single-node Strata that stops as a whole). */
  removeAll(): Promise<void> {
    const run = this.#queue.then(async () => {
      const table = this.#state.table;
      await this.#nft.load(`add table inet ${table}\ndelete table inet ${table}\nadd table ip ${table}\ndelete table ip ${table}\n`);
      this.#state = owned(emptyState(table));
      this.#loaded = false;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#nft.close();
  }
}

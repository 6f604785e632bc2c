/**
 * Where an agent's policy enforcement gets its data: the masters' policy
 * view (`GET /networking/api/v1/policy-view?index=N&wait=S`, a blocking
 * query answered from store watches): every policy and every live task
 * with a container IP. Several masters: a failed call moves to the next
 * (`MasterUrls`). Until the first answer the kernel keeps whatever table
 * it holds (an agent restart neither opens nor blackholes anything); every
 * `reconcileSeconds` the whole table is loaded again, repairing hand edits.
 */
import type { Registry } from 'prom-client';
import type { MasterUrls } from '../../scheduler/agent/masters.ts';
import type { NftRunner } from '../l4lb/nft.ts';
import type { PolicyInputs } from './compile.ts';
import type { DropCounterReader } from './counter.ts';
import { PolicyManager, type PolicyLogger } from './manager.ts';

export interface PolicyFeedOptions {
  readonly masters: MasterUrls;
  readonly token: () => Promise<string>;
  readonly signal: AbortSignal;
  /** Longest blocking wait asked of a master (seconds; default 30). */
  readonly waitSeconds?: number;
  readonly onError?: (err: unknown, masterUrl: string) => void;
}

/** Yield the policy view each time it changes (first at once), until `signal` aborts. Retries with backoff, moving across masters. */
export async function* followPolicyView(options: PolicyFeedOptions): AsyncGenerator<PolicyInputs> {
  let index = 0;
  let backoffMs = 250;
  while (!options.signal.aborted) {
    const master = options.masters.current;
    try {
      const url = `${master}/networking/api/v1/policy-view?index=${index}&wait=${options.waitSeconds ?? 30}`;
      const res = await fetch(url, { headers: { authorization: `token=${await options.token()}` }, signal: options.signal });
      if (!res.ok) throw new Error(`GET /networking/api/v1/policy-view answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as { index: number } & PolicyInputs;
      backoffMs = 250;
      const changed = body.index !== index || index === 0;
      index = body.index;
      if (changed) yield { policies: body.policies, endpoints: body.endpoints };
    } catch (err) {
      if (options.signal.aborted) return;
      options.onError?.(err, master);
      options.masters.failed(master);
      await new Promise((r) => setTimeout(r, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 10_000);
    }
  }
}

export interface PolicyAgentOptions {
  readonly masters: MasterUrls;
  readonly token: () => Promise<string>;
  readonly nft: NftRunner;
  readonly logger: PolicyLogger;
  readonly metrics?: Registry;
  readonly table?: string;
  /** Reload the whole table this often, repairing hand edits (seconds; default 60; 0 = never). */
  readonly reconcileSeconds?: number;
  readonly waitSeconds?: number;
  /** Read the kernel's drop counter at each reconcile (for `strata_policy_dropped_packets`). */
  readonly readDrops?: DropCounterReader;
}

export interface PolicyAgent {
  readonly manager: PolicyManager;
  /** Resolves after the first successful sync. */
  readonly ready: Promise<void>;
  /** Stop following; with `removeRules`, also take the table out of the kernel. */
  close(options?: { readonly removeRules?: boolean }): Promise<void>;
}

/** Follow the masters' policy view and keep this host's policy table in step. */
export function startPolicyAgent(options: PolicyAgentOptions): PolicyAgent {
  const stop = new AbortController();
  const manager = new PolicyManager({ nft: options.nft, logger: options.logger, ...(options.metrics ? { metrics: options.metrics } : {}), ...(options.table ? { table: options.table } : {}) });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let latest: PolicyInputs | undefined;
  const syncLatest = async (): Promise<void> => {
    if (!latest) return;
    try {
      await manager.sync(latest);
      markReady();
    } catch (err) {
      options.logger.error({ err }, 'policy table sync failed; the kernel keeps its previous table; retrying with the next change or reconcile');
    }
  };
  const reconcileMs = (options.reconcileSeconds ?? 60) * 1000;
  const timer = reconcileMs > 0
    ? setInterval(() => {
        if (!latest) return;
        void (async () => {
          if (options.readDrops && manager.current) {
            await options.readDrops(manager.table).then((n) => manager.recordDrops(n), (err: unknown) => options.logger.warn({ err }, 'cannot read the policy drop counter'));
          }
          manager.invalidate();
          await syncLatest();
        })();
      }, reconcileMs)
    : undefined;
  timer?.unref();
  const loop = (async () => {
    for await (const view of followPolicyView({
      masters: options.masters, token: options.token, signal: stop.signal,
      ...(options.waitSeconds === undefined ? {} : { waitSeconds: options.waitSeconds }),
      onError: (err, masterUrl) => options.logger.warn({ err, masterUrl }, 'cannot read the policy view from the master; retrying'),
    })) {
      latest = view;
      await syncLatest();
    }
  })();
  return {
    manager,
    ready,
    async close(closeOptions = {}) {
      stop.abort();
      if (timer) clearInterval(timer);
      await loop.catch(() => undefined);
      if (closeOptions.removeRules) await manager.removeAll().catch((err: unknown) => options.logger.warn({ err }, 'cannot remove the policy table'));
      await manager.close();
    },
  };
}

/**
 * Where an agent's load balancer gets its data: the master's VIP view as a
 * blocking query (`GET /networking/api/v1/vips?index=N&wait=S`), the same
 * way the agent follows its tasks. Chosen over an xDS stream of our own
 * server because the agent already holds a token for the master's API, the
 * view carries exactly what the kernel needs (VIP address, protocol, port,
 * backend address and weight, agent reachability), and the master computes
 * it from store watches, so a change reaches the agent in one round trip
 * with no polling interval. With several masters (`--agent-master-url
 * m1,m2,...`) it follows one and moves to the next when that one cannot be
 * reached, does not answer in time or answers 5xx (`common/masters.ts`).
 */
import type { FetchLike } from '../../security/mtls/client.ts';
import type { Registry } from 'prom-client';
import { fetchFromMaster, type MasterChoice } from '../../common/masters.ts';
import { L4lbManager, type L4lbLogger } from './manager.ts';
import type { NftRunner } from './nft.ts';
import { servicesFromVips, type VipViewInput } from './services.ts';

export interface VipFeedOptions {
  /** The masters to follow (an agent's shared `MasterUrls`). */
  readonly masters: MasterChoice;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  readonly signal: AbortSignal;
  /** Longest blocking wait asked of the master (seconds; default 30). */
  readonly waitSeconds?: number;
  readonly onError?: (err: unknown) => void;
}

type FeedVip = VipViewInput;

/** Yield the VIP view each time it changes (first at once), until `signal` aborts. Retries with backoff. */
export async function* followVips(options: VipFeedOptions): AsyncGenerator<readonly FeedVip[]> {
  let index = 0;
  let backoffMs = 250;
  while (!options.signal.aborted) {
    try {
      const waitSeconds = options.waitSeconds ?? 30;
      const res = await fetchFromMaster(options.masters, `/networking/api/v1/vips?index=${index}&wait=${waitSeconds}`, {
        headers: { authorization: `token=${await options.token()}` },
        signal: options.signal,
        fetch: options.fetch,
        // A master that accepts the connection but never answers counts as down.
        timeoutMs: (waitSeconds + 15) * 1000,
      });
      if (!res.ok) throw new Error(`GET ${options.masters.current}/networking/api/v1/vips answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as { index: number; vips: FeedVip[] };
      backoffMs = 250;
      const changed = body.index !== index || index === 0;
      index = body.index;
      if (changed) yield body.vips;
    } catch (err) {
      if (options.signal.aborted) return;
      options.onError?.(err);
      await new Promise((r) => setTimeout(r, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 10_000);
    }
  }
}

export interface L4lbAgentOptions {
  readonly masters: MasterChoice;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  readonly agentId: string;
  readonly nft: NftRunner;
  readonly logger: L4lbLogger;
  readonly metrics?: Registry;
  readonly table?: string;
  /** Reload the whole table this often, repairing hand edits (seconds; default 60; 0 = never). */
  readonly reconcileSeconds?: number;
  readonly waitSeconds?: number;
}

export interface L4lbAgent {
  readonly manager: L4lbManager;
  /** Resolves after the first successful sync. */
  readonly ready: Promise<void>;
  /** Stop following; with `removeRules`, also take the table out of the kernel. */
  close(options?: { readonly removeRules?: boolean }): Promise<void>;
}

/** Follow the master's VIPs and keep this host's kernel load balancer in step. */
export function startL4lbAgent(options: L4lbAgentOptions): L4lbAgent {
  const stop = new AbortController();
  const manager = new L4lbManager({ nft: options.nft, logger: options.logger, ...(options.metrics ? { metrics: options.metrics } : {}), ...(options.table ? { table: options.table } : {}) });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let latest: readonly FeedVip[] | undefined;
  const syncLatest = async (): Promise<void> => {
    if (!latest) return;
    const vips = latest;
    const localBackendIps = [...new Set(vips.flatMap((v) => v.backends.filter((b) => b.agentId === options.agentId).map((b) => b.ip)))];
    try {
      await manager.sync({ services: servicesFromVips(vips), localBackendIps });
      markReady();
    } catch (err) {
      options.logger.error({ err }, 'load balancer sync failed; retrying with the next change or reconcile');
    }
  };
  const reconcileMs = (options.reconcileSeconds ?? 60) * 1000;
  const timer = reconcileMs > 0
    ? setInterval(() => {
        manager.invalidate();
        void syncLatest();
      }, reconcileMs)
    : undefined;
  timer?.unref();
  const loop = (async () => {
    for await (const vips of followVips({
      masters: options.masters, token: options.token, signal: stop.signal,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.waitSeconds === undefined ? {} : { waitSeconds: options.waitSeconds }),
      onError: (err) => options.logger.warn({ err }, 'cannot read VIPs from the master; retrying'),
    })) {
      latest = vips;
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
      if (closeOptions.removeRules) {
        await manager.removeAll().catch((err: unknown) => options.logger.warn({ err }, 'cannot remove the load balancer table'));
      }
      await manager.close();
    },
  };
}

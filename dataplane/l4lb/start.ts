/**
 * Starting an agent's kernel load balancer from the configuration:
 * `dataplane.l4lb` = `on` (fail if it cannot run), `off`, or `auto` (run
 * when this process is root and nft is installed; otherwise say why not and
 * go on without it).
 */
import type { FetchLike } from '../../security/mtls/client.ts';
import { existsSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { MasterChoice } from '../../common/masters.ts';
import type { StrataConfig } from '../../control-plane/config/schema.ts';
import { startL4lbAgent, type L4lbAgent } from './follow.ts';
import { l4lbMetrics, type L4lbLogger } from './manager.ts';
import { NftProcess, defaultNftPath } from './nft.ts';
import { ensureLocalRoute } from './routes.ts';

/** Why the load balancer cannot run here, or `undefined` when it can. */
export function l4lbUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(defaultNftPath())) return 'nft is not installed (Debian: apt-get install nftables)';
  return undefined;
}

export async function startConfiguredL4lb(options: {
  readonly config: Readonly<StrataConfig>;
  readonly masters: MasterChoice;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  readonly agentId: string;
  readonly logger: L4lbLogger;
  readonly metrics?: Registry;
}): Promise<L4lbAgent | undefined> {
  const mode = options.config.dataplane.l4lb;
  if (mode === 'off') return undefined;
  const why = l4lbUnavailable();
  if (why !== undefined) {
    if (mode === 'on') throw new Error(`dataplane.l4lb is on but the load balancer cannot run: ${why}`);
    options.logger.warn({ why }, 'VIP load balancer off: VIPs are not reachable from this host (set --dataplane-l4lb off to silence this)');
    return undefined;
  }
  await ensureLocalRoute(options.config.vips.ipv4Range);
  // IPv6 VIPs need IPv6 on the host; without it the IPv4 ones still work.
  await ensureLocalRoute(options.config.vips.ipv6Range).catch((err: unknown) => options.logger.warn({ err }, 'IPv6 VIPs are not reachable from this host'));
  const metrics = options.metrics ? l4lbMetrics(options.metrics) : undefined;
  return startL4lbAgent({
    masters: options.masters,
    token: options.token,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    agentId: options.agentId,
    nft: new NftProcess({ onShellStart: () => metrics?.nftShellStarts.inc() }),
    logger: options.logger,
    reconcileSeconds: options.config.dataplane.reconcileSeconds,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
}

/**
 * Starting an agent's policy enforcement from the configuration:
 * `dataplane.policy` = `on` (fail if it cannot run), `off`, or `auto` (run
 * when this process is root and nft is installed; otherwise say why not and
 * go on: policies are then not enforced on this host).
 */
import type { Registry } from 'prom-client';
import type { StrataConfig } from '../../control-plane/config/schema.ts';
import type { MasterUrls } from '../../scheduler/agent/masters.ts';
import { l4lbUnavailable } from '../l4lb/start.ts';
import { NftProcess } from '../l4lb/nft.ts';
import { nftDropCounter } from './counter.ts';
import { startPolicyAgent, type PolicyAgent } from './follow.ts';
import type { PolicyLogger } from './manager.ts';

export async function startConfiguredPolicy(options: {
  readonly config: Readonly<StrataConfig>;
  readonly masters: MasterUrls;
  readonly token: () => Promise<string>;
  readonly logger: PolicyLogger;
  readonly metrics?: Registry;
}): Promise<PolicyAgent | undefined> {
  const mode = options.config.dataplane.policy;
  if (mode === 'off') return undefined;
  const why = l4lbUnavailable();
  if (why !== undefined) {
    if (mode === 'on') throw new Error(`dataplane.policy is on but network policy cannot be enforced: ${why}`);
    options.logger.warn({ why }, 'network policy not enforced on this host (set --dataplane-policy off to silence this)');
    return undefined;
  }
  return startPolicyAgent({
    masters: options.masters,
    token: options.token,
    nft: new NftProcess(),
    logger: options.logger,
    reconcileSeconds: options.config.dataplane.reconcileSeconds,
    readDrops: nftDropCounter(),
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
}

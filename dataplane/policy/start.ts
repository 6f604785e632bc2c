/**
 * Starting an agent's policy enforcement from the configuration:
 * `dataplane.policy` = `on` (fail if it cannot run), `off`, or `auto` (run
 * when this process is root and nft is installed; otherwise say why not and
 * go on: policies are then not enforced on this host).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Registry } from 'prom-client';
import type { StrataConfig } from '../../control-plane/config/schema.ts';
import type { MasterUrls } from '../../scheduler/agent/masters.ts';
import { l4lbUnavailable } from '../l4lb/start.ts';
import { NftProcess } from '../l4lb/nft.ts';
import { nftDropCounter } from './counter.ts';
import { startPolicyAgent, type PolicyAgent } from './follow.ts';
import type { PolicyLogger } from './manager.ts';

const BRIDGE_SYSCTLS = ['net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables'];

/**
 * Two tasks on one agent's overlay bridge talk across the bridge, not
 * through the IP forward path, so the policy table sees them only with
 * br_netfilter on and `bridge-nf-call-ip(6)tables` = 1 (set here
 * explicitly rather than inherited, as net-calibration.md advises). Loads
 * the module once if needed. Returns why it could not, or `undefined`.
 */
export async function ensureBridgeFiltering(procSys = '/proc/sys'): Promise<string | undefined> {
  try {
    if (!existsSync(`${procSys}/${BRIDGE_SYSCTLS[0]}`)) await promisify(execFile)('modprobe', ['br_netfilter']);
    for (const key of BRIDGE_SYSCTLS) await writeFile(`${procSys}/${key}`, '1\n');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

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
  const bridgeProblem = await ensureBridgeFiltering();
  if (bridgeProblem !== undefined) options.logger.warn({ why: bridgeProblem }, 'br_netfilter is off: traffic between tasks on the same agent and bridge is not filtered by policy');
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

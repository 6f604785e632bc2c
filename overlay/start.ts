/**
 * Starting an agent's overlay from the configuration: `overlay.enabled` =
 * `on` (fail if it cannot run), `off`, or `auto` (run when this process is
 * root; otherwise say why not and go on without it).
 */
import type { FetchLike } from '../security/mtls/client.ts';
import type { Registry } from 'prom-client';
import type { MasterChoice } from '../common/masters.ts';
import type { StrataConfig } from '../control-plane/config/schema.ts';
import { startOverlayAgent, type OverlayAgent, type OverlayLogger } from './agent.ts';
import { NetlinkRtnl } from './rtnl/socket.ts';

/** Why the overlay cannot run here, or `undefined` when it can. */
export function overlayUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (creating VXLAN devices needs CAP_NET_ADMIN)';
  return undefined;
}

export function startConfiguredOverlay(options: {
  readonly config: Readonly<StrataConfig>;
  readonly masters: MasterChoice;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  readonly agentId: string;
  readonly logger: OverlayLogger;
  readonly metrics?: Registry;
}): OverlayAgent | undefined {
  const mode = options.config.overlay.enabled;
  if (mode === 'off') return undefined;
  const why = overlayUnavailable();
  if (why !== undefined) {
    if (mode === 'on') throw new Error(`overlay.enabled is on but the overlay cannot run: ${why}`);
    options.logger.warn({ why }, 'overlay off: tasks on virtual networks cannot reach other agents (set --overlay-enabled off to silence this)');
    return undefined;
  }
  return startOverlayAgent({
    masters: options.masters,
    token: options.token,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    agentId: options.agentId,
    rtnl: new NetlinkRtnl(),
    logger: options.logger,
    reconcileSeconds: options.config.overlay.reconcileSeconds,
    vxlanPort: options.config.overlay.vxlanPort,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
}

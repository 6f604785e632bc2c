/**
 * The agent's `TaskNetworking` (scheduler/agent/task-networking.ts) on the
 * overlay: a task's container IP comes from the masters
 * (`POST /networking/api/v1/agents/{id}/overlay/addresses`, idempotent per
 * task, so a retried launch gets the same address), its link (bridge,
 * gateway, prefix, MTU) from this agent's overlay, and its namespace and
 * veth from `ContainerNetworks`. Bound to the agent id and the overlay once
 * both exist (the agent registers first); attaches wait for that and for the
 * overlay's first reconcile.
 */
import type { FetchLike } from '../security/mtls/client.ts';
import { existsSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { StrataError } from '../common/errors.ts';
import type { OverlayAddress, TaskIpAddress } from '../control-plane/model/schemas.ts';
import type { TaskNetworking } from '../scheduler/agent/task-networking.ts';
import type { OverlayAgent } from './agent.ts';
import { ContainerNetworks, type ContainerAddress } from './attach.ts';
import type { DesiredBridge } from './desired.ts';
import { nativeNetns, taskNetnsPath, type NetnsOps } from './netns.ts';
import { NetlinkRtnl, type Rtnl } from './rtnl/socket.ts';

export interface OverlayTaskNetworkingOptions {
  /** The master to ask (the current one of the agent's list). */
  readonly masterUrl: () => string;
  readonly token: () => Promise<string>;
  readonly metrics?: Registry;
  /** How long an attach waits for the overlay's first reconcile (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** Tests: the namespace operations and the host socket (default: the addon, a socket in this process's namespace). */
  readonly netns?: NetnsOps;
  readonly host?: () => Rtnl;
  readonly netnsDir?: string;
}

export interface OverlayTaskNetworking extends TaskNetworking {
  /** Once the agent is registered and its overlay started (`undefined` when the overlay is off here). */
  bind(binding: { readonly agentId: string; readonly overlay: OverlayAgent | undefined; readonly fetch?: FetchLike }): void;
  close(): void;
}

/** The container's addresses on a bridge: each address the master gave whose family the bridge has a gateway of, IPv4 first. */
export function containerAddresses(bridge: DesiredBridge, given: readonly Pick<OverlayAddress, 'ip'>[]): ContainerAddress[] {
  const out: ContainerAddress[] = [];
  const v4 = given.find((a) => !a.ip.includes(':'));
  const v6 = given.find((a) => a.ip.includes(':'));
  if (v4 && bridge.gateway !== undefined && bridge.prefixLength !== undefined) out.push({ ip: v4.ip, prefixLength: bridge.prefixLength, gateway: bridge.gateway });
  if (v6 && bridge.gateway6 !== undefined && bridge.prefixLength6 !== undefined) out.push({ ip: v6.ip, prefixLength: bridge.prefixLength6, gateway: bridge.gateway6 });
  return out;
}

export function overlayTaskNetworking(options: OverlayTaskNetworkingOptions): OverlayTaskNetworking {
  type Binding = { agentId: string; overlay: OverlayAgent | undefined; fetch?: FetchLike };
  let bound: (b: Binding) => void = () => {};
  const binding = new Promise<Binding>((resolve) => {
    bound = resolve;
  });
  let netns: NetnsOps | undefined = options.netns;
  let host: Rtnl | undefined;
  let networks: ContainerNetworks | undefined;
  const containers = (): ContainerNetworks => {
    netns ??= nativeNetns();
    host ??= options.host ? options.host() : new NetlinkRtnl();
    networks ??= new ContainerNetworks({ host, netns, ...(options.netnsDir ? { netnsDir: options.netnsDir } : {}), ...(options.metrics ? { metrics: options.metrics } : {}) });
    return networks;
  };

  const askAddress = async (agentId: string, network: string, taskId: string): Promise<OverlayAddress[]> => {
    const path = `/networking/api/v1/agents/${encodeURIComponent(agentId)}/overlay/addresses`;
    // The agent's own fetch once bound: over mTLS with its component certificate when the masters require it.
    const call = (await binding).fetch ?? fetch;
    const res = await call(`${options.masterUrl().replace(/\/$/, '')}${path}`, {
      method: 'POST',
      headers: { authorization: `token=${await options.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ network, taskId }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await res.json().catch(() => ({}))) as { addresses?: OverlayAddress[]; code?: string; message?: string };
    if (!res.ok || !Array.isArray(body.addresses)) {
      const code = body.code === 'OVERLAY_EXHAUSTED' || body.code === 'OVERLAY_NO_LEASE' || body.code === 'RECORD_NOT_FOUND' ? body.code : 'OVERLAY_ATTACH';
      throw new StrataError(code, `no container IP on network ${JSON.stringify(network)}: ${body.message ?? `the master answered ${res.status}`}`);
    }
    return body.addresses;
  };

  return {
    bind: (b) => bound(b),
    async attach(taskId, network) {
      const { agentId, overlay } = await binding;
      if (!overlay) throw new StrataError('OVERLAY_ATTACH', `network ${JSON.stringify(network)}: the overlay is off on this agent (it needs root, or --overlay-enabled on), so tasks cannot join virtual networks here`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        overlay.ready,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new StrataError('OVERLAY_ATTACH', `network ${JSON.stringify(network)}: this agent's overlay has not completed a reconcile in ${(options.readyTimeoutMs ?? 60_000) / 1000} s`)), options.readyTimeoutMs ?? 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      const addresses = await askAddress(agentId, network, taskId);
      const link = overlay.network(network);
      if (!link) throw new StrataError('OVERLAY_ATTACH', `network ${JSON.stringify(network)} has no bridge on this agent yet (its subnet came after the last reconcile; the next one programs it)`);
      const chosen = containerAddresses(link, addresses);
      if (chosen.length === 0) throw new StrataError('OVERLAY_ATTACH', `network ${JSON.stringify(network)}: the master's addresses (${addresses.map((a) => a.ip).join(', ') || 'none'}) are of no family the bridge ${link.name} has a gateway of`);
      const attached = await containers().attachTask(taskId, { bridge: link.name, addresses: chosen, mtu: link.mtu });
      const ipAddresses: TaskIpAddress[] = chosen.map((a) => ({ ipAddress: a.ip, protocol: a.ip.includes(':') ? 'IPv6' : 'IPv4' }));
      return { netnsPath: attached.netnsPath, ipAddresses };
    },
    async detach(taskId) {
      if (!existsSync(taskNetnsPath(taskId, options.netnsDir))) return; // never attached here (host networking), or already gone
      await containers().detachTask(taskId);
    },
    within(path, fn) {
      netns ??= nativeNetns();
      return netns.within(path, fn);
    },
    close() {
      host?.close();
    },
  };
}

/**
 * The overlay on an agent: asks the master for this agent's lease (which
 * allocates what it lacks), reads every agent's lease and the networks,
 * and reconciles the kernel; again every `reconcileSeconds`, so new agents
 * and networks are followed and hand edits are repaired. A master that
 * cannot be reached leaves the kernel as it is (working connections stay);
 * with several masters the next round asks the next one
 * (`common/masters.ts`).
 */
import type { FetchLike } from '../security/mtls/client.ts';
import type { Registry } from 'prom-client';
import { fetchFromMaster, type MasterChoice } from '../common/masters.ts';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { desiredOverlay, type DesiredNetwork } from './desired.ts';
import { OverlayManager } from './manager.ts';
import { delLink, dump, decodeLink } from './rtnl/codec.ts';
import type { Rtnl } from './rtnl/socket.ts';
import { bridgeName, vxlanName } from './desired.ts';

export interface OverlayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface OverlayAgentOptions {
  /** The masters to ask (an agent's shared `MasterUrls`). */
  readonly masters: MasterChoice;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  readonly agentId: string;
  readonly rtnl: Rtnl;
  readonly logger: OverlayLogger;
  readonly metrics?: Registry;
  readonly reconcileSeconds?: number;
  readonly vxlanPort?: number;
  /** Turn on IPv4 forwarding in this namespace (default true; tests with a fake kernel pass false). */
  readonly enableForwarding?: boolean;
}

export interface OverlayAgent {
  readonly manager: OverlayManager;
  /** Resolves after the first reconcile without failures. */
  readonly ready: Promise<void>;
  /** The last lease the master gave this agent. */
  lease(): OverlayLease | undefined;
  /** The bridge of `network` on this agent as last reconciled (name, MTU, IPv4 and/or IPv6 gateway and prefix length), if it has a subnet here. */
  network(network: string): DesiredNetwork['bridge'] | undefined;
  /** Stop; with `removeDevices`, also delete this agent's VXLAN devices and bridges (and with them its routes and entries). */
  close(options?: { readonly removeDevices?: boolean }): Promise<void>;
}

async function call<T>(options: OverlayAgentOptions, method: 'GET' | 'PUT', path: string, signal: AbortSignal, body?: object): Promise<T> {
  const res = await fetchFromMaster(options.masters, path, {
    method,
    headers: { authorization: `token=${await options.token()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal,
    fetch: options.fetch,
    timeoutMs: 30_000,
  });
  if (!res.ok) throw new Error(`${method} ${options.masters.current}${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return (await res.json()) as T;
}

export function startOverlayAgent(options: OverlayAgentOptions): OverlayAgent {
  const stop = new AbortController();
  const manager = new OverlayManager({ rtnl: options.rtnl, enableForwarding: options.enableForwarding ?? true, ...(options.metrics ? { metrics: options.metrics } : {}) });
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let current: OverlayLease | undefined;
  let lastDesired: ReturnType<typeof desiredOverlay>['desired'] | undefined;

  const round = async (): Promise<void> => {
    const mine = await call<{ lease: OverlayLease; exhausted: { network: string; message: string }[] }>(options, 'PUT', `/networking/api/v1/agents/${encodeURIComponent(options.agentId)}/overlay`, stop.signal, {});
    current = mine.lease;
    for (const e of mine.exhausted) options.logger.error({ network: e.network }, e.message);
    const [{ leases }, { networks }] = await Promise.all([
      call<{ leases: OverlayLease[] }>(options, 'GET', '/networking/api/v1/overlay/leases', stop.signal),
      call<{ networks: Network[] }>(options, 'GET', '/networking/api/v1/networks', stop.signal),
    ]);
    const { desired, problems } = desiredOverlay({ agentId: options.agentId, leases, networks, ...(options.vxlanPort ? { vxlanPort: options.vxlanPort } : {}) });
    for (const p of problems) options.logger.warn({}, p);
    lastDesired = desired;
    const result = await manager.reconcile(desired);
    if (result.ops.length > 0) options.logger.info({ changes: result.ops.length, failures: result.failures.length }, 'overlay reconciled');
    for (const f of result.failures) options.logger.error({ op: f.op.op, errno: f.errno }, f.error);
    if (result.failures.length === 0) markReady();
  };

  const loop = (async () => {
    const everyMs = (options.reconcileSeconds ?? 15) * 1000;
    while (!stop.signal.aborted) {
      try {
        await round();
      } catch (err) {
        if (stop.signal.aborted) return;
        options.logger.warn({ err }, 'overlay round failed; the kernel is left as it is until the next one');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, everyMs);
        stop.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  })();

  return {
    manager,
    ready,
    lease: () => current,
    network: (name) => lastDesired?.networks.find((n) => n.network === name)?.bridge,
    async close(closeOptions = {}) {
      stop.abort();
      await loop.catch(() => undefined);
      if (closeOptions.removeDevices && lastDesired) {
        const names = new Set(lastDesired.networks.flatMap((n) => [vxlanName(n.vxlan.vni), bridgeName(n.network)]));
        const links = (await options.rtnl.dump(dump.links())).map(decodeLink);
        for (const l of links.filter((x) => names.has(x.name))) {
          await options.rtnl.request(delLink(l.index, l.name)).catch((err: unknown) => options.logger.warn({ err }, `cannot remove ${l.name}`));
        }
      }
      options.rtnl.close();
    },
  };
}

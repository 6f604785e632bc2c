/**
 * The overlay of one agent host: makes the kernel match the desired state.
 * Each `reconcile` reads the kernel (five dumps), plans with the pure
 * `plan.ts`, and sends only the difference through rtnetlink, many
 * requests in flight at once (bounded by the socket's window). It is
 * idempotent: run twice, the second sends nothing; after an agent restart
 * nothing that matches is touched; whatever was removed or changed by hand
 * is put back. A request the kernel refuses does not stop the others; the
 * failures are returned (and counted) and the next reconcile tries again.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isStrataError } from '../common/errors.ts';
import type { DesiredOverlay } from './desired.ts';
import { planEntries, planLinks, toRequest, type KernelOp, type Observed } from './plan.ts';
import { AF_INET6, decodeAddress, decodeLink, decodeNeighbour, decodeRoute, dump, type LinkInfo } from './rtnl/codec.ts';
import type { Rtnl } from './rtnl/socket.ts';

export interface OverlayMetrics {
  readonly reconciles: Counter<'result'>;
  readonly ops: Counter<'op'>;
  readonly failures: Counter<'op'>;
  readonly seconds: Histogram;
  readonly peers: Gauge;
  readonly peerSubnets: Gauge<'family'>;
}
const byRegistry = new WeakMap<Registry, OverlayMetrics>();

export function overlayMetrics(registry: Registry): OverlayMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = {
      reconciles: new Counter({ name: 'strata_overlay_reconciles_total', help: 'Overlay kernel reconciles, by result (ok, partial, error)', labelNames: ['result'], registers: [registry] }),
      ops: new Counter({ name: 'strata_overlay_kernel_ops_total', help: 'Kernel changes the overlay made, by operation (createVxlan, replaceRoute, ...)', labelNames: ['op'], registers: [registry] }),
      failures: new Counter({ name: 'strata_overlay_kernel_failures_total', help: 'Kernel changes the kernel refused, by operation', labelNames: ['op'], registers: [registry] }),
      seconds: new Histogram({ name: 'strata_overlay_reconcile_seconds', help: 'Time of one overlay reconcile', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
      peers: new Gauge({ name: 'strata_overlay_peers', help: 'Remote agents programmed (summed over networks)', registers: [registry] }),
      peerSubnets: new Gauge({ name: 'strata_overlay_peer_subnets', help: 'Remote agents\' subnets routed through the VXLAN devices, by family (ipv4, ipv6)', labelNames: ['family'], registers: [registry] }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

export interface ReconcileResult {
  /** Every change sent, in order of planning. */
  readonly ops: readonly KernelOp[];
  /** The changes the kernel refused, with its reason. */
  readonly failures: readonly { readonly op: KernelOp; readonly error: string; readonly errno?: number }[];
}

export interface OverlayManagerOptions {
  readonly rtnl: Rtnl;
  readonly metrics?: Registry;
  /** Turn on IPv4 forwarding in this network namespace (the overlay routes between bridge and VXLAN). Default true. */
  readonly enableForwarding?: boolean;
}

export class OverlayManager {
  readonly #rtnl: Rtnl;
  readonly #metrics: OverlayMetrics | undefined;
  readonly #forwarding: boolean;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: OverlayManagerOptions) {
    this.#rtnl = options.rtnl;
    this.#metrics = options.metrics ? overlayMetrics(options.metrics) : undefined;
    this.#forwarding = options.enableForwarding ?? true;
  }

  /** What the kernel holds now. */
  async observe(links?: readonly LinkInfo[]): Promise<Observed> {
    const [l, addresses, routes, neighbours, fdb] = await Promise.all([
      links ? Promise.resolve(links) : this.#rtnl.dump(dump.links()).then((ps) => ps.map(decodeLink)),
      this.#rtnl.dump(dump.addresses()).then((ps) => ps.map(decodeAddress).filter((a) => a !== undefined)),
      Promise.all([this.#rtnl.dump(dump.routes()), this.#rtnl.dump(dump.routes(AF_INET6))]).then((ps) => ps.flat().map(decodeRoute).filter((r) => r !== undefined)),
      Promise.all([this.#rtnl.dump(dump.neighbours()), this.#rtnl.dump(dump.neighbours(AF_INET6))]).then((ps) => ps.flat().map(decodeNeighbour)),
      this.#rtnl.dump(dump.fdb()).then((ps) => ps.map(decodeNeighbour)),
    ]);
    return { links: l, addresses, routes, neighbours, fdb };
  }

  async #apply(ops: readonly KernelOp[], sequential: boolean, failures: { op: KernelOp; error: string; errno?: number }[]): Promise<void> {
    const one = async (op: KernelOp): Promise<void> => {
      try {
        await this.#rtnl.request(toRequest(op));
        this.#metrics?.ops.inc({ op: op.op });
      } catch (err) {
        this.#metrics?.failures.inc({ op: op.op });
        const errno = isStrataError(err, 'OVERLAY_NETLINK') ? (err.details as { errno?: number } | undefined)?.errno : undefined;
        failures.push({ op, error: (err as Error).message, ...(errno !== undefined ? { errno } : {}) });
      }
    };
    if (sequential) for (const op of ops) await one(op);
    else await Promise.all(ops.map(one)); // the socket bounds how many are in flight
  }

  /** Make the kernel match `desired`. Calls are serialized. */
  reconcile(desired: DesiredOverlay): Promise<ReconcileResult> {
    const run = this.#queue.then(() => this.#reconcile(desired));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reconcile(desired: DesiredOverlay): Promise<ReconcileResult> {
    const stop = this.#metrics?.seconds.startTimer();
    const failures: { op: KernelOp; error: string; errno?: number }[] = [];
    try {
      if (this.#forwarding && desired.networks.length > 0) await ensureForwarding(desired.networks.some((n) => n.bridge.gateway6 !== undefined));
      let links = (await this.#rtnl.dump(dump.links())).map(decodeLink);
      const linkOps = planLinks(desired, links);
      await this.#apply(linkOps, true, failures);
      if (linkOps.length > 0) links = (await this.#rtnl.dump(dump.links())).map(decodeLink);
      const entryOps = planEntries(desired, await this.observe(links));
      await this.#apply(entryOps, false, failures);
      this.#metrics?.peers.set(desired.networks.reduce((n, x) => n + x.peers.length, 0));
      this.#metrics?.peerSubnets.set({ family: 'ipv4' }, desired.networks.reduce((n, x) => n + x.peers.filter((p) => p.subnet !== undefined).length, 0));
      this.#metrics?.peerSubnets.set({ family: 'ipv6' }, desired.networks.reduce((n, x) => n + x.peers.filter((p) => p.subnet6 !== undefined).length, 0));
      this.#metrics?.reconciles.inc({ result: failures.length === 0 ? 'ok' : 'partial' });
      return { ops: [...linkOps, ...entryOps], failures };
    } catch (err) {
      this.#metrics?.reconciles.inc({ result: 'error' });
      throw err;
    } finally {
      stop?.();
    }
  }
}

const FORWARD = '/proc/sys/net/ipv4/ip_forward';
const FORWARD6 = '/proc/sys/net/ipv6/conf/all/forwarding';

const CONF6 = '/proc/sys/net/ipv6/conf';

/**
 * IPv4 forwarding on in this process's network namespace (a file write, not
 * a process), and with `ipv6` IPv6 forwarding too (only when a network
 * here has an IPv6 subnet). A host turned into an IPv6 router stops
 * accepting router advertisements where `accept_ra` is 1, and would lose a
 * default route it learnt from them; so before turning IPv6 forwarding on,
 * those interfaces get `accept_ra` 2 (accept them even when forwarding).
 */
export async function ensureForwarding(ipv6 = false): Promise<void> {
  const now = await readFile(FORWARD, 'utf8').catch(() => '');
  if (now.trim() !== '1') await writeFile(FORWARD, '1');
  if (!ipv6) return;
  const now6 = await readFile(FORWARD6, 'utf8').catch(() => '');
  if (now6.trim() === '1') return;
  for (const name of await readdir(CONF6).catch(() => [] as string[])) {
    if (name === 'all' || name === 'default' || name === 'lo') continue;
    const file = `${CONF6}/${name}/accept_ra`;
    if ((await readFile(file, 'utf8').catch(() => '')).trim() === '1') await writeFile(file, '2').catch(() => undefined);
  }
  await writeFile(FORWARD6, '1');
}

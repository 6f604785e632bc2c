/**
 * Attaching a container's network namespace to an overlay bridge: a veth
 * pair created with one end already inside the namespace (one request),
 * the host end up and enslaved to the network's bridge (`m-<network>`),
 * and inside the namespace `lo` up, the container IP, the link up with the
 * network's MTU, and a default route via the bridge's gateway address.
 * Seven rtnetlink requests and two small dumps; no `ip` process. A network
 * with an IPv6 subnet adds the IPv6 address (`nodad`) and an IPv6 default
 * route via the bridge's IPv6 gateway (an IPv6-only network has only those).
 *
 * `ContainerNetworks` adds the namespaces themselves (created per task at
 * `taskNetnsPath(id)`, or given, as CNI does) and the timings. Detaching
 * deletes the host end (the kernel deletes its peer) and, for a namespace
 * Strata created, the namespace.
 */
import { openSync, closeSync } from 'node:fs';
import { Counter, Histogram, type Registry } from 'prom-client';
import { StrataError } from '../common/errors.ts';
import { AF_INET6, address, decodeAddress, decodeLink, decodeRoute, defaultRoute, delLinkNamed, dump, newVeth, setLink, type LinkInfo, type Request } from './rtnl/codec.ts';
import { NetlinkRtnl, type Rtnl } from './rtnl/socket.ts';
import { hostVethName, taskNetnsPath, type NetnsOps } from './netns.ts';

/** Where and how a container joins a network on this agent. */
export interface ContainerLink {
  /** The bridge of the network here (`m-dcos`). */
  readonly bridge: string;
  /** The veth end left on the host (`sv…`). */
  readonly hostIf: string;
  /** The interface name inside the namespace (`eth0`). */
  readonly ifName: string;
  /** The container's addresses, one per family the network has here (IPv4 first). */
  readonly addresses: readonly ContainerAddress[];
  readonly mtu: number;
}

/** One address of a container, the length of its subnet, and the bridge's address in that subnet (the default route's gateway). */
export interface ContainerAddress {
  readonly ip: string;
  readonly prefixLength: number;
  readonly gateway: string;
}

export interface Attached {
  readonly hostIf: string;
  readonly ifName: string;
  /** MAC of the interface inside the namespace. */
  readonly mac?: string;
  /** The bridge's ifindex on the host (a hint for the next attach). */
  readonly bridgeIndex: number;
}

const errnoOf = (err: unknown): string | undefined => ((err as StrataError).details as { code?: string } | undefined)?.code;

async function linkNamed(rtnl: Rtnl, name: string): Promise<LinkInfo | undefined> {
  return (await rtnl.dump(dump.links())).map(decodeLink).find((l) => l.name === name);
}

/**
 * The steps above; `container` is a socket opened inside the namespace,
 * `netnsFd` an open fd of it. `bridgeIndex` (from an earlier attach) saves
 * the host dump; a stale one is looked up again.
 */
export async function attachContainer(host: Rtnl, container: Rtnl, netnsFd: number, link: ContainerLink, hints: { readonly bridgeIndex?: number } = {}): Promise<Attached> {
  const lookup = async (): Promise<number> => {
    const bridge = await linkNamed(host, link.bridge);
    if (!bridge) throw new StrataError('OVERLAY_ATTACH', `no bridge ${link.bridge} on this agent: its overlay has not programmed the network yet (or is off)`);
    return bridge.index;
  };
  let bridgeIndex = hints.bridgeIndex ?? (await lookup());
  const veth = (): Request => newVeth({ name: link.hostIf, mtu: link.mtu, master: bridgeIndex, peer: { name: link.ifName, netnsFd } });
  try {
    await host.request(veth());
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') {
      // Left by an attach that failed half-way (or a crash): start again.
      await host.request(delLinkNamed(link.hostIf)).catch(() => undefined);
    } else if (hints.bridgeIndex !== undefined) {
      bridgeIndex = await lookup(); // the bridge was re-created since
    } else throw err;
    await host.request(veth());
  }
  const inside = (await container.dump(dump.links())).map(decodeLink);
  const lo = inside.find((l) => l.name === 'lo');
  const eth = inside.find((l) => l.name === link.ifName);
  if (!eth) throw new StrataError('OVERLAY_ATTACH', `${link.ifName} did not appear in the namespace after creating the veth pair`);
  // Independent steps go together; the route needs the address and the link up.
  if (link.addresses.length === 0) throw new StrataError('OVERLAY_ATTACH', `no address to give ${link.ifName}: the network has no subnet on this agent`);
  await Promise.all([
    ...(lo && !lo.up ? [container.request(setLink(lo.index, { up: true }, 'lo'))] : []),
    ...link.addresses.map((a) => container.request(address('add', eth.index, a.ip, a.prefixLength))),
    container.request(setLink(eth.index, { up: true }, link.ifName)),
  ]);
  await Promise.all(link.addresses.map((a) => container.request(defaultRoute(a.gateway))));
  return { hostIf: link.hostIf, ifName: link.ifName, bridgeIndex, ...(eth.mac ? { mac: eth.mac } : {}) };
}

/** Delete the host end (and so the pair); true if it existed. */
export async function detachContainer(host: Rtnl, hostIf: string): Promise<boolean> {
  try {
    await host.request(delLinkNamed(hostIf));
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENODEV') return false;
    throw err;
  }
}

/** What differs from an attached container (CNI CHECK); empty when it is as attached. */
export async function checkContainer(host: Rtnl, container: Rtnl, link: ContainerLink): Promise<string[]> {
  const problems: string[] = [];
  const hostLinks = (await host.dump(dump.links())).map(decodeLink);
  const bridge = hostLinks.find((l) => l.name === link.bridge);
  const hostEnd = hostLinks.find((l) => l.name === link.hostIf);
  if (!bridge) problems.push(`no bridge ${link.bridge} on the host`);
  if (!hostEnd) problems.push(`no host interface ${link.hostIf}`);
  else if (bridge && hostEnd.master !== bridge.index) problems.push(`${link.hostIf} is not a port of ${link.bridge}`);
  else if (!hostEnd.up) problems.push(`${link.hostIf} is down`);
  const eth = (await container.dump(dump.links())).map(decodeLink).find((l) => l.name === link.ifName);
  if (!eth) return [...problems, `no interface ${link.ifName} in the namespace`];
  if (!eth.up) problems.push(`${link.ifName} is down`);
  if (eth.mtu !== link.mtu) problems.push(`${link.ifName} has MTU ${eth.mtu}, not ${link.mtu}`);
  const addrs = (await container.dump(dump.addresses())).map(decodeAddress).filter((a) => a !== undefined && a.index === eth.index);
  const routes = (await Promise.all([container.dump(dump.routes()), container.dump(dump.routes(AF_INET6))])).flat().map(decodeRoute);
  for (const want of link.addresses) {
    if (!addrs.some((a) => a!.ip === want.ip && a!.prefixLength === want.prefixLength)) problems.push(`${link.ifName} lacks ${want.ip}/${want.prefixLength}`);
    if (!routes.some((r) => r !== undefined && r.dstLength === 0 && r.gateway === want.gateway)) problems.push(`no default route via ${want.gateway}`);
  }
  return problems;
}

/** The socket factory: a netlink socket opened inside the namespace at `path`. */
export type OpenRtnlIn = (path: string) => Rtnl;

export function rtnlOpener(netns: NetnsOps): OpenRtnlIn {
  return (path) => netns.within(path, () => new NetlinkRtnl({ window: 8, timeoutMs: 5000 }));
}

interface AttachMetrics {
  readonly seconds: Histogram;
  readonly failures: Counter;
}
const metricsByRegistry = new WeakMap<Registry, AttachMetrics>();
function metricsOf(registry: Registry): AttachMetrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    m = {
      seconds: new Histogram({ name: 'strata_overlay_task_attach_seconds', help: 'Attaching a task to an overlay network: namespace, veth, address, route', buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5], registers: [registry] }),
      failures: new Counter({ name: 'strata_overlay_task_attach_failures_total', help: 'Task network attaches that failed (the task failed with the reason)', registers: [registry] }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

export interface ContainerNetworksOptions {
  /** A socket in the agent's (host) namespace, where the bridges are. */
  readonly host: Rtnl;
  readonly netns: NetnsOps;
  /** Default: `rtnlOpener(netns)`. */
  readonly openRtnl?: OpenRtnlIn;
  /** Where task namespaces are mounted (default /run/netns). */
  readonly netnsDir?: string;
  readonly metrics?: Registry;
}

/** Containers on overlay bridges: task namespaces created here, or namespaces given (CNI). */
export class ContainerNetworks {
  readonly #o: ContainerNetworksOptions;
  readonly #open: OpenRtnlIn;
  readonly #metrics: AttachMetrics | undefined;
  /** Bridge ifindexes seen by earlier attaches (each attach then skips a dump of the host's links). */
  readonly #bridges = new Map<string, number>();

  constructor(options: ContainerNetworksOptions) {
    this.#o = options;
    this.#open = options.openRtnl ?? rtnlOpener(options.netns);
    this.#metrics = options.metrics ? metricsOf(options.metrics) : undefined;
  }

  /** The namespace path and host interface of a task (the same after a restart). */
  names(taskId: string): { readonly netnsPath: string; readonly hostIf: string } {
    return { netnsPath: taskNetnsPath(taskId, this.#o.netnsDir), hostIf: hostVethName(taskId) };
  }

  /** Create the task's namespace and attach it; on failure nothing is left behind. */
  async attachTask(taskId: string, link: Omit<ContainerLink, 'hostIf' | 'ifName'>): Promise<Attached & { readonly netnsPath: string }> {
    const started = process.hrtime.bigint();
    const { netnsPath, hostIf } = this.names(taskId);
    try {
      this.#o.netns.remove(netnsPath); // one left by a crash between create and attach
      this.#o.netns.create(netnsPath);
      const attached = await this.attachNetns(netnsPath, { ...link, hostIf, ifName: 'eth0' });
      this.#metrics?.seconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return { ...attached, netnsPath };
    } catch (err) {
      this.#metrics?.failures.inc();
      await this.detachTask(taskId).catch(() => undefined);
      throw err instanceof StrataError ? err : new StrataError('OVERLAY_ATTACH', `attaching task ${taskId}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Attach an existing namespace (CNI's CNI_NETNS). */
  async attachNetns(netnsPath: string, link: ContainerLink): Promise<Attached> {
    const fd = openSync(netnsPath, 'r');
    let container: Rtnl | undefined;
    try {
      container = this.#open(netnsPath);
      const known = this.#bridges.get(link.bridge);
      const attached = await attachContainer(this.#o.host, container, fd, link, known === undefined ? {} : { bridgeIndex: known });
      this.#bridges.set(link.bridge, attached.bridgeIndex);
      return attached;
    } finally {
      container?.close();
      closeSync(fd);
    }
  }

  async check(netnsPath: string, link: ContainerLink): Promise<string[]> {
    const container = this.#open(netnsPath);
    try {
      return await checkContainer(this.#o.host, container, link);
    } finally {
      container.close();
    }
  }

  /** Delete the host end of a veth (CNI DEL); true if it existed. */
  detachLink(hostIf: string): Promise<boolean> {
    return detachContainer(this.#o.host, hostIf);
  }

  /** Remove a task's veth and namespace; idempotent. */
  async detachTask(taskId: string): Promise<void> {
    const { netnsPath, hostIf } = this.names(taskId);
    await detachContainer(this.#o.host, hostIf);
    this.#o.netns.remove(netnsPath);
  }
}

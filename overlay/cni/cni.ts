/**
 * The overlay as a CNI plugin (CNI spec 1.0: ADD, DEL, CHECK, VERSION).
 * A runtime runs `bin/strata-cni` in the host's network namespace with the
 * command in CNI_COMMAND, the container in CNI_CONTAINERID / CNI_NETNS /
 * CNI_IFNAME, and the network configuration on stdin:
 *
 * ```json
 * {"cniVersion": "1.0.0", "name": "dcos", "type": "strata-cni",
 *  "masterUrl": "http://10.0.0.1:8080", "agentId": "<this agent's id>",
 *  "tokenFile": "/var/lib/strata/agent.token", "network": "dcos"}
 * ```
 *
 * ADD asks the masters for a container IP (one per family: IPv4, IPv6 or
 * both, each with its default route in the result) on the agent's subnets of the
 * network (`holder: cni`, id `cni.<container id>`; idempotent, so a
 * retried ADD gets the same address), then attaches the namespace to the
 * network's bridge with the same code as tasks (`ContainerNetworks`).
 * DEL detaches and releases the address (quarantined before reuse); it
 * succeeds when there is nothing left to remove. CHECK compares the kernel
 * with the prevResult. Results and errors are the spec's JSON on stdout;
 * error codes: 1 incompatible version, 4 invalid environment, 6 cannot
 * decode the configuration, 7 invalid configuration, 11 try again later,
 * 100 the kernel or control plane refused (msg says which), 101 CHECK
 * found a difference.
 */
import { StrataError } from '../../common/errors.ts';
import { parseCidr } from '../../common/ip.ts';
import { gatewayOf, inSubnet } from '../../control-plane/networks/ipam.ts';
import type { Network, OverlayAddress, OverlayLease } from '../../control-plane/model/schemas.ts';
import type { Attached, ContainerAddress, ContainerLink } from '../attach.ts';
import { bridgeName } from '../desired.ts';
import { hostVethName } from '../netns.ts';

export const CNI_VERSION = '1.0.0';
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0'] as const;

export interface CniError {
  readonly cniVersion: string;
  readonly code: number;
  readonly msg: string;
  readonly details?: string;
}

/** An outcome of a command: what to print on stdout and the exit status. */
export interface CniOutcome {
  readonly exitCode: number;
  readonly output?: object;
}

export interface CniConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  readonly masterUrl: string;
  readonly agentId: string;
  readonly tokenFile: string;
  /** The Strata network (default: `name`). */
  readonly network: string;
  readonly prevResult?: CniResult;
}

export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces: readonly { readonly name: string; readonly mac?: string; readonly sandbox?: string }[];
  readonly ips: readonly { readonly address: string; readonly gateway: string; readonly interface: number }[];
  readonly routes: readonly { readonly dst: string; readonly gw: string }[];
  readonly dns: object;
}

/** What the plugin asks of the control plane (HTTP in `main.ts`, a fake in tests). */
export interface CniMaster {
  lease(agentId: string): Promise<OverlayLease>;
  network(name: string): Promise<Network>;
  assign(agentId: string, network: string, id: string): Promise<OverlayAddress[]>;
  release(agentId: string, network: string, id: string): Promise<number>;
}

/** What it asks of the kernel (`ContainerNetworks`). */
export interface CniKernel {
  attachNetns(netnsPath: string, link: ContainerLink): Promise<Attached>;
  check(netnsPath: string, link: ContainerLink): Promise<string[]>;
  detachLink(hostIf: string): Promise<boolean>;
}

class CniFailure extends Error {
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.code = code;
    this.details = details;
  }
}

const fail = (code: number, msg: string, details?: string): never => {
  throw new CniFailure(code, msg, details);
};

/** The network configuration from stdin, checked field by field. */
export function parseConfig(stdin: string): CniConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    return fail(6, 'cannot decode the network configuration on stdin', (err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(6, 'the network configuration must be a JSON object');
  const c = raw as Record<string, unknown>;
  const str = (field: string, required = true): string | undefined => {
    const v = c[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') return fail(7, `network configuration: ${field} must be a non-empty string`);
    return v;
  };
  const cniVersion = str('cniVersion')!;
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) return fail(1, `cniVersion ${cniVersion} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  const masterUrl = str('masterUrl')!;
  if (!/^https?:\/\//.test(masterUrl)) fail(7, 'network configuration: masterUrl must be an http(s) URL');
  const name = str('name')!;
  const network = str('network', false) ?? name;
  if (!/^[a-z0-9]([a-z0-9-]{0,11}[a-z0-9])?$/.test(network)) fail(7, `network configuration: network ${JSON.stringify(network)} is not a Strata network name (at most 13 characters, a-z 0-9 -)`);
  return {
    cniVersion, name, type: str('type')!, masterUrl, agentId: str('agentId')!, tokenFile: str('tokenFile')!, network,
    ...(c.prevResult !== undefined ? { prevResult: c.prevResult as CniResult } : {}),
  };
}

export interface CniEnv {
  readonly command: string;
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** CNI_* variables the command needs (DEL needs no netns: the spec lets it be gone). */
export function parseEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!['ADD', 'DEL', 'CHECK', 'VERSION'].includes(command)) fail(4, `CNI_COMMAND ${JSON.stringify(command)} is not one of ADD, DEL, CHECK, VERSION`);
  if (command === 'VERSION') return { command, containerId: '', netns: '', ifName: '' };
  const containerId = env.CNI_CONTAINERID ?? '';
  if (!CONTAINER_ID.test(containerId) || containerId.length > 200) fail(4, 'CNI_CONTAINERID must be set: letters, digits, _ . - (at most 200)');
  const ifName = env.CNI_IFNAME ?? '';
  if (!/^[^/\s:]{1,15}$/.test(ifName)) fail(4, 'CNI_IFNAME must be an interface name (1-15 characters, no / : or spaces)');
  const netns = env.CNI_NETNS ?? '';
  if (command !== 'DEL' && !netns.startsWith('/')) fail(4, 'CNI_NETNS must be the absolute path of the container\'s network namespace');
  return { command, containerId, netns, ifName };
}

/** The address id a container holds (`cni.<container id>`), and its host veth name. */
export const cniHolderId = (containerId: string): string => `cni.${containerId}`;
export const cniHostIf = (containerId: string, ifName: string): string => hostVethName(`cni:${containerId}:${ifName}`);

/** The container's link: each of `ips` in the agent's subnet of its family (IPv4 first), the bridge's gateway there. */
async function linkOf(master: CniMaster, config: CniConfig, env: CniEnv, ips: readonly string[]): Promise<ContainerLink> {
  const [lease, network] = await Promise.all([master.lease(config.agentId), master.network(config.network)]);
  const subnets = lease.networks[config.network];
  const addresses: ContainerAddress[] = [];
  for (const subnet of [subnets?.subnet, subnets?.subnet6]) {
    if (subnet === undefined) continue;
    const ip = ips.find((x) => inSubnet(subnet, x));
    if (ip !== undefined) addresses.push({ ip, prefixLength: parseCidr(subnet)!.prefixLength, gateway: gatewayOf(subnet) });
  }
  if (addresses.length === 0) fail(100, `agent ${config.agentId} has no subnet of network ${JSON.stringify(config.network)} holding ${ips.join(', ') || 'an address'} (exhausted, or the agent has not renewed its lease since the network was added)`);
  return { bridge: bridgeName(config.network), hostIf: cniHostIf(env.containerId, env.ifName), ifName: env.ifName, addresses, mtu: network.mtu };
}

function resultOf(config: CniConfig, env: CniEnv, link: ContainerLink, attached: Attached | undefined): CniResult {
  return {
    cniVersion: config.cniVersion,
    interfaces: [{ name: link.hostIf }, { name: env.ifName, ...(attached?.mac ? { mac: attached.mac } : {}), sandbox: env.netns }],
    ips: link.addresses.map((a) => ({ address: `${a.ip}/${a.prefixLength}`, gateway: a.gateway, interface: 1 })),
    routes: link.addresses.map((a) => ({ dst: a.ip.includes(':') ? '::/0' : '0.0.0.0/0', gw: a.gateway })),
    dns: {},
  };
}

/** Run one command; never throws: failures are the spec's error object and a non-zero exit. */
export async function runCni(input: { readonly env: Readonly<Record<string, string | undefined>>; readonly stdin: string; readonly master: (config: CniConfig) => CniMaster; readonly kernel: () => CniKernel }): Promise<CniOutcome> {
  let version = CNI_VERSION;
  try {
    const env = parseEnv(input.env);
    if (env.command === 'VERSION') return { exitCode: 0, output: { cniVersion: CNI_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] } };
    const config = parseConfig(input.stdin);
    version = config.cniVersion;
    const master = input.master(config);
    const id = cniHolderId(env.containerId);
    if (env.command === 'ADD') {
      const addresses = await master.assign(config.agentId, config.network, id);
      if (addresses.length === 0) return fail(100, `network ${JSON.stringify(config.network)} gave no address`);
      const link = await linkOf(master, config, env, addresses.map((a) => a.ip));
      let attached: Attached;
      try {
        attached = await input.kernel().attachNetns(env.netns, link);
      } catch (err) {
        await input.kernel().detachLink(link.hostIf).catch(() => undefined);
        await master.release(config.agentId, config.network, id).catch(() => undefined);
        throw err;
      }
      return { exitCode: 0, output: resultOf(config, env, link, attached) };
    }
    if (env.command === 'DEL') {
      await input.kernel().detachLink(cniHostIf(env.containerId, env.ifName));
      await master.release(config.agentId, config.network, id);
      return { exitCode: 0 };
    }
    // CHECK
    const prev = config.prevResult;
    const ips = (Array.isArray(prev?.ips) ? prev.ips : []).map((x) => (typeof x?.address === 'string' ? x.address.split('/')[0]! : '')).filter((x) => x !== '');
    if (ips.length === 0) return fail(7, 'CHECK needs prevResult with the IPs ADD returned');
    const link = await linkOf(master, config, env, ips);
    const problems = await input.kernel().check(env.netns, link);
    if (problems.length > 0) return fail(101, `the container's network differs from what ADD set up: ${problems.join('; ')}`);
    return { exitCode: 0 };
  } catch (err) {
    const e: CniError =
      err instanceof CniFailure
        ? { cniVersion: version, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) }
        : err instanceof StrataError && err.code === 'OVERLAY_CONTENDED'
          ? { cniVersion: version, code: 11, msg: err.message }
          : { cniVersion: version, code: 100, msg: (err as Error).message, ...(err instanceof StrataError ? { details: err.code } : {}) };
    return { exitCode: 1, output: e };
  }
}

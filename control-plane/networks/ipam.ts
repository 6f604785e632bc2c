/**
 * Overlay IPAM decisions (pure): which subnet of each network an agent
 * gets, which VTEP address and MAC, which container IP a task gets, and
 * when a released container IP may be handed out again. The store adapter
 * (`ipam-store.ts`) reads the claims, asks these functions, and writes the
 * answer with create-only claims, so a decision that raced another is
 * refused by the store and simply made again.
 *
 * Rules (DC/OS's, `mesos-modules` overlay master):
 * - VTEP addresses come first-free from 44.128.0.0/20 (network and broadcast
 *   addresses skipped); the MAC is OUI 70:b3:d5 plus the address's low 24 bits.
 * - An agent's subnet is the first free `/prefix` of the network's pool.
 * - Container IPs come first-free from the agent's subnet, skipping the
 *   network address, the gateway (`.1`, the bridge) and the broadcast address.
 */
import { bigIntToIp, ipToBigInt, parseCidr, type Cidr } from '../../common/ip.ts';
import { vtepMacOf } from '../model/checks.ts';
import type { Network, OverlayAddress, OverlayClaim, OverlayLease, Task } from '../model/schemas.ts';
import { OVERLAY_DEFAULTS, VTEP_POOL } from '../model/schemas.ts';

export { vtepMacOf };

const bitsOf = (c: Cidr): number => (c.family === 4 ? 32 : 128);
const cidrText = (base: bigint, length: number, family: 4 | 6): string => `${bigIntToIp(base, family)}/${length}`;

/**
 * The first `/prefix` subnet of `pool` not in `taken` (canonical CIDR texts),
 * or `undefined` when every one is taken. Looks at most `taken.size + 1`
 * candidates, so a /64 split into /126s costs no more than a /8 into /24s.
 */
export function firstFreeSubnet(pool: string, prefix: number, taken: ReadonlySet<string>): string | undefined {
  const c = parseCidr(pool);
  if (!c || prefix < c.prefixLength || prefix > bitsOf(c)) return undefined;
  const count = 1n << BigInt(prefix - c.prefixLength);
  const step = 1n << BigInt(bitsOf(c) - prefix);
  const limit = BigInt(taken.size) + 1n < count ? BigInt(taken.size) + 1n : count;
  for (let i = 0n; i < limit; i++) {
    const text = cidrText(c.base + i * step, prefix, c.family);
    if (!taken.has(text)) return text;
  }
  return undefined;
}

/** How many addresses of `subnet` can be handed out (network, gateway and, for IPv4, broadcast excluded). */
export function usableAddresses(subnet: string): bigint {
  const c = parseCidr(subnet)!;
  const size = 1n << BigInt(bitsOf(c) - c.prefixLength);
  const reserved = c.family === 4 ? 3n : 2n;
  return size > reserved ? size - reserved : 0n;
}

/** The gateway (bridge) address of an agent subnet: its first host address. */
export function gatewayOf(subnet: string): string {
  const c = parseCidr(subnet)!;
  return bigIntToIp(c.base + 1n, c.family);
}

/** The first address of `subnet` after the gateway that is not in `held`, or `undefined` when the subnet is full. */
export function firstFreeAddress(subnet: string, held: ReadonlySet<string>): string | undefined {
  const c = parseCidr(subnet);
  if (!c) return undefined;
  const usable = usableAddresses(subnet);
  const limit = BigInt(held.size) + 1n < usable ? BigInt(held.size) + 1n : usable;
  for (let i = 0n; i < limit; i++) {
    const ip = bigIntToIp(c.base + 2n + i, c.family);
    if (!held.has(ip)) return ip;
  }
  return undefined;
}

/** The first free VTEP address of `pool` (skipping its network and broadcast addresses). */
export function firstFreeVtep(taken: ReadonlySet<string>, pool: string = OVERLAY_DEFAULTS.vtepSubnet): string | undefined {
  const c = parseCidr(pool)!;
  const size = 1n << BigInt(bitsOf(c) - c.prefixLength);
  const usable = size > 2n ? size - 2n : 0n;
  const limit = BigInt(taken.size) + 1n < usable ? BigInt(taken.size) + 1n : usable;
  for (let i = 0n; i < limit; i++) {
    const ip = bigIntToIp(c.base + 1n + i, c.family);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

export interface LeasePlanInput {
  readonly agentId: string;
  readonly underlayIp: string;
  /** The agent's lease as stored, if it has one. */
  readonly existing?: OverlayLease;
  readonly networks: readonly Network[];
  /** Every claim in the store, by pool (network name or `_vtep`), as canonical CIDR texts. */
  readonly claims: ReadonlyMap<string, ReadonlySet<string>>;
  readonly now: string;
}

export interface LeasePlan {
  readonly lease: OverlayLease;
  /** Claims to create (create-only) together with the lease. */
  readonly newClaims: readonly OverlayClaim[];
  /** Networks whose pool had no free subnet for this agent, with why. */
  readonly exhausted: readonly { readonly network: string; readonly message: string }[];
  /** Whether anything differs from `existing`. */
  readonly changed: boolean;
}

/**
 * The agent's lease: what it holds is kept (a lease never moves under
 * running tasks); what it lacks (a VTEP, a subnet of a network added since)
 * is taken first-free from what nobody claims. Subnets of removed networks
 * are dropped (their claims are released by the caller).
 */
export function planLease(input: LeasePlanInput): LeasePlan {
  const { existing, agentId } = input;
  const newClaims: OverlayClaim[] = [];
  const exhausted: { network: string; message: string }[] = [];
  const claimsOf = (pool: string): ReadonlySet<string> => input.claims.get(pool) ?? new Set();

  let vtepIp = existing?.vtepIp;
  if (vtepIp === undefined) {
    const taken = new Set([...claimsOf(VTEP_POOL)].map((c) => c.slice(0, c.indexOf('/'))));
    vtepIp = firstFreeVtep(taken);
    if (vtepIp === undefined) {
      exhausted.push({ network: VTEP_POOL, message: `the VTEP range ${OVERLAY_DEFAULTS.vtepSubnet} has no free address (${taken.size} agents hold one)` });
      vtepIp = '0.0.0.0';
    } else newClaims.push({ pool: VTEP_POOL, cidr: `${vtepIp}/32`, agentId });
  }

  const networks: Record<string, { subnet?: string; subnet6?: string }> = {};
  for (const n of input.networks) {
    const had = existing?.networks[n.name];
    const mine: { subnet?: string; subnet6?: string } = {};
    for (const [field, poolField, prefixField] of [['subnet', 'subnet', 'prefix'], ['subnet6', 'subnet6', 'prefix6']] as const) {
      const pool = n[poolField];
      if (pool === undefined) continue;
      const kept = had?.[field];
      const poolCidr = parseCidr(pool);
      const keptCidr = kept === undefined ? undefined : parseCidr(kept);
      if (kept !== undefined && poolCidr && keptCidr && keptCidr.prefixLength === n[prefixField] && containsCidr(poolCidr, keptCidr)) {
        mine[field] = kept;
        continue;
      }
      const subnet = firstFreeSubnet(pool, n[prefixField], claimsOf(n.name));
      if (subnet === undefined) {
        exhausted.push({ network: n.name, message: `network ${JSON.stringify(n.name)} has no free /${n[prefixField]} left in ${pool} for agent ${agentId} (${claimsOf(n.name).size} agents hold one)` });
        continue;
      }
      mine[field] = subnet;
      newClaims.push({ pool: n.name, cidr: subnet, agentId });
    }
    if (mine.subnet !== undefined || mine.subnet6 !== undefined) networks[n.name] = mine;
  }

  const lease: OverlayLease = { agentId, underlayIp: input.underlayIp, vtepIp, vtepMac: vtepMacOf(vtepIp), networks, updatedAt: existing?.updatedAt ?? input.now };
  const changed = !existing || newClaims.length > 0 || existing.underlayIp !== input.underlayIp || JSON.stringify(sortKeys(existing.networks)) !== JSON.stringify(sortKeys(networks));
  return { lease: changed ? { ...lease, updatedAt: input.now } : lease, newClaims, exhausted, changed };
}

function containsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefixLength < outer.prefixLength) return false;
  const shift = BigInt(bitsOf(outer) - outer.prefixLength);
  return (inner.base >> shift) << shift === outer.base;
}

function sortKeys<T>(o: Record<string, T>): [string, T][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// ---------------------------------------------------------------------------
// Container addresses

/** Default quarantine of a released container IP (DNS TTLs, conntrack, and peers' caches forget it). */
export const ADDRESS_QUARANTINE_SECONDS = 300;

/**
 * Task states after which the task can no longer hold its address: the
 * agent confirmed it ended, or an operator said the agent is gone. LOST,
 * GONE, UNREACHABLE and UNKNOWN are left out: the task may still run on an
 * agent the master cannot reach, holding the address.
 */
export const ADDRESS_RELEASING_STATES: ReadonlySet<Task['state']> = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'DROPPED', 'GONE_BY_OPERATOR']);

/** Whether the address can be handed to a new task at `nowMs`. */
export function addressReusable(address: OverlayAddress, nowMs: number, quarantineSeconds = ADDRESS_QUARANTINE_SECONDS): boolean {
  if (address.state !== 'released' || address.releasedAt === undefined) return false;
  return Date.parse(address.releasedAt) + quarantineSeconds * 1000 <= nowMs;
}

/** Whether an `assigned` address should be released now: its task record is gone, or in a state where it holds nothing (never a CNI container's). */
export function shouldRelease(address: OverlayAddress, task: Task | undefined): boolean {
  if (address.state !== 'assigned' || address.holder === 'cni') return false; // a CNI container's address goes with its DEL
  if (task === undefined) return true;
  return ADDRESS_RELEASING_STATES.has(task.state);
}

/** The released form of an address. */
export function released(address: OverlayAddress, now: string): OverlayAddress {
  return { ...address, state: 'released', releasedAt: now };
}

/** The address a task gets: the first one of the agent's subnet that no record holds, else the first reusable released one. */
export function pickAddress(subnet: string, records: readonly OverlayAddress[], nowMs: number, quarantineSeconds = ADDRESS_QUARANTINE_SECONDS): { ip: string; reuses?: OverlayAddress } | undefined {
  const held = new Set(records.map((r) => r.ip));
  const fresh = firstFreeAddress(subnet, held);
  if (fresh !== undefined) return { ip: fresh };
  const reusable = records
    .filter((r) => addressReusable(r, nowMs, quarantineSeconds))
    .sort((a, b) => Date.parse(a.releasedAt!) - Date.parse(b.releasedAt!));
  return reusable[0] ? { ip: reusable[0].ip, reuses: reusable[0] } : undefined;
}

/** True when `ip` belongs to `subnet`. */
export function inSubnet(subnet: string, ip: string): boolean {
  const c = parseCidr(subnet);
  if (!c) return false;
  const shift = BigInt(bitsOf(c) - c.prefixLength);
  try {
    return (ipToBigInt(ip) >> shift) << shift === c.base;
  } catch {
    return false;
  }
}

/**
 * Addresses of named VIPs: a hash of `<name>.<framework>` picks a host in
 * the configured range, with linear probing past addresses already taken
 * (DC/OS's `min + phash2(...)` scheme). Unlike DC/OS, the result is stored
 * once by the leader (check-and-set), so every node sees the same address
 * even when two VIPs collide and the probe order would differ per node.
 * Pure: no I/O, no clock.
 */
import { createHash } from 'node:crypto';
import { bigIntToIp, type Cidr } from '../../common/ip.ts';

/** Usable host offsets in a range: IPv4 skips the network and broadcast addresses (unless /31 or /32); IPv6 skips offset 0. */
function hostBounds(cidr: Cidr): { first: bigint; count: bigint } {
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefixLength);
  if (cidr.family === 4) return size <= 2n ? { first: 0n, count: size } : { first: 1n, count: size - 2n };
  return size === 1n ? { first: 0n, count: 1n } : { first: 1n, count: size - 1n };
}

/** How many addresses of the range VIPs can use. */
export function capacityOf(cidr: Cidr): bigint {
  return hostBounds(cidr).count;
}

function hashOf(key: string): bigint {
  return BigInt(`0x${createHash('sha256').update(key).digest('hex').slice(0, 32)}`);
}

/**
 * The address for `key` in `cidr`: its hash's slot, or the next free one
 * (wrapping) when `taken` holds it. `undefined` when the range is full.
 * Probing is bounded by `maxProbes` (default: the whole range, capped at
 * 1,000,000) so a nearly full huge range cannot stall the caller.
 */
export function allocateAddress(key: string, cidr: Cidr, taken: ReadonlySet<string>, maxProbes = 1_000_000): string | undefined {
  const { first, count } = hostBounds(cidr);
  const probes = count < BigInt(maxProbes) ? count : BigInt(maxProbes);
  const start = hashOf(key) % count;
  for (let i = 0n; i < probes; i++) {
    const ip = bigIntToIp(cidr.base + first + ((start + i) % count), cidr.family);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

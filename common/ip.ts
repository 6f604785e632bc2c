/**
 * IP addresses and CIDR ranges as numbers (bigint), for allocators and
 * checks (VIPs, overlay subnets). Pure.
 */
import { isIP } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  /** The network address as a number (bits below the prefix are zero). */
  readonly base: bigint;
  readonly prefixLength: number;
}

/** Parse `a.b.c.d/n` or `x::/n`; `undefined` when it is not a CIDR. Host bits are cleared. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lengthText)) return undefined;
  const family = isIP(ip);
  if (family !== 4 && family !== 6) return undefined;
  const prefixLength = Number(lengthText);
  const bits = family === 4 ? 32 : 128;
  if (prefixLength > bits) return undefined;
  const value = ipToBigInt(ip);
  const hostBits = BigInt(bits - prefixLength);
  return { family, base: (value >> hostBits) << hostBits, prefixLength };
}

export function ipToBigInt(ip: string): bigint {
  if (isIP(ip) === 4) return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  const expanded = expandIpv6(ip);
  return expanded.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function expandIpv6(ip: string): string[] {
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipToBigInt(v4[1]!);
    text = `${text.slice(0, v4.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') as [string, string] : [text, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  if (tail === undefined) return headGroups;
  const tailGroups = tail === '' ? [] : tail.split(':');
  return [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
}

/** The canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function bigIntToIp(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt((7 - i) * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** The canonical text of an IP literal (so `FD01:C:0::1` and `fd01:c::1` compare equal). */
export function canonicalIp(ip: string): string {
  const family = isIP(ip);
  if (family !== 4 && family !== 6) throw new TypeError(`not an IP address: ${ip}`);
  return bigIntToIp(ipToBigInt(ip), family);
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  if (isIP(ip) !== cidr.family) return false;
  const bits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefixLength);
  return (ipToBigInt(ip) >> bits) << bits === cidr.base;
}

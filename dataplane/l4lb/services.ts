/**
 * What the kernel load balancer serves, as plain data: one service per VIP
 * address, protocol and port, with the backends that take new connections.
 * Built (pure) from the master's VIP view (`GET /networking/api/v1/vips`).
 */
import { isIP } from 'node:net';

/** The parts of the master's VIP view the dataplane reads. */
export interface VipViewInput {
  readonly name: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  readonly ports: readonly { readonly port: number; readonly protocol: string }[];
  readonly backends: readonly {
    readonly ip: string;
    readonly port: number;
    readonly protocol: string;
    readonly vipPort: number;
    readonly weight: number;
    readonly agentUnreachable?: boolean;
    readonly agentId?: string;
  }[];
}

export type L4Protocol = 'tcp' | 'udp';

export interface L4Backend {
  readonly ip: string;
  readonly port: number;
}

export interface L4Service {
  /** The VIP's address (IPv4 or IPv6; its backends are of the same family). */
  readonly vip: string;
  readonly protocol: L4Protocol;
  readonly port: number;
  /** Sorted, without duplicates; empty = the VIP refuses connections. */
  readonly backends: readonly L4Backend[];
}

export function serviceKey(s: { readonly vip: string; readonly protocol: string; readonly port: number }): string {
  return `${s.vip} ${s.protocol} ${s.port}`;
}

function compareBackends(a: L4Backend, b: L4Backend): number {
  return a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port;
}

/**
 * Services from VIP views. A backend takes new connections when its weight
 * is above 0 (running, healthy, not draining). Backends on agents the master
 * marked unreachable are dropped, unless every backend of the service is on
 * one (then all of them stay: better a chance than certain failure, as
 * DC/OS's l4lb does).
 *
 * Each address family is its own service (DC/OS: a named VIP has an IPv4
 * and an IPv6 address, each served by the backends of that family; no
 * NAT64): the VIP's IPv4 address over IPv4 backends, its IPv6 address over
 * IPv6 backends. A family is programmed when the VIP has an address of it
 * and a backend of it (any weight), or when the VIP has no backend of
 * either family (then it refuses at once on both). Backend hosts that are
 * not IP addresses are left out (they cannot be DNAT targets).
 */
export function servicesFromVips(vips: readonly VipViewInput[]): L4Service[] {
  const byKey = new Map<string, L4Service>();

  for (const vip of vips) {
    const ofFamily = { 4: vip.backends.filter((b) => isIP(b.ip) === 4), 6: vip.backends.filter((b) => isIP(b.ip) === 6) };
    const none = ofFamily[4].length === 0 && ofFamily[6].length === 0;
    for (const [family, address] of [[4, vip.ipv4], [6, vip.ipv6]] as const) {
      if (address === undefined || isIP(address) !== family) continue;
      if (ofFamily[family].length === 0 && !none) continue;
      for (const p of vip.ports) {
        if (p.protocol !== 'tcp' && p.protocol !== 'udp') continue;
        const candidates = ofFamily[family].filter((b) => b.vipPort === p.port && b.protocol === p.protocol && b.weight > 0);
        const reachable = candidates.filter((b) => b.agentUnreachable !== true);
        const chosen = reachable.length > 0 ? reachable : candidates;
        const unique = new Map<string, L4Backend>();
        for (const b of chosen) unique.set(`${b.ip}:${b.port}`, { ip: b.ip, port: b.port });
        const service: L4Service = { vip: address, protocol: p.protocol, port: p.port, backends: [...unique.values()].sort(compareBackends) };
        byKey.set(serviceKey(service), service);
      }
    }
  }
  // Sorted by key (computed once each): the order the manager's diff takes its fast path on.
  return [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, service]) => service);
}

/**
 * What one agent's kernel should hold for the overlay (pure): from every
 * agent's lease and the networks, for each network this agent has a subnet
 * of, a VXLAN device (`vtep<vni>`, no learning, the agent's VTEP address
 * and MAC), a bridge (`m-<network>`, the subnet's gateway address, the
 * containers' default route), and for every other agent on the network a
 * static FDB entry (its VTEP MAC → its underlay address), a permanent
 * neighbour (its VTEP address → its VTEP MAC) and an onlink route (its
 * subnet via its VTEP address). DC/OS's design (navstar
 * `dcos_overlay_configure`), with one VNI per network.
 *
 * IPv6: a network with an IPv6 pool gives the bridge the gateway of this
 * agent's IPv6 subnet too (an IPv6-only network such as `dcos6` only that),
 * and each peer's IPv6 subnet is routed via the peer's VTEP link-local
 * address (`fe80::` + EUI-64 of its VTEP MAC, `vtepIp6`) with a permanent
 * IPv6 neighbour entry to its VTEP MAC. Linux has no IPv6 route via an IPv4
 * gateway; a link-local next hop needs no allocation and never has to exist
 * on the peer (the frame goes to its VTEP MAC, which it forwards). The
 * VTEPs and the underlay stay IPv4; the VXLAN carries both families.
 */
import { bigIntToIp, parseCidr } from '../common/ip.ts';
import { gatewayOf } from '../control-plane/networks/ipam.ts';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { OVERLAY_DEFAULTS } from '../control-plane/model/schemas.ts';

export interface Peer {
  readonly agentId: string;
  readonly vtepIp: string;
  readonly vtepMac: string;
  readonly underlayIp: string;
  /** The next hop of the peer's IPv6 subnet: the link-local address of its VTEP MAC. */
  readonly vtepIp6: string;
  /** The peer's IPv4 and IPv6 subnets of the network (at least one). */
  readonly subnet?: string;
  readonly subnet6?: string;
}

/** The bridge of a network: its gateway address (the subnet's first) per family this agent has a subnet of. */
export interface DesiredBridge {
  readonly name: string;
  readonly mtu: number;
  readonly gateway?: string;
  readonly prefixLength?: number;
  readonly gateway6?: string;
  readonly prefixLength6?: number;
}

export interface DesiredNetwork {
  readonly network: string;
  readonly vxlan: { readonly name: string; readonly vni: number; readonly local: string; readonly port: number; readonly mtu: number; readonly mac: string; readonly vtepIp: string };
  readonly bridge: DesiredBridge;
  readonly peers: readonly Peer[];
}

export interface DesiredOverlay {
  readonly networks: readonly DesiredNetwork[];
}

export interface DesiredInput {
  readonly agentId: string;
  readonly leases: readonly OverlayLease[];
  readonly networks: readonly Network[];
  /** VXLAN UDP port (DC/OS: 64000). */
  readonly vxlanPort?: number;
}

/** The VXLAN device of a network: DC/OS's `vtep1024` naming, by VNI (at most 15 characters). */
export const vxlanName = (vni: number): string => `vtep${vni}`;
/** The bridge of a network: DC/OS's `m-<name>` (names are at most 13 characters, so at most 15). */
export const bridgeName = (network: string): string => `m-${network}`;
export const isOverlayVxlanName = (name: string): boolean => /^vtep[0-9]{1,8}$/.test(name);
export const isOverlayBridgeName = (name: string): boolean => /^m-[a-z0-9-]{1,13}$/.test(name);

/** The EUI-64 link-local address of a MAC (RFC 4291 appendix A): `70:b3:d5:80:00:02` → `fe80::72b3:d5ff:fe80:2`. */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const bytes = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const iid = bytes.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  return bigIntToIp((0xfe80n << 112n) | iid, 6);
}

/** The desired state, and why anything was left out (an agent without a lease, a peer with a clashing VTEP). */
export function desiredOverlay(input: DesiredInput): { desired: DesiredOverlay; problems: string[] } {
  const problems: string[] = [];
  const self = input.leases.find((l) => l.agentId === input.agentId);
  if (!self) return { desired: { networks: [] }, problems: [`agent ${input.agentId} has no overlay lease`] };
  const out: DesiredNetwork[] = [];
  for (const network of [...input.networks].sort((a, b) => a.vni - b.vni)) {
    const mine = self.networks[network.name]?.subnet;
    const mine6 = self.networks[network.name]?.subnet6;
    if (mine === undefined && mine6 === undefined) continue;
    const peers: Peer[] = [];
    for (const lease of input.leases) {
      if (lease.agentId === input.agentId) continue;
      const subnet = mine === undefined ? undefined : lease.networks[network.name]?.subnet;
      const subnet6 = mine6 === undefined ? undefined : lease.networks[network.name]?.subnet6;
      if (subnet === undefined && subnet6 === undefined) continue;
      if (lease.vtepIp === self.vtepIp || lease.underlayIp === self.underlayIp) {
        problems.push(`agent ${lease.agentId} shares VTEP ${lease.vtepIp} or underlay ${lease.underlayIp} with this agent; left out`);
        continue;
      }
      peers.push({ agentId: lease.agentId, vtepIp: lease.vtepIp, vtepIp6: linkLocalOf(lease.vtepMac), vtepMac: lease.vtepMac, underlayIp: lease.underlayIp, ...(subnet !== undefined ? { subnet } : {}), ...(subnet6 !== undefined ? { subnet6 } : {}) });
    }
    peers.sort((a, b) => (a.agentId < b.agentId ? -1 : 1));
    out.push({
      network: network.name,
      vxlan: { name: vxlanName(network.vni), vni: network.vni, local: self.underlayIp, port: input.vxlanPort ?? OVERLAY_DEFAULTS.vxlanPort, mtu: network.mtu, mac: self.vtepMac, vtepIp: self.vtepIp },
      bridge: {
        name: bridgeName(network.name),
        mtu: network.mtu,
        ...(mine !== undefined ? { gateway: gatewayOf(mine), prefixLength: parseCidr(mine)!.prefixLength } : {}),
        ...(mine6 !== undefined ? { gateway6: gatewayOf(mine6), prefixLength6: parseCidr(mine6)!.prefixLength } : {}),
      },
      peers,
    });
  }
  return { desired: { networks: out }, problems };
}

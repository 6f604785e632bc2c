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
 */
import { parseCidr } from '../common/ip.ts';
import { gatewayOf } from '../control-plane/networks/ipam.ts';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { OVERLAY_DEFAULTS } from '../control-plane/model/schemas.ts';

export interface Peer {
  readonly agentId: string;
  readonly vtepIp: string;
  readonly vtepMac: string;
  readonly underlayIp: string;
  readonly subnet: string;
}

export interface DesiredNetwork {
  readonly network: string;
  readonly vxlan: { readonly name: string; readonly vni: number; readonly local: string; readonly port: number; readonly mtu: number; readonly mac: string; readonly vtepIp: string };
  readonly bridge: { readonly name: string; readonly mtu: number; readonly gateway: string; readonly prefixLength: number };
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

/** The desired state, and why anything was left out (an agent without a lease, a peer with a clashing VTEP). */
export function desiredOverlay(input: DesiredInput): { desired: DesiredOverlay; problems: string[] } {
  const problems: string[] = [];
  const self = input.leases.find((l) => l.agentId === input.agentId);
  if (!self) return { desired: { networks: [] }, problems: [`agent ${input.agentId} has no overlay lease`] };
  const out: DesiredNetwork[] = [];
  for (const network of [...input.networks].sort((a, b) => a.vni - b.vni)) {
    const mine = self.networks[network.name]?.subnet;
    if (mine === undefined) continue; // IPv4 only for now; an IPv6-only network has nothing to program here
    const cidr = parseCidr(mine)!;
    const peers: Peer[] = [];
    for (const lease of input.leases) {
      if (lease.agentId === input.agentId) continue;
      const subnet = lease.networks[network.name]?.subnet;
      if (subnet === undefined) continue;
      if (lease.vtepIp === self.vtepIp || lease.underlayIp === self.underlayIp) {
        problems.push(`agent ${lease.agentId} shares VTEP ${lease.vtepIp} or underlay ${lease.underlayIp} with this agent; left out`);
        continue;
      }
      peers.push({ agentId: lease.agentId, vtepIp: lease.vtepIp, vtepMac: lease.vtepMac, underlayIp: lease.underlayIp, subnet });
    }
    peers.sort((a, b) => (a.agentId < b.agentId ? -1 : 1));
    out.push({
      network: network.name,
      vxlan: { name: vxlanName(network.vni), vni: network.vni, local: self.underlayIp, port: input.vxlanPort ?? OVERLAY_DEFAULTS.vxlanPort, mtu: network.mtu, mac: self.vtepMac, vtepIp: self.vtepIp },
      bridge: { name: bridgeName(network.name), mtu: network.mtu, gateway: gatewayOf(mine), prefixLength: cidr.prefixLength },
      peers,
    });
  }
  return { desired: { networks: out }, problems };
}

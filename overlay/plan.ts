/**
 * Desired overlay state + observed kernel state → the kernel operations
 * that make them equal (pure). Two phases: links first (devices must exist
 * before anything refers to their index), then addresses, FDB, neighbours
 * and routes. Only what Strata owns is ever removed: VXLAN devices named
 * `vtep<n>`, bridges named `m-<network>`, routes with protocol 83, and
 * permanent neighbour / self FDB entries on its VXLAN devices. Nothing that
 * already matches is touched, so reconciling twice sends nothing the
 * second time and an agent restart never disturbs working connections.
 */
import { parseCidr, bigIntToIp } from '../common/ip.ts';
import type { DesiredNetwork, DesiredOverlay } from './desired.ts';
import { isOverlayBridgeName, isOverlayVxlanName } from './desired.ts';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  NTF_SELF,
  NUD_PERMANENT,
  RTPROT_STRATA,
  RT_TABLE_MAIN,
  address,
  delLink,
  fdb,
  neighbour,
  newBridge,
  newVxlan,
  route,
  setLink,
  type AddressInfo,
  type LinkChange,
  type LinkInfo,
  type NeighbourInfo,
  type Request,
  type RouteInfo,
  type VxlanSpec,
} from './rtnl/codec.ts';

export type KernelOp =
  | { readonly op: 'createVxlan'; readonly spec: VxlanSpec }
  | { readonly op: 'createBridge'; readonly name: string; readonly mtu: number }
  | { readonly op: 'deleteLink'; readonly index: number; readonly name: string; readonly why: string }
  | { readonly op: 'setLink'; readonly index: number; readonly name: string; readonly change: LinkChange }
  | { readonly op: 'addAddress' | 'delAddress'; readonly index: number; readonly ip: string; readonly prefixLength: number }
  | { readonly op: 'replaceRoute' | 'delRoute'; readonly dst: string; readonly dstLength: number; readonly gateway: string; readonly oif: number }
  | { readonly op: 'replaceNeighbour' | 'delNeighbour'; readonly index: number; readonly ip: string; readonly mac: string }
  | { readonly op: 'replaceFdb' | 'delFdb'; readonly index: number; readonly mac: string; readonly dst: string };

export function toRequest(op: KernelOp): Request {
  switch (op.op) {
    case 'createVxlan': return newVxlan(op.spec);
    case 'createBridge': return newBridge(op.name, op.mtu, true);
    case 'deleteLink': return delLink(op.index, op.name);
    case 'setLink': return setLink(op.index, op.change, op.name);
    case 'addAddress': return address('add', op.index, op.ip, op.prefixLength);
    case 'delAddress': return address('del', op.index, op.ip, op.prefixLength);
    case 'replaceRoute': return route('replace', op);
    case 'delRoute': return route('del', op);
    case 'replaceNeighbour': return neighbour('replace', op.index, op.ip, op.mac);
    case 'delNeighbour': return neighbour('del', op.index, op.ip, op.mac);
    case 'replaceFdb': return fdb('replace', op.index, op.mac, op.dst);
    case 'delFdb': return fdb('del', op.index, op.mac, op.dst);
  }
}

/** Phase 1: the devices. */
export function planLinks(desired: DesiredOverlay, links: readonly LinkInfo[]): KernelOp[] {
  const ops: KernelOp[] = [];
  const byName = new Map(links.map((l) => [l.name, l]));
  const wanted = new Set<string>();
  for (const n of desired.networks) {
    const v = n.vxlan;
    wanted.add(v.name);
    wanted.add(n.bridge.name);
    const spec: VxlanSpec = { name: v.name, vni: v.vni, local: v.local, port: v.port, mtu: v.mtu, mac: v.mac, up: true };
    const vx = byName.get(v.name);
    if (!vx) ops.push({ op: 'createVxlan', spec });
    else if (vx.kind !== 'vxlan' || vx.vxlan?.vni !== v.vni || vx.vxlan.local !== v.local || vx.vxlan.port !== v.port || vx.vxlan.learning !== false) {
      ops.push({ op: 'deleteLink', index: vx.index, name: vx.name, why: `is ${vx.kind ?? 'not a vxlan'} ${JSON.stringify(vx.vxlan ?? {})}, wanted vni ${v.vni} local ${v.local} dstport ${v.port} nolearning` });
      ops.push({ op: 'createVxlan', spec });
    } else {
      const change: { up?: boolean; mtu?: number; mac?: string } = {};
      if (!vx.up) change.up = true;
      if (vx.mtu !== v.mtu) change.mtu = v.mtu;
      if (vx.mac !== v.mac) change.mac = v.mac;
      if (Object.keys(change).length > 0) ops.push({ op: 'setLink', index: vx.index, name: vx.name, change });
    }
    const br = byName.get(n.bridge.name);
    if (!br) ops.push({ op: 'createBridge', name: n.bridge.name, mtu: n.bridge.mtu });
    else if (br.kind !== 'bridge') {
      ops.push({ op: 'deleteLink', index: br.index, name: br.name, why: `is ${br.kind ?? 'a plain link'}, wanted a bridge` });
      ops.push({ op: 'createBridge', name: n.bridge.name, mtu: n.bridge.mtu });
    } else {
      const change: { up?: boolean; mtu?: number } = {};
      if (!br.up) change.up = true;
      if (br.mtu !== n.bridge.mtu) change.mtu = n.bridge.mtu;
      if (Object.keys(change).length > 0) ops.push({ op: 'setLink', index: br.index, name: br.name, change });
    }
  }
  for (const l of links) {
    if (wanted.has(l.name)) continue;
    if ((l.kind === 'vxlan' && isOverlayVxlanName(l.name)) || (l.kind === 'bridge' && isOverlayBridgeName(l.name))) {
      ops.push({ op: 'deleteLink', index: l.index, name: l.name, why: 'its network is gone from this agent' });
    }
  }
  return ops;
}

export interface Observed {
  readonly links: readonly LinkInfo[];
  readonly addresses: readonly AddressInfo[];
  readonly routes: readonly RouteInfo[];
  readonly neighbours: readonly NeighbourInfo[];
  readonly fdb: readonly NeighbourInfo[];
}

function networkAddress(subnet: string): { dst: string; dstLength: number } {
  const c = parseCidr(subnet)!;
  return { dst: bigIntToIp(c.base, c.family), dstLength: c.prefixLength };
}

/** Addresses the kernel manages itself (IPv6 link-local, fe80::/10): never ours to remove. */
const isLinkLocal6 = (ip: string): boolean => /^fe[89ab][0-9a-f]?:/i.test(ip);

/** Phase 2: addresses, FDB, neighbours, routes (every device of `desired` exists in `observed.links`). */
export function planEntries(desired: DesiredOverlay, observed: Observed): KernelOp[] {
  const ops: KernelOp[] = [];
  const byName = new Map(observed.links.map((l) => [l.name, l]));
  const vxlanIndexes = new Set<number>();
  const wantedRoutes = new Map<string, { dst: string; dstLength: number; gateway: string; oif: number }>();

  const planNetwork = (n: DesiredNetwork): void => {
    const vx = byName.get(n.vxlan.name);
    const br = byName.get(n.bridge.name);
    if (!vx || !br) return;
    vxlanIndexes.add(vx.index);
    // Addresses: exactly the VTEP /32 on the VXLAN device, the gateway of each family on the bridge (link-local ones left alone).
    const b = n.bridge;
    const bridgeWant = [
      ...(b.gateway !== undefined && b.prefixLength !== undefined ? [{ ip: b.gateway, prefixLength: b.prefixLength }] : []),
      ...(b.gateway6 !== undefined && b.prefixLength6 !== undefined ? [{ ip: b.gateway6, prefixLength: b.prefixLength6 }] : []),
    ];
    for (const [link, want] of [[vx, [{ ip: n.vxlan.vtepIp, prefixLength: 32 }]], [br, bridgeWant]] as const) {
      const have = observed.addresses.filter((a) => a.index === link.index && !isLinkLocal6(a.ip));
      for (const w of want) if (!have.some((a) => a.ip === w.ip && a.prefixLength === w.prefixLength)) ops.push({ op: 'addAddress', index: link.index, ip: w.ip, prefixLength: w.prefixLength });
      for (const a of have) if (!want.some((w) => a.ip === w.ip && a.prefixLength === w.prefixLength)) ops.push({ op: 'delAddress', index: a.index, ip: a.ip, prefixLength: a.prefixLength });
    }
    // FDB: peer VTEP MAC → peer underlay IP.
    const fdbHave = new Map(observed.fdb.filter((f) => f.family === AF_BRIDGE && f.index === vx.index && (f.flags & NTF_SELF) !== 0 && f.mac !== undefined).map((f) => [f.mac!, f]));
    const fdbWant = new Map(n.peers.map((p) => [p.vtepMac, p.underlayIp]));
    for (const [mac, dst] of fdbWant) if (fdbHave.get(mac)?.dst !== dst || (fdbHave.get(mac)!.state & NUD_PERMANENT) === 0) ops.push({ op: 'replaceFdb', index: vx.index, mac, dst });
    for (const [mac, f] of fdbHave) if (!fdbWant.has(mac) && f.dst !== undefined) ops.push({ op: 'delFdb', index: vx.index, mac, dst: f.dst });
    // Neighbours: peer VTEP IP → peer VTEP MAC, permanent (and its link-local → the same MAC for a peer's IPv6 subnet).
    const neighHave = new Map(observed.neighbours.filter((x) => (x.family === AF_INET || x.family === AF_INET6) && x.index === vx.index && x.dst !== undefined).map((x) => [x.dst!, x]));
    const neighWant = new Map(n.peers.flatMap((p) => [[p.vtepIp, p.vtepMac] as const, ...(p.subnet6 !== undefined ? [[p.vtepIp6, p.vtepMac] as const] : [])]));
    for (const [ip, mac] of neighWant) {
      const have = neighHave.get(ip);
      if (have?.mac !== mac || (have.state & NUD_PERMANENT) === 0) ops.push({ op: 'replaceNeighbour', index: vx.index, ip, mac });
    }
    for (const [ip, x] of neighHave) if (!neighWant.has(ip) && (x.state & NUD_PERMANENT) !== 0 && x.mac !== undefined) ops.push({ op: 'delNeighbour', index: vx.index, ip, mac: x.mac });
    // Routes: peer subnets via peer VTEP (IPv4) or its link-local address (IPv6), onlink.
    for (const p of n.peers) {
      for (const [subnet, gateway] of [[p.subnet, p.vtepIp], [p.subnet6, p.vtepIp6]] as const) {
        if (subnet === undefined) continue;
        const r = { ...networkAddress(subnet), gateway, oif: vx.index };
        wantedRoutes.set(`${r.dst}/${r.dstLength}`, r);
      }
    }
  };
  for (const n of desired.networks) planNetwork(n);

  const ours = observed.routes.filter((r) => r.table === RT_TABLE_MAIN && r.protocol === RTPROT_STRATA);
  const oursByDst = new Map(ours.map((r) => [`${r.dst}/${r.dstLength}`, r]));
  for (const [key, want] of wantedRoutes) {
    const have = oursByDst.get(key);
    if (!have || have.gateway !== want.gateway || have.oif !== want.oif || !have.onlink) ops.push({ op: 'replaceRoute', ...want });
  }
  for (const [key, have] of oursByDst) {
    if (!wantedRoutes.has(key) && have.gateway !== undefined && have.oif !== undefined) ops.push({ op: 'delRoute', dst: have.dst, dstLength: have.dstLength, gateway: have.gateway, oif: have.oif });
  }
  return ops;
}

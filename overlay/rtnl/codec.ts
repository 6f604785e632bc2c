/**
 * A small typed rtnetlink codec: the few messages the overlay sends
 * (links, addresses, routes, neighbours, FDB entries) and the dumps it
 * reads back. Pure: bytes in, bytes out; golden-byte tests compare it with
 * what iproute2 sends (`codec.test.ts`).
 *
 * Why not the `netlink` package's encoders: they never set NLA_F_NESTED,
 * drop unknown flag keys silently (RTNH_F_ONLINK), type nested data as
 * opaque buffers, and their errors carry no errno (see
 * ../shared/reference/net-calibration.md). Its socket is used as the
 * transport (`socket.ts`).
 *
 * Layouts are the kernel's (include/uapi/linux/{netlink,rtnetlink,if_link,
 * if_addr,neighbour}.h), little-endian host order, 4-byte aligned.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { bigIntToIp, ipToBigInt } from '../../common/ip.ts';

// Message types (rtnetlink.h)
export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWNEIGH: 28, DELNEIGH: 29, GETNEIGH: 30,
} as const;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

// nlmsg_flags (netlink.h)
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, ROOT: 0x100, MATCH: 0x200, DUMP: 0x300, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400, APPEND: 0x800 } as const;
export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;
export const IFF_UP = 0x1;

const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28 } as const;
const VETH_INFO_PEER = 1;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const IFLA_VXLAN = { ID: 1, LOCAL: 4, LEARNING: 7, PORT: 15 } as const;
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
/** IFA_F_NODAD: an IPv6 address usable at once (no duplicate detection on a subnet Strata alone allocates). */
export const IFA_F_NODAD = 0x02;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, TABLE: 15 } as const;
const NDA = { DST: 1, LLADDR: 2 } as const;

export const RT_TABLE_MAIN = 254;
export const RT_SCOPE_UNIVERSE = 0;
export const RTN_UNICAST = 1;
export const RTNH_F_ONLINK = 0x4;
/** The route protocol Strata's overlay routes carry (`ip route ... proto 83`), so reconcile knows its own. */
export const RTPROT_STRATA = 83;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;

// ---------------------------------------------------------------------------
// Encoding

const align = (n: number): number => (n + 3) & ~3;

/** One attribute: type, payload, padded to 4 bytes. */
export function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(align(4 + payload.length));
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
/** A nested attribute, flagged NLA_F_NESTED (the kernel's strict parsing wants it; iproute2 leaves it off). */
export const nested = (type: number, children: readonly Buffer[]): Buffer => attr(type | NLA_F_NESTED, Buffer.concat(children));
const u8 = (n: number): Buffer => Buffer.from([n]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};
const be16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
};
const cstring = (s: string): Buffer => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);

export function ipv4Bytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split('.').map(Number));
}
export function macBytes(mac: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw new TypeError(`not a MAC address: ${mac}`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}
const ipv4Text = (b: Buffer): string => [...b.subarray(0, 4)].join('.');
/** The bytes of an IPv4 (4) or IPv6 (16) address. */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return ipv4Bytes(ip);
  if (!isIPv6(ip)) throw new TypeError(`not an IP address: ${ip}`);
  const n = ipToBigInt(ip);
  const b = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) b[i] = Number((n >> BigInt((15 - i) * 8)) & 0xffn);
  return b;
}
/** The canonical text of 4 or 16 address bytes. */
export function ipText(b: Buffer): string {
  if (b.length === 4) return ipv4Text(b);
  let n = 0n;
  for (const x of b.subarray(0, 16)) n = (n << 8n) | BigInt(x);
  return bigIntToIp(n, 6);
}
const familyOf = (ip: string): number => (isIPv6(ip) ? AF_INET6 : AF_INET);
const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

function ifinfomsg(family: number, index: number, flags: number, change: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeUInt16LE(0, 2);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags >>> 0, 8);
  b.writeUInt32LE(change >>> 0, 12);
  return b;
}
function ifaddrmsg(prefixLength: number, index: number, family = AF_INET, flags = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt32LE(index, 4);
  return b;
}
function rtmsg(dstLength: number, protocol: number, flags: number, family = AF_INET): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeUInt8(dstLength, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(protocol, 5);
  b.writeUInt8(RT_SCOPE_UNIVERSE, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  b.writeUInt32LE(flags, 8);
  return b;
}
function ndmsg(family: number, index: number, state: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  b.writeUInt8(flags, 10);
  return b;
}

/** A request: message type, flags (REQUEST and ACK are added by the socket) and payload. */
export interface Request {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
  /** What it does, for errors and logs: `add route 9.0.2.0/24 via 44.128.0.2`. */
  readonly what: string;
}

/** A whole netlink message (header + payload), as the socket sends it; for golden tests. */
export function message(request: Request, seq: number, pid = 0): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(16 + request.payload.length, 0);
  header.writeUInt16LE(request.type, 4);
  header.writeUInt16LE(request.flags | NLM_F.REQUEST | NLM_F.ACK, 6);
  header.writeUInt32LE(seq >>> 0, 8);
  header.writeUInt32LE(pid >>> 0, 12);
  return Buffer.concat([header, request.payload]);
}

export interface VxlanSpec {
  readonly name: string;
  readonly vni: number;
  readonly local: string;
  readonly port: number;
  readonly mtu: number;
  readonly mac: string;
  /** Bring it up in the same request. */
  readonly up: boolean;
}

/** `ip link add NAME mtu M address MAC type vxlan id VNI local IP dstport PORT nolearning [up]`. */
export function newVxlan(spec: VxlanSpec): Request {
  const payload = Buffer.concat([
    ifinfomsg(AF_UNSPEC, 0, spec.up ? IFF_UP : 0, spec.up ? IFF_UP : 0),
    attr(IFLA.MTU, u32(spec.mtu)),
    attr(IFLA.ADDRESS, macBytes(spec.mac)),
    attr(IFLA.IFNAME, cstring(spec.name)),
    nested(IFLA.LINKINFO, [
      attr(IFLA_INFO.KIND, Buffer.from('vxlan')),
      nested(IFLA_INFO.DATA, [
        attr(IFLA_VXLAN.ID, u32(spec.vni)),
        attr(IFLA_VXLAN.LOCAL, ipv4Bytes(spec.local)),
        attr(IFLA_VXLAN.LEARNING, u8(0)),
        attr(IFLA_VXLAN.PORT, be16(spec.port)),
      ]),
    ]),
  ]);
  return { type: RTM.NEWLINK, flags: NLM_F.CREATE | NLM_F.EXCL, payload, what: `add vxlan ${spec.name} id ${spec.vni} local ${spec.local} dstport ${spec.port}` };
}

/** `ip link add NAME mtu M type bridge [up]`. */
export function newBridge(name: string, mtu: number, up: boolean): Request {
  const payload = Buffer.concat([
    ifinfomsg(AF_UNSPEC, 0, up ? IFF_UP : 0, up ? IFF_UP : 0),
    attr(IFLA.MTU, u32(mtu)),
    attr(IFLA.IFNAME, cstring(name)),
    nested(IFLA.LINKINFO, [attr(IFLA_INFO.KIND, Buffer.from('bridge'))]),
  ]);
  return { type: RTM.NEWLINK, flags: NLM_F.CREATE | NLM_F.EXCL, payload, what: `add bridge ${name}` };
}

export interface VethSpec {
  /** The end that stays in this namespace. */
  readonly name: string;
  readonly mtu: number;
  /** Bridge (ifindex) to enslave this end to, in the same request. */
  readonly master?: number;
  /** The other end: its name and the namespace (an open fd of it) it is created in. */
  readonly peer: { readonly name: string; readonly netnsFd: number };
}

/** `ip link add NAME mtu M [master B] up type veth peer name PEER netns FD mtu M` (the peer is created down, inside its namespace). */
export function newVeth(spec: VethSpec): Request {
  const peer = Buffer.concat([
    ifinfomsg(AF_UNSPEC, 0, 0, 0),
    attr(IFLA.IFNAME, cstring(spec.peer.name)),
    attr(IFLA.MTU, u32(spec.mtu)),
    attr(IFLA.NET_NS_FD, u32(spec.peer.netnsFd)),
  ]);
  const payload = Buffer.concat([
    ifinfomsg(AF_UNSPEC, 0, IFF_UP, IFF_UP),
    attr(IFLA.MTU, u32(spec.mtu)),
    attr(IFLA.IFNAME, cstring(spec.name)),
    ...(spec.master !== undefined ? [attr(IFLA.MASTER, u32(spec.master))] : []),
    nested(IFLA.LINKINFO, [attr(IFLA_INFO.KIND, Buffer.from('veth')), nested(IFLA_INFO.DATA, [attr(VETH_INFO_PEER, peer)])]),
  ]);
  return { type: RTM.NEWLINK, flags: NLM_F.CREATE | NLM_F.EXCL, payload, what: `add veth ${spec.name} peer ${spec.peer.name}` };
}

/** `ip link del NAME` by name (no index needed); ENODEV when there is none. */
export function delLinkNamed(name: string): Request {
  return { type: RTM.DELLINK, flags: 0, payload: Buffer.concat([ifinfomsg(AF_UNSPEC, 0, 0, 0), attr(IFLA.IFNAME, cstring(name))]), what: `delete link ${name}` };
}

export interface LinkChange {
  readonly up?: boolean;
  readonly mtu?: number;
  readonly mac?: string;
  readonly master?: number;
}

/** `ip link set dev INDEX [up|down] [mtu M] [address MAC] [master N]`. */
export function setLink(index: number, change: LinkChange, name = `#${index}`): Request {
  const attrs: Buffer[] = [];
  if (change.mtu !== undefined) attrs.push(attr(IFLA.MTU, u32(change.mtu)));
  if (change.mac !== undefined) attrs.push(attr(IFLA.ADDRESS, macBytes(change.mac)));
  if (change.master !== undefined) attrs.push(attr(IFLA.MASTER, u32(change.master)));
  const flags = change.up === undefined ? 0 : change.up ? IFF_UP : 0;
  const mask = change.up === undefined ? 0 : IFF_UP;
  return { type: RTM.NEWLINK, flags: 0, payload: Buffer.concat([ifinfomsg(AF_UNSPEC, index, flags, mask), ...attrs]), what: `set link ${name} ${JSON.stringify(change)}` };
}

export function delLink(index: number, name = `#${index}`): Request {
  return { type: RTM.DELLINK, flags: 0, payload: ifinfomsg(AF_UNSPEC, index, 0, 0), what: `delete link ${name}` };
}

/** `ip addr add IP/LEN dev INDEX` (or `del`); an IPv6 address is added `nodad`. */
export function address(op: 'add' | 'del', index: number, ip: string, prefixLength: number): Request {
  const family = familyOf(ip);
  const flags = family === AF_INET6 && op === 'add' ? IFA_F_NODAD : 0;
  const payload = Buffer.concat([ifaddrmsg(prefixLength, index, family, flags), attr(IFA.LOCAL, ipBytes(ip)), attr(IFA.ADDRESS, ipBytes(ip))]);
  return op === 'add'
    ? { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.EXCL, payload, what: `add address ${ip}/${prefixLength} dev #${index}` }
    : { type: RTM.DELADDR, flags: 0, payload, what: `delete address ${ip}/${prefixLength} dev #${index}` };
}

export interface RouteSpec {
  readonly dst: string;
  readonly dstLength: number;
  readonly gateway: string;
  readonly oif: number;
}

/** `ip route replace DST/LEN via GW dev OIF onlink proto 83` (or `del`; `ip -6 route` for IPv6, whose gateway is IPv6 too). */
export function route(op: 'replace' | 'add' | 'del', spec: RouteSpec): Request {
  const family = familyOf(spec.dst);
  if (familyOf(spec.gateway) !== family) throw new TypeError(`route ${spec.dst}/${spec.dstLength}: gateway ${spec.gateway} is of the other family`);
  const payload = Buffer.concat([
    rtmsg(spec.dstLength, RTPROT_STRATA, RTNH_F_ONLINK, family),
    attr(RTA.DST, ipBytes(spec.dst)),
    attr(RTA.GATEWAY, ipBytes(spec.gateway)),
    attr(RTA.OIF, u32(spec.oif)),
  ]);
  const what = `${op} route ${spec.dst}/${spec.dstLength} via ${spec.gateway} dev #${spec.oif} onlink`;
  if (op === 'del') return { type: RTM.DELROUTE, flags: 0, payload, what };
  return { type: RTM.NEWROUTE, flags: op === 'replace' ? NLM_F.CREATE | NLM_F.REPLACE : NLM_F.CREATE | NLM_F.EXCL, payload, what };
}

/** `ip route add default via GW proto 83` (`ip -6 route` for an IPv6 gateway; a container's route out through its bridge). */
export function defaultRoute(gateway: string): Request {
  const payload = Buffer.concat([rtmsg(0, RTPROT_STRATA, 0, familyOf(gateway)), attr(RTA.GATEWAY, ipBytes(gateway))]);
  return { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.EXCL, payload, what: `add default route via ${gateway}` };
}

/** `ip neigh replace IP lladdr MAC dev INDEX nud permanent` (or `del`). */
export function neighbour(op: 'replace' | 'del', index: number, ip: string, mac: string): Request {
  const payload = Buffer.concat([ndmsg(familyOf(ip), index, NUD_PERMANENT, 0), attr(NDA.DST, ipBytes(ip)), attr(NDA.LLADDR, macBytes(mac))]);
  const what = `${op} neighbour ${ip} lladdr ${mac} dev #${index}`;
  return op === 'del' ? { type: RTM.DELNEIGH, flags: 0, payload, what } : { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.REPLACE, payload, what };
}

/** `bridge fdb replace MAC dev INDEX dst IP self permanent` (or `del`). */
export function fdb(op: 'replace' | 'del', index: number, mac: string, dst: string): Request {
  const payload = Buffer.concat([ndmsg(AF_BRIDGE, index, NUD_PERMANENT | NUD_NOARP, NTF_SELF), attr(NDA.LLADDR, macBytes(mac)), attr(NDA.DST, ipv4Bytes(dst))]);
  const what = `${op} fdb ${mac} dst ${dst} dev #${index}`;
  return op === 'del' ? { type: RTM.DELNEIGH, flags: 0, payload, what } : { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.REPLACE, payload, what };
}

/** Dump requests. */
export const dump = {
  links: (): Request => ({ type: RTM.GETLINK, flags: NLM_F.DUMP, payload: ifinfomsg(AF_UNSPEC, 0, 0, 0), what: 'dump links' }),
  /** IPv4 and IPv6 addresses. */
  addresses: (): Request => ({ type: RTM.GETADDR, flags: NLM_F.DUMP, payload: ifaddrmsg(0, 0, AF_UNSPEC), what: 'dump addresses' }),
  /** IPv4 routes, or with `AF_INET6` the IPv6 ones. */
  routes: (family: number = AF_INET): Request => ({ type: RTM.GETROUTE, flags: NLM_F.DUMP, payload: Buffer.concat([Buffer.from([family]), Buffer.alloc(11)]), what: family === AF_INET6 ? 'dump IPv6 routes' : 'dump routes' }),
  /** IPv4 neighbours, or with `AF_INET6` the IPv6 ones. */
  neighbours: (family: number = AF_INET): Request => ({ type: RTM.GETNEIGH, flags: NLM_F.DUMP, payload: ndmsg(family, 0, 0, 0), what: family === AF_INET6 ? 'dump IPv6 neighbours' : 'dump neighbours' }),
  fdb: (): Request => ({ type: RTM.GETNEIGH, flags: NLM_F.DUMP, payload: ndmsg(AF_BRIDGE, 0, 0, 0), what: 'dump fdb' }),
} as const;

// ---------------------------------------------------------------------------
// Decoding

/** Attributes of a payload from `offset`: type (flags stripped) → payload (the last one wins). */
export function parseAttrs(buf: Buffer, offset: number): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = offset;
  while (at + 4 <= buf.length) {
    const length = buf.readUInt16LE(at);
    if (length < 4 || at + length > buf.length) break;
    out.set(buf.readUInt16LE(at + 2) & NLA_TYPE_MASK, buf.subarray(at + 4, at + length));
    at += align(length);
  }
  return out;
}

/** The errno of an NLMSG_ERROR payload (0 = an ACK). */
export function errorOf(payload: Buffer): number {
  return payload.length >= 4 ? Math.abs(payload.readInt32LE(0)) : 0;
}

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly up: boolean;
  readonly mtu?: number;
  readonly mac?: string;
  readonly master?: number;
  readonly kind?: string;
  readonly vxlan?: { readonly vni?: number; readonly local?: string; readonly port?: number; readonly learning?: boolean };
}

export function decodeLink(p: Buffer): LinkInfo {
  const index = p.readInt32LE(4);
  const flags = p.readUInt32LE(8);
  const a = parseAttrs(p, 16);
  const name = a.get(IFLA.IFNAME)?.toString('utf8').replace(/\0.*$/s, '') ?? '';
  const info = a.get(IFLA.LINKINFO);
  let kind: string | undefined;
  let vxlan: LinkInfo['vxlan'];
  if (info) {
    const i = parseAttrs(info, 0);
    kind = i.get(IFLA_INFO.KIND)?.toString('utf8').replace(/\0.*$/s, '');
    const data = i.get(IFLA_INFO.DATA);
    if (kind === 'vxlan' && data) {
      const v = parseAttrs(data, 0);
      const id = v.get(IFLA_VXLAN.ID);
      const local = v.get(IFLA_VXLAN.LOCAL);
      const port = v.get(IFLA_VXLAN.PORT);
      const learning = v.get(IFLA_VXLAN.LEARNING);
      vxlan = {
        ...(id ? { vni: id.readUInt32LE(0) } : {}),
        ...(local && local.length >= 4 ? { local: ipv4Text(local) } : {}),
        ...(port ? { port: port.readUInt16BE(0) } : {}),
        ...(learning ? { learning: learning.readUInt8(0) !== 0 } : {}),
      };
    }
  }
  const mtu = a.get(IFLA.MTU);
  const mac = a.get(IFLA.ADDRESS);
  const master = a.get(IFLA.MASTER);
  return {
    index, name, up: (flags & IFF_UP) !== 0,
    ...(mtu ? { mtu: mtu.readUInt32LE(0) } : {}),
    ...(mac && mac.length === 6 ? { mac: macText(mac) } : {}),
    ...(master ? { master: master.readUInt32LE(0) } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(vxlan ? { vxlan } : {}),
  };
}

export interface AddressInfo {
  readonly index: number;
  readonly ip: string;
  readonly prefixLength: number;
}

export function decodeAddress(p: Buffer): AddressInfo | undefined {
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const a = parseAttrs(p, 8);
  const local = a.get(IFA.LOCAL) ?? a.get(IFA.ADDRESS);
  return local && local.length === (family === AF_INET ? 4 : 16) ? { index: p.readUInt32LE(4), ip: ipText(local), prefixLength: p.readUInt8(1) } : undefined;
}

export interface RouteInfo {
  readonly dst: string;
  readonly dstLength: number;
  readonly gateway?: string;
  readonly oif?: number;
  readonly table: number;
  readonly protocol: number;
  readonly onlink: boolean;
}

export function decodeRoute(p: Buffer): RouteInfo | undefined {
  const family = p.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const a = parseAttrs(p, 12);
  const dst = a.get(RTA.DST);
  const gw = a.get(RTA.GATEWAY);
  const oif = a.get(RTA.OIF);
  const table = a.get(RTA.TABLE);
  return {
    dst: dst ? ipText(dst) : family === AF_INET ? '0.0.0.0' : '::',
    dstLength: p.readUInt8(1),
    ...(gw && (gw.length === 4 || gw.length === 16) ? { gateway: ipText(gw) } : {}),
    ...(oif ? { oif: oif.readUInt32LE(0) } : {}),
    table: table ? table.readUInt32LE(0) : p.readUInt8(4),
    protocol: p.readUInt8(5),
    onlink: (p.readUInt32LE(8) & RTNH_F_ONLINK) !== 0,
  };
}

export interface NeighbourInfo {
  readonly family: number;
  readonly index: number;
  readonly state: number;
  readonly flags: number;
  /** NDA_DST: the neighbour's IP, or for an FDB entry the remote VTEP's underlay IP. */
  readonly dst?: string;
  readonly mac?: string;
}

export function decodeNeighbour(p: Buffer): NeighbourInfo {
  const a = parseAttrs(p, 12);
  const dst = a.get(NDA.DST);
  const mac = a.get(NDA.LLADDR);
  return {
    family: p.readUInt8(0), index: p.readInt32LE(4), state: p.readUInt16LE(8), flags: p.readUInt8(10),
    ...(dst && (dst.length === 4 || dst.length === 16) ? { dst: ipText(dst) } : {}),
    ...(mac && mac.length === 6 ? { mac: macText(mac) } : {}),
  };
}

// ---------------------------------------------------------------------------
// Dump messages, as the kernel sends them (the inverse of the decoders; the in-repo fake kernel uses them)

export function encodeLinkInfo(l: LinkInfo): Buffer {
  const info: Buffer[] = [];
  if (l.kind !== undefined) info.push(attr(IFLA_INFO.KIND, Buffer.from(l.kind)));
  if (l.vxlan) {
    const v: Buffer[] = [];
    if (l.vxlan.vni !== undefined) v.push(attr(IFLA_VXLAN.ID, u32(l.vxlan.vni)));
    if (l.vxlan.local !== undefined) v.push(attr(IFLA_VXLAN.LOCAL, ipv4Bytes(l.vxlan.local)));
    if (l.vxlan.learning !== undefined) v.push(attr(IFLA_VXLAN.LEARNING, u8(l.vxlan.learning ? 1 : 0)));
    if (l.vxlan.port !== undefined) v.push(attr(IFLA_VXLAN.PORT, be16(l.vxlan.port)));
    info.push(nested(IFLA_INFO.DATA, v));
  }
  return Buffer.concat([
    ifinfomsg(AF_UNSPEC, l.index, l.up ? IFF_UP : 0, 0),
    attr(IFLA.IFNAME, cstring(l.name)),
    ...(l.mtu !== undefined ? [attr(IFLA.MTU, u32(l.mtu))] : []),
    ...(l.mac !== undefined ? [attr(IFLA.ADDRESS, macBytes(l.mac))] : []),
    ...(l.master !== undefined ? [attr(IFLA.MASTER, u32(l.master))] : []),
    ...(info.length > 0 ? [nested(IFLA.LINKINFO, info)] : []),
  ]);
}

export function encodeRouteInfo(r: RouteInfo): Buffer {
  const head = Buffer.alloc(12);
  const family = familyOf(r.dst);
  head.writeUInt8(family, 0);
  head.writeUInt8(r.dstLength, 1);
  head.writeUInt8(r.table < 256 ? r.table : 252, 4);
  head.writeUInt8(r.protocol, 5);
  head.writeUInt8(RTN_UNICAST, 7);
  head.writeUInt32LE(r.onlink ? RTNH_F_ONLINK : 0, 8);
  return Buffer.concat([
    head,
    attr(RTA.TABLE, u32(r.table)),
    attr(RTA.DST, ipBytes(r.dst)),
    ...(r.gateway !== undefined ? [attr(RTA.GATEWAY, ipBytes(r.gateway))] : []),
    ...(r.oif !== undefined ? [attr(RTA.OIF, u32(r.oif))] : []),
  ]);
}

export function encodeNeighbourInfo(n: NeighbourInfo): Buffer {
  return Buffer.concat([
    ndmsg(n.family, n.index, n.state, n.flags),
    ...(n.dst !== undefined ? [attr(NDA.DST, ipBytes(n.dst))] : []),
    ...(n.mac !== undefined ? [attr(NDA.LLADDR, macBytes(n.mac))] : []),
  ]);
}

export function encodeAddressInfo(a: AddressInfo): Buffer {
  return address('add', a.index, a.ip, a.prefixLength).payload;
}

/**
 * An in-memory kernel behind the `Rtnl` interface, for tests without root:
 * it decodes the same request bytes the real socket sends (with the codec's
 * decoders), keeps links, addresses, routes, neighbours and FDB entries,
 * refuses what the kernel refuses (EEXIST, ENOENT, ENODEV, ESRCH) with the
 * same OVERLAY_NETLINK errors, and answers dumps in the kernel's layouts.
 * Tests inspect `state` and `sent`, and can change state "by hand".
 */
import { constants } from 'node:os';
import {
  AF_BRIDGE,
  AF_INET6,
  IFF_UP,
  NLM_F,
  RTM,
  decodeAddress,
  decodeLink,
  decodeNeighbour,
  decodeRoute,
  encodeAddressInfo,
  encodeLinkInfo,
  encodeNeighbourInfo,
  encodeRouteInfo,
  type AddressInfo,
  type LinkInfo,
  type NeighbourInfo,
  type Request,
  type RouteInfo,
} from './codec.ts';
import { netlinkError, type Rtnl } from './socket.ts';

const E = constants.errno;

export interface FakeKernelState {
  links: LinkInfo[];
  addresses: AddressInfo[];
  routes: RouteInfo[];
  neighbours: NeighbourInfo[];
  fdb: NeighbourInfo[];
}

export class FakeRtnl implements Rtnl {
  readonly state: FakeKernelState = { links: [], addresses: [], routes: [], neighbours: [], fdb: [] };
  /** Every change request, in order (dumps are not recorded). */
  readonly sent: Request[] = [];
  #nextIndex = 1;

  /** A link that exists before the overlay runs (the underlay, a container veth). */
  addLink(link: Omit<LinkInfo, 'index'>): LinkInfo {
    const l = { ...link, index: this.#nextIndex++ };
    this.state.links.push(l);
    return l;
  }

  async request(request: Request): Promise<void> {
    this.sent.push(request);
    const fail = (errno: number): never => {
      throw netlinkError(request, errno);
    };
    const p = request.payload;
    const s = this.state;
    switch (request.type) {
      case RTM.NEWLINK: {
        const want = decodeLink(p);
        if (request.flags & NLM_F.CREATE) {
          if (s.links.some((l) => l.name === want.name)) fail(E.EEXIST);
          s.links.push({ ...want, index: this.#nextIndex++ });
          return;
        }
        const i = s.links.findIndex((l) => l.index === want.index);
        if (i < 0) fail(E.ENODEV);
        const change = p.readUInt32LE(12);
        const cur = s.links[i]!;
        s.links[i] = {
          ...cur,
          ...(change & IFF_UP ? { up: want.up } : {}),
          ...(want.mtu !== undefined ? { mtu: want.mtu } : {}),
          ...(want.mac !== undefined ? { mac: want.mac } : {}),
          ...(want.master !== undefined ? { master: want.master } : {}),
        };
        return;
      }
      case RTM.DELLINK: {
        const index = p.readInt32LE(4);
        if (!s.links.some((l) => l.index === index)) fail(E.ENODEV);
        s.links = s.links.filter((l) => l.index !== index);
        s.addresses = s.addresses.filter((a) => a.index !== index);
        s.routes = s.routes.filter((r) => r.oif !== index);
        s.neighbours = s.neighbours.filter((n) => n.index !== index);
        s.fdb = s.fdb.filter((n) => n.index !== index);
        return;
      }
      case RTM.NEWADDR:
      case RTM.DELADDR: {
        const a = decodeAddress(p)!;
        if (!s.links.some((l) => l.index === a.index)) fail(E.ENODEV);
        const same = (x: AddressInfo): boolean => x.index === a.index && x.ip === a.ip && x.prefixLength === a.prefixLength;
        if (request.type === RTM.NEWADDR) {
          if (s.addresses.some(same)) fail(E.EEXIST);
          s.addresses.push(a);
        } else {
          if (!s.addresses.some(same)) fail(E.EADDRNOTAVAIL);
          s.addresses = s.addresses.filter((x) => !same(x));
        }
        return;
      }
      case RTM.NEWROUTE:
      case RTM.DELROUTE: {
        const r = decodeRoute(p)!;
        const same = (x: RouteInfo): boolean => x.dst === r.dst && x.dstLength === r.dstLength && x.table === r.table;
        if (request.type === RTM.DELROUTE) {
          if (!s.routes.some(same)) fail(E.ESRCH);
          s.routes = s.routes.filter((x) => !same(x));
          return;
        }
        if (r.oif !== undefined && !s.links.some((l) => l.index === r.oif)) fail(E.ENODEV);
        if (!r.onlink) fail(E.ENETUNREACH); // a gateway off every connected subnet needs onlink
        const exists = s.routes.some(same);
        if (exists && !(request.flags & NLM_F.REPLACE)) fail(E.EEXIST);
        s.routes = [...s.routes.filter((x) => !same(x)), r];
        return;
      }
      case RTM.NEWNEIGH:
      case RTM.DELNEIGH: {
        const n = decodeNeighbour(p);
        if (!s.links.some((l) => l.index === n.index)) fail(E.ENODEV);
        const table = n.family === AF_BRIDGE ? 'fdb' : 'neighbours';
        const same = (x: NeighbourInfo): boolean => x.index === n.index && (n.family === AF_BRIDGE ? x.mac === n.mac : x.dst === n.dst);
        if (request.type === RTM.DELNEIGH) {
          if (!s[table].some(same)) fail(E.ENOENT);
          s[table] = s[table].filter((x) => !same(x));
        } else s[table] = [...s[table].filter((x) => !same(x)), n];
        return;
      }
      default:
        fail(E.EOPNOTSUPP);
    }
  }

  async dump(request: Request): Promise<Buffer[]> {
    const s = this.state;
    switch (request.type) {
      case RTM.GETLINK: return s.links.map(encodeLinkInfo);
      case RTM.GETADDR: return s.addresses.map(encodeAddressInfo);
      case RTM.GETROUTE: {
        const family = request.payload.readUInt8(0);
        return s.routes.filter((r) => (family === AF_INET6) === r.dst.includes(':')).map(encodeRouteInfo);
      }
      case RTM.GETNEIGH: {
        const family = request.payload.readUInt8(0);
        return (family === AF_BRIDGE ? s.fdb : s.neighbours.filter((n) => n.family === family)).map(encodeNeighbourInfo);
      }
      default: throw netlinkError(request, E.EOPNOTSUPP);
    }
  }

  close(): void {}
}

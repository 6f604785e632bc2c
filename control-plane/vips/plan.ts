/**
 * VIPs as data: which VIPs the apps publish (their `VIP_n` port labels),
 * which label combinations conflict, and what the VIP records must become.
 * Pure functions over read-only records; the allocator loop
 * (`allocator.ts`) writes the plan, the API route checks conflicts.
 */
import type { App, PortMapping, PortDefinition, Vip, VipPort } from '../model/schemas.ts';
import type { Issue } from '../model/validate.ts';
import { isVipLabelKey, parseVipLabel, vipDnsLabel } from '../model/vip-label.ts';
import { vipId } from '../model/keys.ts';
import { canonicalIp, cidrContains, parseCidr, type Cidr } from '../../common/ip.ts';
import { allocateAddress } from './address.ts';

/** Marathon's framework name: the scope of its named VIPs. */
export const MARATHON_FRAMEWORK = 'marathon';

export interface VipRanges {
  readonly ipv4: Cidr;
  readonly ipv6: Cidr;
}

/** The ranges of a loaded config (`vips.ipv4Range`, `vips.ipv6Range`; validated when the config was loaded). */
export function vipRangesOf(config: { readonly vips: { readonly ipv4Range: string; readonly ipv6Range: string } }): VipRanges {
  const ipv4 = parseCidr(config.vips.ipv4Range);
  const ipv6 = parseCidr(config.vips.ipv6Range);
  if (ipv4?.family !== 4 || ipv6?.family !== 6) throw new TypeError('vips ranges were not validated by loadConfig');
  return { ipv4, ipv6 };
}

/** One VIP port as an app publishes it. */
export interface VipUse {
  readonly appId: string;
  /** Index into the app's ports (portDefinitions, or container.portMappings off the host network). */
  readonly portIndex: number;
  /** JSON Pointer of the label, for error messages. */
  readonly path: string;
  readonly labelKey: string;
  readonly kind: 'named' | 'ip';
  /** Named: the label's name (`/web`); IP: the canonical address. */
  readonly name: string;
  readonly family?: 4 | 6;
  readonly port: number;
  readonly protocols: readonly ('tcp' | 'udp')[];
}

export interface DesiredVip {
  readonly id: string;
  readonly framework: string;
  readonly name: string;
  readonly kind: 'named' | 'ip';
  readonly ports: readonly VipPort[];
  readonly uses: readonly VipUse[];
}

/** The ports whose labels count for an app: portDefinitions on the host network, portMappings otherwise. */
export function appPorts(app: App): { readonly field: 'portDefinitions' | 'container/portMappings'; readonly ports: readonly (PortDefinition | PortMapping)[] } {
  const host = app.networks.every((n) => n.mode === 'host');
  return host ? { field: 'portDefinitions', ports: app.portDefinitions } : { field: 'container/portMappings', ports: app.container?.portMappings ?? [] };
}

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Every VIP port label of an app (labels that do not parse are the schema checks' business and are skipped). */
export function vipUses(app: App): VipUse[] {
  const uses: VipUse[] = [];
  const { field, ports } = appPorts(app);
  ports.forEach((p, portIndex) => {
    for (const [labelKey, value] of Object.entries(p.labels)) {
      if (!isVipLabelKey(labelKey)) continue;
      const parsed = parseVipLabel(value);
      if (!parsed) continue;
      const protocols = p.protocol === 'udp,tcp' ? (['tcp', 'udp'] as const) : ([p.protocol] as const);
      const path = `/${field}/${portIndex}/labels/${escapePointer(labelKey)}`;
      uses.push(
        parsed.kind === 'named'
          ? { appId: app.id, portIndex, path, labelKey, kind: 'named', name: parsed.name, port: parsed.port, protocols }
          : { appId: app.id, portIndex, path, labelKey, kind: 'ip', name: canonicalIp(parsed.ip), family: parsed.family, port: parsed.port, protocols },
      );
    }
  });
  return uses;
}

function comparePorts(a: VipPort, b: VipPort): number {
  return a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0);
}

/** The VIPs the apps publish, by VIP id; several apps may share one (their tasks are all backends). */
export function desiredVips(apps: readonly App[]): Map<string, DesiredVip> {
  const byId = new Map<string, { framework: string; name: string; kind: 'named' | 'ip'; ports: Map<string, VipPort>; uses: VipUse[] }>();
  for (const app of apps) {
    for (const use of vipUses(app)) {
      const id = vipId(MARATHON_FRAMEWORK, use.name);
      let entry = byId.get(id);
      if (!entry) {
        entry = { framework: MARATHON_FRAMEWORK, name: use.name, kind: use.kind, ports: new Map(), uses: [] };
        byId.set(id, entry);
      }
      for (const protocol of use.protocols) entry.ports.set(`${use.port}/${protocol}`, { port: use.port, protocol });
      entry.uses.push(use);
    }
  }
  const out = new Map<string, DesiredVip>();
  for (const [id, e] of [...byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    out.set(id, { id, framework: e.framework, name: e.name, kind: e.kind, ports: [...e.ports.values()].sort(comparePorts), uses: e.uses });
  }
  return out;
}

/**
 * Conflicts a change would bring, reported against the apps in `changed`
 * only (a conflict already stored does not block unrelated changes):
 * - two named VIPs whose names give the same DNS name
 *   (`/foo/bar` and `/foobar` are both `foobar.marathon.l4lb.thisdcos.directory`);
 * - a named VIP whose name gives no DNS label at all;
 * - an IP VIP inside a range reserved for named VIPs;
 * - one app publishing the same VIP port and protocol from two of its ports.
 */
export function vipConflicts(apps: readonly App[], changed: ReadonlySet<string>, ranges: VipRanges): Issue[] {
  const issues: Issue[] = [];
  const nameOfLabel = new Map<string, VipUse>();
  const all = apps.flatMap((app) => vipUses(app));
  // Stored apps claim DNS names first, so the message names the app that already has it.
  const ordered = [...all.filter((u) => !changed.has(u.appId)), ...all.filter((u) => changed.has(u.appId))];
  const seenInApp = new Map<string, VipUse>();
  for (const use of ordered) {
    const mine = changed.has(use.appId);
    if (use.kind === 'named') {
      const label = vipDnsLabel(use.name);
      if (label === '') {
        if (mine) issues.push({ path: use.path, message: `VIP name ${JSON.stringify(use.name)} has no letters or digits to make a DNS name from` });
        continue;
      }
      const other = nameOfLabel.get(label);
      if (other && other.name !== use.name) {
        if (mine) {
          issues.push({
            path: use.path,
            message: `VIP ${JSON.stringify(use.name)} and VIP ${JSON.stringify(other.name)} (app ${other.appId}) would both be ${label}.${MARATHON_FRAMEWORK}.l4lb.thisdcos.directory; use the same name to share a VIP`,
          });
        }
      } else if (!other) {
        nameOfLabel.set(label, use);
      }
    } else if (mine) {
      for (const range of [ranges.ipv4, ranges.ipv6]) {
        if (cidrContains(range, use.name)) {
          issues.push({ path: use.path, message: `IP VIP ${use.name} is inside the range reserved for named VIPs; pick an address outside it` });
        }
      }
    }
    if (mine) {
      for (const protocol of use.protocols) {
        const key = `${use.appId}\n${use.name}\n${use.port}/${protocol}`;
        const first = seenInApp.get(key);
        if (first && first.portIndex !== use.portIndex) {
          issues.push({ path: use.path, message: `VIP ${use.name}:${use.port}/${protocol} is already published by port ${first.portIndex} of this app` });
        } else if (!first) {
          seenInApp.set(key, use);
        }
      }
    }
  }
  return issues;
}

export interface ExistingVip {
  readonly key: string;
  readonly modifyIndex: number;
  readonly value: Vip;
}

export type VipWrite =
  | { readonly op: 'put'; readonly vip: Vip; /** 0 = create only. */ readonly casIndex: number }
  | { readonly op: 'delete'; readonly key: string; readonly id: string; readonly casIndex: number };

export interface VipPlan {
  readonly writes: readonly VipWrite[];
  /** Named VIPs left without an address because a range is full. */
  readonly unallocated: readonly { readonly id: string; readonly family: 4 | 6 }[];
}

function sameVip(a: Vip, b: Vip): boolean {
  return (
    a.framework === b.framework && a.name === b.name && a.kind === b.kind && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6 &&
    a.ports.length === b.ports.length && a.ports.every((p, i) => comparePorts(p, b.ports[i]!) === 0)
  );
}

/**
 * What the VIP records must become: one per desired VIP, named VIPs keeping
 * the addresses they have (stable for as long as they exist) unless an
 * address left the configured range or is held twice; new ones allocated by
 * {@link allocateAddress}; records no app publishes any more deleted.
 */
export function planVips(desired: ReadonlyMap<string, DesiredVip>, existing: ReadonlyMap<string, ExistingVip>, ranges: VipRanges): VipPlan {
  const writes: VipWrite[] = [];
  const unallocated: { id: string; family: 4 | 6 }[] = [];
  const taken = new Set<string>();
  const kept = new Map<string, { ipv4?: string; ipv6?: string }>();
  // Keep what existing named VIPs hold, first come first kept (by id) when two hold the same address.
  for (const [id, e] of [...existing].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const d = desired.get(id);
    if (!d || d.kind !== 'named' || e.value.kind !== 'named') continue;
    const k: { ipv4?: string; ipv6?: string } = {};
    for (const [field, range] of [['ipv4', ranges.ipv4], ['ipv6', ranges.ipv6]] as const) {
      const ip = e.value[field];
      if (ip !== undefined && cidrContains(range, ip) && !taken.has(ip)) {
        taken.add(ip);
        k[field] = ip;
      }
    }
    kept.set(id, k);
  }
  for (const d of desired.values()) {
    let vip: Vip;
    if (d.kind === 'ip') {
      const family = d.uses[0]?.family ?? 4;
      vip = { framework: d.framework, name: d.name, kind: 'ip', ...(family === 4 ? { ipv4: d.name } : { ipv6: d.name }), ports: [...d.ports] };
    } else {
      const k = kept.get(d.id) ?? {};
      const key = `${d.name}.${d.framework}`;
      const ipv4 = k.ipv4 ?? allocateAddress(key, ranges.ipv4, taken);
      const ipv6 = k.ipv6 ?? allocateAddress(key, ranges.ipv6, taken);
      if (ipv4 === undefined) unallocated.push({ id: d.id, family: 4 });
      else taken.add(ipv4);
      if (ipv6 === undefined) unallocated.push({ id: d.id, family: 6 });
      else taken.add(ipv6);
      vip = {
        framework: d.framework, name: d.name, kind: 'named',
        ...(ipv4 === undefined ? {} : { ipv4 }), ...(ipv6 === undefined ? {} : { ipv6 }),
        ports: [...d.ports],
      };
    }
    const e = existing.get(d.id);
    if (!e || !sameVip(e.value, vip)) writes.push({ op: 'put', vip, casIndex: e?.modifyIndex ?? 0 });
  }
  for (const [id, e] of existing) {
    if (!desired.has(id)) writes.push({ op: 'delete', key: e.key, id, casIndex: e.modifyIndex });
  }
  return { writes, unallocated };
}

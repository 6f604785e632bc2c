/**
 * The nftables ruleset of the kernel L4 load balancer, as text (pure).
 *
 * Design "D" of net-calibration.md (10,000 VIPs × 5 backends load in about
 * half a second here; per-service anonymous maps took 11 s), in one `inet`
 * table serving both families:
 *
 *     map vips / vips6   daddr . l4proto . dport → jump svc_<n>   (one element per VIP port)
 *     chain svc_<n>   meta mark set numgen random mod K offset base_n
 *     map be_tcp / be_udp / be6_tcp / be6_udp   mark → backend ip . port   (K elements per VIP port)
 *
 * The hook chains (prerouting for traffic from containers and other hosts,
 * output for traffic the host itself starts) look the VIP up, let its chain
 * pick a backend slot at random into the packet mark, and DNAT through the
 * backend map. Each VIP port owns a block of {@link BLOCK_SIZE} marks under
 * the tag {@link MARK_TAG}; only the first packet of a connection passes the
 * nat hooks, so only it carries the mark.
 *
 * A VIP port with no backend is in the `dead`/`dead6` set, refused at once
 * (TCP reset, ICMP port unreachable) by filter chains instead of timing out.
 * Hairpin: a client that reaches itself through a VIP (it is one of the
 * backends) is masqueraded, and only then (`hairpin`/`hairpin6` sets of
 * `ip . ip` pairs), so every other flow keeps its source address. An IPv6
 * VIP balances over IPv6 backends only, an IPv4 VIP over IPv4 ones (no
 * NAT64). UDP VIP ports work the same way: conntrack keeps a flow's
 * datagrams on the backend its first one was sent to.
 *
 * Updates are small transactions: per changed service, its backend
 * elements (and its chain's one rule only when the number of backends
 * changes), all in one nft transaction, so a change is atomic (`nft.ts`).
 */
import type { L4Backend, L4Protocol, L4Service } from './services.ts';
import { serviceKey } from './services.ts';

export const DEFAULT_TABLE = 'strata_l4lb';
/** High byte of every mark this table sets. */
export const MARK_TAG = 0x5a000000;
/** Marks per VIP port: the most backends one VIP port can balance over. */
export const BLOCK_SIZE = 256;
/** Blocks available under the tag (24 bits / 256). */
export const MAX_BLOCKS = 0x1000000 / BLOCK_SIZE;

export interface ProgrammedService {
  readonly key: string;
  readonly vip: string;
  readonly protocol: L4Protocol;
  readonly port: number;
  readonly block: number;
  readonly backends: readonly L4Backend[];
}

/** What the kernel holds (as far as this process knows): services by key and the blocks in use. */
export interface RulesetState {
  readonly table: string;
  readonly services: ReadonlyMap<string, ProgrammedService>;
  /** `ip . ip` hairpin pairs programmed. */
  readonly hairpin: ReadonlySet<string>;
}

export interface DesiredState {
  readonly services: readonly L4Service[];
  /** Backend addresses on this host that may call their own VIP (container IPs of local tasks). */
  readonly localBackendIps: readonly string[];
}

export function emptyState(table = DEFAULT_TABLE): RulesetState {
  return { table, services: new Map(), hairpin: new Set() };
}

function chainOf(block: number): string {
  return `svc_${block}`;
}

function markOf(block: number, slot: number): string {
  return `0x${(MARK_TAG + block * BLOCK_SIZE + slot).toString(16)}`;
}

function capped(backends: readonly L4Backend[]): readonly L4Backend[] {
  return backends.length > BLOCK_SIZE ? backends.slice(0, BLOCK_SIZE) : backends;
}

function sameBackends(a: readonly L4Backend[], b: readonly L4Backend[]): boolean {
  return a.length === b.length && a.every((x, i) => x.ip === b[i]!.ip && x.port === b[i]!.port);
}

function vipElement(s: { vip: string; protocol: string; port: number }): string {
  return `${s.vip} . ${s.protocol} . ${s.port}`;
}

/** The set-name suffix of an address's family: '' for IPv4, '6' for IPv6. */
function fam(ip: string): '' | '6' {
  return ip.includes(':') ? '6' : '';
}

function beMap(s: { vip: string; protocol: L4Protocol }): string {
  return `be${fam(s.vip)}_${s.protocol}`;
}

function chainRule(s: ProgrammedService): string {
  return `meta mark set numgen random mod ${s.backends.length} offset ${markOf(s.block, 0)}`;
}

function backendElements(s: ProgrammedService): string[] {
  return s.backends.map((b, slot) => `${markOf(s.block, slot)} : ${b.ip} . ${b.port}`);
}

function hairpinPairs(desired: DesiredState): Set<string> {
  const pairs = new Set<string>();
  if (desired.localBackendIps.length === 0) return pairs;
  const local = new Set(desired.localBackendIps);
  for (const s of desired.services) for (const b of s.backends) if (local.has(b.ip)) pairs.add(`${b.ip} . ${b.ip}`);
  return pairs;
}

/** Assign blocks to a whole desired state (full loads): services that keep their key keep their block; new ones take the lowest free. */
function assign(previous: RulesetState, desired: DesiredState): { services: Map<string, ProgrammedService>; overflow: string[] } {
  const services = new Map<string, ProgrammedService | undefined>();
  const fresh: L4Service[] = [];
  for (const s of desired.services) {
    const key = serviceKey(s);
    const old = previous.services.get(key);
    if (!old) {
      services.set(key, undefined);
      fresh.push(s);
      continue;
    }
    const backends = capped(s.backends);
    services.set(key, sameBackends(old.backends, backends) ? old : { ...old, backends });
  }
  const used = new Set<number>();
  for (const p of services.values()) if (p) used.add(p.block);
  const { assigned, overflow } = assignFresh(fresh, used);
  for (const key of overflow) services.delete(key);
  for (const p of assigned) services.set(p.key, p);
  return { services: services as Map<string, ProgrammedService>, overflow };
}

/** Blocks for new services: the lowest ones not in `used`. */
function assignFresh(fresh: readonly L4Service[], used: Set<number>): { assigned: ProgrammedService[]; overflow: string[] } {
  const assigned: ProgrammedService[] = [];
  const overflow: string[] = [];
  // One per key, the last one counting (Map.set keeps the first position).
  const byKey = new Map<string, L4Service>();
  for (const s of fresh) byKey.set(serviceKey(s), s);
  let next = 0;
  for (const [key, s] of byKey) {
    while (used.has(next)) next++;
    if (next >= MAX_BLOCKS) {
      overflow.push(key);
      continue;
    }
    used.add(next);
    assigned.push({ key, vip: s.vip, protocol: s.protocol, port: s.port, block: next, backends: capped(s.backends) });
  }
  return { assigned, overflow };
}

export interface FullRuleset {
  /** An `nft -f` script that replaces the table atomically (add, delete, define: one transaction). */
  readonly script: string;
  readonly state: RulesetState;
  /** Service keys left out: more VIP ports than mark blocks. */
  readonly overflow: readonly string[];
}

/** The whole table, replacing whatever the kernel holds under its name in one transaction. */
export function fullRuleset(desired: DesiredState, table = DEFAULT_TABLE, previous: RulesetState = emptyState(table)): FullRuleset {
  const { services, overflow } = assign(previous, desired);
  const hairpin = hairpinPairs(desired);
  const lines: string[] = [
    // The IPv4-only table of earlier versions goes in the same transaction.
    `add table ip ${table}`,
    `delete table ip ${table}`,
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  map vips { type ipv4_addr . inet_proto . inet_service : verdict; }',
    '  map vips6 { type ipv6_addr . inet_proto . inet_service : verdict; }',
    '  map be_tcp { typeof meta mark : ip daddr . tcp dport; }',
    '  map be_udp { typeof meta mark : ip daddr . udp dport; }',
    '  map be6_tcp { typeof meta mark : ip6 daddr . tcp dport; }',
    '  map be6_udp { typeof meta mark : ip6 daddr . udp dport; }',
    '  set dead { type ipv4_addr . inet_proto . inet_service; }',
    '  set dead6 { type ipv6_addr . inet_proto . inet_service; }',
    '  set hairpin { type ipv4_addr . ipv4_addr; }',
    '  set hairpin6 { type ipv6_addr . ipv6_addr; }',
  ];
  for (const s of services.values()) {
    lines.push(s.backends.length > 0 ? `  chain ${chainOf(s.block)} { ${chainRule(s)}; }` : `  chain ${chainOf(s.block)} { }`);
  }
  const tagged = `meta mark & 0xff000000 == 0x${MARK_TAG.toString(16)}`;
  const dispatch = [
    'ip daddr . meta l4proto . th dport vmap @vips',
    'ip6 daddr . meta l4proto . th dport vmap @vips6',
    `meta nfproto ipv4 meta l4proto tcp ${tagged} dnat ip to meta mark map @be_tcp`,
    `meta nfproto ipv4 meta l4proto udp ${tagged} dnat ip to meta mark map @be_udp`,
    `meta nfproto ipv6 meta l4proto tcp ${tagged} dnat ip6 to meta mark map @be6_tcp`,
    `meta nfproto ipv6 meta l4proto udp ${tagged} dnat ip6 to meta mark map @be6_udp`,
  ];
  lines.push(`  chain prerouting { type nat hook prerouting priority dstnat; policy accept; ${dispatch.join('; ')}; }`);
  lines.push(`  chain output { type nat hook output priority -100; policy accept; ${dispatch.join('; ')}; }`);
  lines.push('  chain postrouting { type nat hook postrouting priority srcnat; policy accept; ct status dnat ip saddr . ip daddr @hairpin masquerade; ct status dnat ip6 saddr . ip6 daddr @hairpin6 masquerade; }');
  const refuse = [
    'ip daddr . meta l4proto . th dport @dead meta l4proto tcp reject with tcp reset',
    'ip daddr . meta l4proto . th dport @dead reject',
    'ip6 daddr . meta l4proto . th dport @dead6 meta l4proto tcp reject with tcp reset',
    'ip6 daddr . meta l4proto . th dport @dead6 reject',
  ].join('; ');
  lines.push(`  chain refuse_output { type filter hook output priority filter; policy accept; ${refuse}; }`);
  lines.push(`  chain refuse_forward { type filter hook forward priority filter; policy accept; ${refuse}; }`);
  lines.push('}');
  const sets = new Map<string, string[]>();
  const put = (set: string, ...elements: string[]): void => {
    const list = sets.get(set);
    if (list) list.push(...elements);
    else sets.set(set, elements);
  };
  for (const s of services.values()) {
    if (s.backends.length === 0) {
      put(`dead${fam(s.vip)}`, vipElement(s));
      continue;
    }
    put(beMap(s), ...backendElements(s));
    put(`vips${fam(s.vip)}`, `${vipElement(s)} : jump ${chainOf(s.block)}`);
  }
  for (const pair of hairpin) put(`hairpin${fam(pair)}`, pair);
  // Backend maps before the VIP maps, so no VIP is live before its backends; large element lists in one statement are what nft loads fastest.
  for (const set of ['be_tcp', 'be_udp', 'be6_tcp', 'be6_udp', 'vips', 'vips6', 'dead', 'dead6', 'hairpin', 'hairpin6']) {
    const elements = sets.get(set);
    if (elements && elements.length > 0) lines.push(`add element inet ${table} ${set} { ${elements.join(', ')} }`);
  }
  return { script: `${lines.join('\n')}\n`, state: { table, services, hairpin }, overflow };
}

/**
 * The change from one state to the next as data: the nft commands (one
 * transaction) and what to record once the kernel took them.
 */
export interface RulesetPlan {
  /** nft commands to run as one transaction (empty: nothing changed). */
  readonly commands: readonly string[];
  /** Services added or changed, as they are once the commands ran. */
  readonly upserts: readonly ProgrammedService[];
  /** Keys of services taken out. */
  readonly removals: readonly string[];
  readonly hairpin: ReadonlySet<string>;
  /** Service keys left out: more VIP ports than mark blocks. */
  readonly overflow: readonly string[];
}

export interface RulesetUpdate {
  /** nft commands to run as one transaction (empty: nothing changed). */
  readonly commands: readonly string[];
  readonly state: RulesetState;
  readonly overflow: readonly string[];
}

/**
 * The commands that take the kernel from `previous` to `desired`, element
 * by element. A service whose backends change rewrites only its backend
 * slots, and its chain's one rule only when the number of backends changes;
 * its VIP map element stays unless it gains its first or loses its last
 * backend. Deletions come before additions, so a slot is never added while
 * still held.
 *
 * Cost: one key and one lookup per desired service and no per-service
 * allocation when nothing about it changed (10,000 VIPs: a few ms); when
 * `desired.services` is sorted by key without duplicates (as
 * `servicesFromVips` returns it) and every service is still there, no set
 * of keys is built either.
 */
export function planUpdate(previous: RulesetState, desired: DesiredState): RulesetPlan {
  const { table } = previous;
  const removes: string[] = [];
  const adds: string[] = [];
  const el = (op: 'add' | 'delete', set: string, elements: readonly string[]): void => {
    if (elements.length > 0) (op === 'add' ? adds : removes).push(`${op} element inet ${table} ${set} { ${elements.join(', ')} }`);
  };
  const slots = (s: ProgrammedService): string[] => s.backends.map((_, slot) => markOf(s.block, slot));
  const chain = chainOf;

  // Which services are new, changed, kept; whether any previous one is gone.
  const changed: { old: ProgrammedService; now: ProgrammedService }[] = [];
  const fresh: L4Service[] = [];
  let found = 0;
  let sortedUnique = true;
  let lastKey: string | undefined;
  for (const s of desired.services) {
    const key = serviceKey(s);
    if (lastKey !== undefined && !(key > lastKey)) sortedUnique = false;
    lastKey = key;
    const old = previous.services.get(key);
    if (!old) {
      fresh.push(s);
      continue;
    }
    found++;
    const backends = capped(s.backends);
    if (!sameBackends(old.backends, backends)) changed.push({ old, now: { ...old, backends } });
  }
  const removed: ProgrammedService[] = [];
  if (!sortedUnique || found !== previous.services.size) {
    const keys = new Set<string>();
    for (const s of desired.services) keys.add(serviceKey(s));
    if (keys.size !== desired.services.length) {
      // Two services under one key: the last one counts (as in a full load).
      const byKey = new Map(desired.services.map((s) => [serviceKey(s), s]));
      return planUpdate(previous, { ...desired, services: [...byKey.values()] });
    }
    for (const [key, old] of previous.services) if (!keys.has(key)) removed.push(old);
  }
  let assigned: ProgrammedService[] = [];
  let overflow: string[] = [];
  if (fresh.length > 0) {
    const gone = new Set(removed.map((r) => r.block));
    const used = new Set<number>();
    for (const p of previous.services.values()) if (!gone.has(p.block)) used.add(p.block);
    ({ assigned, overflow } = assignFresh(fresh, used));
  }

  for (const old of removed) {
    if (old.backends.length > 0) {
      el('delete', `vips${fam(old.vip)}`, [vipElement(old)]);
      el('delete', beMap(old), slots(old));
    } else {
      el('delete', `dead${fam(old.vip)}`, [vipElement(old)]);
    }
    removes.push(`flush chain inet ${table} ${chain(old.block)}`, `delete chain inet ${table} ${chain(old.block)}`);
  }
  const apply = (old: ProgrammedService | undefined, now: ProgrammedService): void => {
    const was = old?.backends.length ?? 0;
    const is = now.backends.length;
    if (!old) adds.push(`add chain inet ${table} ${chain(now.block)}`);
    // Backend slots: changed ones replaced (deleted first), extra ones added or removed.
    if (old && was > 0) {
      const stale = old.backends.map((b, slot) => ({ b, slot })).filter(({ b, slot }) => slot >= is || b.ip !== now.backends[slot]!.ip || b.port !== now.backends[slot]!.port);
      el('delete', beMap(old), stale.map(({ slot }) => markOf(old.block, slot)));
    }
    const newer = now.backends.map((b, slot) => ({ b, slot })).filter(({ b, slot }) => !old || slot >= was || old.backends[slot]!.ip !== b.ip || old.backends[slot]!.port !== b.port);
    el('add', beMap(now), newer.map(({ b, slot }) => `${markOf(now.block, slot)} : ${b.ip} . ${b.port}`));
    if (was !== is) {
      if (old) adds.push(`flush chain inet ${table} ${chain(now.block)}`);
      if (is > 0) adds.push(`add rule inet ${table} ${chain(now.block)} ${chainRule(now)}`);
    }
    const f = fam(now.vip);
    if (was === 0 && is > 0) {
      if (old) el('delete', `dead${f}`, [vipElement(old)]);
      el('add', `vips${f}`, [`${vipElement(now)} : jump ${chain(now.block)}`]);
    } else if (was > 0 && is === 0) {
      el('delete', `vips${f}`, [vipElement(now)]);
      el('add', `dead${f}`, [vipElement(now)]);
    } else if (!old && is === 0) {
      el('add', `dead${f}`, [vipElement(now)]);
    }
  };
  for (const { old, now } of changed) apply(old, now);
  for (const now of assigned) apply(undefined, now);

  const hairpin = hairpinPairs(desired);
  for (const f of ['', '6'] as const) {
    el('delete', `hairpin${f}`, [...previous.hairpin].filter((p) => fam(p) === f && !hairpin.has(p)));
    el('add', `hairpin${f}`, [...hairpin].filter((p) => fam(p) === f && !previous.hairpin.has(p)));
  }
  return { commands: [...removes, ...adds], upserts: [...changed.map((c) => c.now), ...assigned], removals: removed.map((r) => r.key), hairpin, overflow };
}

/**
 * Record a plan the kernel took into `services` (changed in place: the
 * caller owns it, e.g. the manager's copy of what the kernel holds).
 */
export function commitPlan(services: Map<string, ProgrammedService>, plan: RulesetPlan): void {
  for (const key of plan.removals) services.delete(key);
  for (const p of plan.upserts) services.set(p.key, p);
}

/** {@link planUpdate} with the next state as a new value (`previous` untouched). */
export function updateRuleset(previous: RulesetState, desired: DesiredState): RulesetUpdate {
  const plan = planUpdate(previous, desired);
  const services = new Map(previous.services);
  commitPlan(services, plan);
  return { commands: plan.commands, state: { table: previous.table, services, hairpin: plan.hairpin }, overflow: plan.overflow };
}

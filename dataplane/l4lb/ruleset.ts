/**
 * The nftables ruleset of the kernel L4 load balancer, as text (pure).
 *
 * One `inet` table serving both families, with no chain per service
 * (design C of net-calibration.md, with the exact backend count as the
 * modulus instead of a fixed number of buckets):
 *
 *     map vips / vips6   daddr . l4proto . dport → jump pick<6>_<proto>_<K>   (one element per VIP port, K = its backends)
 *     chain pick_tcp_<K>   dnat ip to ip daddr . tcp dport . numgen random mod K map @be_tcp
 *     map be_tcp / be_udp / be6_tcp / be6_udp   daddr . dport . slot → backend ip . port   (K elements per VIP port)
 *
 * The hook chains (prerouting for traffic from containers and other hosts,
 * output for traffic the host itself starts) look the VIP up and jump to
 * the pick chain of its backend count, which draws a slot at random and
 * DNATs to that slot's backend. There is one pick chain per backend count in
 * use (and family and protocol), not one per VIP: the table has a handful of
 * chains at any size, which is what keeps a change cheap (nft fetches every
 * chain of the table before each transaction; with a chain per VIP that was
 * most of a change's cost at 10,000 VIPs). Only the first packet of a
 * connection passes the nat hooks; conntrack keeps the rest, UDP flows too.
 *
 * A VIP port with no backend is in the `dead`/`dead6` set, refused at once
 * (TCP reset, ICMP port unreachable) by filter chains instead of timing out.
 * Hairpin: a client that reaches itself through a VIP (it is one of the
 * backends) is masqueraded, and only then (`hairpin`/`hairpin6` sets of
 * `ip . ip` pairs), so every other flow keeps its source address. An IPv6
 * VIP balances over IPv6 backends only, an IPv4 VIP over IPv4 ones (no
 * NAT64).
 *
 * Updates are small transactions: per changed service, its backend slots,
 * and its VIP element only when its backend count changes (a new verdict),
 * all in one nft transaction, so a change is atomic (`nft.ts`).
 */
import type { L4Backend, L4Protocol, L4Service } from './services.ts';
import { serviceKey } from './services.ts';

export const DEFAULT_TABLE = 'strata_l4lb';
/** The most backends one VIP port balances over (the rest are left out). */
export const MAX_BACKENDS = 256;

export interface ProgrammedService {
  readonly key: string;
  readonly vip: string;
  readonly protocol: L4Protocol;
  readonly port: number;
  readonly backends: readonly L4Backend[];
}

/** What the kernel holds (as far as this process knows). */
export interface RulesetState {
  readonly table: string;
  readonly services: ReadonlyMap<string, ProgrammedService>;
  /** `ip . ip` hairpin pairs programmed. */
  readonly hairpin: ReadonlySet<string>;
  /** Pick chains that exist (`pick_tcp_3`, ...). */
  readonly chains: ReadonlySet<string>;
}

export interface DesiredState {
  readonly services: readonly L4Service[];
  /** Backend addresses on this host that may call their own VIP (container IPs of local tasks). */
  readonly localBackendIps: readonly string[];
}

export function emptyState(table = DEFAULT_TABLE): RulesetState {
  return { table, services: new Map(), hairpin: new Set(), chains: new Set() };
}

/** The set-name suffix of an address's family: '' for IPv4, '6' for IPv6. */
function fam(ip: string): '' | '6' {
  return ip.includes(':') ? '6' : '';
}

function beMap(s: { vip: string; protocol: L4Protocol }): string {
  return `be${fam(s.vip)}_${s.protocol}`;
}

/** The pick chain for `count` backends of the service's family and protocol. */
function pickChain(s: { vip: string; protocol: L4Protocol }, count: number): string {
  return `pick${fam(s.vip)}_${s.protocol}_${count}`;
}

function pickRule(chain: string): string {
  const [, six, protocol, count] = /^pick(6?)_(tcp|udp)_(\d+)$/.exec(chain)!;
  const ip = six ? 'ip6' : 'ip';
  return `dnat ${ip} to ${ip} daddr . ${protocol} dport . numgen random mod ${count} map @be${six}_${protocol}`;
}

function capped(backends: readonly L4Backend[]): readonly L4Backend[] {
  return backends.length > MAX_BACKENDS ? backends.slice(0, MAX_BACKENDS) : backends;
}

function sameBackends(a: readonly L4Backend[], b: readonly L4Backend[]): boolean {
  return a.length === b.length && a.every((x, i) => x.ip === b[i]!.ip && x.port === b[i]!.port);
}

function vipElement(s: { vip: string; protocol: string; port: number }): string {
  return `${s.vip} . ${s.protocol} . ${s.port}`;
}

function slotKey(s: ProgrammedService, slot: number): string {
  return `${s.vip} . ${s.port} . ${slot}`;
}

function backendElements(s: ProgrammedService): string[] {
  return s.backends.map((b, slot) => `${slotKey(s, slot)} : ${b.ip} . ${b.port}`);
}

/** The `ip . ip` hairpin pairs of a desired state: its backends that are local to this host. */
export function hairpinPairs(desired: DesiredState): Set<string> {
  const pairs = new Set<string>();
  if (desired.localBackendIps.length === 0) return pairs;
  const local = new Set(desired.localBackendIps);
  for (const s of desired.services) for (const b of s.backends) if (local.has(b.ip)) pairs.add(`${b.ip} . ${b.ip}`);
  return pairs;
}

function programmed(s: L4Service): ProgrammedService {
  return { key: serviceKey(s), vip: s.vip, protocol: s.protocol, port: s.port, backends: capped(s.backends) };
}

export interface FullRuleset {
  /** An `nft -f` script that replaces the table atomically (add, delete, define: one transaction). */
  readonly script: string;
  readonly state: RulesetState;
}

/** The whole table, replacing whatever the kernel holds under its name in one transaction. A service named twice: the last one counts. */
export function fullRuleset(desired: DesiredState, table = DEFAULT_TABLE): FullRuleset {
  const services = new Map<string, ProgrammedService>();
  for (const s of desired.services) services.set(serviceKey(s), programmed(s));
  const hairpin = hairpinPairs(desired);
  const chains = new Set<string>();
  for (const s of services.values()) if (s.backends.length > 0) chains.add(pickChain(s, s.backends.length));
  const lines: string[] = [
    // The IPv4-only table of earlier versions goes in the same transaction.
    `add table ip ${table}`,
    `delete table ip ${table}`,
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    '  map vips { type ipv4_addr . inet_proto . inet_service : verdict; }',
    '  map vips6 { type ipv6_addr . inet_proto . inet_service : verdict; }',
    '  map be_tcp { typeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport; }',
    '  map be_udp { typeof ip daddr . udp dport . numgen random mod 1 : ip daddr . udp dport; }',
    '  map be6_tcp { typeof ip6 daddr . tcp dport . numgen random mod 1 : ip6 daddr . tcp dport; }',
    '  map be6_udp { typeof ip6 daddr . udp dport . numgen random mod 1 : ip6 daddr . udp dport; }',
    '  set dead { type ipv4_addr . inet_proto . inet_service; }',
    '  set dead6 { type ipv6_addr . inet_proto . inet_service; }',
    '  set hairpin { type ipv4_addr . ipv4_addr; }',
    '  set hairpin6 { type ipv6_addr . ipv6_addr; }',
  ];
  for (const c of [...chains].sort()) lines.push(`  chain ${c} { ${pickRule(c)}; }`);
  const dispatch = 'ip daddr . meta l4proto . th dport vmap @vips; ip6 daddr . meta l4proto . th dport vmap @vips6';
  lines.push(`  chain prerouting { type nat hook prerouting priority dstnat; policy accept; ${dispatch}; }`);
  lines.push(`  chain output { type nat hook output priority -100; policy accept; ${dispatch}; }`);
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
    put(`vips${fam(s.vip)}`, `${vipElement(s)} : jump ${pickChain(s, s.backends.length)}`);
  }
  for (const pair of hairpin) put(`hairpin${fam(pair)}`, pair);
  // Backend maps before the VIP maps, so no VIP is live before its backends; large element lists in one statement are what nft loads fastest.
  for (const set of ['be_tcp', 'be_udp', 'be6_tcp', 'be6_udp', 'vips', 'vips6', 'dead', 'dead6', 'hairpin', 'hairpin6']) {
    const elements = sets.get(set);
    if (elements && elements.length > 0) lines.push(`add element inet ${table} ${set} { ${elements.join(', ')} }`);
  }
  return { script: `${lines.join('\n')}\n`, state: { table, services, hairpin, chains } };
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
  /** Pick chains the commands create. */
  readonly newChains: readonly string[];
}

export interface RulesetUpdate {
  /** nft commands to run as one transaction (empty: nothing changed). */
  readonly commands: readonly string[];
  readonly state: RulesetState;
}

/**
 * The commands that take the kernel from `previous` to `desired`, element
 * by element. A service whose backends change rewrites only its changed
 * backend slots, and its VIP element only when its backend count changes
 * (it jumps to another pick chain, created the first time a count is
 * needed; pick chains are never removed by updates, there are at most 256
 * per family and protocol). Deletions come before additions, so a slot is
 * never added while still held.
 *
 * Cost: one key and one lookup per desired service and no per-service
 * allocation when nothing about it changed (10,000 VIPs: a few ms); when
 * `desired.services` is sorted by key without duplicates (as
 * `servicesFromVips` returns it) and every service is still there, no set
 * of keys is built either. A service named twice: the last one counts.
 */
export function planUpdate(previous: RulesetState, desired: DesiredState): RulesetPlan {
  // Which services are new, changed, kept; whether any previous one is gone.
  const changed: { old: ProgrammedService; now: ProgrammedService }[] = [];
  const fresh: ProgrammedService[] = [];
  let found = 0;
  let sortedUnique = true;
  let lastKey: string | undefined;
  for (const s of desired.services) {
    const key = serviceKey(s);
    if (lastKey !== undefined && !(key > lastKey)) sortedUnique = false;
    lastKey = key;
    const old = previous.services.get(key);
    if (!old) {
      fresh.push(programmed(s));
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
      const byKey = new Map(desired.services.map((s) => [serviceKey(s), s]));
      return planUpdate(previous, { ...desired, services: [...byKey.values()] });
    }
    for (const [key, old] of previous.services) if (!keys.has(key)) removed.push(old);
  }

  return emitPlan(previous, { changed, fresh, removed, hairpin: hairpinPairs(desired) });
}

/**
 * A change to some services only, as the agent's delta feed gives it: the
 * services of the VIPs that changed (`upserts`, as they are now), the keys
 * of services gone (`removals`), and the whole hairpin set. Services not
 * named keep what the kernel holds; a removal of a key not held, or an
 * upsert equal to what is held, costs nothing. Cost: one lookup per named
 * service, however many services the table holds.
 */
export interface DesiredChanges {
  readonly upserts: readonly L4Service[];
  readonly removals: readonly string[];
  /** Every `ip . ip` hairpin pair wanted (see {@link DesiredState.localBackendIps}). */
  readonly hairpin: ReadonlySet<string>;
}

/** {@link planUpdate} for a {@link DesiredChanges}: the same commands as for the whole desired state, from the named services only. */
export function planChanges(previous: RulesetState, desired: DesiredChanges): RulesetPlan {
  const changed: { old: ProgrammedService; now: ProgrammedService }[] = [];
  const fresh: ProgrammedService[] = [];
  const removed: ProgrammedService[] = [];
  const upserted = new Map<string, L4Service>();
  for (const s of desired.upserts) upserted.set(serviceKey(s), s);
  for (const key of new Set(desired.removals)) {
    const old = previous.services.get(key);
    if (old && !upserted.has(key)) removed.push(old);
  }
  for (const [key, s] of upserted) {
    const old = previous.services.get(key);
    if (!old) {
      fresh.push(programmed(s));
      continue;
    }
    const backends = capped(s.backends);
    if (!sameBackends(old.backends, backends)) changed.push({ old, now: { ...old, backends } });
  }
  return emitPlan(previous, { changed, fresh, removed, hairpin: desired.hairpin });
}

/** The commands for services classified as changed, new and removed (shared by both planners). */
function emitPlan(
  previous: RulesetState,
  what: { changed: readonly { old: ProgrammedService; now: ProgrammedService }[]; fresh: readonly ProgrammedService[]; removed: readonly ProgrammedService[]; hairpin: ReadonlySet<string> },
): RulesetPlan {
  const { table } = previous;
  const { changed, fresh, removed, hairpin } = what;
  const removes: string[] = [];
  const chainAdds: string[] = [];
  const adds: string[] = [];
  const el = (op: 'add' | 'delete', set: string, elements: readonly string[]): void => {
    if (elements.length > 0) (op === 'add' ? adds : removes).push(`${op} element inet ${table} ${set} { ${elements.join(', ')} }`);
  };
  const newChains: string[] = [];
  const chainFor = (s: ProgrammedService): string => {
    const c = pickChain(s, s.backends.length);
    if (!previous.chains.has(c) && !newChains.includes(c)) {
      newChains.push(c);
      chainAdds.push(`add chain inet ${table} ${c}`, `add rule inet ${table} ${c} ${pickRule(c)}`);
    }
    return c;
  };
  const slots = (s: ProgrammedService, from = 0): string[] => s.backends.slice(from).map((_, i) => slotKey(s, from + i));
  for (const old of removed) {
    if (old.backends.length > 0) {
      el('delete', `vips${fam(old.vip)}`, [vipElement(old)]);
      el('delete', beMap(old), slots(old));
    } else {
      el('delete', `dead${fam(old.vip)}`, [vipElement(old)]);
    }
  }
  const apply = (old: ProgrammedService | undefined, now: ProgrammedService): void => {
    const was = old?.backends.length ?? 0;
    const is = now.backends.length;
    const f = fam(now.vip);
    // Backend slots: changed ones replaced (deleted first), extra ones added or removed.
    if (old && was > 0) {
      const stale = old.backends.map((b, slot) => ({ b, slot })).filter(({ b, slot }) => slot >= is || b.ip !== now.backends[slot]!.ip || b.port !== now.backends[slot]!.port);
      el('delete', beMap(old), stale.map(({ slot }) => slotKey(old, slot)));
    }
    const newer = now.backends.map((b, slot) => ({ b, slot })).filter(({ b, slot }) => !old || slot >= was || old.backends[slot]!.ip !== b.ip || old.backends[slot]!.port !== b.port);
    el('add', beMap(now), newer.map(({ b, slot }) => `${slotKey(now, slot)} : ${b.ip} . ${b.port}`));
    if (was === is) return;
    // The backend count changed: the VIP jumps to another pick chain, or becomes dead, or comes alive.
    if (was > 0) el('delete', `vips${f}`, [vipElement(now)]);
    else if (old) el('delete', `dead${f}`, [vipElement(now)]);
    if (is > 0) el('add', `vips${f}`, [`${vipElement(now)} : jump ${chainFor(now)}`]);
    else el('add', `dead${f}`, [vipElement(now)]);
  };
  for (const { old, now } of changed) apply(old, now);
  for (const now of fresh) apply(undefined, now);

  for (const f of ['', '6'] as const) {
    el('delete', `hairpin${f}`, [...previous.hairpin].filter((p) => fam(p) === f && !hairpin.has(p)));
    el('add', `hairpin${f}`, [...hairpin].filter((p) => fam(p) === f && !previous.hairpin.has(p)));
  }
  return {
    commands: [...removes, ...chainAdds, ...adds],
    upserts: [...changed.map((c) => c.now), ...fresh],
    removals: removed.map((r) => r.key),
    hairpin,
    newChains,
  };
}

/**
 * Record a plan the kernel took into `state` (its services map and chain
 * set changed in place: the caller owns them, e.g. the manager's copy of
 * what the kernel holds); returns the state with the plan's hairpin pairs.
 */
export function commitPlan(
  state: RulesetState & { readonly services: Map<string, ProgrammedService>; readonly chains: Set<string> },
  plan: RulesetPlan,
): RulesetState & { readonly services: Map<string, ProgrammedService>; readonly chains: Set<string> } {
  for (const key of plan.removals) state.services.delete(key);
  for (const p of plan.upserts) state.services.set(p.key, p);
  for (const c of plan.newChains) state.chains.add(c);
  return { ...state, hairpin: plan.hairpin };
}

/** {@link planUpdate} with the next state as a new value (`previous` untouched). */
export function updateRuleset(previous: RulesetState, desired: DesiredState): RulesetUpdate {
  const plan = planUpdate(previous, desired);
  const state = commitPlan({ ...previous, services: new Map(previous.services), chains: new Set(previous.chains) }, plan);
  return { commands: plan.commands, state };
}

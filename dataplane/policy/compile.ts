/**
 * Network policy compiled into an nftables table (pure). The decisions are
 * the evaluator's (`control-plane/policies/evaluate.ts`), by construction:
 * selectors are resolved with its `peerMatches`, rules keep its order and
 * first-match rule, and policies its deny-wins combination.
 *
 *     chain forward (hook forward, priority filter)
 *       ct state established,related accept
 *       ip daddr vmap @dispatch4 ; ip6 daddr vmap @dispatch6
 *     map dispatch4/6        destination address → jump d_<combo>   (hash map)
 *     map dispatch4r/6r      destination range → jump d_<combo>     (interval map, for CIDR selectors)
 *     chain d_<combo>    jump p_<a>; jump p_<b> …                (the policies selecting that range)
 *     chain p_<policy>   ip saddr @s_<selector>_4 tcp dport 5432 return   (allow: on to the next policy)
 *                        ip saddr @s_<selector>_4 counter name drops drop (deny)
 *                        [counter name drops drop]                (default deny; default allow falls through)
 *     set s_<selector>_4/6   the source addresses of one `from` list (a hash set of
 *                            task addresses; an interval set of merged ranges when
 *                            the list names a CIDR)
 *
 * Only a connection's first packet is judged (established and related
 * traffic is accepted first), so a policy change applies to new
 * connections. The forward hook runs after the VIP load balancer's DNAT
 * (prerouting), so a connection through a VIP is judged on the backend it
 * was sent to. Destinations no policy selects are not in the dispatch map
 * and pass (not isolated, as the evaluator says).
 *
 * Sets are named by the selector's content and shared by every rule with
 * that `from` list: the kernel's cost grows with the number of sets (about
 * 4 s for 10,000 sets in one transaction here, 0.3 s for 1,000), not with
 * the number of rules.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { bigIntToIp, ipToBigInt, parseCidr } from '../../common/ip.ts';
import type { Policy, PolicyPeer, PolicyPorts } from '../../control-plane/model/schemas.ts';
import { peerMatches, type Endpoint } from '../../control-plane/policies/evaluate.ts';

export const DEFAULT_POLICY_TABLE = 'strata_policy';

/** One live task as the policies see it: its app, labels, networks and addresses. */
export interface PolicyEndpoint {
  readonly appId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly networks: readonly string[];
  readonly ips: readonly string[];
}

export interface PolicyInputs {
  readonly policies: readonly Policy[];
  readonly endpoints: readonly PolicyEndpoint[];
}

export type Family = 4 | 6;
export type Verdict = 'return' | 'drop';

/** What a rule matches beyond its source set; `undefined` = any protocol. */
export interface L4Match {
  readonly protocol: 'tcp' | 'udp' | 'icmp';
  readonly fromPort?: number;
  readonly toPort?: number;
}

/** One nft rule of a policy chain. */
export interface PolicyRule {
  /** Absent on the chain's default (matches every packet). */
  readonly family?: Family;
  /** The source set, or `undefined` for the chain's default. */
  readonly set?: string;
  readonly l4?: L4Match;
  readonly verdict: Verdict;
}

export interface CompiledSet {
  readonly family: Family;
  /** Ranges allowed (the `from` list names a CIDR); else single addresses only. */
  readonly interval: boolean;
  /** Sorted; disjoint and merged (`a.b.c.d`, `a.b.c.0/24`, `a.b.c.d-e.f.g.h`) in an interval set, single addresses otherwise. */
  readonly elements: readonly string[];
}

export interface CompiledPolicy {
  readonly table: string;
  readonly sets: ReadonlyMap<string, CompiledSet>;
  /** Policy chains (`p_…`), rules in order. */
  readonly policyChains: ReadonlyMap<string, readonly PolicyRule[]>;
  /** Combination chains (`d_…`): the policy chains they jump to, in name order. */
  readonly comboChains: ReadonlyMap<string, readonly string[]>;
  /** `range : jump d_…` per family. */
  readonly dispatch: Readonly<Record<Family, ReadonlyMap<string, string>>>;
}

interface Range {
  readonly start: bigint;
  readonly end: bigint;
}

const familyOf = (ip: string): Family | undefined => {
  const f = isIP(ip);
  return f === 4 || f === 6 ? f : undefined;
};

function rangeOfCidr(text: string): { family: Family; range: Range } | undefined {
  const c = parseCidr(text);
  if (!c) return undefined;
  const bits = BigInt((c.family === 4 ? 32 : 128) - c.prefixLength);
  return { family: c.family, range: { start: c.base, end: c.base + (1n << bits) - 1n } };
}

function merge(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.start <= last.end + 1n) out[out.length - 1] = { start: last.start, end: r.end > last.end ? r.end : last.end };
    else out.push(r);
  }
  return out;
}

/** An element's text: an address, a CIDR when the range is one, else `first-last`. */
export function rangeText(r: Range, family: Family): string {
  if (r.start === r.end) return bigIntToIp(r.start, family);
  const size = r.end - r.start + 1n;
  if ((size & (size - 1n)) === 0n && r.start % size === 0n) {
    let hostBits = 0;
    while (1n << BigInt(hostBits) < size) hostBits++;
    return `${bigIntToIp(r.start, family)}/${(family === 4 ? 32 : 128) - hostBits}`;
  }
  return `${bigIntToIp(r.start, family)}-${bigIntToIp(r.end, family)}`;
}

/** Parse an element written by {@link rangeText} (the interpreter and tests read them back). */
export function parseRangeText(text: string): Range {
  if (text.includes('/')) return rangeOfCidr(text)!.range;
  const [a, b] = text.split('-') as [string, string | undefined];
  const start = ipToBigInt(a);
  return { start, end: b === undefined ? start : ipToBigInt(b) };
}

/** Addresses a peer list selects, per family: merged ranges, or (`merged: false`) single addresses, sorted and unique. */
function resolvePeers(peers: readonly PolicyPeer[], endpoints: EndpointIndex, merged = true): Record<Family, Range[]> {
  const raw: Record<Family, Range[]> = { 4: [], 6: [] };
  for (const peer of peers) {
    if (peer.cidr !== undefined) {
      const r = rangeOfCidr(peer.cidr);
      if (r) raw[r.family].push(r.range);
      continue;
    }
    // An exact app id can only select that app's tasks; every other selector looks at every endpoint.
    const candidates = peer.appId !== undefined && !peer.appId.endsWith('*') ? endpoints.byApp.get(peer.appId) ?? [] : endpoints.all;
    for (const e of candidates) {
      if (peerMatches(peer, e) === undefined) continue;
      for (const ip of e.ips) {
        const f = familyOf(ip);
        if (f) {
          const n = ipToBigInt(ip);
          raw[f].push({ start: n, end: n });
        }
      }
    }
  }
  if (merged) return { 4: merge(raw[4]), 6: merge(raw[6]) };
  const unique = (rs: Range[]): Range[] => {
    const sorted = [...rs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return sorted.filter((r, i) => i === 0 || r.start !== sorted[i - 1]!.start);
  };
  return { 4: unique(raw[4]), 6: unique(raw[6]) };
}

interface EndpointIndex {
  readonly all: readonly Endpoint[];
  readonly byApp: ReadonlyMap<string, readonly Endpoint[]>;
}

function indexEndpoints(endpoints: readonly PolicyEndpoint[]): EndpointIndex {
  const all = endpoints.map((e): Endpoint => ({ input: e.appId, appId: e.appId, labels: e.labels, networks: e.networks, ips: e.ips }));
  const byApp = new Map<string, Endpoint[]>();
  for (const e of all) {
    const list = byApp.get(e.appId!);
    if (list) list.push(e);
    else byApp.set(e.appId!, [e]);
  }
  return { all, byApp };
}

const shortHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** nft identifiers: policy names are DNS labels, so `-` → `_` keeps them distinct. */
export const policyChainName = (policy: string): string => `p_${policy.replaceAll('-', '_')}`;

/** JSON with keys sorted at every level: equal selectors, equal text. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

function canonicalPeers(peers: readonly PolicyPeer[]): string {
  return `[${peers.map(canonical).sort().join(',')}]`;
}

/** The l4 alternatives of a rule's `ports` (any one matches); `[undefined]` = everything; `[]` = nothing. */
function l4Alternatives(ports: readonly PolicyPorts[]): (L4Match | undefined)[] {
  if (ports.length === 0) return [undefined];
  const out: (L4Match | undefined)[] = [];
  for (const p of ports) {
    const range = p.port === undefined ? {} : { fromPort: p.port, toPort: p.endPort ?? p.port };
    if (p.protocol === 'any') {
      if (p.port === undefined) return [undefined];
      out.push({ protocol: 'tcp', ...range }, { protocol: 'udp', ...range });
    } else if (p.protocol === 'icmp') {
      // A port never matches an ICMP flow (the evaluator's rule).
      if (p.port === undefined) out.push({ protocol: 'icmp' });
    } else {
      out.push({ protocol: p.protocol, ...range });
    }
  }
  return out;
}

/** Compile policies over the cluster's live endpoints into the table's content. */
export function compilePolicies(inputs: PolicyInputs, table = DEFAULT_POLICY_TABLE): CompiledPolicy {
  const sets = new Map<string, CompiledSet>();
  const policyChains = new Map<string, PolicyRule[]>();
  const selected: Record<Family, { range: Range; chain: string }[]> = { 4: [], 6: [] };
  const setFor = new Map<string, Record<Family, string | undefined>>();
  const endpoints = indexEndpoints(inputs.endpoints);
  const policies = [...inputs.policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const policy of policies) {
    const chain = policyChainName(policy.name);
    const rules: PolicyRule[] = [];
    for (const rule of policy.rules) {
      const key = canonicalPeers(rule.from);
      let names = setFor.get(key);
      if (!names) {
        const interval = rule.from.some((p) => p.cidr !== undefined);
        const resolved = resolvePeers(rule.from, endpoints, interval);
        const base = `s_${shortHash(key)}`;
        names = { 4: undefined, 6: undefined };
        for (const f of [4, 6] as const) {
          if (resolved[f].length === 0) continue;
          names[f] = `${base}_${f}`;
          sets.set(`${base}_${f}`, { family: f, interval, elements: resolved[f].map((r) => rangeText(r, f)) });
        }
        setFor.set(key, names);
      }
      const verdict: Verdict = rule.action === 'allow' ? 'return' : 'drop';
      for (const l4 of l4Alternatives(rule.ports)) {
        for (const f of [4, 6] as const) {
          const set = names[f];
          if (set !== undefined) rules.push({ family: f, set, ...(l4 ? { l4 } : {}), verdict });
        }
      }
    }
    if (policy.defaultAction === 'deny') rules.push({ verdict: 'drop' });
    policyChains.set(chain, rules);
    const to = resolvePeers(policy.to, endpoints, policy.to.some((p) => p.cidr !== undefined));
    for (const f of [4, 6] as const) for (const range of to[f]) selected[f].push({ range, chain });
  }
  const comboChains = new Map<string, string[]>();
  const dispatch: Record<Family, Map<string, string>> = { 4: new Map(), 6: new Map() };
  for (const f of [4, 6] as const) {
    for (const { range, chains } of partition(selected[f])) {
      const name = `d_${shortHash(chains.join(','))}`;
      comboChains.set(name, chains);
      dispatch[f].set(rangeText(range, f), name);
    }
  }
  return { table, sets, policyChains, comboChains, dispatch };
}

/**
 * Split overlapping ranges into disjoint ones, each with the sorted list of
 * chains whose ranges cover it; neighbouring ranges with the same list are
 * joined (single addresses are left single).
 */
function partition(items: readonly { range: Range; chain: string }[]): { range: Range; chains: string[] }[] {
  if (items.length === 0) return [];
  const points = new Set<bigint>();
  for (const { range } of items) {
    points.add(range.start);
    points.add(range.end + 1n);
  }
  const bounds = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const starts = [...items].sort((a, b) => (a.range.start < b.range.start ? -1 : a.range.start > b.range.start ? 1 : 0));
  const active = new Map<number, string>();
  const ends = new Map<bigint, number[]>();
  const out: { range: Range; chains: string[] }[] = [];
  let next = 0;
  for (let i = 0; i < bounds.length - 1; i++) {
    const at = bounds[i]!;
    for (const id of ends.get(at) ?? []) active.delete(id);
    while (next < starts.length && starts[next]!.range.start === at) {
      const item = starts[next]!;
      active.set(next, item.chain);
      const endKey = item.range.end + 1n;
      ends.set(endKey, [...(ends.get(endKey) ?? []), next]);
      next++;
    }
    if (active.size === 0) continue;
    const chains = [...new Set(active.values())].sort();
    const range = { start: at, end: bounds[i + 1]! - 1n };
    const last = out.at(-1);
    // Ranges only join ranges: single addresses stay single (the hash map holds them; task churn never touches the interval map).
    const isRange = (r: Range): boolean => r.end > r.start;
    if (last && isRange(last.range) && isRange(range) && last.range.end + 1n === range.start && last.chains.join(',') === chains.join(',')) last.range = { start: last.range.start, end: range.end };
    else out.push({ range, chains });
  }
  return out;
}

/** How many nft rules the table holds (policy and combination chains, the hook chain's four). */
export function ruleCount(c: CompiledPolicy): number {
  let n = 4;
  for (const rules of c.policyChains.values()) n += rules.length;
  for (const jumps of c.comboChains.values()) n += jumps.length;
  return n;
}

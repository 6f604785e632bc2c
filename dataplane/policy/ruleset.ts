/**
 * A compiled policy as nftables text (pure): the whole table as one
 * atomic replace, and the commands that take the kernel from one compiled
 * policy to the next as one transaction (`compile.ts` says what the table
 * means).
 */
import type { CompiledPolicy, CompiledSet, Family, PolicyRule } from './compile.ts';

/** The named counter every policy drop counts into. */
export const DROPS_COUNTER = 'drops';

const addrType = (f: Family): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');
const saddr = (f: Family): string => (f === 4 ? 'ip saddr' : 'ip6 saddr');

export function ruleText(rule: PolicyRule): string {
  const parts: string[] = [];
  if (rule.set !== undefined && rule.family !== undefined) parts.push(`${saddr(rule.family)} @${rule.set}`);
  const l4 = rule.l4;
  if (l4) {
    if (l4.protocol === 'icmp') parts.push(`meta l4proto ${rule.family === 6 ? 'ipv6-icmp' : 'icmp'}`);
    else if (l4.fromPort === undefined) parts.push(`meta l4proto ${l4.protocol}`);
    else parts.push(`${l4.protocol} dport ${l4.fromPort === l4.toPort ? l4.fromPort : `${l4.fromPort}-${l4.toPort}`}`);
  }
  parts.push(rule.verdict === 'return' ? 'return' : `counter name "${DROPS_COUNTER}" drop`);
  return parts.join(' ');
}

const comboRules = (jumps: readonly string[]): string[] => jumps.map((c) => `jump ${c}`);
const setDecl = (s: CompiledSet): string => `type ${addrType(s.family)};${s.interval ? ' flags interval;' : ''}`;
/** Single addresses go to the hash map, ranges to the interval map. */
const dispatchName = (f: Family, element: string): string => `dispatch${f}${element.includes('-') || element.includes('/') ? 'r' : ''}`;

function dispatchGroups(f: Family, entries: Iterable<readonly [string, string]>, text: (range: string, chain: string) => string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const [range, chain] of entries) {
    const name = dispatchName(f, range);
    groups.set(name, [...(groups.get(name) ?? []), text(range, chain)]);
  }
  return groups;
}

/** The whole table, replacing whatever the kernel holds under its name in one transaction (add, delete, define). */
export function fullScript(c: CompiledPolicy): string {
  const t = c.table;
  const lines = [
    `add table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    `  counter ${DROPS_COUNTER} { }`,
    '  map dispatch4 { type ipv4_addr : verdict; }',
    '  map dispatch6 { type ipv6_addr : verdict; }',
    '  map dispatch4r { type ipv4_addr : verdict; flags interval; }',
    '  map dispatch6r { type ipv6_addr : verdict; flags interval; }',
  ];
  for (const [name, s] of c.sets) lines.push(`  set ${name} { ${setDecl(s)} }`);
  for (const [name, rules] of c.policyChains) lines.push(rules.length === 0 ? `  chain ${name} { }` : `  chain ${name} { ${rules.map(ruleText).join('; ')}; }`);
  for (const [name, jumps] of c.comboChains) lines.push(`  chain ${name} { ${comboRules(jumps).join('; ')}; }`);
  lines.push('  chain forward { type filter hook forward priority filter; policy accept; ct state established,related accept; ip daddr vmap @dispatch4; ip daddr vmap @dispatch4r; ip6 daddr vmap @dispatch6; ip6 daddr vmap @dispatch6r; }');
  lines.push('}');
  for (const [name, s] of c.sets) if (s.elements.length > 0) lines.push(`add element inet ${t} ${name} { ${s.elements.join(', ')} }`);
  for (const f of [4, 6] as const) {
    for (const [map, els] of dispatchGroups(f, c.dispatch[f], (range, chain) => `${range} : jump ${chain}`)) lines.push(`add element inet ${t} ${map} { ${els.join(', ')} }`);
  }
  return `${lines.join('\n')}\n`;
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The commands (one transaction) from `previous` to `next`: set elements
 * and dispatch elements added and removed, changed chains flushed and
 * refilled, new objects created before anything refers to them and old
 * ones deleted after nothing does. Empty when nothing changed.
 */
export function updateCommands(previous: CompiledPolicy, next: CompiledPolicy): string[] {
  const t = next.table;
  const out: string[] = [];
  const el = (op: 'add' | 'delete', set: string, elements: readonly string[]): void => {
    if (elements.length > 0) out.push(`${op} element inet ${t} ${set} { ${elements.join(', ')} }`);
  };
  // New sets, changed sets' elements.
  for (const [name, s] of next.sets) {
    const old = previous.sets.get(name);
    if (!old) {
      out.push(`add set inet ${t} ${name} { ${setDecl(s)} }`);
      el('add', name, s.elements);
      continue;
    }
    const had = new Set(old.elements);
    const has = new Set(s.elements);
    el('delete', name, old.elements.filter((e) => !has.has(e)));
    el('add', name, s.elements.filter((e) => !had.has(e)));
  }
  // Chains: create new ones empty, then fill new and changed ones.
  const chains = (c: CompiledPolicy): Map<string, string[]> =>
    new Map([...[...c.policyChains].map(([n, r]) => [n, r.map(ruleText)] as const), ...[...c.comboChains].map(([n, j]) => [n, comboRules(j)] as const)]);
  const before = chains(previous);
  const after = chains(next);
  for (const name of after.keys()) if (!before.has(name)) out.push(`add chain inet ${t} ${name}`);
  // Policy chains first (combination chains jump to them).
  for (const [name, rules] of after) {
    const old = before.get(name);
    if (old && sameList(old, rules)) continue;
    if (old) out.push(`flush chain inet ${t} ${name}`);
    for (const r of rules) out.push(`add rule inet ${t} ${name} ${r}`);
  }
  // Dispatch: old elements out, new in.
  for (const f of [4, 6] as const) {
    const was = previous.dispatch[f];
    const is = next.dispatch[f];
    for (const [map, els] of dispatchGroups(f, [...was].filter(([range, chain]) => is.get(range) !== chain), (range) => range)) el('delete', map, els);
    for (const [map, els] of dispatchGroups(f, [...is].filter(([range, chain]) => was.get(range) !== chain), (range, chain) => `${range} : jump ${chain}`)) el('add', map, els);
  }
  // Removed chains: emptied first (they may jump to each other), then deleted; then removed sets.
  const gone = [...before.keys()].filter((n) => !after.has(n));
  for (const name of gone) out.push(`flush chain inet ${t} ${name}`);
  for (const name of gone) out.push(`delete chain inet ${t} ${name}`);
  for (const name of previous.sets.keys()) if (!next.sets.has(name)) out.push(`delete set inet ${t} ${name}`);
  return out;
}

/** Remove the table (the agent's `removeRules` at a whole-node stop). */
export function removeScript(table: string): string {
  return `add table inet ${table}\ndelete table inet ${table}\n`;
}

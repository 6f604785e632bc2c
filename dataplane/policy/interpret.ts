/**
 * A small interpreter of the compiled table (pure): what the kernel does
 * with a connection's first packet, read from the same elements and rules
 * the nft text is written from. Tests hold it against the evaluator
 * (`decide`) and, in namespaces, against the kernel itself.
 */
import { isIP } from 'node:net';
import { ipToBigInt } from '../../common/ip.ts';
import { parseRangeText, type CompiledPolicy, type Family, type PolicyRule } from './compile.ts';

export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly protocol: 'tcp' | 'udp' | 'icmp';
  readonly port?: number;
}

function inElements(elements: Iterable<string>, ip: string): string | undefined {
  const n = ipToBigInt(ip);
  for (const e of elements) {
    const r = parseRangeText(e);
    if (n >= r.start && n <= r.end) return e;
  }
  return undefined;
}

function ruleMatches(c: CompiledPolicy, rule: PolicyRule, p: Packet, family: Family): boolean {
  if (rule.family !== undefined && rule.family !== family) return false;
  if (rule.set !== undefined) {
    const set = c.sets.get(rule.set);
    if (!set || inElements(set.elements, p.src) === undefined) return false;
  }
  if (rule.l4) {
    if (rule.l4.protocol !== p.protocol) return false;
    if (rule.l4.fromPort !== undefined) {
      if (p.port === undefined || p.port < rule.l4.fromPort || p.port > rule.l4.toPort!) return false;
    }
  }
  return true;
}

/** `accept` or `drop` for a new connection's first packet. */
export function interpret(c: CompiledPolicy, p: Packet): 'accept' | 'drop' {
  const family = isIP(p.dst) as Family;
  if (isIP(p.src) !== family) return 'accept';
  const dispatch = c.dispatch[family];
  const range = inElements(dispatch.keys(), p.dst);
  if (range === undefined) return 'accept';
  for (const chain of c.comboChains.get(dispatch.get(range)!) ?? []) {
    for (const rule of c.policyChains.get(chain) ?? []) {
      if (!ruleMatches(c, rule, p, family)) continue;
      if (rule.verdict === 'drop') return 'drop';
      break; // return: on to the next policy
    }
  }
  return 'accept';
}

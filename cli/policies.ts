/** `strata policy list|show|add|remove|explain|ruleset`: network policy between networks, subnets and apps. */
import { readFile } from 'node:fs/promises';
import { UsageError, type ParsedArgs } from './args.ts';
import { compilePolicies, ruleCount, type PolicyInputs } from '../dataplane/policy/compile.ts';
import { fullScript, ruleText } from '../dataplane/policy/ruleset.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface PolicyView { name: string; version: number; defaultAction: string; to: object[]; rules: { action: string }[]; description?: string }
interface Decision { action: string; summary: string; verdicts: { policy: string; action: string; decidedBy: number | string; why: string }[] }

function peerText(p: Record<string, unknown>): string {
  if (typeof p['network'] === 'string') return `network:${p['network']}`;
  if (typeof p['cidr'] === 'string') return `cidr:${p['cidr']}`;
  if (typeof p['appId'] === 'string') return `app:${p['appId']}`;
  if (p['appLabels']) return `labels:${Object.entries(p['appLabels'] as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',')}`;
  return '?';
}

export async function policyList(args: ParsedArgs): Promise<number> {
  const { policies } = await apiRequest<{ policies: PolicyView[] }>(await loggedIn(), 'GET', '/networking/api/v1/policies');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(policies, null, 2));
    return 0;
  }
  const rows = policies.map((p) => [p.name, p.to.map((x) => peerText(x as Record<string, unknown>)).join(' '), String(p.rules.length), p.defaultAction, String(p.version)]);
  console.log(table(['NAME', 'APPLIES TO', 'RULES', 'DEFAULT', 'VERSION'], rows));
  return 0;
}

export async function policyShow(args: ParsedArgs): Promise<number> {
  const policy = await apiRequest<PolicyView>(await loggedIn(), 'GET', `/networking/api/v1/policies/${encodeURIComponent(args.words[2]!)}`);
  console.log(JSON.stringify(policy, null, 2));
  return 0;
}

export async function policyAdd(args: ParsedArgs): Promise<number> {
  const file = args.words[2]!;
  let body: unknown;
  try {
    body = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read policy ${file}: ${(err as Error).message}`);
  }
  const name = (body as { name?: unknown }).name;
  if (typeof name !== 'string') throw new UsageError(`${file}: the policy needs a "name"`);
  const { name: _drop, ...rest } = body as Record<string, unknown>;
  const saved = await apiRequest<PolicyView>(await loggedIn(), 'PUT', `/networking/api/v1/policies/${encodeURIComponent(name)}`, rest);
  console.log(`policy ${saved.name} saved (version ${saved.version})`);
  return 0;
}

export async function policyRemove(args: ParsedArgs): Promise<number> {
  const name = args.words[2]!;
  await apiRequest<unknown>(await loggedIn(), 'DELETE', `/networking/api/v1/policies/${encodeURIComponent(name)}`);
  console.log(`policy ${name} removed`);
  return 0;
}

/** `strata policy explain SRC DST PORT[/tcp|/udp]` or `... icmp`. */
export async function policyExplain(args: ParsedArgs): Promise<number> {
  const [from, to, portText] = args.words.slice(2);
  let protocol = 'tcp';
  let port: number | undefined;
  if (portText === 'icmp') protocol = 'icmp';
  else {
    const m = /^([0-9]{1,5})(?:\/(tcp|udp))?$/.exec(portText ?? '');
    if (!m) throw new UsageError(`PORT must be a port number, PORT/tcp, PORT/udp or icmp; got ${JSON.stringify(portText)}`);
    port = Number(m[1]);
    protocol = m[2] ?? 'tcp';
  }
  const decision = await apiRequest<Decision>(await loggedIn(), 'POST', '/networking/api/v1/policies/explain', { from, to, protocol, ...(port === undefined ? {} : { port }) });
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(decision, null, 2));
    return 0;
  }
  console.log(decision.summary);
  for (const v of decision.verdicts) console.log(`  ${v.policy}: ${v.action} — ${v.why}`);
  return 0;
}

/**
 * `strata policy ruleset [--nft] [--json]`: what every agent enforces now,
 * compiled here from the masters' policy view with the agents' own
 * compiler: per policy the addresses it selects and its nftables rules;
 * `--nft` prints the whole table as the agents load it.
 */
export async function policyRuleset(args: ParsedArgs): Promise<number> {
  const view = await apiRequest<PolicyInputs & { index: number }>(await loggedIn(), 'GET', '/networking/api/v1/policy-view');
  const compiled = compilePolicies(view);
  if (args.booleans.has('nft')) {
    process.stdout.write(fullScript(compiled));
    return 0;
  }
  const selected = new Map<string, string[]>();
  for (const f of [4, 6] as const) {
    for (const [range, combo] of compiled.dispatch[f]) for (const chain of compiled.comboChains.get(combo) ?? []) selected.set(chain, [...(selected.get(chain) ?? []), range]);
  }
  const rows = [...compiled.policyChains].map(([chain, rules]) => ({ chain, destinations: selected.get(chain) ?? [], rules: rules.map(ruleText) }));
  if (args.booleans.has('json')) {
    console.log(JSON.stringify({ index: view.index, endpoints: view.endpoints.length, rules: ruleCount(compiled), sets: compiled.sets.size, policies: rows }, null, 2));
    return 0;
  }
  console.log(`${view.endpoints.length} task addresses, ${rows.length} policies: ${ruleCount(compiled)} nftables rules, ${compiled.sets.size} address sets (table inet ${compiled.table})`);
  for (const r of rows) {
    console.log(`${r.chain}: destinations ${r.destinations.length === 0 ? 'none now' : r.destinations.join(', ')}`);
    for (const rule of r.rules) console.log(`  ${rule}`);
  }
  return 0;
}

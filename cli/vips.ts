/** `strata vip list|show|watch`: the VIPs published by app port labels, their addresses and backends. */
import type { ParsedArgs } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';
import { UsageError } from './args.ts';

interface VipBackendView { appId: string; taskId: string; ip: string; port: number; protocol: string; vipPort: number; state: string; weight: number; why?: string }
interface VipView {
  id: string; name: string; kind: string; dnsName?: string; ipv4?: string; ipv6?: string; allocated: boolean;
  ports: { port: number; protocol: string }[]; apps: string[]; backends: VipBackendView[];
}

function portsText(v: VipView): string {
  return v.ports.map((p) => `${p.port}/${p.protocol}`).join(',');
}

export async function vipList(args: ParsedArgs): Promise<number> {
  const { vips } = await apiRequest<{ vips: VipView[] }>(await loggedIn(), 'GET', '/networking/api/v1/vips');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(vips, null, 2));
    return 0;
  }
  const rows = vips.map((v) => [
    v.name,
    v.kind === 'named' ? (v.allocated ? (v.ipv4 ?? '-') : 'pending') : (v.ipv4 ?? v.ipv6 ?? '-'),
    portsText(v),
    `${v.backends.filter((b) => b.weight > 0).length}/${v.backends.length}`,
    v.dnsName ?? '-',
  ]);
  console.log(table(['VIP', 'ADDRESS', 'PORTS', 'BACKENDS(UP/ALL)', 'DNS'], rows));
  return 0;
}

export async function vipShow(args: ParsedArgs): Promise<number> {
  const name = args.words[2]!;
  const vip = await apiRequest<VipView>(await loggedIn(), 'GET', `/networking/api/v1/vips/${encodeURIComponent(name)}`);
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(vip, null, 2));
    return 0;
  }
  console.log(`VIP ${vip.name} (${vip.kind})`);
  if (vip.dnsName) console.log(`  DNS:   ${vip.dnsName}`);
  console.log(`  IPv4:  ${vip.ipv4 ?? (vip.allocated ? '-' : 'pending')}`);
  console.log(`  IPv6:  ${vip.ipv6 ?? (vip.allocated ? '-' : 'pending')}`);
  console.log(`  ports: ${portsText(vip)}`);
  console.log(`  apps:  ${vip.apps.join(', ')}`);
  const rows = vip.backends.map((b) => [`${b.vipPort}/${b.protocol}`, `${b.ip}:${b.port}`, b.taskId, b.state, String(b.weight), b.why ?? '']);
  console.log(rows.length === 0 ? '  no backends (no running task)' : table(['VIP_PORT', 'BACKEND', 'TASK', 'STATE', 'WEIGHT', 'WHY'], rows));
  return 0;
}

type FeedReply =
  | { type: 'snapshot'; epoch: string; index: number; vips: VipView[] }
  | { type: 'changes'; epoch: string; index: number; vips: VipView[]; removed: string[] };

/** One line per VIP as the watch prints it. */
function watchLine(what: string, v: VipView): string {
  return `${what} ${v.name} ${v.ipv4 ?? v.ipv6 ?? 'pending'} ${portsText(v)} backends ${v.backends.filter((b) => b.weight > 0).length}/${v.backends.length}`;
}

/**
 * `strata vip watch`: follows the VIP delta feed the agents' load balancers
 * follow (`?delta=true`), printing every VIP at first and then each VIP as
 * it changes or goes; `--count N` stops after N replies with changes.
 */
export async function vipWatch(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  const json = args.booleans.has('json');
  const countText = args.values['count'];
  const limit = countText === undefined ? Infinity : Number(countText);
  if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--count must be a whole number, not ${JSON.stringify(countText)}`);
  let epoch: string | undefined;
  let index = 0;
  let seen = 0;
  while (seen < limit) {
    const query = new URLSearchParams({ delta: 'true', index: String(index), wait: epoch === undefined ? '0' : '20' });
    if (epoch !== undefined) query.set('epoch', epoch);
    const reply = await apiRequest<FeedReply>(state, 'GET', `/networking/api/v1/vips?${query}`);
    if (reply.type === 'snapshot' && epoch !== undefined && !json) console.log('(the master started over: every VIP again)');
    epoch = reply.epoch;
    index = reply.index;
    if (json) {
      if (reply.type === 'snapshot' || reply.vips.length > 0 || reply.removed.length > 0) console.log(JSON.stringify(reply));
    } else {
      for (const v of reply.vips) console.log(watchLine(reply.type === 'snapshot' ? 'vip' : 'changed', v));
      if (reply.type === 'changes') for (const id of reply.removed) console.log(`removed ${id}`);
    }
    if (reply.type === 'changes' && (reply.vips.length > 0 || reply.removed.length > 0)) seen++;
  }
  return 0;
}

/** `strata network list|show|add|remove`: the overlay networks tasks join with `networks: [{mode: "container", name}]`. */
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { UsageError, type ParsedArgs } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

export async function networkList(args: ParsedArgs): Promise<number> {
  const { networks } = await apiRequest<{ networks: Network[] }>(await loggedIn(), 'GET', '/networking/api/v1/networks');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(networks, null, 2));
    return 0;
  }
  const rows = networks.map((n) => [n.name, n.subnet ? `${n.subnet} /${n.prefix}` : '-', n.subnet6 ? `${n.subnet6} /${n.prefix6}` : '-', String(n.vni), String(n.mtu)]);
  console.log(table(['NAME', 'SUBNET (PER AGENT)', 'SUBNET6 (PER AGENT)', 'VNI', 'MTU'], rows));
  return 0;
}

export async function networkShow(args: ParsedArgs): Promise<number> {
  const network = await apiRequest<Network>(await loggedIn(), 'GET', `/networking/api/v1/networks/${encodeURIComponent(args.words[2]!)}`);
  console.log(JSON.stringify(network, null, 2));
  return 0;
}

function integerFlag(args: ParsedArgs, name: string): number | undefined {
  const raw = args.values[name];
  if (raw === undefined) return undefined;
  if (!/^[0-9]+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

export async function networkAdd(args: ParsedArgs): Promise<number> {
  const name = args.words[2]!;
  const body: Record<string, unknown> = { name };
  for (const f of ['subnet', 'subnet6', 'description'] as const) if (args.values[f] !== undefined) body[f] = args.values[f];
  for (const f of ['prefix', 'prefix6', 'vni', 'mtu'] as const) {
    const v = integerFlag(args, f);
    if (v !== undefined) body[f] = v;
  }
  if (body['subnet'] === undefined && body['subnet6'] === undefined) throw new UsageError('give --subnet CIDR or --subnet6 CIDR (or both)');
  const created = await apiRequest<Network>(await loggedIn(), 'POST', '/networking/api/v1/networks', body);
  console.log(`network ${created.name} added: ${created.subnet ?? ''}${created.subnet && created.subnet6 ? ' ' : ''}${created.subnet6 ?? ''}, VNI ${created.vni}, MTU ${created.mtu}`);
  return 0;
}

export async function networkRemove(args: ParsedArgs): Promise<number> {
  const name = args.words[2]!;
  await apiRequest<unknown>(await loggedIn(), 'DELETE', `/networking/api/v1/networks/${encodeURIComponent(name)}`);
  console.log(`network ${name} removed`);
  return 0;
}

/** `strata network leases`: every agent's overlay lease (VTEP address and MAC, subnet per network). */
export async function networkLeases(args: ParsedArgs): Promise<number> {
  const { leases } = await apiRequest<{ leases: OverlayLease[] }>(await loggedIn(), 'GET', '/networking/api/v1/overlay/leases');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(leases, null, 2));
    return 0;
  }
  const rows = leases.map((l) => [l.agentId, l.underlayIp, l.vtepIp, l.vtepMac, Object.entries(l.networks).map(([n, s]) => `${n}=${[s.subnet, s.subnet6].filter(Boolean).join(',')}`).join(' ')]);
  console.log(table(['AGENT', 'UNDERLAY', 'VTEP', 'VTEP MAC', 'SUBNETS'], rows));
  return 0;
}

/** `strata network lease AGENT`: one agent's overlay lease as JSON. */
export async function networkLease(args: ParsedArgs): Promise<number> {
  const lease = await apiRequest<OverlayLease>(await loggedIn(), 'GET', `/networking/api/v1/agents/${encodeURIComponent(args.words[2]!)}/overlay`);
  console.log(JSON.stringify(lease, null, 2));
  return 0;
}

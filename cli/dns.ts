/**
 * `strata dns lookup NAME [TYPE]`: asks the node's DNS server (the config's
 * `dns.host`:`dns.udpPort`, or `--server ip:port`) through Node's resolver,
 * so the answer is what any client on the node would get.
 */
import { Resolver } from 'node:dns/promises';
import { loadConfig } from '../control-plane/config/load.ts';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';

const TYPES = ['A', 'AAAA', 'SRV', 'PTR', 'NS', 'SOA', 'TXT', 'CNAME', 'ANY'] as const;
type LookupType = (typeof TYPES)[number];

/** Resolver errors as DNS users know them. */
const OUTCOMES: Record<string, string> = {
  ENOTFOUND: 'NXDOMAIN',
  ENODATA: 'NOERROR, no records of that type (NODATA)',
  ESERVFAIL: 'SERVFAIL',
  EREFUSED: 'REFUSED',
  ETIMEOUT: 'no answer (timed out)',
  ECONNREFUSED: 'no DNS server listening there',
  EFORMERR: 'FORMERR',
  ENOTIMP: 'NOTIMP',
};

function format(type: LookupType, name: string, record: unknown): string {
  if (typeof record === 'string') return `${name}\t${type}\t${record}`;
  if (Array.isArray(record)) return `${name}\t${type}\t${record.map((s) => JSON.stringify(s)).join(' ')}`;
  const r = record as Record<string, unknown>;
  if (type === 'SRV') return `${name}\tSRV\t${String(r.priority)} ${String(r.weight)} ${String(r.port)} ${String(r.name)}`;
  if (type === 'SOA') return `${name}\tSOA\t${String(r.nsname)} ${String(r.hostmaster)} ${String(r.serial)} ${String(r.refresh)} ${String(r.retry)} ${String(r.expire)} ${String(r.minttl)}`;
  if (type === 'ANY') return `${name}\t${String(r.type)}\t${JSON.stringify({ ...r, type: undefined })}`;
  return `${name}\t${type}\t${JSON.stringify(r)}`;
}

export async function dnsLookup(args: ParsedArgs): Promise<number> {
  const [name, rawType = 'A'] = args.words.slice(2);
  const type = rawType.toUpperCase() as LookupType;
  if (!name) throw new UsageError('missing NAME');
  if (!TYPES.includes(type)) throw new UsageError(`TYPE must be one of ${TYPES.join(', ')}, got "${rawType}"`);
  const { server: flag, ...configFlags } = args.values;
  const config = loadConfig({ flags: configFlags, env: process.env });
  const server = flag ?? `${config.dns.host.includes(':') ? `[${config.dns.host}]` : config.dns.host}:${config.dns.udpPort}`;
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  try {
    resolver.setServers([server]);
  } catch (err) {
    throw new UsageError(`--server must be ip or ip:port, got "${server}" (${(err as Error).message})`);
  }
  try {
    const records = (await resolver.resolve(name, type)) as unknown;
    const list = Array.isArray(records) && type !== 'TXT' ? records : type === 'SOA' ? [records] : (records as unknown[]);
    if (args.booleans.has('json')) console.log(JSON.stringify(list, null, 2));
    else for (const r of list) console.log(format(type, name, r));
    return 0;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const outcome = OUTCOMES[code];
    if (!outcome) throw err;
    console.error(`${name} ${type} @${server}: ${outcome}`);
    return code === 'ENODATA' ? 0 : 1;
  }
}

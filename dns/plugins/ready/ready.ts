/**
 * `ready`: the `spartan` zone of dcos-net, whose one purpose is the health
 * name `ready.spartan` (A 127.0.0.1). DC/OS's resolv.conf generator and
 * watchdog query it to decide whether the local dispatcher is alive, so it is
 * answered first in the chain, from memory, whatever the cluster state is.
 * Records, TTLs and SOA as dcos-net's `dcos_dns_sup`/`dcos_dns` (A/NS TTL 5
 * and 3600; SOA `ns.spartan` `support.mesosphere.com` 1 60 180 86400 1).
 */
import { CLASS_IN, RCODE, TYPE } from '../../codec/constants.ts';
import type { DnsReply, DnsRequest, Handler, Plugin, ReplyReuse } from '../../server/handler.ts';
import type { ResourceRecord } from '../../zone/types.ts';
import { inZone } from '../authority/authority.ts';

export const NAME = 'ready';
export const ZONE = 'spartan';

const SOA: ResourceRecord = {
  name: ZONE, type: 'SOA', ttlSeconds: 3600, mname: 'ns.spartan', rname: 'support.mesosphere.com',
  serial: 1, refreshSeconds: 60, retrySeconds: 180, expireSeconds: 86400, minimumSeconds: 1,
};

const RECORDS: ReadonlyMap<string, readonly ResourceRecord[]> = new Map([
  [ZONE, [SOA, { name: ZONE, type: 'NS', ttlSeconds: 3600, target: 'ns.spartan' }]],
  ['ready.spartan', [{ name: 'ready.spartan', type: 'A', ttlSeconds: 5, address: '127.0.0.1' }]],
  ['ns.spartan', [{ name: 'ns.spartan', type: 'A', ttlSeconds: 5, address: '198.51.100.1' }]],
]);

const TYPES: Record<number, ResourceRecord['type'] | 'ANY'> = {
  [TYPE.A]: 'A', [TYPE.AAAA]: 'AAAA', [TYPE.NS]: 'NS', [TYPE.SOA]: 'SOA', [TYPE.ANY]: 'ANY',
};

/** The spartan zone never changes: its single-record answers may be reused for good. */
const FOREVER: ReplyReuse = { source: { version: () => 0 }, version: 0 };

/** The answer for a name inside `spartan` (pure). */
export function answerSpartan(nameLower: string, type: number): DnsReply {
  const records = RECORDS.get(nameLower);
  const reply = (rcode: number, answers: readonly ResourceRecord[], authority: readonly ResourceRecord[]): DnsReply => ({
    kind: 'records', plugin: NAME, rcode, authoritative: true, answers, authority, additionals: [],
    reuse: answers.length <= 1 ? FOREVER : undefined,
  });
  if (!records) return reply(RCODE.NXDOMAIN, [], [SOA]);
  const wanted = TYPES[type];
  const answers = wanted === 'ANY' ? records : records.filter((r) => r.type === wanted);
  return answers.length > 0 ? reply(RCODE.NOERROR, answers, []) : reply(RCODE.NOERROR, [], [SOA]);
}

export function readyPlugin(): Plugin {
  return (next: Handler): Handler => ({
    name: NAME,
    serve(request: DnsRequest): DnsReply | Promise<DnsReply> {
      const query = request.query;
      if (query.class !== CLASS_IN || !inZone(query.nameLower, ZONE)) return next.serve(request);
      return answerSpartan(query.nameLower, query.type);
    },
  });
}

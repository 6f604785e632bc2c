/**
 * `authority`: answers questions inside the internal zones from an
 * `Authority` (dns/zone builds the real one from cluster state). Names the
 * authority does not serve go to the next plugin. `lookup` is synchronous, so
 * internal answers never wait on I/O and are never cached.
 */
import { CLASS_IN, RCODE, TYPE } from '../../codec/constants.ts';
import type { Query } from '../../codec/query.ts';
import { emptyReply, type DnsReply, type DnsRequest, type Handler, type Plugin, type VersionSource } from '../../server/handler.ts';
import type { Authority, Question } from '../../zone/types.ts';

export const NAME = 'authority';

const MNEMONICS = new Map<number, Question['type']>([
  [TYPE.A, 'A'], [TYPE.AAAA, 'AAAA'], [TYPE.SRV, 'SRV'], [TYPE.PTR, 'PTR'], [TYPE.NS, 'NS'],
  [TYPE.SOA, 'SOA'], [TYPE.TXT, 'TXT'], [TYPE.CNAME, 'CNAME'], [TYPE.ANY, 'ANY'],
]);

/** The contract's question type for a wire type number. */
export function questionType(type: number): Question['type'] {
  return MNEMONICS.get(type) ?? `TYPE${type}`;
}

const RCODES = { NOERROR: RCODE.NOERROR, NXDOMAIN: RCODE.NXDOMAIN, SERVFAIL: RCODE.SERVFAIL, REFUSED: RCODE.REFUSED } as const;

/** True when `name` (lower case) is `zone` or below it. */
export function inZone(name: string, zone: string): boolean {
  if (zone.length === 0) return true;
  return name === zone || (name.length > zone.length && name.endsWith(zone) && name.charCodeAt(name.length - zone.length - 1) === 0x2e);
}

function inAnyZone(authority: Authority, query: Query): boolean {
  for (const zone of authority.zones()) if (inZone(query.nameLower, zone)) return true;
  return false;
}

export function authorityPlugin(authority: Authority): Plugin {
  const versioned: VersionSource | undefined = authority.version ? { version: () => authority.version!() } : undefined;
  return (next: Handler): Handler => ({
    name: NAME,
    serve(request: DnsRequest): DnsReply | Promise<DnsReply> {
      const query = request.query;
      if (query.class !== CLASS_IN) {
        // CHAOS and friends: not ours to answer for internal names, the upstream's otherwise.
        return inAnyZone(authority, query) ? emptyReply(NAME, RCODE.REFUSED) : next.serve(request);
      }
      const answer = authority.lookup({ name: query.name, type: questionType(query.type) });
      if (answer === undefined) return next.serve(request);
      return {
        kind: 'records',
        plugin: NAME,
        rcode: RCODES[answer.rcode],
        authoritative: answer.authoritative,
        answers: answer.answers,
        authority: answer.authority,
        additionals: answer.additionals,
        // Several answers rotate between lookups: those are encoded every time.
        reuse: versioned && answer.answers.length <= 1 ? { source: versioned, version: versioned.version() } : undefined,
      };
    },
  });
}

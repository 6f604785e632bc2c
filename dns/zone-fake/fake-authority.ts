/**
 * An in-repo fake `Authority` for the wire server's tests and benchmark
 * (the real zones are built from cluster state in dns/zone). It answers as
 * Mesos-DNS does from a plain record list: NXDOMAIN with the zone's SOA for
 * unknown names, NOERROR/NODATA with the SOA when the name has other types,
 * glue for SRV targets, SERVFAIL for every internal name until `synced`.
 * It records every question it was asked, for tests to inspect (a server
 * with the answer cache on asks once per question until the records or the
 * sync state change: `version()` moves with them).
 */
import type { Authority, Question, ResourceRecord, ZoneAnswer } from '../zone/types.ts';

export interface FakeAuthorityOptions {
  /** Zone apexes, lower case (`mesos`). */
  readonly zones: readonly string[];
  readonly records: readonly ResourceRecord[];
  /** False models "before the first state sync" (default true). */
  readonly synced?: boolean;
  /** Keep the questions asked (default true; the benchmark turns it off). */
  readonly record?: boolean;
}

export interface FakeAuthority extends Authority {
  /** Questions asked, in order. */
  readonly asked: Question[];
  setRecords(records: readonly ResourceRecord[]): void;
  setSynced(synced: boolean): void;
}

const soaFor = (zone: string): ResourceRecord => ({
  name: zone, type: 'SOA', ttlSeconds: 60, mname: `ns1.${zone}`, rname: `root.ns1.${zone}`,
  serial: 1, refreshSeconds: 60, retrySeconds: 600, expireSeconds: 86400, minimumSeconds: 60,
});

export function createFakeAuthority(options: FakeAuthorityOptions): FakeAuthority {
  const zones = [...options.zones].sort((a, b) => b.length - a.length);
  let byName = new Map<string, ResourceRecord[]>();
  let synced = options.synced ?? true;
  let version = 0;
  const keep = options.record ?? true;
  const asked: Question[] = [];
  const setRecords = (records: readonly ResourceRecord[]): void => {
    version++;
    byName = new Map();
    for (const r of records) {
      const list = byName.get(r.name);
      if (list) list.push(r);
      else byName.set(r.name, [r]);
    }
  };
  setRecords(options.records);
  const suffixes = zones.map((z) => [z, `.${z}`] as const);
  const zoneOf = (name: string): string | undefined => {
    for (const [zone, dotted] of suffixes) if (name === zone || name.endsWith(dotted)) return zone;
    return undefined;
  };
  return {
    asked,
    setRecords,
    setSynced: (value) => {
      version++;
      synced = value;
    },
    zones: () => zones,
    version: () => version,
    lookup(question: Question): ZoneAnswer | undefined {
      const name = question.name.toLowerCase();
      const zone = zoneOf(name);
      if (zone === undefined) return undefined;
      if (keep) asked.push(question);
      if (!synced) return { rcode: 'SERVFAIL', authoritative: false, answers: [], authority: [], additionals: [] };
      const records = byName.get(name);
      const soa = byName.get(zone)?.find((r) => r.type === 'SOA') ?? soaFor(zone);
      if (!records) return { rcode: 'NXDOMAIN', authoritative: true, answers: [], authority: [soa], additionals: [] };
      const answers = question.type === 'ANY' ? records : records.filter((r) => r.type === question.type);
      if (answers.length === 0) return { rcode: 'NOERROR', authoritative: true, answers: [], authority: [soa], additionals: [] };
      const additionals = answers.flatMap((r) => (r.type === 'SRV' ? (byName.get(r.target) ?? []).filter((g) => g.type === 'A' || g.type === 'AAAA') : []));
      return { rcode: 'NOERROR', authoritative: true, answers, authority: [], additionals };
    },
  };
}

/** The calibration's zone: `task-N.marathon.mesos` -> 10.0.(N>>8).(N&255), TTL 60, plus leader/master. */
export function calibrationRecords(count: number): ResourceRecord[] {
  const records: ResourceRecord[] = [];
  for (let n = 0; n < count; n++) {
    records.push({ name: `task-${n}.marathon.mesos`, type: 'A', ttlSeconds: 60, address: `10.0.${n >> 8}.${n & 255}` });
  }
  records.push({ name: 'leader.mesos', type: 'A', ttlSeconds: 60, address: '10.0.255.1' });
  records.push({ name: 'master.mesos', type: 'A', ttlSeconds: 60, address: '10.0.255.1' });
  return records;
}

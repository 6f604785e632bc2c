/**
 * The contract between the DNS wire server (`dns/server`, codec, plugins,
 * dispatcher) and the authoritative zones built from cluster state
 * (`dns/zone`). Plain data, no wire format: the zones never see bytes, the
 * server never sees the state model.
 *
 * Names are absolute, without the trailing dot, in lower case when stored
 * (`web.marathon.mesos`). The server matches case-insensitively and writes
 * the question's own spelling back as the owner name of answers whose name
 * equals the question (0x20 case preservation).
 */

/** Record types the zones produce (numeric codes are the wire server's business). */
export type RecordType = 'A' | 'AAAA' | 'SRV' | 'PTR' | 'NS' | 'SOA' | 'TXT' | 'CNAME';

interface RecordBase {
  /** Owner name, absolute, no trailing dot, lower case. */
  readonly name: string;
  readonly ttlSeconds: number;
}

export type ResourceRecord =
  | (RecordBase & { readonly type: 'A'; readonly address: string })
  | (RecordBase & { readonly type: 'AAAA'; readonly address: string })
  | (RecordBase & {
      readonly type: 'SRV';
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    })
  | (RecordBase & { readonly type: 'PTR'; readonly target: string })
  | (RecordBase & { readonly type: 'NS'; readonly target: string })
  | (RecordBase & { readonly type: 'CNAME'; readonly target: string })
  | (RecordBase & { readonly type: 'TXT'; readonly text: readonly string[] })
  | (RecordBase & {
      readonly type: 'SOA';
      /** Primary name server. */
      readonly mname: string;
      /** Responsible mailbox as a name (`root.ns1.mesos`). */
      readonly rname: string;
      readonly serial: number;
      readonly refreshSeconds: number;
      readonly retrySeconds: number;
      readonly expireSeconds: number;
      /** Negative-caching TTL (RFC 2308). */
      readonly minimumSeconds: number;
    });

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';

/** What an authority answers for one question. */
export interface ZoneAnswer {
  readonly rcode: Rcode;
  /** Set the AA bit. */
  readonly authoritative: boolean;
  readonly answers: readonly ResourceRecord[];
  /** SOA for NXDOMAIN and NODATA, NS otherwise when useful. */
  readonly authority: readonly ResourceRecord[];
  /** Glue: A/AAAA of SRV targets, of NS targets. */
  readonly additionals: readonly ResourceRecord[];
}

export interface Question {
  /** As received, any case, no trailing dot. */
  readonly name: string;
  /** The question type's mnemonic, or `TYPE<n>` for types this contract does not name (`ANY` for 255). */
  readonly type: RecordType | 'ANY' | `TYPE${number}`;
}

/**
 * The authoritative part of the DNS server: a set of zones answered from
 * cluster state. `lookup` is synchronous and cheap (a map lookup), so the
 * server can call it on its hot path.
 */
export interface Authority {
  /** Zone apexes served, e.g. `['mesos', 'thisdcos.directory', 'in-addr.arpa' …]`. */
  readonly zones: () => readonly string[];
  /**
   * The answer for a question inside one of `zones()`, or `undefined` when
   * the authority does not answer for the name (the server forwards it):
   * a name in none of the zones, or a reverse name (`in-addr.arpa`,
   * `ip6.arpa`) it holds no record for outside its configured reverse
   * zones, so PTRs of other networks still resolve. Before the first state
   * sync: `{rcode: 'SERVFAIL'}` for every name inside the zones.
   */
  lookup(question: Question): ZoneAnswer | undefined;
  /**
   * Optional: a number that changes whenever any `lookup` result may change
   * (records, serial, sync state). While it holds, the same question gets
   * the same records; only the order of several answers may differ
   * (rotation). The wire server then reuses encoded single-answer replies.
   */
  version?(): number;
}

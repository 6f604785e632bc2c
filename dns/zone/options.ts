/**
 * Options of the authoritative zones, with Mesos-DNS's defaults (MD
 * `records/config.go`) where DC/OS does not override them, and DC/OS's
 * where it does (`gen/calc.py`: `ipSources: ["host","netinfo"]`). Validated
 * once by {@link resolveZoneOptions}, then deep-frozen: everything else in
 * `dns/zone` reads a {@link ZoneOptions} and never checks it again.
 */
import { isIP } from 'node:net';
import { StrataError } from '../../common/errors.ts';

/**
 * Where a task's `<task>.<framework>.<domain>` address comes from, tried in
 * order; the first source that yields an address wins (Mesos-DNS
 * `IPSources`). `host` is the agent's address; `netinfo`, `mesos` and
 * `docker` are the task's container addresses (Strata's task model keeps one
 * list of them, so the three read the same list); `autoip` is the agent's
 * address when the task has host ports or no container address, else the
 * container addresses (dcos-net's `autoip`).
 */
export const IP_SOURCES = ['host', 'netinfo', 'mesos', 'docker', 'autoip'] as const;
export type IpSource = (typeof IP_SOURCES)[number];

export interface SoaOptions {
  /** Primary name server (`SOAMname`). Default `ns1.<domain>`. */
  readonly mname: string;
  /** Responsible mailbox as a name (`SOARname`). Default `root.ns1.<domain>`. */
  readonly rname: string;
  readonly refreshSeconds: number;
  readonly retrySeconds: number;
  readonly expireSeconds: number;
  /**
   * Negative-caching TTL (RFC 2308). Default 1, as dcos-net's zones:
   * Mesos-DNS wrote its `ttl` (60) here, so a resolver that asked for a
   * name before its task ran kept the NXDOMAIN for a minute, which undoes
   * push updates (DC/OS complaint: new tasks resolved late, NET PR #64).
   */
  readonly minimumSeconds: number;
}

export interface ThisDcosOptions {
  /** Serve `thisdcos.directory` (`dcos.`, `l4lb.` and the `mesos.` mirror). Default true. */
  readonly enabled: boolean;
  /** TTL of its A/AAAA records: 5 in dcos-net. */
  readonly ttlSeconds: number;
  /** TTL of its NS record: 3600 in dcos-net. */
  readonly nsTtlSeconds: number;
  /** dcos-net's SOA: `ns.spartan`, `support.mesosphere.com`, refresh 60, retry 180, expire 86400, minimum 1. */
  readonly soa: SoaOptions;
  /** Mirror the `mesos` zone under `mesos.thisdcos.directory` (dcos-net copies Mesos-DNS's `/v1/axfr`). Default true. */
  readonly mirrorMesos: boolean;
}

export interface ZoneOptions {
  /** The Mesos-DNS domain. Default `mesos`. */
  readonly domain: string;
  /** TTL of the `mesos` zone's records (Mesos-DNS `ttl`, default 60). */
  readonly ttlSeconds: number;
  /**
   * What `/v1/axfr` advertises as the poll interval for mirrors (Mesos-DNS
   * `refreshSeconds`; DC/OS sets 30). Strata itself is pushed every change
   * and never polls.
   */
  readonly refreshSeconds: number;
  readonly soa: SoaOptions;
  /** Mesos-DNS `enforceRFC952`: labels of at most 24 characters that start with a letter. Default false (RFC 1123, 63). */
  readonly enforceRfc952: boolean;
  /** Task address sources in order (see {@link IP_SOURCES}). Default `['host', 'netinfo']`, as DC/OS configures Mesos-DNS. */
  readonly ipSources: readonly IpSource[];
  /**
   * Records for tasks that are not RUNNING yet (STAGING, STARTING), so a
   * name exists before the task is up and healthy (the "option to
   * include tasks until they are healthy"; Mesos-DNS PR #308). Default
   * false: only RUNNING tasks, as Mesos-DNS.
   */
  readonly includeStartingTasks: boolean;
  /**
   * Leave out RUNNING tasks whose app has health checks until every check
   * has passed (traffic before the first health check was a DC/OS
   * complaint). Default false, as Mesos-DNS.
   */
  readonly healthyOnly: boolean;
  /** Master addresses in `master<N>` order (Mesos-DNS `masters`; IP literals). The leader is added when it is not listed. */
  readonly masters: readonly string[];
  /** Addresses of this DNS server: the A/AAAA of the SOA `mname` (Mesos-DNS `listener`). Default none. */
  readonly nameserverAddresses: readonly string[];
  /** SRV weight (Mesos-DNS `srvRecordDefaultWeight`, default 1); priority is 0. */
  readonly srvWeight: number;
  /** Serve `/v1/enumerate` and `/v1/axfr` (Mesos-DNS `enumerationOn`, default true). */
  readonly enumerationOn: boolean;
  /** PTR records for task and agent addresses under `in-addr.arpa` / `ip6.arpa`. Default true. */
  readonly ptrRecords: boolean;
  /**
   * Reverse zones answered with full authority (NXDOMAIN for unknown
   * addresses), e.g. `['9.in-addr.arpa']` for the `dcos` overlay. Outside
   * them a PTR question the zones hold no record for is left to the
   * forwarder (`lookup` returns `undefined`). Default none.
   */
  readonly reverseZones: readonly string[];
  readonly thisDcos: ThisDcosOptions;
}

/** What callers may set: any option, SOA and `thisDcos` fields one by one. */
export type ZoneOptionsInput = Partial<Omit<ZoneOptions, 'soa' | 'thisDcos'>> & {
  readonly soa?: Partial<SoaOptions>;
  readonly thisDcos?: Partial<Omit<ThisDcosOptions, 'soa'>> & { readonly soa?: Partial<SoaOptions> };
};

export const THIS_DCOS_APEX = 'thisdcos.directory';

const DEFAULT_TTL_SECONDS = 60;

const NAME_RE = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

function fail(field: string, message: string): never {
  throw new StrataError('DNS_OPTIONS_INVALID', `dns option ${field} ${message}`);
}

function dnsName(field: string, value: unknown): string {
  if (typeof value !== 'string') fail(field, 'must be a DNS name');
  const name = value.toLowerCase().replace(/\.$/, '');
  if (!NAME_RE.test(name)) fail(field, `must be a DNS name (labels of letters, digits and inner hyphens, at most 63 characters each), not ${JSON.stringify(value)}`);
  return name;
}

function seconds(field: string, value: unknown, max = 2 ** 31 - 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) fail(field, `must be a whole number of seconds from 0 to ${max}, not ${JSON.stringify(value)}`);
  return value;
}

function flag(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(field, `must be true or false, not ${JSON.stringify(value)}`);
  return value;
}

function addresses(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) fail(field, 'must be a list of IP addresses');
  return value.map((v, i) => {
    if (typeof v !== 'string' || isIP(v) === 0) fail(`${field}[${i}]`, `must be an IPv4 or IPv6 address, not ${JSON.stringify(v)}`);
    return v;
  });
}

function soaOf(field: string, input: Partial<SoaOptions> | undefined, defaults: SoaOptions): SoaOptions {
  const s = { ...defaults, ...input };
  return {
    mname: dnsName(`${field}.mname`, s.mname),
    rname: dnsName(`${field}.rname`, s.rname),
    refreshSeconds: seconds(`${field}.refreshSeconds`, s.refreshSeconds),
    retrySeconds: seconds(`${field}.retrySeconds`, s.retrySeconds),
    expireSeconds: seconds(`${field}.expireSeconds`, s.expireSeconds),
    minimumSeconds: seconds(`${field}.minimumSeconds`, s.minimumSeconds),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Defaults filled in, every field checked (`DNS_OPTIONS_INVALID` naming
 * the first wrong one), names lower-cased without a trailing dot; the
 * result is deep-frozen.
 */
export function resolveZoneOptions(input: ZoneOptionsInput = {}): ZoneOptions {
  if (typeof input !== 'object' || input === null) fail('', 'must be an object');
  const domain = dnsName('domain', input.domain ?? 'mesos');
  if (domain === THIS_DCOS_APEX || domain.endsWith(`.${THIS_DCOS_APEX}`) || THIS_DCOS_APEX.endsWith(`.${domain}`)) {
    fail('domain', `must not overlap ${THIS_DCOS_APEX}`);
  }
  const ttlSeconds = seconds('ttlSeconds', input.ttlSeconds ?? DEFAULT_TTL_SECONDS);
  const soa = soaOf('soa', input.soa, {
    mname: `ns1.${domain}`,
    rname: `root.ns1.${domain}`,
    refreshSeconds: 60,
    retrySeconds: 600,
    expireSeconds: 86400,
    minimumSeconds: 1,
  });
  const ipSources = input.ipSources ?? ['host', 'netinfo'];
  if (!Array.isArray(ipSources) || ipSources.length === 0) fail('ipSources', `must be a non-empty list of ${IP_SOURCES.join(', ')}`);
  ipSources.forEach((s, i) => {
    if (!(IP_SOURCES as readonly string[]).includes(s)) fail(`ipSources[${i}]`, `must be one of ${IP_SOURCES.join(', ')}, not ${JSON.stringify(s)}`);
  });
  const t = input.thisDcos ?? {};
  const thisDcos: ThisDcosOptions = {
    enabled: flag('thisDcos.enabled', t.enabled ?? true),
    ttlSeconds: seconds('thisDcos.ttlSeconds', t.ttlSeconds ?? 5),
    nsTtlSeconds: seconds('thisDcos.nsTtlSeconds', t.nsTtlSeconds ?? 3600),
    soa: soaOf('thisDcos.soa', t.soa, {
      mname: 'ns.spartan',
      rname: 'support.mesosphere.com',
      refreshSeconds: 60,
      retrySeconds: 180,
      expireSeconds: 86400,
      minimumSeconds: 1,
    }),
    mirrorMesos: flag('thisDcos.mirrorMesos', t.mirrorMesos ?? true),
  };
  const reverseZones = (input.reverseZones ?? []).map((z, i) => {
    const name = dnsName(`reverseZones[${i}]`, z);
    if (!name.endsWith('in-addr.arpa') && !name.endsWith('ip6.arpa')) fail(`reverseZones[${i}]`, `must be under in-addr.arpa or ip6.arpa, not ${JSON.stringify(z)}`);
    return name;
  });
  const srvWeight = input.srvWeight ?? 1;
  if (!Number.isInteger(srvWeight) || srvWeight < 0 || srvWeight > 65535) fail('srvWeight', `must be a whole number from 0 to 65535, not ${JSON.stringify(srvWeight)}`);
  return deepFreeze({
    domain,
    ttlSeconds,
    refreshSeconds: seconds('refreshSeconds', input.refreshSeconds ?? 30),
    soa,
    enforceRfc952: flag('enforceRfc952', input.enforceRfc952 ?? false),
    ipSources: [...ipSources],
    includeStartingTasks: flag('includeStartingTasks', input.includeStartingTasks ?? false),
    healthyOnly: flag('healthyOnly', input.healthyOnly ?? false),
    masters: addresses('masters', input.masters ?? []),
    nameserverAddresses: addresses('nameserverAddresses', input.nameserverAddresses ?? []),
    srvWeight,
    enumerationOn: flag('enumerationOn', input.enumerationOn ?? true),
    ptrRecords: flag('ptrRecords', input.ptrRecords ?? true),
    reverseZones,
    thisDcos,
  });
}

/** The defaults, for the `mesos` domain. */
export const DEFAULT_ZONE_OPTIONS: ZoneOptions = resolveZoneOptions({});

/** The DNS settings of the process configuration that shape the zones (`dns.domain`, `dns.ttlSeconds`, ...). */
export interface ZoneConfig {
  readonly domain: string;
  readonly ttlSeconds: number;
  readonly includeStartingTasks: boolean;
  readonly healthyOnly: boolean;
  readonly enforceRfc952: boolean;
  readonly masters: readonly string[];
  readonly reverseZones: readonly string[];
}

/** Zone options from the configuration; {@link resolveZoneOptions} checks them and names a wrong field. */
export function zoneOptionsFromConfig(dns: ZoneConfig): ZoneOptionsInput {
  return {
    domain: dns.domain,
    ttlSeconds: dns.ttlSeconds,
    includeStartingTasks: dns.includeStartingTasks,
    healthyOnly: dns.healthyOnly,
    enforceRfc952: dns.enforceRfc952,
    masters: [...dns.masters],
    reverseZones: [...dns.reverseZones],
  };
}

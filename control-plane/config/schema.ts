/**
 * The one configuration schema of a Strata process. Every value can come from
 * a JSON file (`--config FILE` or `STRATA_CONFIG`), the environment
 * (`STRATA_` + the path in upper snake case, e.g. `STRATA_API_PORT`) or a flag
 * (`--` + the path in kebab case, e.g. `--api-port`); flags win over the
 * environment, which wins over the file, which wins over the defaults.
 */
import { Type, type Static } from 'typebox';

const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Host = Type.String({ minLength: 1, maxLength: 253 });
/** `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6 address (checked again, by value, when the DNS server starts). */
const UPSTREAM_PATTERN = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}(:[0-9]{1,5})?|\\[[0-9a-fA-F:.]+\\](:[0-9]{1,5})?|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$';
/** A DNS zone name, lower case, no trailing dot. */
const ZONE_PATTERN = '^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$';

export const ConfigSchema = Type.Object(
  {
    /** Where this process keeps its files (embedded store, credentials). */
    dataDir: Type.String({ minLength: 1, default: '.strata', description: 'directory for the embedded store and bootstrap credentials' }),
    cluster: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$', default: 'strata' }),
      },
      { additionalProperties: false, default: {} },
    ),
    store: Type.Object(
      {
        backend: Type.Union([Type.Literal('embedded'), Type.Literal('etcd'), Type.Literal('consul')], { default: 'embedded' }),
        /** Embedded store file; relative paths are under dataDir. */
        embeddedPath: Type.String({ minLength: 1, default: 'state.db' }),
        etcdEndpoints: Type.Array(Type.String({ minLength: 1 }), { default: ['http://127.0.0.1:2379'] }),
        consulAddress: Type.String({ minLength: 1, default: '127.0.0.1:8500' }),
        consulToken: Type.Optional(Type.String()),
        /** Key prefix inside etcd or Consul, so several clusters can share one. */
        prefix: Type.String({ default: '' }),
      },
      { additionalProperties: false, default: {} },
    ),
    api: Type.Object(
      {
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        /** Marathon's port; 0 picks a free one. */
        port: Type.Integer({ ...Port, default: 8080 }),
        /** Address other processes use to reach this API (defaults to http://host:port). */
        advertiseUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    auth: Type.Object(
      {
        issuer: Type.String({ minLength: 1, default: 'strata' }),
        audience: Type.String({ minLength: 1, default: 'strata' }),
        /** DC/OS's default auth token lifetime is 5 days. */
        tokenTtlSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 5 * 86400 }),
        algorithm: Type.Union([Type.Literal('ES256'), Type.Literal('RS256')], { default: 'ES256' }),
        bootstrapUid: Type.String({ minLength: 1, maxLength: 96, pattern: '^[a-zA-Z0-9._@-]+$', default: 'admin' }),
      },
      { additionalProperties: false, default: {} },
    ),
    ca: Type.Object(
      {
        /** SPIFFE trust domain of the cluster CA's certificates: `spiffe://<trustDomain>/user/<uid>`, `.../sa/<uid>`. */
        trustDomain: Type.String({ pattern: '^[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?$', default: 'strata.local' }),
        /** Longest leaf certificate the CA issues (Consul's leaf TTL: 72 h); requests may ask for less. */
        maxLeafTtlSeconds: Type.Integer({ minimum: 3600, maximum: 365 * 86400, default: 72 * 3600 }),
      },
      { additionalProperties: false, default: {} },
    ),
    secrets: Type.Object(
      {
        /** The key-encryption keys (JSON `{current, keys: {version: base64}}`, mode 0600); relative paths are under dataDir. Never in the store; every master needs the same file. */
        kekFile: Type.String({ minLength: 1, default: 'secrets-kek.json' }),
        /** Create the file with one random key when it is missing (a first master); off, a missing file stops the start. */
        createKek: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
    security: Type.Object(
      {
        /**
         * mTLS between components (agent → master API, DNS feed, xDS): `off` (plain only), `permissive` (masters
         * accept mTLS and plain on the same ports during an upgrade; agents enrol and use mTLS), `strict` (the
         * internal API routes and xDS need a client certificate from the cluster CA).
         */
        mtls: Type.Union([Type.Literal('off'), Type.Literal('permissive'), Type.Literal('strict')], { default: 'permissive' }),
        /** Lifetime of the certificates masters and agents get (renewed at 60-90 %). */
        componentCertTtlSeconds: Type.Integer({ minimum: 60, maximum: 365 * 86400, default: 86400 }),
        /** Lifetime of workload certificates served over SDS (Istio's SECRET_TTL: 24 h; rotated at 60-90 %). */
        workloadCertTtlSeconds: Type.Integer({ minimum: 60, maximum: 365 * 86400, default: 86400 }),
        /** Masters reload the CRL they check client certificates against this often (and at once after a revocation on themselves). */
        crlRefreshSeconds: Type.Integer({ minimum: 1, maximum: 86400, default: 30 }),
        /** Mesh mTLS: Envoy listeners require client certificates and clusters originate TLS, with SDS workload certificates. */
        meshMtls: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    master: Type.Object(
      {
        /** Leader session TTL: a dead leader is replaced within about this long. */
        leaderTtlSeconds: Type.Integer({ minimum: 1, maximum: 600, default: 3 }),
      },
      { additionalProperties: false, default: {} },
    ),
    agent: Type.Object(
      {
        /** Master API the agent registers with (defaults to this process's API in `strata up`); several, comma-separated, are used in turn when one fails. */
        masterUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
        id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9._-]+$' })),
        /** Where the agent's own HTTP endpoint listens (Mesos agents use 5051); 0 picks a free port. */
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        port: Type.Integer({ ...Port, default: 5051 }),
        heartbeatSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 5 }),
        /** Read by the leading master: an agent silent this long is marked unreachable (3 default heartbeats; Mesos: 75 s). */
        unreachableAfterSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 15 }),
        /** A task running here that the master no longer lists (removed, or given up while the agent was away) is killed after this long (and two listings). */
        orphanGraceSeconds: Type.Number({ minimum: 0, maximum: 86400, default: 30 }),
        /** Host port ranges the agent offers to tasks, Mesos-style: `31000-32000` or `31000-31100,32000-32100`. */
        portRanges: Type.String({ pattern: '^[0-9]{1,5}-[0-9]{1,5}(,[0-9]{1,5}-[0-9]{1,5})*$', default: '31000-32000' }),
        /** File holding the token the agent authenticates with. */
        tokenFile: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    vips: Type.Object(
      {
        /** Named VIPs (`VIP_0: "/web:80"`) get an IPv4 address from here (DC/OS: 11.0.0.0/8). */
        ipv4Range: Type.String({ minLength: 9, maxLength: 18, default: '11.0.0.0/8' }),
        /** … and an IPv6 address from here (DC/OS: fd01:c::/64). */
        ipv6Range: Type.String({ minLength: 4, maxLength: 43, default: 'fd01:c::/64' }),
      },
      { additionalProperties: false, default: {} },
    ),
    dataplane: Type.Object(
      {
        /** The kernel L4 load balancer for VIPs on this agent (nftables): `auto` = on when running as root with nft installed. */
        l4lb: Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')], { default: 'auto' }),
        /** Network policy enforced in nftables (table `strata_policy`) on this agent: `auto` = on when running as root with nft installed. */
        policy: Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')], { default: 'auto' }),
        /** Reload the whole load balancer table this often, repairing hand edits (0 = never). */
        reconcileSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
      },
      { additionalProperties: false, default: {} },
    ),
    dns: Type.Object(
      {
        /** Run the DNS server (internal zones + Spartan-style dispatcher) in this process. */
        enabled: Type.Boolean({ default: true }),
        /** Listen address for UDP and TCP (DC/OS binds 198.51.100.1-3 on agents; 0.0.0.0 for every interface). */
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        /** DC/OS runs Mesos-DNS on 61053 (no root needed); 53 for resolv.conf use; 0 picks a free port. */
        udpPort: Type.Integer({ ...Port, default: 61053 }),
        tcpPort: Type.Integer({ ...Port, default: 61053 }),
        /** SO_REUSEPORT: several Strata DNS processes on one node share the ports and the kernel spreads queries across them (one per core). */
        reusePort: Type.Boolean({ default: false }),
        /** Recursive resolvers for names outside the internal zones, `ip` or `ip:port`. Empty: such names are REFUSED (as DC/OS with no resolvers). */
        upstreams: Type.Array(Type.String({ pattern: UPSTREAM_PATTERN }), { default: [], maxItems: 16 }),
        /** Spartan's `dns_forward_zones`: `{"corp.example": ["10.0.0.5:53"]}` sends that zone to those servers. */
        forwardZones: Type.Record(Type.String({ pattern: ZONE_PATTERN }), Type.Array(Type.String({ pattern: UPSTREAM_PATTERN }), { minItems: 1, maxItems: 16 }), {
          default: {},
        }),
        /** Wait this long for one upstream before counting it failed and trying another (Spartan: 5000). */
        upstreamTimeoutMs: Type.Integer({ minimum: 10, maximum: 60000, default: 2000 }),
        /** Give up and answer SERVFAIL after this long (Spartan: 10000). */
        forwardTimeoutMs: Type.Integer({ minimum: 10, maximum: 120000, default: 5000 }),
        /** Close idle TCP client connections after this long (Spartan: 10 s). */
        tcpIdleTimeoutMs: Type.Integer({ minimum: 100, maximum: 600000, default: 10000 }),
        /** TCP client connections open at once; more are refused (Spartan's handler limit: 1024). */
        tcpMaxConnections: Type.Integer({ minimum: 1, maximum: 65535, default: 1024 }),
        /** Largest UDP reply to EDNS clients (DNS Flag Day 2020: 1232). */
        maxUdpPayloadBytes: Type.Integer({ minimum: 512, maximum: 4096, default: 1232 }),
        /** Forwarded answers kept (never internal names); 0 turns the cache off. */
        cacheMaxEntries: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 10000 }),
        /** Encoded answers of the internal zones kept and resent with the ID and case patched (dns/server/answer-cache.ts); 0 turns it off. */
        answerCacheMaxEntries: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 32768 }),
        /** The Mesos-DNS domain (`<task>.<framework>.<domain>`). */
        domain: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\\.?$', default: 'mesos' }),
        /** TTL of the `mesos` zone's records (Mesos-DNS `ttl`). */
        ttlSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
        /** Names for tasks before they run (STAGING, STARTING), so a name exists as soon as a task is placed. */
        includeStartingTasks: Type.Boolean({ default: false }),
        /** Leave out running tasks whose app has health checks until every check has passed. */
        healthyOnly: Type.Boolean({ default: false }),
        /** Mesos-DNS `enforceRFC952`: labels of at most 24 characters starting with a letter. */
        enforceRfc952: Type.Boolean({ default: false }),
        /** Master addresses in `master<N>` order (IP literals); the leader is added when it is not listed. */
        masters: Type.Array(Type.String({ minLength: 2, maxLength: 45 }), { default: [], maxItems: 64 }),
        /** Reverse zones answered with full authority, e.g. `9.in-addr.arpa` for the `dcos` overlay. */
        reverseZones: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [], maxItems: 64 }),
        /** The handler chain, first to last; plugins are registered by name in dns/plugins/registry.ts. */
        chain: Type.Array(Type.Union([Type.Literal('ready'), Type.Literal('authority'), Type.Literal('cache'), Type.Literal('forward')]), {
          default: ['ready', 'authority', 'cache', 'forward'],
          uniqueItems: true,
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    xds: Type.Object(
      {
        /** Serve xDS (ADS for Envoy and proxyless gRPC) from every master. */
        enabled: Type.Boolean({ default: true }),
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        /** Istio's plaintext xDS port (istiod 15010), so mesh tooling finds it where it expects; 0 picks a free one. */
        port: Type.Integer({ ...Port, default: 15010 }),
        /** The mTLS xDS port (istiod's 15012), served when security.mtls is not off; 0 picks a free one. */
        mtlsPort: Type.Integer({ ...Port, default: 15012 }),
        /** Host nodes use to reach this server in the bootstraps `strata envoy bootstrap` prints (defaults to host). */
        advertiseHost: Type.Optional(Type.String({ ...Host })),
        /** At most one snapshot rebuild per window, and no state change waits longer than this (Istio debounces 100 ms). */
        debounceMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 100 }),
        /** Streams served at once; more are refused with RESOURCE_EXHAUSTED. */
        maxStreams: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
        /** Largest discovery request accepted. */
        maxRequestBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    overlay: Type.Object(
      {
        /** The VXLAN overlay on this agent (VXLAN device per network, bridge, routes to other agents): `auto` = on when running as root. */
        enabled: Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')], { default: 'auto' }),
        /** Ask the master for leases and reconcile the kernel this often, repairing hand edits and following other agents (seconds). */
        reconcileSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 15 }),
        /** VXLAN UDP port (DC/OS: 64000). */
        vxlanPort: Type.Integer({ minimum: 1, maximum: 65535, default: 64000 }),
        /** Where tasks' network namespaces are mounted (`strata-<hash of the task id>`; iproute2's directory, so `ip netns exec` reaches them). */
        netnsDir: Type.String({ minLength: 1, maxLength: 1024, pattern: '^/', default: '/run/netns' }),
      },
      { additionalProperties: false, default: {} },
    ),
    gateway: Type.Object(
      {
        /** The authenticating HTTPS gateway (Admin Router) in front of the API, the other components and app endpoints. */
        enabled: Type.Boolean({ default: true }),
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        /** HTTPS port (DC/OS Admin Router: 443); 0 picks a free one. */
        port: Type.Integer({ ...Port, default: 8443 }),
        /** Extra DNS names and IP addresses for the gateway's certificate (localhost, 127.0.0.1, ::1, the host name and `host` are always in it). */
        certificateNames: Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:*-]+$' }), { default: [], maxItems: 64 }),
        /** Give up on an upstream that has not answered (headers) in this long; 504. Streams (events, logs, websockets) are not cut once they answer. */
        upstreamTimeoutMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 60_000 }),
        /** Give up connecting to an upstream after this long; 502. */
        connectTimeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 5_000 }),
        /** Write one access log line per request (info level, component "gateway"). */
        accessLog: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object(
      {
        level: Type.Union(
          [
            Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
            Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent'),
          ],
          { default: 'info' },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type StrataConfig = Static<typeof ConfigSchema>;
export type DnsConfig = StrataConfig['dns'];

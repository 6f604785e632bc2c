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
    master: Type.Object(
      {
        /** Leader session TTL: a dead leader is replaced within about this long. */
        leaderTtlSeconds: Type.Integer({ minimum: 1, maximum: 600, default: 3 }),
      },
      { additionalProperties: false, default: {} },
    ),
    agent: Type.Object(
      {
        /** Master API the agent registers with (defaults to this process's API in `strata up`). */
        masterUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
        id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-zA-Z0-9._-]+$' })),
        /** Where the agent's own HTTP endpoint listens (Mesos agents use 5051); 0 picks a free port. */
        host: Type.String({ ...Host, default: '127.0.0.1' }),
        port: Type.Integer({ ...Port, default: 5051 }),
        heartbeatSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 5 }),
        /** Read by the leading master: an agent silent this long is marked unreachable (3 default heartbeats; Mesos: 75 s). */
        unreachableAfterSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86400, default: 15 }),
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
        /** Reload the whole load balancer table this often, repairing hand edits (0 = never). */
        reconcileSeconds: Type.Integer({ minimum: 0, maximum: 86400, default: 60 }),
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

/**
 * The cluster state model: one TypeBox schema per record kind kept in the
 * store, and the TypeScript type of each (`Static`). Every component (API,
 * DNS, xDS, overlay, scheduler, IAM) reads and writes these shapes; nothing
 * else defines them.
 *
 * Rules every schema here follows
 * - Plain JSON Schema (draft-07 keywords only), so fastify's Ajv compiles
 *   the same objects for routes; `validate.ts` compiles them with Ajv in
 *   strict mode, which refuses any keyword Ajv does not know.
 * - Stored records are strict and explicit: no unknown fields
 *   (`additionalProperties: false`), and every field Marathon gives a
 *   default is present in the stored form. Fields that Marathon leaves unset
 *   (no default) are optional and absent when unset, never `null`.
 * - Marathon's JSON field names are kept wherever a record mirrors a Marathon
 *   object (App, Task); `mem` and `disk` are MB there, as in Marathon.
 *   Strata's own records put units in names (`memMb`, `ttlSeconds`).
 * - `default` keywords document Marathon's defaults; they are annotations
 *   (the store validator never applies them). `withAppDefaults` in
 *   `app-defaults.ts` turns an {@link AppDefinition} into a stored {@link App}.
 * - Rules that span fields (cmd xor args, network modes, port references,
 *   CIDR arithmetic, JWK consistency) live in `checks.ts`.
 */
import Type, { type Static, type TSchema } from 'typebox';

// ---------------------------------------------------------------------------
// Identifiers and shared pieces

const STRICT = { additionalProperties: false } as const;

/** One DNS label (RFC 1123): lowercase letters, digits, inner hyphens, 1–63 characters. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

// One Marathon path element: dot-separated DNS-label-like parts (Marathon's
// PathId rule), so `web`, `web-1` and `my.app` are elements; `.`/`..` are not
// allowed in the stored (absolute, canonical) form.
const PATH_ELEMENT = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*';

/** A stored Marathon app id: absolute and canonical, e.g. `/group/web`. */
export const APP_ID_PATTERN = `^(?:/${PATH_ELEMENT})+$`;
/** An app id as a client may send it: a leading `/` is optional (relative ids are resolved against `/`). */
export const APP_ID_INPUT_PATTERN = `^/?${PATH_ELEMENT}(?:/${PATH_ELEMENT})*$`;
/** A path as a client may write it where Marathon resolves it against a group: relative, with `.` and `..` elements (`../db`). */
export const PATH_INPUT_PATTERN = `^/?(?:(?:${PATH_ELEMENT}|\\.|\\.\\.)/)*${PATH_ELEMENT}$`;
/** Longest app id; it keeps every key and task id inside the store's key limit. */
export const APP_ID_MAX_LENGTH = 255;

/** Agent, framework and task ids (Mesos-style: `<uuid>-S3`, `web.instance-<uuid>._app.1`). */
export const NODE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';

/** Mesos roles: `*`, or hierarchical `eng/frontend`; no element is `.`/`..` or starts with `-`. */
export const ROLE_PATTERN = '^(?:\\*|[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*)$';

/** Framework names appear in DNS names (`<task>.<framework>.mesos`) and keep their dots. */
export const FRAMEWORK_NAME_PATTERN = '^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$';

/** IAM user, service-account and group ids. */
export const PRINCIPAL_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9@._-]{0,95}$';

/** JWT key ids: resolved only against the stored keys, never used as a path. */
export const KID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** Overlay network names: a DNS label of at most 13 characters (DC/OS's limit). */
export const NETWORK_NAME_PATTERN = '^[a-z0-9](?:[a-z0-9-]{0,11}[a-z0-9])?$';

/** Characters of a VIP name: a named VIP (`/mygroup/myapp`) or an IP literal. */
export const VIP_NAME_PATTERN = '^[A-Za-z0-9/._:-]{1,128}$';

const HOSTNAME_PATTERN = '^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';

export const AppId = Type.String({ pattern: APP_ID_PATTERN, maxLength: APP_ID_MAX_LENGTH, description: 'Absolute Marathon path id, e.g. /group/web' });
export const AgentId = Type.String({ pattern: NODE_ID_PATTERN, minLength: 1, maxLength: 128 });
export const FrameworkId = Type.String({ pattern: NODE_ID_PATTERN, minLength: 1, maxLength: 128 });
export const TaskId = Type.String({ pattern: NODE_ID_PATTERN, minLength: 1, maxLength: 400 });
const roleName = (options: { default?: string } = {}) => Type.String({ pattern: ROLE_PATTERN, minLength: 1, maxLength: 128, ...options });
export const RoleName = roleName();
export const FrameworkName = Type.String({ pattern: FRAMEWORK_NAME_PATTERN });
export const PrincipalId = Type.String({ pattern: PRINCIPAL_ID_PATTERN });
export const NetworkName = Type.String({ pattern: NETWORK_NAME_PATTERN });
export const DnsLabel = Type.String({ pattern: DNS_LABEL_PATTERN });
export const Hostname = Type.String({ pattern: HOSTNAME_PATTERN, maxLength: 253, description: 'RFC 1123 host name (or IPv4 literal)' });
/** RFC 3339 date-time with a zone, e.g. `2015-09-25T15:13:48.343Z` (Marathon's version format). */
export const Timestamp = Type.String({ format: 'date-time' });
export const Ipv4 = Type.String({ format: 'ipv4' });
export const Ipv6 = Type.String({ format: 'ipv6' });
/** An IPv4 or IPv6 address; the family is checked in `checks.ts` (one pattern, not an anyOf, for clear errors). */
export const IpAddress = Type.String({ minLength: 2, maxLength: 45, pattern: '^[0-9A-Fa-f.:]+$' });
/** `a.b.c.d/len` or `v6addr/len`; arithmetic (host bits zero, ranges) is checked in `checks.ts`. */
export const Cidr = Type.String({ minLength: 4, maxLength: 49, pattern: '^[0-9A-Fa-f.:]+/[0-9]{1,3}$' });
export const PortNumber = Type.Integer({ minimum: 0, maximum: 65535 });
export const NonZeroPort = Type.Integer({ minimum: 1, maximum: 65535 });

const labels = (options: { default?: Record<string, string>; minProperties?: number } = {}) =>
  Type.Record(Type.String({ pattern: '^\\S{1,255}$' }), Type.String({ maxLength: 4096 }), { ...STRICT, ...options });
/** Marathon labels: string to string. */
export const Labels = labels();

/** Marathon port names (`$PORT_<NAME>`, SRV `_<name>._<task>`). */
export const PortName = Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 63 });

const Seconds = (options: { minimum?: number; default?: number; description?: string } = {}) =>
  Type.Integer({ minimum: 0, ...options });

// ---------------------------------------------------------------------------
// Resources (Strata's own shape: units in the names)

export const Resources = Type.Object(
  {
    cpus: Type.Number({ minimum: 0 }),
    memMb: Type.Number({ minimum: 0 }),
    diskMb: Type.Number({ minimum: 0 }),
    gpus: Type.Integer({ minimum: 0 }),
  },
  STRICT,
);
export type Resources = Static<typeof Resources>;

export const PortRange = Type.Object({ begin: NonZeroPort, end: NonZeroPort }, STRICT);
export type PortRange = Static<typeof PortRange>;

// ---------------------------------------------------------------------------
// Agent

export const AGENT_HEALTH = ['healthy', 'unhealthy', 'unreachable'] as const;
export const AGENT_MAINTENANCE = ['none', 'draining', 'drained'] as const;

export const Agent = Type.Object(
  {
    id: AgentId,
    hostname: Hostname,
    /** Where the agent is reached: its IP (also its `*.mesos` A record) and API port. */
    address: Type.Object({ ip: Ipv4, ipv6: Type.Optional(Ipv6), port: NonZeroPort }, STRICT),
    /** Fault domain, matched by the `@region` / `@zone` constraint fields. */
    region: Type.Optional(DnsLabel),
    zone: Type.Optional(DnsLabel),
    /** Agent attributes in the text form constraints compare (scalars as `0.###`, ranges `[b-e]`, sets `{a,b}`). */
    attributes: Type.Record(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' }), Type.String({ maxLength: 1024 }), STRICT),
    /** Total resources the agent offers, including reserved ones. */
    resources: Type.Object(
      {
        cpus: Type.Number({ minimum: 0 }),
        memMb: Type.Number({ minimum: 0 }),
        diskMb: Type.Number({ minimum: 0 }),
        gpus: Type.Integer({ minimum: 0 }),
        ports: Type.Array(PortRange, { description: 'Host port ranges, e.g. [{begin:10000,end:20000}]' }),
      },
      STRICT,
    ),
    /** Static reservations (Mesos `--resources="cpus(ads):8"`): part of `resources` set aside for a role. */
    reservations: Type.Array(Type.Object({ role: RoleName, ...Resources.properties }, STRICT), { default: [] }),
    health: Type.Object(
      {
        status: Type.Enum(AGENT_HEALTH),
        /** Last heartbeat the masters saw. */
        lastSeenAt: Timestamp,
        detail: Type.Optional(Type.String({ maxLength: 1024 })),
      },
      STRICT,
    ),
    /** Maintenance: a draining agent gets no new tasks and its tasks are moved. */
    maintenance: Type.Enum(AGENT_MAINTENANCE, { default: 'none' }),
    registeredAt: Timestamp,
    /** Agent software version. */
    version: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { ...STRICT, description: 'A machine that runs tasks.' },
);
export type Agent = Static<typeof Agent>;

// ---------------------------------------------------------------------------
// Framework and Role

export const Framework = Type.Object(
  {
    id: FrameworkId,
    /** e.g. `marathon`; part of DNS names, so lowercase and DNS-safe. */
    name: FrameworkName,
    roles: Type.Array(RoleName, { minItems: 1, uniqueItems: true, default: ['*'] }),
    principal: Type.Optional(PrincipalId),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    hostname: Type.Optional(Hostname),
    webuiUrl: Type.Optional(Type.String({ format: 'uri', maxLength: 1024 })),
    /** Mesos `FrameworkInfo.failover_timeout`: 0 kills the tasks as soon as the framework disconnects. */
    failoverTimeoutSeconds: Type.Number({ minimum: 0, default: 0 }),
    checkpoint: Type.Boolean({ default: false }),
    /** Mesos capability names, e.g. `PARTITION_AWARE`, `TASK_KILLING_STATE`, `MULTI_ROLE`. */
    capabilities: Type.Array(Type.String({ pattern: '^[A-Z][A-Z0-9_]*$', maxLength: 64 }), { uniqueItems: true, default: [] }),
    active: Type.Boolean(),
    registeredAt: Timestamp,
  },
  { ...STRICT, description: 'A scheduler registered with the cluster (Marathon, Metronome, a service).' },
);
export type Framework = Static<typeof Framework>;

export const Role = Type.Object(
  {
    name: RoleName,
    /** DRF weight: a role's share is divided by it (Mesos default 1.0). */
    weight: Type.Number({ exclusiveMinimum: 0, default: 1 }),
    /** Quota limits (Mesos `UPDATE_QUOTA`): scalar resources only; absent = unlimited. */
    quota: Type.Optional(
      Type.Object(
        {
          cpus: Type.Optional(Type.Number({ minimum: 0 })),
          memMb: Type.Optional(Type.Number({ minimum: 0 })),
          diskMb: Type.Optional(Type.Number({ minimum: 0 })),
          gpus: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        STRICT,
      ),
    ),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { ...STRICT, description: 'A resource role for DRF allocation: weight and quota.' },
);
export type Role = Static<typeof Role>;

// ---------------------------------------------------------------------------
// App (a Marathon app definition as stored)

export const PORT_PROTOCOLS = ['tcp', 'udp', 'udp,tcp'] as const;
export const NETWORK_MODES = ['host', 'container/bridge', 'container'] as const;
export const HEALTH_CHECK_PROTOCOLS = ['HTTP', 'HTTPS', 'TCP', 'MESOS_HTTP', 'MESOS_HTTPS', 'MESOS_TCP', 'COMMAND'] as const;
/** Health checks run by Marathon itself (deprecated upstream); the rest run on the agent. One app cannot mix the two kinds. */
export const MARATHON_HEALTH_CHECK_PROTOCOLS: readonly string[] = ['HTTP', 'HTTPS', 'TCP'];
export const HTTP_HEALTH_CHECK_PROTOCOLS: readonly string[] = ['HTTP', 'HTTPS', 'MESOS_HTTP', 'MESOS_HTTPS'];
export const KILL_SELECTIONS = ['YOUNGEST_FIRST', 'OLDEST_FIRST'] as const;
export const CONTAINER_TYPES = ['DOCKER', 'MESOS'] as const;
export const CONSTRAINT_OPERATORS = ['UNIQUE', 'CLUSTER', 'GROUP_BY', 'LIKE', 'UNLIKE', 'MAX_PER', 'IS'] as const;

export const PortDefinition = Type.Object(
  {
    /** Service port; 0 = assign one from 10000–20000. With `requirePorts`, also the host port. */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 0 }),
    protocol: Type.Enum(PORT_PROTOCOLS, { default: 'tcp' }),
    name: Type.Optional(PortName),
    /** `VIP_<n>: "/name:port"` or `"ip:port"` labels publish a VIP. */
    labels: labels({ default: {} }),
  },
  STRICT,
);
export type PortDefinition = Static<typeof PortDefinition>;

export const PortMapping = Type.Object(
  {
    containerPort: Type.Integer({ minimum: 0, maximum: 65535, default: 0 }),
    /** Absent: no host port. 0: any port from the offer (bridge mode's default). */
    hostPort: Type.Optional(PortNumber),
    servicePort: Type.Integer({ minimum: 0, maximum: 65535, default: 0 }),
    protocol: Type.Enum(PORT_PROTOCOLS, { default: 'tcp' }),
    name: Type.Optional(PortName),
    labels: labels({ default: {} }),
    networkNames: Type.Optional(Type.Array(DnsLabel, { uniqueItems: true })),
  },
  STRICT,
);
export type PortMapping = Static<typeof PortMapping>;

export const DockerSpec = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 1024 }),
    forcePullImage: Type.Boolean({ default: false }),
    privileged: Type.Boolean({ default: false }),
    parameters: Type.Array(Type.Object({ key: Type.String({ minLength: 1 }), value: Type.String() }, STRICT), { default: [] }),
  },
  STRICT,
);
export type DockerSpec = Static<typeof DockerSpec>;

export const SecretVolume = Type.Object(
  {
    /** Relative to the sandbox (`$MESOS_SANDBOX`): plain names, no `..`. */
    containerPath: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$', maxLength: 1024 }),
    secret: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' }),
  },
  STRICT,
);
export type SecretVolume = Static<typeof SecretVolume>;

export const Container = Type.Object(
  {
    /** Marathon's RAML default is DOCKER. */
    type: Type.Enum(CONTAINER_TYPES, { default: 'DOCKER' }),
    /** The image, for both DOCKER and MESOS (UCR) containers. */
    docker: Type.Optional(DockerSpec),
    /** Ports in `container/bridge` and `container` network modes. */
    portMappings: Type.Array(PortMapping, { default: [] }),
    /** File-based secrets (Marathon): the secret named `secret` (an entry of the app's `secrets`) is written to `containerPath`, relative to the sandbox. */
    volumes: Type.Optional(Type.Array(SecretVolume, { maxItems: 64 })),
  },
  STRICT,
);
export type Container = Static<typeof Container>;

export const AppNetwork = Type.Object(
  {
    /** Marathon's default mode for an entry that names none is `container`. */
    mode: Type.Enum(NETWORK_MODES, { default: 'container' }),
    /** Only in `container` mode; absent = the cluster's default network (`dcos`). */
    name: Type.Optional(DnsLabel),
    labels: Type.Optional(Labels),
  },
  STRICT,
);
export type AppNetwork = Static<typeof AppNetwork>;

/** `[field, operator]` or `[field, operator, value]`; the operator rules are checked in `checks.ts`. */
export const Constraint = Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { minItems: 2, maxItems: 3 });
export type Constraint = Static<typeof Constraint>;

export const HealthCheck = Type.Object(
  {
    protocol: Type.Enum(HEALTH_CHECK_PROTOCOLS, { default: 'HTTP' }),
    /** HTTP kinds only; defaults to `/` for them. */
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    /** Index into the app's ports (portDefinitions or portMappings); 0 when neither it nor `port` is given. */
    portIndex: Type.Optional(Type.Integer({ minimum: 0 })),
    port: Type.Optional(NonZeroPort),
    /** COMMAND checks only: run via `sh -c`. */
    command: Type.Optional(Type.Object({ value: Type.String({ minLength: 1 }) }, STRICT)),
    gracePeriodSeconds: Seconds({ default: 300 }),
    intervalSeconds: Seconds({ minimum: 1, default: 60 }),
    timeoutSeconds: Seconds({ minimum: 1, default: 20 }),
    /** 0: Marathon-level checks never kill; Mesos-level checks kill on the first failure. */
    maxConsecutiveFailures: Type.Integer({ minimum: 0, default: 3 }),
    /** Mesos-level checks only. */
    delaySeconds: Seconds({ default: 15 }),
    ignoreHttp1xx: Type.Boolean({ default: false }),
  },
  STRICT,
);
export type HealthCheck = Static<typeof HealthCheck>;

export const ReadinessCheck = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 63, default: 'readinessCheck' }),
    protocol: Type.Enum(['HTTP', 'HTTPS'] as const, { default: 'HTTP' }),
    path: Type.String({ minLength: 1, maxLength: 1024, default: '/' }),
    /** Must name one of the app's ports. */
    portName: Type.String({ minLength: 1, maxLength: 63, default: 'http-api' }),
    intervalSeconds: Seconds({ minimum: 1, default: 30 }),
    /** Must be below `intervalSeconds`. */
    timeoutSeconds: Seconds({ minimum: 1, default: 10 }),
    httpStatusCodesForReady: Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, uniqueItems: true, default: [200] }),
    preserveLastResponse: Type.Boolean({ default: false }),
  },
  STRICT,
);
export type ReadinessCheck = Static<typeof ReadinessCheck>;

const upgradeStrategy = (options: { default?: { minimumHealthCapacity: number; maximumOverCapacity: number } } = {}) =>
  Type.Object(
    {
      minimumHealthCapacity: Type.Number({ minimum: 0, maximum: 1, default: 1 }),
      maximumOverCapacity: Type.Number({ minimum: 0, maximum: 1, default: 1 }),
    },
    { ...STRICT, ...options },
  );
export const UpgradeStrategy = upgradeStrategy();
export type UpgradeStrategy = Static<typeof UpgradeStrategy>;

// No `default` keywords inside the union's branches: Ajv ignores defaults
// there and, in strict mode with `useDefaults` (fastify), refuses the schema.
export const UnreachableEnabled = Type.Object(
  {
    inactiveAfterSeconds: Seconds({ description: 'Marathon default 0' }),
    /** Must be >= `inactiveAfterSeconds`; equal values expunge at once. */
    expungeAfterSeconds: Seconds({ description: 'Marathon default 0' }),
  },
  STRICT,
);
/** `"disabled"`, or when to replace (inactive) and forget (expunge) an unreachable instance. Marathon's code default is `{0, 0}`. */
export const UnreachableStrategy = Type.Union([Type.Literal('disabled'), UnreachableEnabled], {
  default: { inactiveAfterSeconds: 0, expungeAfterSeconds: 0 },
});
export type UnreachableStrategy = Static<typeof UnreachableStrategy>;

export const FetchUri = Type.Object(
  {
    uri: Type.String({ minLength: 1, maxLength: 2048 }),
    extract: Type.Boolean({ default: true }),
    executable: Type.Boolean({ default: false }),
    cache: Type.Boolean({ default: false }),
    destPath: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  STRICT,
);
export type FetchUri = Static<typeof FetchUri>;

const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';
const SECRET_NAME = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';

/** An env value is a string or a reference to an entry of the app's `secrets`. */
export const EnvValue = Type.Union([Type.String({ maxLength: 65536 }), Type.Object({ secret: Type.String({ pattern: SECRET_NAME }) }, STRICT)]);
const env = (options: { default?: Record<string, never> } = {}) =>
  Type.Record(Type.String({ pattern: ENV_NAME, maxLength: 255 }), EnvValue, { ...STRICT, ...options });
const secrets = (options: { default?: Record<string, never> } = {}) =>
  Type.Record(Type.String({ pattern: SECRET_NAME }), Type.Object({ source: Type.String({ minLength: 1, maxLength: 1024 }) }, STRICT), {
    ...STRICT,
    ...options,
  });
export const Env = env();
export const Secrets = secrets();

export const App = Type.Object(
  {
    id: AppId,
    /** Exactly one of `cmd` and `args`, or neither when the container image has an entrypoint. `cmd` runs via `/bin/sh -c`. */
    cmd: Type.Optional(Type.String({ minLength: 1, maxLength: 65536 })),
    args: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    instances: Type.Integer({ minimum: 0, default: 1 }),
    cpus: Type.Number({ minimum: 0, default: 1 }),
    /** MB (Marathon's name and unit). */
    mem: Type.Number({ minimum: 0, default: 128 }),
    /** MB (Marathon's name and unit). */
    disk: Type.Number({ minimum: 0, default: 0 }),
    gpus: Type.Integer({ minimum: 0, default: 0 }),
    env: env({ default: {} }),
    secrets: secrets({ default: {} }),
    labels: labels({ default: {} }),
    container: Type.Optional(Container),
    /** Host-mode ports. Marathon's default is `[{port:0, name:"default"}]` in host mode, `[]` otherwise; `[]` means no ports. */
    portDefinitions: Type.Array(PortDefinition, { default: [{ port: 0, protocol: 'tcp', name: 'default', labels: {} }] }),
    requirePorts: Type.Boolean({ default: false }),
    /** One host network, or one bridge network, or one or more container networks; absent in Marathon = host. */
    networks: Type.Array(AppNetwork, { minItems: 1, default: [{ mode: 'host' }] }),
    constraints: Type.Array(Constraint, { default: [] }),
    healthChecks: Type.Array(HealthCheck, { default: [] }),
    readinessChecks: Type.Array(ReadinessCheck, { maxItems: 1, default: [] }),
    upgradeStrategy: upgradeStrategy({ default: { minimumHealthCapacity: 1, maximumOverCapacity: 1 } }),
    backoffSeconds: Type.Number({ minimum: 0, default: 1 }),
    backoffFactor: Type.Number({ minimum: 1, default: 1.15 }),
    maxLaunchDelaySeconds: Type.Number({ minimum: 0, default: 300 }),
    killSelection: Type.Enum(KILL_SELECTIONS, { default: 'YOUNGEST_FIRST' }),
    unreachableStrategy: UnreachableStrategy,
    /** Time from SIGTERM to SIGKILL; unset = the agent's default. */
    taskKillGracePeriodSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    dependencies: Type.Array(AppId, { uniqueItems: true, default: [] }),
    /** The role the app's resources are allocated to; filled from the cluster's default role (`*`) when absent. */
    role: roleName({ default: '*' }),
    /** Only offers/reservations of these roles are used; absent = the app's role and `*`. */
    acceptedResourceRoles: Type.Optional(Type.Array(RoleName, { minItems: 1, uniqueItems: true })),
    fetch: Type.Array(FetchUri, { default: [] }),
    /** When this definition was written (Marathon's `version`); set by the API on every change. */
    version: Timestamp,
  },
  { ...STRICT, description: 'A Marathon app definition, stored with every default made explicit.' },
);
export type App = Static<typeof App>;

// --- The App as clients send it: Marathon's optional fields and defaults.

const PortDefinitionInput = Type.Object(Type.Partial(PortDefinition).properties, STRICT);
const PortMappingInput = Type.Object(Type.Partial(PortMapping).properties, STRICT);
const DockerSpecInput = Type.Object({ ...Type.Partial(DockerSpec).properties, image: DockerSpec.properties.image }, STRICT);
const ContainerInput = Type.Object(
  {
    type: Type.Optional(Container.properties.type),
    docker: Type.Optional(DockerSpecInput),
    portMappings: Type.Optional(Type.Array(PortMappingInput)),
    volumes: Container.properties.volumes,
  },
  STRICT,
);
const AppNetworkInput = Type.Object(Type.Partial(AppNetwork).properties, STRICT);
const HealthCheckInput = Type.Object(Type.Partial(HealthCheck).properties, STRICT);
const ReadinessCheckInput = Type.Object(Type.Partial(ReadinessCheck).properties, STRICT);
const UpgradeStrategyInput = Type.Object(Type.Partial(UpgradeStrategy).properties, STRICT);
const UnreachableStrategyInput = Type.Union([Type.Literal('disabled'), Type.Object(Type.Partial(UnreachableEnabled).properties, STRICT)]);
const FetchUriInput = Type.Object({ ...Type.Partial(FetchUri).properties, uri: FetchUri.properties.uri }, STRICT);

/**
 * A Marathon app definition as a client sends it (POST /v2/apps): only `id`
 * is required, relative ids are allowed, `version` is assigned by the
 * server. `withAppDefaults` turns it into a stored {@link App}.
 */
export const AppDefinition = Type.Object(
  {
    id: Type.String({ pattern: APP_ID_INPUT_PATTERN, maxLength: APP_ID_MAX_LENGTH }),
    cmd: App.properties.cmd,
    args: App.properties.args,
    user: App.properties.user,
    instances: Type.Optional(App.properties.instances),
    cpus: Type.Optional(App.properties.cpus),
    mem: Type.Optional(App.properties.mem),
    disk: Type.Optional(App.properties.disk),
    gpus: Type.Optional(App.properties.gpus),
    env: Type.Optional(App.properties.env),
    secrets: Type.Optional(App.properties.secrets),
    labels: Type.Optional(App.properties.labels),
    container: Type.Optional(ContainerInput),
    portDefinitions: Type.Optional(Type.Array(PortDefinitionInput)),
    requirePorts: Type.Optional(App.properties.requirePorts),
    networks: Type.Optional(Type.Array(AppNetworkInput, { minItems: 1 })),
    constraints: Type.Optional(App.properties.constraints),
    healthChecks: Type.Optional(Type.Array(HealthCheckInput)),
    readinessChecks: Type.Optional(Type.Array(ReadinessCheckInput, { maxItems: 1 })),
    upgradeStrategy: Type.Optional(UpgradeStrategyInput),
    backoffSeconds: Type.Optional(App.properties.backoffSeconds),
    backoffFactor: Type.Optional(App.properties.backoffFactor),
    maxLaunchDelaySeconds: Type.Optional(App.properties.maxLaunchDelaySeconds),
    killSelection: Type.Optional(App.properties.killSelection),
    unreachableStrategy: Type.Optional(UnreachableStrategyInput),
    taskKillGracePeriodSeconds: App.properties.taskKillGracePeriodSeconds,
    /** App or group ids; relative ones (`db`, `../db`) are resolved against the app's group. */
    dependencies: Type.Optional(Type.Array(Type.String({ pattern: PATH_INPUT_PATTERN, maxLength: APP_ID_MAX_LENGTH }), { uniqueItems: true })),
    role: Type.Optional(RoleName),
    acceptedResourceRoles: App.properties.acceptedResourceRoles,
    fetch: Type.Optional(Type.Array(FetchUriInput)),
  },
  { ...STRICT, description: 'A Marathon app definition as a client sends it.' },
);
export type AppDefinition = Static<typeof AppDefinition>;

// ---------------------------------------------------------------------------
// Task

/** Mesos task states (`mesos.proto`), without the `TASK_` prefix Marathon's API shows. */
export const TASK_STATES = [
  'STAGING',
  'STARTING',
  'RUNNING',
  'KILLING',
  'FINISHED',
  'FAILED',
  'KILLED',
  'ERROR',
  'LOST',
  'DROPPED',
  'UNREACHABLE',
  'GONE',
  'GONE_BY_OPERATOR',
  'UNKNOWN',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** States a task never leaves (Mesos `isTerminalState`; LOST is terminal there, though a non-partition-aware task reported LOST may come back). */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST', 'DROPPED', 'GONE', 'GONE_BY_OPERATOR']);

export const HealthCheckResult = Type.Object(
  {
    alive: Type.Boolean(),
    consecutiveFailures: Type.Integer({ minimum: 0 }),
    firstSuccess: Type.Optional(Timestamp),
    lastSuccess: Type.Optional(Timestamp),
    lastFailure: Type.Optional(Timestamp),
    lastFailureCause: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  STRICT,
);
export type HealthCheckResult = Static<typeof HealthCheckResult>;

/**
 * One readiness check's verdict for a task (Marathon's ReadinessCheckResult,
 * shown per task and in a deployment's `currentActions`). `lastResponse` is
 * kept only with `preserveLastResponse`.
 */
export const ReadinessCheckResult = Type.Object(
  {
    taskId: TaskId,
    name: Type.String({ minLength: 1, maxLength: 63 }),
    ready: Type.Boolean(),
    lastResponse: Type.Optional(Type.Object({ status: Type.Integer({ minimum: 100, maximum: 599 }), contentType: Type.String({ maxLength: 256 }), body: Type.String({ maxLength: 65536 }) }, STRICT)),
  },
  STRICT,
);
export type ReadinessCheckResult = Static<typeof ReadinessCheckResult>;

export const TaskIpAddress = Type.Object({ ipAddress: IpAddress, protocol: Type.Enum(['IPv4', 'IPv6'] as const) }, STRICT);
export type TaskIpAddress = Static<typeof TaskIpAddress>;

export const Task = Type.Object(
  {
    id: TaskId,
    appId: AppId,
    agentId: AgentId,
    /** The agent's host name (Marathon `host`). */
    host: Hostname,
    state: Type.Enum(TASK_STATES),
    /** When the task was launched (reached STAGING). */
    stagedAt: Timestamp,
    /** When it first reached RUNNING. */
    startedAt: Type.Optional(Timestamp),
    /** When `state` last changed. */
    stateChangedAt: Timestamp,
    /** Host ports allocated to the task, in the order of the app's ports. */
    ports: Type.Array(NonZeroPort, { default: [] }),
    servicePorts: Type.Array(PortNumber, { default: [] }),
    /** Container IPs (container networks); empty in host mode. */
    ipAddresses: Type.Array(TaskIpAddress, { default: [] }),
    /** One entry per app health check, in the app's order. */
    healthCheckResults: Type.Array(HealthCheckResult, { default: [] }),
    /** The app's readiness checks' verdicts (run by the agent until the task is ready); absent before the first. */
    readinessCheckResults: Type.Optional(Type.Array(ReadinessCheckResult, { maxItems: 8 })),
    /** The app version the task runs. */
    version: Timestamp,
    /** What the task holds on its agent (the scheduler's accounting). */
    resources: Resources,
    role: roleName({ default: '*' }),
    /** Last status message and Mesos reason, if any. */
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    reason: Type.Optional(Type.String({ maxLength: 128 })),
    /** Killed with Marathon's `wipe=true`: the record is expunged as soon as the task is terminal (not kept for the retention). */
    wipe: Type.Optional(Type.Boolean()),
  },
  { ...STRICT, description: 'One running (or finished) instance of an app.' },
);
export type Task = Static<typeof Task>;

// ---------------------------------------------------------------------------
// VIP

/** DC/OS defaults for named-VIP addresses (configurable per cluster). */
export const VIP_IPV4_RANGE = '11.0.0.0/8';
export const VIP_IPV6_RANGE = 'fd01:c::/64';

export const VipPort = Type.Object({ port: NonZeroPort, protocol: Type.Enum(['tcp', 'udp'] as const) }, STRICT);
export type VipPort = Static<typeof VipPort>;

export const Vip = Type.Object(
  {
    /** The framework whose tasks publish it (`marathon`); named VIPs are scoped by it (`<name>.<fw>.l4lb…`). */
    framework: FrameworkName,
    /** The label's name part: `/mygroup/myapp` for a named VIP, the IP literal for an IP VIP. */
    name: Type.String({ pattern: VIP_NAME_PATTERN }),
    kind: Type.Enum(['named', 'ip'] as const),
    /** Allocated addresses of a named VIP (from {@link VIP_IPV4_RANGE} / {@link VIP_IPV6_RANGE}); absent while pending. For an IP VIP, the address itself. */
    ipv4: Type.Optional(Ipv4),
    ipv6: Type.Optional(Ipv6),
    ports: Type.Array(VipPort, { minItems: 1 }),
  },
  { ...STRICT, description: 'A virtual IP published by port labels (VIP_n), with its stable addresses.' },
);
export type Vip = Static<typeof Vip>;

// ---------------------------------------------------------------------------
// Network (overlay)

/** DC/OS overlay defaults (`gen/calc.py`). */
export const OVERLAY_DEFAULTS = {
  vtepSubnet: '44.128.0.0/20',
  vtepSubnet6: 'fd01:a::/64',
  vtepMacOui: '70:B3:D5',
  vxlanPort: 64000,
  vtepMtu: 1500,
  containerMtu: 1420,
  vni: 1024,
} as const;

export const Network = Type.Object(
  {
    name: NetworkName,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** IPv4 pool, split into one `/prefix` subnet per agent. At least one of `subnet`/`subnet6`. */
    subnet: Type.Optional(Cidr),
    prefix: Type.Integer({ minimum: 1, maximum: 30, default: 24 }),
    subnet6: Type.Optional(Cidr),
    prefix6: Type.Integer({ minimum: 1, maximum: 126, default: 80 }),
    /** Container MTU (VXLAN's 50 bytes below the VTEP's 1500). */
    mtu: Type.Integer({ minimum: 576, maximum: 9000, default: OVERLAY_DEFAULTS.containerMtu }),
    /** VXLAN network identifier (24 bits). */
    vni: Type.Integer({ minimum: 1, maximum: 16777215, default: OVERLAY_DEFAULTS.vni }),
    labels: labels({ default: {} }),
  },
  { ...STRICT, description: 'An overlay network tasks can join (networks[].name).' },
);
export type Network = Static<typeof Network>;

/** The networks a DC/OS cluster starts with. */
export const DEFAULT_NETWORKS: readonly Network[] = [
  { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24, prefix6: 80, mtu: 1420, vni: 1024, labels: {} },
  { name: 'dcos6', subnet6: 'fd01:b::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 1025, labels: {} },
];

// ---------------------------------------------------------------------------
// Overlay IPAM (issue 6.2)

/** The pool a claim is taken from: a network's name, or the VTEP range (`_vtep`, which no network name can be). */
export const VTEP_POOL = '_vtep';
export const OVERLAY_POOL_PATTERN = `^(?:_vtep|${NETWORK_NAME_PATTERN.slice(1, -1)})$`;
export const MacAddress = Type.String({ pattern: '^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$', description: 'lower case, e.g. 70:b3:d5:80:00:01' });

/**
 * One agent's overlay addressing: its VXLAN endpoint (VTEP address and MAC,
 * the same on every network's VXLAN device) and its subnet of each network.
 * Every address here is also held by an {@link OverlayClaim}, created in the
 * same transaction, which is what makes an allocation unique.
 */
export const OverlayLease = Type.Object(
  {
    agentId: AgentId,
    /** The agent's underlay address (where other agents send its VXLAN packets). */
    underlayIp: Ipv4,
    vtepIp: Ipv4,
    vtepMac: MacAddress,
    /** Per network name: the agent's subnet(s) of it. */
    networks: Type.Record(Type.String({ pattern: NETWORK_NAME_PATTERN }), Type.Object({ subnet: Type.Optional(Cidr), subnet6: Type.Optional(Cidr) }, STRICT), STRICT),
    updatedAt: Timestamp,
  },
  { ...STRICT, description: 'An agent\'s overlay lease: VTEP address and MAC, and a subnet per network.' },
);
export type OverlayLease = Static<typeof OverlayLease>;

/** A taken address or subnet of a pool (create-only: two agents can never hold the same one). */
export const OverlayClaim = Type.Object(
  {
    pool: Type.String({ pattern: OVERLAY_POOL_PATTERN }),
    /** The subnet (`9.0.3.0/24`) or, for the VTEP pool, the address as a /32. */
    cidr: Cidr,
    agentId: AgentId,
  },
  { ...STRICT, description: 'One subnet or VTEP address taken by an agent.' },
);
export type OverlayClaim = Static<typeof OverlayClaim>;

export const OVERLAY_ADDRESS_STATES = ['assigned', 'released'] as const;

/**
 * One container IP. `assigned` while a task may hold it; `released` (with
 * `releasedAt`) once its task ended, and only reusable after the quarantine.
 */
export const OverlayAddress = Type.Object(
  {
    network: NetworkName,
    ip: IpAddress,
    agentId: AgentId,
    taskId: TaskId,
    state: Type.Enum(OVERLAY_ADDRESS_STATES),
    assignedAt: Timestamp,
    releasedAt: Type.Optional(Timestamp),
    /** `cni`: held by a container the CNI plugin attached (`taskId` = `cni.<container id>`), released by its DEL, not when a task ends. */
    holder: Type.Optional(Type.Enum(['task', 'cni'] as const)),
  },
  { ...STRICT, description: 'A container IP on an overlay network and the task holding it.' },
);
export type OverlayAddress = Static<typeof OverlayAddress>;

// ---------------------------------------------------------------------------
// Policy

export const POLICY_ACTIONS = ['allow', 'deny'] as const;

/** Exactly one of the fields (checked in `checks.ts`): one peer set. */
export const PolicyPeer = Type.Object(
  {
    /** Every task on this overlay network. */
    network: Type.Optional(NetworkName),
    /** Every address in this subnet (`0.0.0.0/0` and `::/0` for anything). */
    cidr: Type.Optional(Cidr),
    /** Every task of this app, or of every app under this group when it ends in `/*`. */
    appId: Type.Optional(Type.String({ pattern: `^(?:${APP_ID_PATTERN.slice(1, -1)})(?:/\\*)?$|^/\\*$`, maxLength: APP_ID_MAX_LENGTH + 2 })),
    /** Every task of an app carrying all these labels. */
    appLabels: Type.Optional(labels({ minProperties: 1 })),
  },
  STRICT,
);
export type PolicyPeer = Static<typeof PolicyPeer>;

export const PolicyPorts = Type.Object(
  {
    protocol: Type.Enum(['tcp', 'udp', 'icmp', 'any'] as const),
    /** First port (tcp/udp only); absent = every port. */
    port: Type.Optional(NonZeroPort),
    /** Last port of a range; needs `port`, at least `port`. */
    endPort: Type.Optional(NonZeroPort),
  },
  STRICT,
);
export type PolicyPorts = Static<typeof PolicyPorts>;

export const PolicyRule = Type.Object(
  {
    action: Type.Enum(POLICY_ACTIONS),
    from: Type.Array(PolicyPeer, { minItems: 1 }),
    /** Empty = every protocol and port. */
    ports: Type.Array(PolicyPorts, { default: [] }),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  STRICT,
);
export type PolicyRule = Static<typeof PolicyRule>;

/**
 * Traffic policy for the destinations `to` selects. A connection to a
 * selected destination is checked against `rules` in order; the first rule
 * whose `from` and `ports` match decides; if none matches, `defaultAction`
 * does. When several policies select one destination, the connection must
 * be allowed by every one of them (deny wins). Destinations no policy
 * selects are not isolated (DC/OS's default).
 */
export const Policy = Type.Object(
  {
    name: DnsLabel,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    to: Type.Array(PolicyPeer, { minItems: 1 }),
    defaultAction: Type.Enum(POLICY_ACTIONS, { default: 'deny' }),
    rules: Type.Array(PolicyRule, { default: [] }),
  },
  { ...STRICT, description: 'Allow/deny rules between networks, subnets and label-selected apps.' },
);
export type Policy = Static<typeof Policy>;

// ---------------------------------------------------------------------------
// Principals and groups (IAM)

export const ACTIONS = ['create', 'read', 'update', 'delete', 'full'] as const;
export type Action = (typeof ACTIONS)[number];

/** A DC/OS resource id, e.g. `dcos:superuser`, `dcos:service:marathon:marathon:services:/dev`. */
export const RID_PATTERN = '^[a-z][a-z0-9_.-]*(?::[^\\s:]+)+$';

export const Permission = Type.Object(
  {
    rid: Type.String({ pattern: RID_PATTERN, maxLength: 512 }),
    /** `full` means every action. */
    actions: Type.Array(Type.Enum(ACTIONS), { minItems: 1, uniqueItems: true }),
  },
  STRICT,
);
export type Permission = Static<typeof Permission>;

/** A PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`. */
export const PasswordHash = Type.String({ pattern: '^\\$[a-z0-9-]{1,32}(?:\\$[A-Za-z0-9+/=.,-]+)+$', maxLength: 512 });
/** A PEM `PUBLIC KEY` (SPKI), as DC/OS service accounts are created with. */
export const PublicKeyPem = Type.String({
  pattern: '^-----BEGIN PUBLIC KEY-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END PUBLIC KEY-----\\r?\\n?$',
  maxLength: 16384,
});

// Principal is a union: no `default` keywords inside its branches (Ajv
// ignores them there and refuses them under fastify's `useDefaults`).
const principalCommon = {
  uid: PrincipalId,
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  /** Groups this principal belongs to; it holds their permissions too (no nesting). Absent = none. */
  groups: Type.Optional(Type.Array(PrincipalId, { uniqueItems: true })),
  permissions: Type.Array(Permission, { description: 'usually [] at creation' }),
  /** A disabled principal cannot log in and is granted nothing. Absent = false (security/iam.ts writes it only when set). */
  disabled: Type.Optional(Type.Boolean()),
  /**
   * Tokens issued (`iat`) before this time (epoch seconds) are refused: set
   * when the principal is disabled, re-created, or has its tokens revoked.
   * Absent = every unexpired token is good.
   */
  tokensValidFromSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
};

/** The external identity provider kinds (security/idp). */
export const IDP_TYPES = ['ldap', 'oidc', 'saml'] as const;
export type IdpType = (typeof IDP_TYPES)[number];
/** A provider's id within its type (LDAP has one: `default`). */
export const IDP_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** Which external provider a user or group comes from, and (OIDC, SAML, LDAP) its stable id there. */
export const ProviderLink = Type.Object(
  {
    type: Type.Enum(IDP_TYPES),
    id: Type.String({ pattern: IDP_ID_PATTERN }),
    /** OIDC: the `sub` of the issuer; SAML: the NameID; LDAP: the entry's DN. */
    subject: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  },
  STRICT,
);
export type ProviderLink = Static<typeof ProviderLink>;

export const UserPrincipal = Type.Object(
  {
    kind: Type.Literal('user'),
    ...principalCommon,
    /** Local users log in with a password; users from an external provider have none. */
    passwordHash: Type.Optional(PasswordHash),
    /** Set for users of an external provider: they log in there (LDAP: through /auth/login, checked by a bind). */
    provider: Type.Optional(ProviderLink),
  },
  STRICT,
);
export const ServicePrincipal = Type.Object(
  {
    kind: Type.Literal('service'),
    ...principalCommon,
    /** Verifies the service's RS256/ES256 login tokens. */
    publicKey: PublicKeyPem,
  },
  STRICT,
);
/** A user or service account (DC/OS keeps both under `/users`). */
export const Principal = Type.Union([UserPrincipal, ServicePrincipal], { description: 'An IAM user or service account.' });
export type UserPrincipal = Static<typeof UserPrincipal>;
export type ServicePrincipal = Static<typeof ServicePrincipal>;
export type Principal = Static<typeof Principal>;

export const Group = Type.Object(
  {
    gid: PrincipalId,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    permissions: Type.Array(Permission, { default: [] }),
    /** Set for groups imported from an external provider (LDAP). */
    provider: Type.Optional(ProviderLink),
  },
  { ...STRICT, description: 'An IAM group: its permissions apply to every member.' },
);
export type Group = Static<typeof Group>;

/** A resource id (`dcos:service:marathon:marathon:services:/dev`). */
export const Rid = Type.String({ pattern: RID_PATTERN, maxLength: 512 });

export const Acl = Type.Object(
  {
    rid: Rid,
    description: Type.String({ maxLength: 1024 }),
  },
  { ...STRICT, description: 'A DC/OS ACL: a resource that permissions may be granted on (the grants live on principals and groups).' },
);
export type Acl = Static<typeof Acl>;

export const RevokedToken = Type.Object(
  {
    /** The revoked auth token's `jti`. */
    jti: Type.String({ pattern: KID_PATTERN }),
    uid: PrincipalId,
    /** The token's `exp`: after it the record may be swept. */
    expiresAt: Timestamp,
  },
  { ...STRICT, description: 'An auth token revoked before it expired (logout).' },
);
export type RevokedToken = Static<typeof RevokedToken>;

export const UsedLoginToken = Type.Object(
  {
    /** SHA-256 (hex) of the login token's decoded header and payload. */
    digest: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    uid: PrincipalId,
    /** The login token's `exp`: after it the record may be swept. */
    expiresAt: Timestamp,
  },
  { ...STRICT, description: 'A service login token already exchanged for an auth token (login tokens are single use).' },
);
export type UsedLoginToken = Static<typeof UsedLoginToken>;

// ---------------------------------------------------------------------------
// External identity providers (security/idp)

const PemCertificates = Type.String({ pattern: '-----BEGIN CERTIFICATE-----', maxLength: 65536, description: 'PEM certificates to trust (the provider\'s CA)' });
const LdapSearch = Type.Object(
  {
    'search-base': Type.String({ minLength: 1, maxLength: 1024 }),
    /** With `%(username)s` (users) or `%(groupname)s` (groups), filled in escaped (RFC 4515). */
    'search-filter-template': Type.String({ minLength: 3, maxLength: 1024, pattern: '^\\(.*\\)$' }),
  },
  STRICT,
);

/** DC/OS's LDAPConfiguration (kebab-case names as in the DC/OS IAM API). */
export const LdapConfig = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:\\[\\]-]+$' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Upgrade the plain connection with StartTLS before any bind; refuse to go on without it. */
    'enforce-starttls': Type.Boolean(),
    /** Connect with TLS from the start (ldaps). */
    'use-ldaps': Type.Boolean(),
    /** Direct bind: the user's DN, e.g. `uid=%(username)s,ou=people,dc=example,dc=com` (the name escaped per RFC 4514). */
    dntemplate: Type.Optional(Type.String({ minLength: 3, maxLength: 1024, pattern: '%\\(username\\)s' })),
    /** Search bind: the account that looks users up. */
    'lookup-dn': Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    'lookup-password': Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    'user-search': Type.Optional(LdapSearch),
    'group-search': Type.Optional(LdapSearch),
    /** PEM CA certificates that sign the server's certificate (else the system's). */
    'ca-certs': Type.Optional(PemCertificates),
  },
  STRICT,
);
export type LdapConfig = Static<typeof LdapConfig>;

/** DC/OS's OIDCProviderConfig, with Strata's `uid_claim` and `scopes`. */
export const OidcProviderConfig = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    issuer: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 }),
    /** The cluster's URL as the browser reaches it; the redirect URI is `<base_url>/acs/api/v1/auth/oidc/providers/<id>/callback`. */
    base_url: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 }),
    client_id: Type.String({ minLength: 1, maxLength: 1024 }),
    client_secret: Type.String({ minLength: 1, maxLength: 4096 }),
    verify_server_certificate: Type.Optional(Type.Boolean()),
    ca_certs: Type.Optional(PemCertificates),
    /** The ID token claim that names the Strata uid on first login (default `email`). */
    uid_claim: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    scopes: Type.Optional(Type.Array(Type.String({ pattern: '^[!#-\\[\\]-~]+$', maxLength: 128 }), { maxItems: 32 })),
  },
  STRICT,
);
export type OidcProviderConfig = Static<typeof OidcProviderConfig>;

/** DC/OS's SAML provider config, with Strata's `uid_attribute`. */
export const SamlProviderConfig = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** The IdP's metadata XML (entity id, SSO URL, signing certificate). */
    idp_metadata: Type.String({ minLength: 1, maxLength: 262144 }),
    /** The cluster's URL as the browser reaches it (SP entity id and ACS URL derive from it). */
    sp_base_url: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 }),
    /** The attribute naming the Strata uid (default: the NameID). */
    uid_attribute: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  STRICT,
);
export type SamlProviderConfig = Static<typeof SamlProviderConfig>;

export const IdentityProvider = Type.Union(
  [
    Type.Object({ type: Type.Literal('ldap'), id: Type.String({ pattern: IDP_ID_PATTERN }), config: LdapConfig }, STRICT),
    Type.Object({ type: Type.Literal('oidc'), id: Type.String({ pattern: IDP_ID_PATTERN }), config: OidcProviderConfig }, STRICT),
    Type.Object({ type: Type.Literal('saml'), id: Type.String({ pattern: IDP_ID_PATTERN }), config: SamlProviderConfig }, STRICT),
  ],
  { description: 'An external identity provider: the LDAP directory, an OIDC or a SAML provider.' },
);
export type IdentityProvider = Static<typeof IdentityProvider>;

export const LOGIN_FLOW_KINDS = ['oidc', 'saml', 'handoff'] as const;

export const LoginFlow = Type.Object(
  {
    /** 32 hex digits: the OIDC `state`, the SAML AuthnRequest ID (after `_`), or a hand-off code. */
    id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    kind: Type.Enum(LOGIN_FLOW_KINDS),
    /** `<type>.<id>` of the provider. */
    provider: Type.String({ pattern: '^(?:ldap|oidc|saml)\\.[A-Za-z0-9_-]{1,64}$' }),
    expiresAt: Timestamp,
    /** Where the browser goes after the login (a path on the cluster, or a loopback URL for the CLI). */
    target: Type.Optional(Type.String({ maxLength: 2048 })),
    nonce: Type.Optional(Type.String({ maxLength: 256 })),
    codeVerifier: Type.Optional(Type.String({ maxLength: 256 })),
    /** A hand-off: the auth token the CLI exchanges its code for, once. */
    uid: Type.Optional(PrincipalId),
    token: Type.Optional(Type.String({ maxLength: 16384 })),
  },
  { ...STRICT, description: 'A browser login in progress at an external provider (single use, swept after expiresAt).' },
);
export type LoginFlow = Static<typeof LoginFlow>;

// ---------------------------------------------------------------------------
// Cluster CA

const CertificatePem = Type.String({ pattern: '^-----BEGIN CERTIFICATE-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END CERTIFICATE-----\\r?\\n?$', maxLength: 16384 });
const PrivateKeyPem = Type.String({ pattern: '^-----BEGIN PRIVATE KEY-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END PRIVATE KEY-----\\r?\\n?$', maxLength: 16384 });
const EncryptedPrivateKeyPem = Type.String({ pattern: '^-----BEGIN ENCRYPTED PRIVATE KEY-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END ENCRYPTED PRIVATE KEY-----\\r?\\n?$', maxLength: 16384 });
/** A certificate serial number, lowercase hex without leading zero bytes' ambiguity (always 32 digits). */
export const SERIAL_PATTERN = '^[0-9a-f]{32}$';

export const CertificateAuthority = Type.Object(
  {
    id: Type.String({ pattern: KID_PATTERN }),
    /** SPIFFE trust domain of every certificate this CA issues. */
    trustDomain: Type.String({ pattern: '^[a-z0-9](?:[a-z0-9.-]{0,253}[a-z0-9])?$' }),
    createdAt: Timestamp,
    rootCertificatePem: CertificatePem,
    /**
     * The root key, encrypted (PKCS#8, AES-256 under a passphrase kept outside
     * the store). Never needed to sign leaves; absent once moved offline.
     */
    rootKeyEncryptedPem: Type.Optional(EncryptedPrivateKeyPem),
    intermediateCertificatePem: CertificatePem,
    /** Signs leaf certificates and CRLs. */
    intermediateKeyPem: PrivateKeyPem,
    /**
     * The root's CRL (signed once at creation, valid as long as the
     * intermediate): verifiers that check every level (Node's `crl` option
     * does) need it, and the root key is not at hand to sign it later.
     */
    rootCrlPem: Type.String({ pattern: '^-----BEGIN X509 CRL-----\\r?\\n[A-Za-z0-9+/=\\r\\n]+-----END X509 CRL-----\\r?\\n?$', maxLength: 65536 }),
  },
  { ...STRICT, description: 'The cluster CA: a root (key offline-able) and the intermediate that signs.' },
);
export type CertificateAuthority = Static<typeof CertificateAuthority>;

export const REVOCATION_REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;

export const IssuedCertificate = Type.Object(
  {
    serial: Type.String({ pattern: SERIAL_PATTERN }),
    /** The CA record that issued it. */
    authorityId: Type.String({ pattern: KID_PATTERN }),
    uid: PrincipalId,
    /** The one URI SAN. */
    spiffeId: Type.String({ pattern: '^spiffe://[^\\s]+$', maxLength: 2048 }),
    notBefore: Timestamp,
    notAfter: Timestamp,
    revokedAt: Type.Optional(Timestamp),
    revocationReason: Type.Optional(Type.Enum(REVOCATION_REASONS)),
  },
  { ...STRICT, description: 'A leaf certificate the cluster CA issued (kept until it expires, for revocation and the CRL).' },
);
export type IssuedCertificate = Static<typeof IssuedCertificate>;

// ---------------------------------------------------------------------------
// Secrets (security/secrets/)

/** A secret's path in its store (`default`): `/`-separated names of letters, digits, `_ . -` (not starting with `.` or `-`), no leading `/`. */
export const SECRET_PATH_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}){0,15}$';
/** base64 of `iv (12 bytes) || ciphertext || tag (16 bytes)` (AES-256-GCM). */
const SealedBytes = Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$', minLength: 40, maxLength: 1_500_000 });

export const StoredSecret = Type.Object(
  {
    path: Type.String({ pattern: SECRET_PATH_PATTERN, maxLength: 256 }),
    /** The version of the key-encryption key (KEK, kept outside the store) that wraps `dataKey`. */
    kekVersion: Type.Integer({ minimum: 1 }),
    /** The secret's own data key (AES-256), wrapped by the KEK; additional data binds it to `path` and `kekVersion`. */
    dataKey: SealedBytes,
    /** The value, encrypted under the data key; additional data binds it to `path`. */
    value: SealedBytes,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Who wrote the value last (uid). */
    author: Type.Optional(Type.String({ maxLength: 96 })),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { ...STRICT, description: 'A secret (DC/OS /secrets/v1): only ciphertext, never the value in clear.' },
);
export type StoredSecret = Static<typeof StoredSecret>;

// ---------------------------------------------------------------------------
// Cluster-level records

export const LeaderInfo = Type.Object(
  {
    /** The leading master's id (`master.id` in the config, else a UUID per start). */
    id: Type.String({ pattern: NODE_ID_PATTERN, minLength: 1, maxLength: 128 }),
    /** Base URL of its API, e.g. `https://10.0.0.1:443`. */
    apiUrl: Type.String({ format: 'uri', pattern: '^https?://', maxLength: 512 }),
    electedAt: Timestamp,
    /**
     * The fencing token: the index of the write that made this master leader.
     * The authoritative value is the leader key's `createIndex` (see
     * `store/election.ts`), which the campaign cannot know before its write;
     * when present here it must equal it.
     */
    fencingToken: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { ...STRICT, description: 'Which master leads, where its API is, and its fencing token (the shape control-plane/master.ts publishes).' },
);
export type LeaderInfo = Static<typeof LeaderInfo>;

export const SIGNING_ALGORITHMS = ['ES256', 'RS256'] as const;
const B64URL = Type.String({ pattern: '^[A-Za-z0-9_-]+$', maxLength: 2048 });

/** A JSON Web Key (RFC 7517) as jose's `exportJWK` writes it; members by key type. */
export const Jwk = Type.Object(
  {
    kty: Type.Enum(['RSA', 'EC', 'OKP'] as const),
    kid: Type.Optional(Type.String({ pattern: KID_PATTERN })),
    alg: Type.Optional(Type.Enum(SIGNING_ALGORITHMS)),
    use: Type.Optional(Type.Literal('sig')),
    key_ops: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { uniqueItems: true })),
    crv: Type.Optional(Type.Enum(['P-256', 'P-384', 'P-521', 'Ed25519'] as const)),
    x: Type.Optional(B64URL),
    y: Type.Optional(B64URL),
    n: Type.Optional(B64URL),
    e: Type.Optional(B64URL),
    d: Type.Optional(B64URL),
    p: Type.Optional(B64URL),
    q: Type.Optional(B64URL),
    dp: Type.Optional(B64URL),
    dq: Type.Optional(B64URL),
    qi: Type.Optional(B64URL),
  },
  STRICT,
);
export type Jwk = Static<typeof Jwk>;

export const SigningKey = Type.Object(
  {
    kid: Type.String({ pattern: KID_PATTERN }),
    alg: Type.Enum(SIGNING_ALGORITHMS),
    privateJwk: Jwk,
    /** Served at `/auth/jwks`; must hold no private members. */
    publicJwk: Jwk,
    createdAt: Timestamp,
    /** After this the key no longer signs; it still verifies tokens it signed until they expire. */
    notAfter: Timestamp,
  },
  { ...STRICT, description: 'A JWT signing key kept in the store.' },
);
export type SigningKey = Static<typeof SigningKey>;

// ---------------------------------------------------------------------------
// Deployments and app versions (Marathon /v2/deployments, /v2/apps/{id}/versions)

/**
 * An app version as the API writes it (`new Date().toISOString()`, Marathon's
 * format): UTC with a `Z`. App versions are part of ids and keys, so only
 * this one spelling is allowed there.
 */
export const VERSION_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]{1,9})?Z$';
export const AppVersionTimestamp = Type.String({ pattern: VERSION_PATTERN, format: 'date-time', description: 'e.g. 2015-09-25T15:13:48.343Z' });

/** Marathon's deployment actions (`DeploymentAction` in `DeploymentPlan.scala`). */
export const DEPLOYMENT_ACTIONS = ['StartApplication', 'StopApplication', 'ScaleApplication', 'RestartApplication', 'ResolveArtifacts'] as const;
export type DeploymentActionName = (typeof DEPLOYMENT_ACTIONS)[number];
/** Strata's own deployment states; only `pending` exists until the deployment controller runs them. */
export const DEPLOYMENT_STATES = ['pending', 'running', 'succeeded', 'failed'] as const;

export const DeploymentId = Type.String({ pattern: NODE_ID_PATTERN, minLength: 1, maxLength: 128 });

export const DeploymentAction = Type.Object({ action: Type.Enum(DEPLOYMENT_ACTIONS), app: AppId }, STRICT);
export type DeploymentAction = Static<typeof DeploymentAction>;

export const DeploymentStep = Type.Object({ actions: Type.Array(DeploymentAction, { minItems: 1 }) }, STRICT);
export type DeploymentStep = Static<typeof DeploymentStep>;

export const CurrentDeploymentAction = Type.Object(
  { action: Type.Enum(DEPLOYMENT_ACTIONS), app: AppId, readinessCheckResults: Type.Array(ReadinessCheckResult, { default: [] }) },
  STRICT,
);

/**
 * Why a deployment waits (Strata, beyond Marathon): one entry per app and
 * cause, from the deployment controller's last round.
 * - `no-capacity`: no placeable agent has room (or no agent at all, or none
 *   with the app's accepted roles); `quota`: the role's quota is full;
 * - `constraint-unmet`: every agent fails one of the app's constraints;
 * - `tasks-starting`: new tasks are launched but not yet RUNNING;
 * - `health-failing` / `readiness-failing`: new tasks run but are not
 *   healthy / not ready yet;
 * - `waiting-for-kill`: tasks are being killed (old or surplus ones);
 * - `backoff`: launches are delayed after failures;
 * - `dependency-not-ready`: the app is in a later step, waiting for the
 *   apps of the current step (its dependencies).
 */
export const WAIT_REASONS = ['no-capacity', 'quota', 'constraint-unmet', 'tasks-starting', 'health-failing', 'readiness-failing', 'waiting-for-kill', 'backoff', 'dependency-not-ready'] as const;
export type WaitReasonKind = (typeof WAIT_REASONS)[number];

export const WaitReason = Type.Object(
  {
    app: AppId,
    reason: Type.Enum(WAIT_REASONS),
    /** What exactly, for people: `2 of 3 instances fit on no agent: hostname:UNIQUE turned away 2 agents`. */
    message: Type.String({ maxLength: 4096 }),
    /** Instances concerned, where that is a count. */
    instances: Type.Optional(Type.Integer({ minimum: 0 })),
    /** When the controller first saw this reason for this app (kept while it lasts). */
    since: Timestamp,
  },
  STRICT,
);
export type WaitReason = Static<typeof WaitReason>;

/** What a rollback restores for one app: its version before the deployment, absent if the app did not exist. */
export const DeploymentOrigin = Type.Object({ app: AppId, version: Type.Optional(AppVersionTimestamp) }, STRICT);
export type DeploymentOrigin = Static<typeof DeploymentOrigin>;

/**
 * A deployment in Marathon's JSON (`GET /v2/deployments`): the steps that
 * take the affected apps from their previous versions to the stored ones.
 * Each affected app is locked while its deployment exists. Strata adds
 * `state`, `createdAt` and `previous` (what a rollback restores).
 */
export const Deployment = Type.Object(
  {
    id: DeploymentId,
    /** The version the deployment deploys (the apps' new `version`). */
    version: Timestamp,
    affectedApps: Type.Array(AppId, { uniqueItems: true }),
    affectedPods: Type.Array(AppId, { uniqueItems: true, default: [] }),
    steps: Type.Array(DeploymentStep),
    /** The actions of the running step; empty while nothing runs. */
    currentActions: Type.Array(CurrentDeploymentAction, { default: [] }),
    /** 1-based index of the running step; 0 before the first step starts. */
    currentStep: Type.Integer({ minimum: 0 }),
    totalSteps: Type.Integer({ minimum: 0 }),
    state: Type.Enum(DEPLOYMENT_STATES, { default: 'pending' }),
    createdAt: Timestamp,
    /** Each affected app's version before this deployment. */
    previous: Type.Array(DeploymentOrigin, { default: [] }),
    /** Why the deployment waits now (Strata; empty or absent when it does not). */
    waitReasons: Type.Optional(Type.Array(WaitReason)),
    /** After this time an unfinished deployment is marked failed (Strata; `?deadlineSeconds=` on the write). */
    deadline: Type.Optional(Timestamp),
    /** Roll back automatically when the deadline passes (`?rollbackOnFailure=true`). */
    rollbackOnFailure: Type.Optional(Type.Boolean()),
    /** When and why the deployment failed (state `failed`). */
    failedAt: Type.Optional(Timestamp),
    failureMessage: Type.Optional(Type.String({ maxLength: 8192 })),
    /** The failed deployment this one rolls back (set on automatic rollbacks). */
    rollbackOf: Type.Optional(DeploymentId),
    /** The group a `/v2/groups` write changed (for Marathon's `group_change_success`/`group_change_failed` events). */
    groupId: Type.Optional(Type.String({ pattern: `^/$|${APP_ID_PATTERN}`, maxLength: APP_ID_MAX_LENGTH })),
  },
  { ...STRICT, description: 'A Marathon deployment: ordered steps of start/scale/restart/stop actions.' },
);
export type Deployment = Static<typeof Deployment>;

/** One stored version of an app (every write keeps one, for `/v2/apps/{id}/versions` and rollback): the App as it was. */
export const AppVersion = Type.Object(
  { ...App.properties, version: AppVersionTimestamp },
  { ...STRICT, description: 'An app definition as it was at one version.' },
);
export type AppVersion = Static<typeof AppVersion>;

/** Marathon's service port range (`--local_port_min` / `--local_port_max`): ports given to `port: 0` / `servicePort: 0`. */
export const SERVICE_PORT_MIN = 10000;
export const SERVICE_PORT_MAX = 20000;

/** A service port held by an app (one record per port, so two apps can never claim the same one: creating the key is the claim). */
export const ServicePort = Type.Object(
  {
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    appId: AppId,
  },
  { ...STRICT, description: 'A service port and the app that holds it (assigned from 10000-20000 or given by the app).' },
);
export type ServicePort = Static<typeof ServicePort>;

/** An app's restart backoff (Marathon's launch delay), kept by the leading controller so that a new leader keeps it. */
export const LaunchDelay = Type.Object(
  {
    appId: AppId,
    /** The app version the failures were counted for; another version resets it. */
    version: Timestamp,
    failures: Type.Integer({ minimum: 0 }),
    /** The newest failure counted (the task's `stateChangedAt`). */
    lastFailureAt: Timestamp,
    /** No launch before this time. */
    delayUntil: Timestamp,
  },
  { ...STRICT, description: 'The launch delay (backoff) of an app after failed tasks.' },
);
export type LaunchDelay = Static<typeof LaunchDelay>;

// ---------------------------------------------------------------------------
// The registry of stored record kinds

/** Every kind of record kept in the store, with its schema. */
export const RECORD_SCHEMAS = {
  agent: Agent,
  framework: Framework,
  role: Role,
  app: App,
  task: Task,
  vip: Vip,
  network: Network,
  policy: Policy,
  principal: Principal,
  group: Group,
  leader: LeaderInfo,
  signingKey: SigningKey,
  deployment: Deployment,
  appVersion: AppVersion,
  acl: Acl,
  revokedToken: RevokedToken,
  usedLoginToken: UsedLoginToken,
  certificateAuthority: CertificateAuthority,
  certificate: IssuedCertificate,
  identityProvider: IdentityProvider,
  loginFlow: LoginFlow,
  servicePort: ServicePort,
  launchDelay: LaunchDelay,
  overlayLease: OverlayLease,
  overlayClaim: OverlayClaim,
  overlayAddress: OverlayAddress,
  secret: StoredSecret,
} as const satisfies Record<string, TSchema>;

export type RecordKind = keyof typeof RECORD_SCHEMAS;
export const RECORD_KINDS = Object.keys(RECORD_SCHEMAS) as RecordKind[];

/** The TypeScript type of each kind's record. */
export interface RecordTypes {
  agent: Agent;
  framework: Framework;
  role: Role;
  app: App;
  task: Task;
  vip: Vip;
  network: Network;
  policy: Policy;
  principal: Principal;
  group: Group;
  leader: LeaderInfo;
  signingKey: SigningKey;
  deployment: Deployment;
  appVersion: AppVersion;
  acl: Acl;
  revokedToken: RevokedToken;
  usedLoginToken: UsedLoginToken;
  certificateAuthority: CertificateAuthority;
  certificate: IssuedCertificate;
  identityProvider: IdentityProvider;
  loginFlow: LoginFlow;
  servicePort: ServicePort;
  launchDelay: LaunchDelay;
  overlayLease: OverlayLease;
  overlayClaim: OverlayClaim;
  overlayAddress: OverlayAddress;
  secret: StoredSecret;
}

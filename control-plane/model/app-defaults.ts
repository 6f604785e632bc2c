/**
 * Marathon's defaults, applied once: turns an {@link AppDefinition} (what a
 * client sends, most fields optional) into the explicit stored {@link App}.
 * Sources: Marathon 1.11 `app.raml`, `networking.md`, `health-checks.md`,
 * `readiness-checks.md`, `UpgradeStrategy.scala`, `UnreachableStrategy.scala`
 * (see shared/reference/scheduler.md §1 and §3).
 *
 * Defaults that depend on other fields:
 * - `networks` absent → `[{mode: "host"}]`; an entry without `mode` → `container`.
 * - `portDefinitions` absent → `[{port: 0, protocol: "tcp", name: "default"}]`
 *   in host mode, `[]` otherwise (`[]` given = no ports).
 * - `container.portMappings` absent → `[]` in host mode, else
 *   `[{containerPort: 0, servicePort: 0, name: "default"}]`; in bridge mode
 *   every mapping without `hostPort` gets `hostPort: 0` (any offered port).
 * - Health checks: `path` `/` for HTTP kinds; `portIndex` 0 when neither
 *   `portIndex` nor `port` is given (COMMAND checks get neither).
 * The result still has to pass `validateRecord('app', …)`: defaults never
 * repair a definition that breaks a rule.
 */
import { parentOf, resolvePath } from './app-groups.ts';
import {
  HTTP_HEALTH_CHECK_PROTOCOLS,
  type App,
  type AppDefinition,
  type AppNetwork,
  type Container,
  type HealthCheck,
  type PortMapping,
} from './schemas.ts';

export interface AppDefaultsOptions {
  /** The version timestamp to stamp (ISO 8601), e.g. `new Date().toISOString()`. */
  readonly version: string;
  /** The role of apps that name none (Marathon's `--mesos_role`); `*` if not given. */
  readonly defaultRole?: string;
}

/** Copy without the keys whose value is `undefined` (so absent stays absent). */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** `web` → `/web`; absolute ids are kept. */
export function absoluteAppId(id: string): string {
  return id.startsWith('/') ? id : `/${id}`;
}

function healthCheck(h: NonNullable<AppDefinition['healthChecks']>[number]): HealthCheck {
  const protocol = h.protocol ?? 'HTTP';
  const command = protocol === 'COMMAND';
  return defined({
    protocol,
    path: h.path ?? (HTTP_HEALTH_CHECK_PROTOCOLS.includes(protocol) ? '/' : undefined),
    portIndex: h.portIndex ?? (command || h.port !== undefined ? undefined : 0),
    port: h.port,
    command: h.command,
    gracePeriodSeconds: h.gracePeriodSeconds ?? 300,
    intervalSeconds: h.intervalSeconds ?? 60,
    timeoutSeconds: h.timeoutSeconds ?? 20,
    maxConsecutiveFailures: h.maxConsecutiveFailures ?? 3,
    delaySeconds: h.delaySeconds ?? 15,
    ignoreHttp1xx: h.ignoreHttp1xx ?? false,
  });
}

function container(c: NonNullable<AppDefinition['container']>, mode: AppNetwork['mode']): Container {
  const bridge = mode === 'container/bridge';
  const given = c.portMappings ?? (mode === 'host' ? [] : [{ containerPort: 0, name: 'default' }]);
  const portMappings = given.map(
    (p): PortMapping =>
      defined({
        containerPort: p.containerPort ?? 0,
        hostPort: p.hostPort ?? (bridge ? 0 : undefined),
        servicePort: p.servicePort ?? 0,
        protocol: p.protocol ?? 'tcp',
        name: p.name,
        labels: p.labels ?? {},
        networkNames: p.networkNames,
      }),
  );
  const docker =
    c.docker &&
    defined({
      image: c.docker.image,
      forcePullImage: c.docker.forcePullImage ?? false,
      privileged: c.docker.privileged ?? false,
      parameters: c.docker.parameters ?? [],
    });
  return defined({ type: c.type ?? 'DOCKER', docker, portMappings, volumes: c.volumes });
}

/** The stored form of a client's app definition, every Marathon default made explicit. */
export function withAppDefaults(def: AppDefinition, options: AppDefaultsOptions): App {
  const networks: AppNetwork[] = (def.networks ?? [{ mode: 'host' as const }]).map((n) =>
    defined({ mode: n.mode ?? 'container', name: n.name, labels: n.labels }),
  );
  const mode = networks[0]?.mode ?? 'host';
  const portDefinitions = (def.portDefinitions ?? (mode === 'host' ? [{ port: 0, name: 'default' }] : [])).map((p) =>
    defined({ port: p.port ?? 0, protocol: p.protocol ?? 'tcp', name: p.name, labels: p.labels ?? {} }),
  );
  const unreachable = def.unreachableStrategy ?? {};
  return defined({
    id: absoluteAppId(def.id),
    cmd: def.cmd,
    args: def.args,
    user: def.user,
    instances: def.instances ?? 1,
    cpus: def.cpus ?? 1,
    mem: def.mem ?? 128,
    disk: def.disk ?? 0,
    gpus: def.gpus ?? 0,
    env: def.env ?? {},
    secrets: def.secrets ?? {},
    labels: def.labels ?? {},
    container: def.container && container(def.container, mode),
    portDefinitions,
    requirePorts: def.requirePorts ?? false,
    networks,
    constraints: def.constraints ?? [],
    healthChecks: (def.healthChecks ?? []).map(healthCheck),
    readinessChecks: (def.readinessChecks ?? []).map((r) => ({
      name: r.name ?? 'readinessCheck',
      protocol: r.protocol ?? 'HTTP',
      path: r.path ?? '/',
      portName: r.portName ?? 'http-api',
      intervalSeconds: r.intervalSeconds ?? 30,
      timeoutSeconds: r.timeoutSeconds ?? 10,
      httpStatusCodesForReady: r.httpStatusCodesForReady ?? [200],
      preserveLastResponse: r.preserveLastResponse ?? false,
    })),
    upgradeStrategy: {
      minimumHealthCapacity: def.upgradeStrategy?.minimumHealthCapacity ?? 1,
      maximumOverCapacity: def.upgradeStrategy?.maximumOverCapacity ?? 1,
    },
    backoffSeconds: def.backoffSeconds ?? 1,
    backoffFactor: def.backoffFactor ?? 1.15,
    maxLaunchDelaySeconds: def.maxLaunchDelaySeconds ?? 300,
    killSelection: def.killSelection ?? 'YOUNGEST_FIRST',
    unreachableStrategy:
      unreachable === 'disabled'
        ? 'disabled'
        : { inactiveAfterSeconds: unreachable.inactiveAfterSeconds ?? 0, expungeAfterSeconds: unreachable.expungeAfterSeconds ?? 0 },
    taskKillGracePeriodSeconds: def.taskKillGracePeriodSeconds,
    // Relative to the app's group, as Marathon (`../db` from `/prod/web` is `/db`).
    dependencies: [...new Set((def.dependencies ?? []).map((d) => resolvePath(d, parentOf(absoluteAppId(def.id)))))],
    role: def.role ?? options.defaultRole ?? '*',
    acceptedResourceRoles: def.acceptedResourceRoles,
    fetch: (def.fetch ?? []).map((f) =>
      defined({ uri: f.uri, extract: f.extract ?? true, executable: f.executable ?? false, cache: f.cache ?? false, destPath: f.destPath }),
    ),
    version: options.version,
  });
}

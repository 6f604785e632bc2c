/**
 * The environment a task sees, built as Marathon's `TaskBuilder` and
 * `EnvironmentHelper` build it (Marathon 1.11), plus what the Mesos agent
 * adds. Layers, later ones winning:
 *
 * 1. the executor's base environment (`PATH` by default; the agent's own
 *    environment is NOT inherited: it may hold credentials);
 * 2. Marathon's task context: `MESOS_TASK_ID`, `MARATHON_APP_ID`,
 *    `MARATHON_APP_VERSION`, `MARATHON_APP_RESOURCE_{CPUS,MEM,DISK,GPUS}`,
 *    `MARATHON_APP_LABELS` and `MARATHON_APP_LABEL_<NAME>`;
 * 3. ports (`PORT0..n`, `PORT_<requested port>`, `PORT_<NAME>`, `PORT`,
 *    `PORTS`) and `HOST`;
 * 4. the app's `env` (so, as in Marathon, an app may override any of the above);
 * 5. what the agent sets: `MESOS_SANDBOX`.
 */
import type { TaskLaunchSpec } from './spec.ts';

/** Marathon's limit on one environment variable (`EnvironmentHelper.maxEnvironmentVarLength`). */
const MAX_ENV_VAR_LENGTH = 512;
const LABEL_PREFIX = 'MARATHON_APP_LABEL_';

export const DEFAULT_BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
};

export class SecretMissingError extends Error {
  readonly secret: string;
  /** `variable` names the user: `DB_PASS` (an env variable) or `file <path>`. */
  constructor(variable: string, secret: string) {
    super(`${variable.startsWith('file ') ? variable : `env ${variable}`} refers to secret ${JSON.stringify(secret)}, which was not provided`);
    this.secret = secret;
  }
}

/** Scala's `Double.toString` for the values Marathon prints (`1.0`, `0.5`, `128.0`). */
function scalaDouble(n: number): string {
  return Number.isInteger(n) ? `${n}.0` : String(n);
}

/** `PORT0..n`, `PORT_<port>`, `PORT_<NAME>`, `PORT`, `PORTS` for host-mode ports (`EnvironmentHelper.portsEnv`). */
export function portsEnv(
  portDefinitions: readonly { readonly port: number; readonly name?: string }[],
  hostPorts: readonly number[],
): Record<string, string> {
  const env: Record<string, string> = {};
  if (hostPorts.length === 0) return env;
  hostPorts.forEach((port, i) => {
    env[`PORT${i}`] = String(port);
  });
  hostPorts.forEach((port, i) => {
    const requested = portDefinitions[i]?.port ?? 0;
    // A declared (non-zero) port names its variable; a dynamic one is named by the port it got.
    env[`PORT_${requested !== 0 ? requested : port}`] = String(port);
  });
  hostPorts.forEach((port, i) => {
    const name = portDefinitions[i]?.name;
    if (name !== undefined) env[`PORT_${name.toUpperCase()}`] = String(port);
  });
  env.PORT = String(hostPorts[0]);
  env.PORTS = hostPorts.join(',');
  return env;
}

/** `MARATHON_APP_LABELS` (space-separated escaped names) and `MARATHON_APP_LABEL_<NAME>` (`EnvironmentHelper.labelsToEnvVars`). */
export function labelsEnv(labels: Readonly<Record<string, string>>): Record<string, string> {
  const escape = (name: string): string => name.replace(/[^a-zA-Z0-9_]+/g, '_').toUpperCase();
  const valid = new Map<string, string>();
  for (const [key, value] of Object.entries(labels)) {
    if (key.length < MAX_ENV_VAR_LENGTH - LABEL_PREFIX.length && value.length < MAX_ENV_VAR_LENGTH) valid.set(escape(key), value);
  }
  const env: Record<string, string> = { MARATHON_APP_LABELS: [...valid.keys()].join(' ') };
  for (const [name, value] of valid) env[`${LABEL_PREFIX}${name}`] = value;
  return env;
}

/** The task's whole environment; throws {@link SecretMissingError} for an env secret reference with no value. */
export function taskEnvironment(
  spec: TaskLaunchSpec,
  context: { readonly host: string; readonly sandbox: string; readonly baseEnv?: Readonly<Record<string, string>> },
): Record<string, string> {
  const appEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.env ?? {})) {
    if (typeof value === 'string') appEnv[name] = value;
    else {
      const secret = spec.secrets?.[value.secret];
      if (secret === undefined) throw new SecretMissingError(name, value.secret);
      appEnv[name] = secret;
    }
  }
  return {
    ...(context.baseEnv ?? DEFAULT_BASE_ENV),
    MESOS_TASK_ID: spec.taskId,
    MARATHON_APP_ID: spec.appId,
    MARATHON_APP_VERSION: spec.version,
    MARATHON_APP_RESOURCE_CPUS: scalaDouble(spec.resources.cpus),
    MARATHON_APP_RESOURCE_MEM: scalaDouble(spec.resources.memMb),
    MARATHON_APP_RESOURCE_DISK: scalaDouble(spec.resources.diskMb),
    MARATHON_APP_RESOURCE_GPUS: String(spec.resources.gpus),
    ...labelsEnv(spec.labels ?? {}),
    ...portsEnv(spec.portDefinitions ?? [], spec.ports ?? []),
    HOST: context.host,
    ...appEnv,
    MESOS_SANDBOX: context.sandbox,
  };
}

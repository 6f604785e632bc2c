/**
 * What the executor is told to run: one task of an app, with the host ports
 * the scheduler allocated. {@link launchSpecFromApp} builds it from a stored
 * App; {@link checkLaunchSpec} refuses what cannot be launched at all.
 */
import { createHash } from 'node:crypto';
import { StrataError } from '../../common/errors.ts';
import { NODE_ID_PATTERN } from '../../control-plane/model/schemas.ts';
import type { App, Resources } from '../../control-plane/model/schemas.ts';

export interface TaskLaunchSpec {
  /** Mesos task id (`web.instance-<uuid>._app.1`); names the sandbox. */
  readonly taskId: string;
  readonly appId: string;
  /** The app version the task runs (Marathon `version`). */
  readonly version: string;
  /** Run via `/bin/sh -c`. Exactly one of `cmd` and `args`. */
  readonly cmd?: string;
  /** argv, run without a shell (`args[0]` is looked up on the task's PATH). */
  readonly args?: readonly string[];
  readonly env?: App['env'];
  /** Values of the app's `secrets`, keyed by secret name, resolved by the caller; never persisted. */
  readonly secrets?: Readonly<Record<string, string>>;
  /** File-based secrets: `secret` (a name of the app's `secrets`) written to `path` in the sandbox (Marathon `container.volumes[].secret`). */
  readonly secretFiles?: readonly { readonly path: string; readonly secret: string }[];
  readonly labels?: Readonly<Record<string, string>>;
  /** The app's host-mode port definitions (requested port, name), in order. */
  readonly portDefinitions?: readonly { readonly port: number; readonly name?: string }[];
  /** Host ports allocated to the task, in the order of `portDefinitions`. */
  readonly ports?: readonly number[];
  readonly resources: Resources;
  /** SIGTERM to SIGKILL; unset = the executor's default (3 s). */
  readonly taskKillGracePeriodSeconds?: number;
  /** Start the task inside this network namespace (a container network; see `TaskNetworking`). */
  readonly netnsPath?: string;
}

/** The launch spec for task `taskId` of a stored app. */
export function launchSpecFromApp(
  app: App,
  task: { readonly id: string; readonly ports: readonly number[] },
  secrets?: Readonly<Record<string, string>>,
): TaskLaunchSpec {
  return {
    taskId: task.id,
    appId: app.id,
    version: app.version,
    ...(app.cmd !== undefined ? { cmd: app.cmd } : {}),
    ...(app.args !== undefined ? { args: app.args } : {}),
    env: app.env,
    ...(secrets ? { secrets } : {}),
    ...(app.container?.volumes?.length ? { secretFiles: app.container.volumes.map((v) => ({ path: v.containerPath, secret: v.secret })) } : {}),
    labels: app.labels,
    ...portsOf(app, task.ports),
    resources: { cpus: app.cpus, memMb: app.mem, diskMb: app.disk, gpus: app.gpus },
    ...(app.taskKillGracePeriodSeconds !== undefined ? { taskKillGracePeriodSeconds: app.taskKillGracePeriodSeconds } : {}),
  };
}

/**
 * The task's ports for its environment (`PORT0`…). Host networking: the
 * app's port definitions and the host ports allocated. A container network
 * (the task has its own namespace, every port free): the port mappings'
 * container ports; a container port of 0 takes the host port allocated for
 * that mapping, as Marathon does.
 */
function portsOf(app: App, hostPorts: readonly number[]): Pick<TaskLaunchSpec, 'portDefinitions' | 'ports'> {
  const mode = Array.isArray(app.networks) ? app.networks[0]?.mode : undefined;
  if (mode !== 'container') {
    return { portDefinitions: app.portDefinitions.map((p) => (p.name === undefined ? { port: p.port } : { port: p.port, name: p.name })), ports: hostPorts };
  }
  const mappings = app.container?.portMappings ?? [];
  let nextHost = 0;
  const ports: number[] = [];
  const portDefinitions: { port: number; name?: string }[] = [];
  for (const m of mappings) {
    const host = m.hostPort !== undefined ? hostPorts[nextHost++] : undefined;
    const port = m.containerPort > 0 ? m.containerPort : host;
    if (port === undefined) continue;
    ports.push(port);
    portDefinitions.push(m.name === undefined ? { port: m.containerPort } : { port: m.containerPort, name: m.name });
  }
  return { portDefinitions, ports };
}

const TASK_ID = new RegExp(NODE_ID_PATTERN);

/** Throws `EXECUTOR_SPEC_INVALID` for a spec no launch could run. */
export function checkLaunchSpec(spec: TaskLaunchSpec): void {
  const fail = (why: string): never => {
    throw new StrataError('EXECUTOR_SPEC_INVALID', `task ${JSON.stringify(spec.taskId)}: ${why}`);
  };
  if (typeof spec.taskId !== 'string' || !TASK_ID.test(spec.taskId) || spec.taskId.length > 400) fail('task id must match ' + NODE_ID_PATTERN);
  const hasCmd = spec.cmd !== undefined && spec.cmd !== '';
  const hasArgs = spec.args !== undefined && spec.args.length > 0;
  if (hasCmd === hasArgs) fail('exactly one of cmd and args is needed');
  if (hasArgs && spec.args![0] === '') fail('args[0] is empty');
  for (const s of [spec.cmd ?? '', ...(spec.args ?? [])]) if (s.includes('\0')) fail('cmd and args may not contain NUL');
  const grace = spec.taskKillGracePeriodSeconds;
  if (grace !== undefined && !(Number.isFinite(grace) && grace > 0)) fail('taskKillGracePeriodSeconds must be > 0');
}

/**
 * The directory (and cgroup) name for a task id: the id itself, or for ids
 * too long for a file name (255 bytes), a prefix plus a hash of the whole id.
 */
export function sandboxName(taskId: string): string {
  if (taskId.length <= 200) return taskId;
  return `${taskId.slice(0, 150)}.${createHash('sha256').update(taskId).digest('hex').slice(0, 16)}`;
}

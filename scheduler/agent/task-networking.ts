/**
 * The port through which the task runner puts a task on a container
 * network (`networks: [{mode: "container", name}]`); `overlay/task-networking.ts`
 * is the real one (the agent's overlay), tests may fake it.
 */
import type { App, TaskIpAddress } from '../../control-plane/model/schemas.ts';

export interface TaskNetworking {
  /**
   * Give the task its container IP on `network` and a network namespace
   * attached to it; resolves with the namespace to start the task in and
   * its addresses. Rejects with a StrataError whose message says why (no
   * free address, overlay off, …): the task ends in ERROR with it.
   */
  attach(taskId: string, network: string): Promise<{ readonly netnsPath: string; readonly ipAddresses: readonly TaskIpAddress[] }>;
  /** Remove the task's veth and namespace (its IP is released by the master once the task is terminal); idempotent. */
  detach(taskId: string): Promise<void>;
  /** Run `fn` synchronously inside the namespace (the executor spawns the task in it). */
  within<T>(netnsPath: string, fn: () => T): T;
}

/** The container network a task of `app` joins, if any (Marathon: `container` mode; no name = the cluster's default `dcos`). */
export function containerNetworkOf(app: App): string | undefined {
  const first = Array.isArray(app.networks) ? app.networks[0] : undefined;
  if (!first || first.mode !== 'container') return undefined;
  return first.name ?? 'dcos';
}

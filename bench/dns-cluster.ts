/**
 * The cluster the DNS benchmarks build zones from (`bench/dns-zone.ts`,
 * `bench/dns.ts` through `bench/dns-server.ts`): 100 agents, an app per 10
 * tasks in 20 groups, each task with a named host port and a container
 * address; ~6.5 names per task (10,000 tasks: 64,351 names).
 */
import { zoneApp, zoneTask, type ClusterFeed, type ClusterFeedEvent, type FeedSubscription } from '../dns/zone/feed.ts';
import { deserializeState, type SerializedClusterState } from '../dns/zone/feed-hub.ts';
import { mkAgent, mkApp, mkTask } from '../dns/zone/testing.ts';
import type { Agent, App, Task } from '../control-plane/model/schemas.ts';
import { agentIdTail, rfc1123Label, taskIdHash } from '../common/dns-labels.ts';

export interface Cluster {
  readonly agents: Agent[];
  readonly apps: App[];
  readonly tasks: Task[];
}

/** Tasks whose zone holds about `names` names (≥ 1). */
export function tasksForNames(names: number): number {
  return Math.max(1, Math.round(names / 6.5));
}

export function cluster(taskCount: number): Cluster {
  const agents = Array.from({ length: 100 }, (_, i) => mkAgent(`bench-S${i}`, { ip: `10.${Math.floor(i / 250)}.${i % 250}.1` }));
  const appCount = Math.max(1, Math.floor(taskCount / 10));
  const apps = Array.from({ length: appCount }, (_, i) => mkApp(`/team${i % 20}/svc${i}`, { portDefinitions: [{ port: 0, name: 'http' }] }));
  const tasks = Array.from({ length: taskCount }, (_, i) =>
    mkTask(`svc${i % appCount}.instance-${i}._app.1`, apps[i % appCount]!.id, agents[i % agents.length]!.id, {
      ports: [20000 + (i % 10000)],
      ipAddresses: [{ ipAddress: `9.${Math.floor(i / 65536) % 256}.${Math.floor(i / 256) % 256}.${i % 256}`, protocol: 'IPv4' }],
    }),
  );
  return { agents, apps, tasks };
}

/** The cluster as the master's `/v1/dns/cluster-state` sends it to an agent (JSON; tasks and apps cut to what the zones read, as `feed-hub.ts` does). */
export function serializedState(c: Cluster): string {
  const state: SerializedClusterState = { index: 1, tasks: c.tasks.map((t) => zoneTask(t)), apps: c.apps.map(zoneApp), agents: c.agents, frameworks: [], vips: [] };
  return JSON.stringify(state);
}

/**
 * A feed that delivers one snapshot parsed from JSON and keeps nothing, as
 * an agent's `HttpClusterFeed` does: after the snapshot only the zones hold
 * the state, so a heap or RSS figure is what a DNS-serving `strata agent`
 * holds for its zones.
 */
export class JsonSnapshotFeed implements ClusterFeed {
  #json: string | undefined;

  constructor(json: string) {
    this.#json = json;
  }

  async subscribe(listener: (event: ClusterFeedEvent) => void): Promise<FeedSubscription> {
    const json = this.#json;
    this.#json = undefined;
    if (json !== undefined) listener({ type: 'snapshot', state: deserializeState(JSON.parse(json) as SerializedClusterState) });
    return { close: () => undefined, ended: Promise.resolve() };
  }
}

/** The canonical name of a task, as the zone publishes it (`<app>-<hash>-<agent tail>.marathon.mesos`). */
export function canonicalOf(task: Task): string {
  const label = rfc1123Label(task.appId.split('/').filter(Boolean).reverse().join('.'));
  return `${label}-${taskIdHash(task.id)}-${agentIdTail(task.agentId, rfc1123Label)}.marathon.mesos`;
}

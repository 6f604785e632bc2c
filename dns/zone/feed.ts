/**
 * The port through which the zones learn the cluster's state: a
 * {@link ClusterFeed} delivers one snapshot, then ordered changes, and may
 * deliver another snapshot at any time (a resync replaces everything). The
 * master feeds it from store watches (`store-feed.ts`); an agent node could
 * feed it over HTTP from the master, since every event is plain JSON data.
 * `fake-feed.ts` is the in-repo fake tests drive.
 */
import type { Agent, App, Framework, LeaderInfo, Task, Vip } from '../../control-plane/model/schemas.ts';

/**
 * What the zones read of a task: a {@link Task} is one. The authority
 * keeps only this much of each (`zoneTask`), and a master sends only this
 * much to agents (`feed-hub.ts`).
 */
export interface ZoneTask {
  readonly id: string;
  readonly appId: string;
  readonly agentId: string;
  readonly state: Task['state'];
  readonly ports: readonly number[];
  readonly ipAddresses: readonly { readonly ipAddress: string }[];
  readonly healthCheckResults: readonly { readonly alive: boolean }[];
}

const NO_ITEMS: readonly never[] = Object.freeze([]);

/**
 * The part of `task` the zones read, with `appId` and `agentId` replaced by
 * `intern`'s copy (one string per app and agent, not one per task).
 * Equal tasks give equal JSON, so a resync can compare projections.
 */
export function zoneTask(task: ZoneTask, intern: (s: string) => string = (s) => s): ZoneTask {
  return {
    id: intern(task.id),
    appId: intern(task.appId),
    agentId: intern(task.agentId),
    state: task.state,
    ports: task.ports.length === 0 ? NO_ITEMS : [...task.ports],
    ipAddresses: task.ipAddresses.length === 0 ? NO_ITEMS : task.ipAddresses.map((a) => ({ ipAddress: a.ipAddress })),
    healthCheckResults: task.healthCheckResults.length === 0 ? NO_ITEMS : task.healthCheckResults.map((r) => ({ alive: r.alive })),
  };
}

/** What the zones read of an app: an {@link App} is one (`zoneApp` keeps only this much). */
export interface ZoneApp {
  readonly id: string;
  readonly networks: readonly { readonly mode: App['networks'][number]['mode'] }[];
  readonly portDefinitions: readonly { readonly protocol: string; readonly name?: string }[];
  readonly container?: { readonly portMappings?: readonly { readonly containerPort: number; readonly hostPort?: number; readonly protocol: string; readonly name?: string }[] };
  /** Only how many there are is read. */
  readonly healthChecks: readonly unknown[];
}

/** The part of `app` the zones read (equal apps give equal JSON). */
export function zoneApp(app: ZoneApp): ZoneApp {
  const mappings = app.container?.portMappings;
  return {
    id: app.id,
    networks: app.networks.map((n) => ({ mode: n.mode })),
    portDefinitions: app.portDefinitions.map((d) => (d.name === undefined ? { protocol: d.protocol } : { protocol: d.protocol, name: d.name })),
    ...(mappings
      ? {
          container: {
            portMappings: mappings.map((m) => ({
              containerPort: m.containerPort,
              ...(m.hostPort !== undefined ? { hostPort: m.hostPort } : {}),
              protocol: m.protocol,
              ...(m.name !== undefined ? { name: m.name } : {}),
            })),
          },
        }
      : {}),
    healthChecks: app.healthChecks.length === 0 ? NO_ITEMS : app.healthChecks.map(() => ({})),
  };
}

/** The change with its task or app value cut to what the zones read. */
export function zoneChange(c: ClusterChange): ClusterChange {
  if (c.value === undefined) return c;
  if (c.kind === 'task') return { kind: 'task', id: c.id, value: zoneTask(c.value) };
  if (c.kind === 'app') return { kind: 'app', id: c.id, value: zoneApp(c.value) };
  return c;
}

/** The read-only state the zones are built from. The maps are owned by whoever built the state: read them, never change them. */
export interface ClusterState {
  readonly tasks: ReadonlyMap<string, ZoneTask>;
  readonly apps: ReadonlyMap<string, ZoneApp>;
  readonly agents: ReadonlyMap<string, Agent>;
  readonly frameworks: ReadonlyMap<string, Framework>;
  /** By VIP id (`<framework>/<name>`). */
  readonly vips: ReadonlyMap<string, Vip>;
  readonly leader: LeaderInfo | undefined;
  /** Version of this state (the store index it reflects); the zones' SOA serial. */
  readonly index: number;
}

/** One record put (`value` set) or deleted (`value` undefined). */
export type ClusterChange =
  | { readonly kind: 'task'; readonly id: string; readonly value: ZoneTask | undefined }
  | { readonly kind: 'app'; readonly id: string; readonly value: ZoneApp | undefined }
  | { readonly kind: 'agent'; readonly id: string; readonly value: Agent | undefined }
  | { readonly kind: 'framework'; readonly id: string; readonly value: Framework | undefined }
  | { readonly kind: 'vip'; readonly id: string; readonly value: Vip | undefined }
  | { readonly kind: 'leader'; readonly id: string; readonly value: LeaderInfo | undefined };

export type ClusterChangeKind = ClusterChange['kind'];

export type ClusterFeedEvent =
  | { readonly type: 'snapshot'; readonly state: ClusterState }
  | { readonly type: 'changes'; readonly index: number; readonly changes: readonly ClusterChange[] };

export interface FeedSubscription {
  /** Stop delivering. Idempotent. */
  close(): void;
  /** Settles when delivery stops: resolves after `close()`, rejects if the feed failed. */
  readonly ended: Promise<void>;
}

/**
 * A source of cluster state. `subscribe` resolves once the listener has
 * been called with the first snapshot; events then arrive in order, one
 * call at a time. The listener must not throw (a feed reports a throw
 * through its own error path and keeps going).
 */
export interface ClusterFeed {
  subscribe(listener: (event: ClusterFeedEvent) => void): Promise<FeedSubscription>;
}

/** An empty state (index 0). */
export function emptyClusterState(): ClusterState {
  return { tasks: new Map(), apps: new Map(), agents: new Map(), frameworks: new Map(), vips: new Map(), leader: undefined, index: 0 };
}

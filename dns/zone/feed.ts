/**
 * The port through which the zones learn the cluster's state: a
 * {@link ClusterFeed} delivers one snapshot, then ordered changes, and may
 * deliver another snapshot at any time (a resync replaces everything). The
 * master feeds it from store watches (`store-feed.ts`); an agent node could
 * feed it over HTTP from the master, since every event is plain JSON data.
 * `fake-feed.ts` is the in-repo fake tests drive.
 */
import type { Agent, App, Framework, LeaderInfo, Task, Vip } from '../../control-plane/model/schemas.ts';

/** The read-only state the zones are built from. The maps are owned by whoever built the state: read them, never change them. */
export interface ClusterState {
  readonly tasks: ReadonlyMap<string, Task>;
  readonly apps: ReadonlyMap<string, App>;
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
  | { readonly kind: 'task'; readonly id: string; readonly value: Task | undefined }
  | { readonly kind: 'app'; readonly id: string; readonly value: App | undefined }
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

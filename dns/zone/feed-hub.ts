/**
 * Cluster state for DNS servers that do not read the store (agents): the
 * master keeps one {@link ClusterFeed} subscription (its store watches), the
 * current state and a bounded log of recent changes, and answers blocking
 * queries (`GET /v1/dns/cluster-state?epoch=E&index=N&wait=S`):
 * - no `epoch`, another epoch (another master, or this one restarted or
 *   resynced), or an `index` older than the log: the whole state;
 * - otherwise the changes after `index`, at once if there are any, else when
 *   the next ones arrive (or after `wait` seconds, with none).
 * One store watch per master however many agents follow it; a change
 * reaches every agent in one round trip (no polling interval).
 * `http-feed.ts` is the agent side.
 */
import { randomUUID } from 'node:crypto';
import type { Agent, Framework, LeaderInfo, Vip } from '../../control-plane/model/schemas.ts';
import { zoneApp, zoneChange, zoneTask, type ClusterChange, type ClusterFeed, type ClusterState, type FeedSubscription, type ZoneApp, type ZoneTask } from './feed.ts';

/** `ClusterState` as JSON (maps as arrays of values). */
export interface SerializedClusterState {
  readonly index: number;
  /** Only what the zones read of each (`zoneTask`, `zoneApp`): a fraction of the records. */
  readonly tasks: readonly ZoneTask[];
  readonly apps: readonly ZoneApp[];
  readonly agents: readonly Agent[];
  readonly frameworks: readonly Framework[];
  readonly vips: readonly { readonly id: string; readonly vip: Vip }[];
  readonly leader?: LeaderInfo;
}

export type FeedReply =
  | { readonly type: 'snapshot'; readonly epoch: string; readonly index: number; readonly state: SerializedClusterState }
  | { readonly type: 'changes'; readonly epoch: string; readonly index: number; readonly changes: readonly ClusterChange[] };

interface MutableState {
  index: number;
  tasks: Map<string, ZoneTask>;
  apps: Map<string, ZoneApp>;
  agents: Map<string, Agent>;
  frameworks: Map<string, Framework>;
  vips: Map<string, Vip>;
  leader: LeaderInfo | undefined;
}

export interface ClusterFeedHubOptions {
  /** Changes kept for followers that are behind (default 10,000); older followers get the whole state. */
  readonly maxLoggedChanges?: number;
}

export class ClusterFeedHub {
  readonly #source: ClusterFeed;
  readonly #maxLogged: number;
  #epoch = randomUUID();
  #state: MutableState | undefined;
  /** Change batches after the last snapshot, oldest first. */
  #log: { index: number; changes: readonly ClusterChange[] }[] = [];
  #logged = 0;
  /** The index the log starts after (changes after it are all in the log). */
  #logFrom = 0;
  readonly #waiters = new Set<() => void>();
  #subscription: FeedSubscription | undefined;
  #starting: Promise<void> | undefined;

  constructor(source: ClusterFeed, options: ClusterFeedHubOptions = {}) {
    this.#source = source;
    this.#maxLogged = options.maxLoggedChanges ?? 10_000;
  }

  /** Subscribe to the source (once); resolves when the first state is in. */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      this.#subscription = await this.#source.subscribe((event) => {
        if (event.type === 'snapshot') {
          const s = event.state;
          this.#state = {
            index: s.index,
            tasks: new Map([...s.tasks].map(([id, t]) => [id, zoneTask(t)])), apps: new Map([...s.apps].map(([id, a]) => [id, zoneApp(a)])), agents: new Map(s.agents),
            frameworks: new Map(s.frameworks), vips: new Map(s.vips), leader: s.leader,
          };
          // A new snapshot (a resync) may drop what no change event says: followers start over.
          this.#epoch = randomUUID();
          this.#log = [];
          this.#logged = 0;
          this.#logFrom = s.index;
        } else if (this.#state) {
          // Kept and sent cut to what the zones read (the log and every follower's reply are a fraction of the records).
          const changes = event.changes.map(zoneChange);
          for (const c of changes) this.#apply(c);
          this.#state.index = Math.max(this.#state.index, event.index);
          if (event.changes.length > 0) {
            this.#log.push({ index: event.index, changes });
            this.#logged += changes.length;
            while (this.#logged > this.#maxLogged && this.#log.length > 1) {
              const dropped = this.#log.shift()!;
              this.#logged -= dropped.changes.length;
              this.#logFrom = dropped.index;
            }
          }
        }
        for (const wake of [...this.#waiters]) wake();
      });
    })();
    return this.#starting;
  }

  #apply(c: ClusterChange): void {
    const s = this.#state!;
    if (c.kind === 'leader') {
      s.leader = c.value;
      return;
    }
    const map = { task: s.tasks, app: s.apps, agent: s.agents, framework: s.frameworks, vip: s.vips }[c.kind] as Map<string, unknown>;
    if (c.value === undefined) map.delete(c.id);
    else map.set(c.id, c.value);
  }

  #snapshot(): FeedReply {
    const s = this.#state!;
    return {
      type: 'snapshot',
      epoch: this.#epoch,
      index: s.index,
      state: {
        index: s.index,
        tasks: [...s.tasks.values()],
        apps: [...s.apps.values()],
        agents: [...s.agents.values()],
        frameworks: [...s.frameworks.values()],
        vips: [...s.vips].map(([id, vip]) => ({ id, vip })),
        ...(s.leader ? { leader: s.leader } : {}),
      },
    };
  }

  #changesAfter(index: number): ClusterChange[] {
    return this.#log.filter((e) => e.index > index).flatMap((e) => e.changes);
  }

  /** What a follower at (`epoch`, `index`) needs next; waits up to `waitMs` for changes. */
  async read(epoch: string | undefined, index: number, waitMs: number, signal?: AbortSignal): Promise<FeedReply> {
    await this.start();
    if (epoch !== this.#epoch || index < this.#logFrom || index > this.#state!.index) return this.#snapshot();
    let changes = this.#changesAfter(index);
    if (changes.length === 0 && waitMs > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        this.#waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (epoch !== this.#epoch || index < this.#logFrom) return this.#snapshot();
      changes = this.#changesAfter(index);
    }
    return { type: 'changes', epoch: this.#epoch, index: this.#state!.index, changes };
  }

  close(): void {
    this.#subscription?.close();
    for (const wake of [...this.#waiters]) wake();
  }
}

/** A serialized state back as a `ClusterState`. */
export function deserializeState(s: SerializedClusterState): ClusterState {
  return {
    index: s.index,
    tasks: new Map(s.tasks.map((t) => [t.id, t])),
    apps: new Map(s.apps.map((a) => [a.id, a])),
    agents: new Map(s.agents.map((a) => [a.id, a])),
    frameworks: new Map(s.frameworks.map((f) => [f.id, f])),
    vips: new Map(s.vips.map((v) => [v.id, v.vip])),
    leader: s.leader,
  };
}

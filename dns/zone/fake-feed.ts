/**
 * An in-memory {@link ClusterFeed} for tests: hold a state, `sync()` it as
 * a snapshot, then `put`/`remove` records one change at a time. It records
 * every event it delivered (`events`) and counts its subscribers, so tests
 * can assert on what the zones were told.
 */
import type { Agent, App, Framework, LeaderInfo, Task, Vip } from '../../control-plane/model/schemas.ts';
import type { ClusterChange, ClusterFeed, ClusterFeedEvent, ClusterState, FeedSubscription } from './feed.ts';

type Listener = (event: ClusterFeedEvent) => void;

export interface FakeState {
  readonly tasks?: readonly Task[];
  readonly apps?: readonly App[];
  readonly agents?: readonly Agent[];
  readonly frameworks?: readonly Framework[];
  readonly vips?: readonly Vip[];
  readonly leader?: LeaderInfo;
}

export class FakeClusterFeed implements ClusterFeed {
  readonly tasks = new Map<string, Task>();
  readonly apps = new Map<string, App>();
  readonly agents = new Map<string, Agent>();
  readonly frameworks = new Map<string, Framework>();
  readonly vips = new Map<string, Vip>();
  leader: LeaderInfo | undefined;
  index = 0;
  /** Every event delivered, in order. */
  readonly events: ClusterFeedEvent[] = [];
  readonly #listeners = new Set<Listener>();
  #synced = false;
  #waiting: (() => void)[] = [];

  /** With `synced: true` (default) the state is in place at once; otherwise subscribers wait for `sync()`. */
  constructor(initial: FakeState = {}, options: { readonly synced?: boolean } = {}) {
    for (const t of initial.tasks ?? []) this.tasks.set(t.id, t);
    for (const a of initial.apps ?? []) this.apps.set(a.id, a);
    for (const a of initial.agents ?? []) this.agents.set(a.id, a);
    for (const f of initial.frameworks ?? []) this.frameworks.set(f.id, f);
    for (const v of initial.vips ?? []) this.vips.set(`${v.framework}/${v.name}`, v);
    this.leader = initial.leader;
    this.#synced = options.synced ?? true;
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  state(): ClusterState {
    return {
      tasks: new Map(this.tasks),
      apps: new Map(this.apps),
      agents: new Map(this.agents),
      frameworks: new Map(this.frameworks),
      vips: new Map(this.vips),
      leader: this.leader,
      index: this.index,
    };
  }

  async subscribe(listener: Listener): Promise<FeedSubscription> {
    if (!this.#synced) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#listeners.add(listener);
    this.#deliver(listener, { type: 'snapshot', state: this.state() });
    let close!: () => void;
    const ended = new Promise<void>((resolve) => {
      close = () => {
        this.#listeners.delete(listener);
        resolve();
      };
    });
    return { close, ended };
  }

  /** Deliver the whole state as a snapshot (the first one releases waiting subscribers). */
  sync(): void {
    this.index++;
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#waiting.splice(0)) resolve();
      return;
    }
    const state = this.state();
    for (const l of this.#listeners) this.#deliver(l, { type: 'snapshot', state });
  }

  /** Put one record and deliver the change. */
  put(change: PutChange): void {
    const { kind, value } = change;
    const id = idOf(change);
    this.#store(kind, id, value);
    this.#changes([{ kind, id, value } as ClusterChange]);
  }

  /** Delete one record and deliver the change. */
  remove(kind: ClusterChange['kind'], id: string): void {
    this.#store(kind, id, undefined);
    this.#changes([{ kind, id, value: undefined } as ClusterChange]);
  }

  /** Deliver several changes as one event (one store batch). */
  batch(changes: readonly ClusterChange[]): void {
    for (const c of changes) this.#store(c.kind, c.id, c.value);
    this.#changes(changes);
  }

  #store(kind: ClusterChange['kind'], id: string, value: unknown): void {
    const maps: Record<Exclude<ClusterChange['kind'], 'leader'>, Map<string, unknown>> = {
      task: this.tasks,
      app: this.apps,
      agent: this.agents,
      framework: this.frameworks,
      vip: this.vips,
    };
    if (kind === 'leader') this.leader = value as LeaderInfo | undefined;
    else if (value === undefined) maps[kind].delete(id);
    else maps[kind].set(id, value);
  }

  #changes(changes: readonly ClusterChange[]): void {
    this.index++;
    if (!this.#synced) return;
    for (const l of this.#listeners) this.#deliver(l, { type: 'changes', index: this.index, changes });
  }

  #deliver(listener: Listener, event: ClusterFeedEvent): void {
    this.events.push(event);
    listener(event);
  }
}

/** A record to put, by kind. */
export type PutChange =
  | { readonly kind: 'task'; readonly value: Task }
  | { readonly kind: 'app'; readonly value: App }
  | { readonly kind: 'agent'; readonly value: Agent }
  | { readonly kind: 'framework'; readonly value: Framework }
  | { readonly kind: 'vip'; readonly value: Vip }
  | { readonly kind: 'leader'; readonly value: LeaderInfo };

function idOf(change: PutChange): string {
  switch (change.kind) {
    case 'vip':
      return `${change.value.framework}/${change.value.name}`;
    case 'leader':
      return 'leader';
    default:
      return change.value.id;
  }
}

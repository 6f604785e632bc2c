/**
 * The {@link ClusterFeed} of a master: views (`openView`) of the kinds the
 * zones read (task, app, agent, framework, VIP, leader), turned into one
 * snapshot and then one `changes` event per applied watch batch. A view's
 * resync becomes a new snapshot. No polling: every event comes from a
 * store watch.
 */
import { openView, type InvalidRecord, type Records, type RecordView, type ViewUpdate } from '../../control-plane/model/records.ts';
import type { RecordKind, RecordTypes } from '../../control-plane/model/schemas.ts';
import { ZoneAuthority, type ZoneAuthorityOptions } from './authority.ts';
import type { ClusterChange, ClusterFeed, ClusterFeedEvent, ClusterState, FeedSubscription } from './feed.ts';

/** The record kinds the zones read. */
type FeedKind = Extract<RecordKind, 'task' | 'app' | 'agent' | 'framework' | 'vip' | 'leader'>;
type Views = { [K in FeedKind]: RecordView<RecordTypes[K]> };

export interface StoreClusterFeedOptions {
  /** Called for every unusable record the views meet (they are left out of the zones). */
  readonly onInvalid?: (invalid: InvalidRecord) => void;
  /** A listener threw (a bug); default: rethrown outside the view's loop. */
  readonly onError?: (err: unknown) => void;
}

function valuesOf<T>(view: RecordView<T>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [id, r] of view.records) out.set(id, r.value);
  return out;
}

export class StoreClusterFeed implements ClusterFeed {
  readonly #records: Records;
  readonly #options: StoreClusterFeedOptions;

  constructor(records: Records, options: StoreClusterFeedOptions = {}) {
    this.#records = records;
    this.#options = options;
  }

  async subscribe(listener: (event: ClusterFeedEvent) => void): Promise<FeedSubscription> {
    const stop = new AbortController();
    const viewOptions = {
      signal: stop.signal,
      ...(this.#options.onInvalid ? { onInvalid: this.#options.onInvalid } : {}),
      ...(this.#options.onError ? { onError: this.#options.onError } : {}),
    };
    const opened: RecordView<unknown>[] = [];
    let ready = false;
    let views: Views | undefined;
    const index = (): number => Math.max(...opened.map((v) => v.index));
    const snapshot = (v: Views): ClusterState => ({
      tasks: valuesOf(v.task),
      apps: valuesOf(v.app),
      agents: valuesOf(v.agent),
      frameworks: valuesOf(v.framework),
      vips: valuesOf(v.vip),
      leader: v.leader.get('leader'),
      index: index(),
    });
    const open = async <K extends FeedKind>(kind: K): Promise<RecordView<RecordTypes[K]>> => {
      const view = await openView(this.#records, kind, viewOptions);
      opened.push(view as RecordView<unknown>);
      view.subscribe((update: ViewUpdate<RecordTypes[K]>) => {
        if (!ready || !views) return; // the snapshot taken when all views are open already holds it
        if (update.resync) {
          listener({ type: 'snapshot', state: snapshot(views) });
          return;
        }
        const changes: ClusterChange[] = [];
        for (const r of update.upserted) changes.push({ kind, id: r.id, value: r.value } as ClusterChange);
        for (const id of update.removed) changes.push({ kind, id, value: undefined } as ClusterChange);
        // Also when nothing usable changed (an unusable record): the index still moves on.
        listener({ type: 'changes', index: index(), changes });
      });
      return view;
    };
    try {
      views = {
        task: await open('task'),
        app: await open('app'),
        agent: await open('agent'),
        framework: await open('framework'),
        vip: await open('vip'),
        leader: await open('leader'),
      };
    } catch (err) {
      stop.abort();
      throw err;
    }
    ready = true;
    listener({ type: 'snapshot', state: snapshot(views) });
    const ended = Promise.all(opened.map((v) => v.ended)).then(() => undefined);
    ended.catch(() => undefined);
    return { close: () => stop.abort(), ended };
  }
}

export interface StoreAuthorityOptions extends ZoneAuthorityOptions, StoreClusterFeedOptions {}

/** The authority of a master: the zones fed by the store's watches. Call `start()`, then `lookup`. */
export class StoreAuthority extends ZoneAuthority {
  constructor(records: Records, options: StoreAuthorityOptions = {}) {
    super(new StoreClusterFeed(records, options), options);
  }
}

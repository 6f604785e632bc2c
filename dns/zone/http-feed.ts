/**
 * The {@link ClusterFeed} of an agent node: follows a master's
 * `GET /v1/dns/cluster-state` blocking query (`feed-hub.ts`), so the agent's
 * own DNS server answers the internal zones without store access. On an
 * error it retries with backoff, moving to the next master when there are
 * several; meanwhile the zones keep answering from the last state.
 */
import type { FetchLike } from '../../security/mtls/client.ts';
import { deserializeState, type FeedReply } from './feed-hub.ts';
import type { ClusterFeed, ClusterFeedEvent, FeedSubscription } from './feed.ts';

export interface HttpClusterFeedOptions {
  /** The master to ask now (an agent's `MasterUrls.current`). */
  readonly masterUrl: () => string;
  /** A call to this master failed: move on if there is another. */
  readonly masterFailed?: (url: string) => void;
  readonly token: () => Promise<string>;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
  /** Longest blocking wait asked of the master (seconds; default 30). */
  readonly waitSeconds?: number;
  readonly onError?: (err: unknown) => void;
  /**
   * Stops the feed, also before its first state arrived (`subscribe` waits
   * for that state, so its subscription cannot be closed before then).
   */
  readonly signal?: AbortSignal;
}

export class HttpClusterFeed implements ClusterFeed {
  readonly #options: HttpClusterFeedOptions;

  constructor(options: HttpClusterFeedOptions) {
    this.#options = options;
  }

  async subscribe(listener: (event: ClusterFeedEvent) => void): Promise<FeedSubscription> {
    const stop = new AbortController();
    const outer = this.#options.signal;
    if (outer?.aborted) stop.abort();
    outer?.addEventListener('abort', () => stop.abort(), { once: true });
    let epoch: string | undefined;
    let index = 0;
    let markFirst: () => void = () => {};
    const first = new Promise<void>((resolve) => {
      markFirst = resolve;
    });
    const loop = (async () => {
      let backoffMs = 250;
      while (!stop.signal.aborted) {
        const base = this.#options.masterUrl().replace(/\/+$/, '');
        try {
          const query = new URLSearchParams({ index: String(index), wait: String(epoch === undefined ? 0 : (this.#options.waitSeconds ?? 30)) });
          if (epoch !== undefined) query.set('epoch', epoch);
          const res = await (this.#options.fetch ?? fetch)(`${base}/v1/dns/cluster-state?${query}`, { headers: { authorization: `token=${await this.#options.token()}` }, signal: stop.signal });
          if (!res.ok) throw new Error(`GET ${base}/v1/dns/cluster-state answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
          const reply = (await res.json()) as FeedReply;
          backoffMs = 250;
          if (reply.type === 'snapshot') {
            listener({ type: 'snapshot', state: deserializeState(reply.state) });
            markFirst();
          } else if (reply.changes.length > 0) {
            listener({ type: 'changes', index: reply.index, changes: reply.changes });
          }
          epoch = reply.epoch;
          index = reply.index;
        } catch (err) {
          if (stop.signal.aborted) return;
          this.#options.onError?.(err);
          this.#options.masterFailed?.(base);
          await new Promise((r) => setTimeout(r, backoffMs));
          backoffMs = Math.min(backoffMs * 2, 10_000);
        }
      }
    })();
    await Promise.race([first, loop]);
    return { close: () => stop.abort(), ended: loop };
  }
}

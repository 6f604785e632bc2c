/**
 * Leader election over any {@link StateStore}, with a fencing token.
 *
 * A candidate creates a session and tries to create the leader key bound to
 * it (check-and-set 0). The winner's fencing token is the index of that
 * write; every write the leader makes through `fencedTxn` carries the
 * condition "the leader key's modifyIndex is still my token", so once the
 * session expires (the key is deleted) or another candidate wins (the key is
 * recreated at a higher index), a deposed leader's writes fail with
 * `STORE_FENCED` — even if it has not noticed yet.
 *
 * Losers watch the key and campaign again the moment it is deleted.
 */
import { StrataError } from '../../common/errors.ts';
import type { StateStore, TxnRequest, TxnResult } from './port.ts';

export interface CampaignOptions {
  /** The leader key, e.g. `strata/leader/master`. */
  readonly key: string;
  /** What the leader publishes (JSON: who it is, where its API is). */
  readonly value: string;
  readonly ttlSeconds: number;
  /** Abort to stop campaigning (the promise then rejects with the reason). */
  readonly signal?: AbortSignal;
  /** Told about keepalive failures that have not yet cost the leadership. */
  readonly onWarning?: (message: string, err?: unknown) => void;
}

export interface Leadership {
  /** Fencing token: the index at which this candidate became leader. */
  readonly token: number;
  /** Aborted when leadership is lost or resigned. */
  readonly signal: AbortSignal;
  /** A transaction that applies only while this candidate still leads. */
  fencedTxn(request: TxnRequest): Promise<TxnResult>;
  /** Give up leadership now: the key is deleted and the session ended. */
  resign(): Promise<void>;
}

export interface LeaderRecord {
  readonly value: string;
  readonly token: number;
}

export async function readLeader(store: StateStore, key: string): Promise<LeaderRecord | undefined> {
  const entry = await store.get(key);
  return entry && { value: entry.value, token: entry.createIndex };
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('campaign aborted');
}

/** Resolves once this candidate leads; keeps the session alive until it loses or resigns. */
export async function campaign(store: StateStore, options: CampaignOptions): Promise<Leadership> {
  const { key, ttlSeconds, signal } = options;
  for (;;) {
    aborted(signal);
    await waitForVacancy(store, key, signal);
    aborted(signal);
    // A fresh session per attempt: nothing has to keep it alive while we wait.
    const startedMs = Date.now();
    const sessionId = await store.createSession({ ttlSeconds, name: `leader:${key}` });
    try {
      aborted(signal);
      const result = await store.put(key, options.value, { casIndex: 0, sessionId });
      if (result.ok) return lead(store, options, sessionId, result.index, startedMs);
    } catch (err) {
      await store.destroySession(sessionId).catch(() => undefined);
      throw err;
    }
    await store.destroySession(sessionId).catch(() => undefined);
  }
}

/** Wait until the leader key is gone (or the signal aborts). */
async function waitForVacancy(store: StateStore, key: string, signal: AbortSignal | undefined): Promise<void> {
  const current = await store.list(key);
  if (!current.entries.some((e) => e.key === key)) return;
  aborted(signal);
  const watch = store.watch(key, { fromIndex: current.index, ...(signal ? { signal } : {}) });
  try {
    for await (const batch of watch) {
      if (batch.kind === 'resync') {
        if (!batch.entries.some((e) => e.key === key)) return;
      } else if (batch.events.some((e) => e.type === 'delete' && e.key === key)) {
        return;
      }
    }
  } finally {
    watch.close();
  }
}

function lead(store: StateStore, options: CampaignOptions, sessionId: string, token: number, wonAtMs: number): Leadership {
  const { key, ttlSeconds } = options;
  const ttlMs = ttlSeconds * 1000;
  const lost = new AbortController();
  const stopWatch = new AbortController();
  // This candidate may believe it leads only until `validUntilMs`: the send
  // time of the last renewal that succeeded, plus the TTL, less a margin for
  // clock rate. A renewal that hangs cannot extend it, so a leader cut off
  // from the store steps down within its TTL, as the store's expiry does.
  let validUntilMs = wonAtMs + ttlMs * 0.9;
  let renewing = false;

  const onOuterAbort = (): void => void leadership.resign();
  const step = (reason: string): void => {
    if (lost.signal.aborted) return;
    clearInterval(timer);
    stopWatch.abort();
    options.signal?.removeEventListener('abort', onOuterAbort);
    lost.abort(new StrataError('PROCESS_LEADER_LOST', reason));
  };

  const tickMs = Math.max(50, Math.min(ttlMs / 10, 500));
  let lastRenewStartMs = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    if (now >= validUntilMs) {
      step(`could not renew the leader session for ${key} within its TTL`);
      return;
    }
    if (renewing || now - lastRenewStartMs < ttlMs / 3) return;
    renewing = true;
    lastRenewStartMs = now;
    store.renewSession(sessionId).then(
      (alive) => {
        if (alive) validUntilMs = Math.max(validUntilMs, now + ttlMs * 0.9);
        else step(`leader session for ${key} expired`);
      },
      (err: unknown) => options.onWarning?.('leader session renewal failed; retrying', err),
    ).finally(() => {
      renewing = false;
    });
  }, tickMs);
  timer.unref();

  // Notice at once when the key is deleted or taken over. If the watch ends
  // for any reason but our own stop, leadership can no longer be checked:
  // step down rather than lead blind.
  void (async () => {
    try {
      const watch = store.watch(key, { fromIndex: token, signal: stopWatch.signal });
      for await (const batch of watch) {
        const entries = batch.kind === 'resync' ? batch.entries.map((entry) => ({ type: 'put' as const, entry })) : batch.events;
        const gone = batch.kind === 'resync' && !batch.entries.some((e) => e.key === key);
        const changed = entries.some((e) =>
          e.type === 'delete' ? e.key === key : e.entry.key === key && e.entry.modifyIndex !== token,
        );
        if (gone || changed) step(`leader key ${key} was deleted or taken over`);
      }
      step(`the watch on leader key ${key} ended`);
    } catch (err) {
      if (!stopWatch.signal.aborted) options.onWarning?.('leader key watch failed', err);
      step(`the watch on leader key ${key} failed`);
    }
  })();

  const leadership: Leadership = {
    token,
    signal: lost.signal,
    async fencedTxn(request: TxnRequest): Promise<TxnResult> {
      if (lost.signal.aborted) throw new StrataError('STORE_FENCED', `not the leader of ${key} any more`);
      const result = await store.txn({ conditions: [{ key, modifyIndex: token }, ...(request.conditions ?? [])], writes: request.writes });
      if (result.ok) return result;
      if (result.failed.includes(0)) {
        step(`leader key ${key} no longer holds token ${token}`);
        throw new StrataError('STORE_FENCED', `write refused: ${key} is no longer held with token ${token}`);
      }
      return { ok: false, failed: result.failed.map((i) => i - 1) };
    },
    async resign(): Promise<void> {
      const wasLeading = !lost.signal.aborted;
      step('resigned');
      if (wasLeading) await store.delete(key, { casIndex: token }).catch(() => undefined);
      await store.destroySession(sessionId).catch(() => undefined);
    },
  };
  // Aborted while the winning write was in flight: give the win back at once.
  if (options.signal?.aborted) void leadership.resign();
  else options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  return leadership;
}

/**
 * Blocking queries (Consul's `?index=N&wait=S`): a view made of records of
 * some kinds answers at once when asked without an index (or from the
 * future), else when a record of those kinds changes after the index, or
 * when the wait ends. The agents' dataplanes follow the VIP and policy
 * views this way, with no polling interval.
 */
import type { FastifyReply } from 'fastify';
import type { RecordKind } from '../model/schemas.ts';
import { prefix } from '../model/keys.ts';
import type { ApiContext } from './context.ts';

export const DEFAULT_WAIT_SECONDS = 30;
export const MAX_WAIT_SECONDS = 60;

/** Resolve when anything of `kinds` changes after `fromIndex`, or when `signal` aborts. */
export async function changedAfter(ctx: ApiContext, kinds: readonly RecordKind[], fromIndex: number, signal: AbortSignal): Promise<void> {
  const inner = new AbortController();
  const stop = (): void => inner.abort();
  signal.addEventListener('abort', stop, { once: true });
  try {
    await Promise.race(
      kinds.map(async (kind) => {
        for await (const batch of ctx.store.watch(prefix(kind), { fromIndex, signal: inner.signal })) {
          if (batch.kind === 'resync' || batch.events.length > 0) return;
        }
      }),
    );
  } finally {
    inner.abort();
    signal.removeEventListener('abort', stop);
  }
}

/**
 * Answer `view()` now, or after a change to `kinds` past `index` (at most
 * `waitSeconds`, or until the client goes away). The answer's index never
 * goes below the one asked.
 */
export async function blockingView<T extends { index: number }>(
  ctx: ApiContext,
  reply: FastifyReply,
  options: { kinds: readonly RecordKind[]; index: number | undefined; waitSeconds: number | undefined; view: () => Promise<T> },
): Promise<T> {
  const first = await options.view();
  const from = options.index;
  if (from === undefined || from === 0 || from > first.index) return first;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), Math.min(options.waitSeconds ?? DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS) * 1000);
  const onClose = (): void => stop.abort();
  reply.raw.once('close', onClose);
  try {
    await changedAfter(ctx, options.kinds, from, stop.signal);
  } finally {
    clearTimeout(timer);
    stop.abort();
    reply.raw.off('close', onClose);
  }
  const now = await options.view();
  return { ...now, index: Math.max(now.index, from) };
}

/**
 * Calling "the master" from a node (agent-side followers: the kernel load
 * balancer, the overlay): every master serves the same API from the shared
 * store, so a caller given several uses one at a time and moves to the next
 * when a call fails for a reason another master may not have (no
 * connection, no answer in time, a 5xx). A 4xx is the caller's own problem
 * (a bad token is bad on every master) and moves nothing.
 *
 * `MasterChoice` is the port; the agent's `MasterUrls`
 * (scheduler/agent/masters.ts) implements it, and one instance is shared by
 * every follower of an agent so they all move together.
 */
import { StrataError } from './errors.ts';

export interface MasterChoice {
  /** The master to call now (base URL, no trailing slash needed). */
  readonly current: string;
  /** A call to `url` failed in a way another master may not: move on if `url` is still the current one. */
  failed(url: string): void;
}

export interface MasterFetchOptions extends RequestInit {
  /** Give up on this master after this long (no answer counts as a failure of this master). */
  readonly timeoutMs?: number;
  /** How to call (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: (url: string, init?: RequestInit) => Promise<Response>;
}

/** Code `MASTER_UNREACHABLE`: a master that would not answer; the message names it and the path. */
export class MasterUnreachableError extends StrataError {
  readonly master: string;
  constructor(master: string, path: string, cause: unknown) {
    super('MASTER_UNREACHABLE', `cannot reach the master ${master} for ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, details: { master, path } });
    this.name = 'MasterUnreachableError';
    this.master = master;
  }
}

/**
 * `fetch` `path` from the current master. Network failures and timeouts
 * throw {@link MasterUnreachableError} and a 5xx answer is returned; both
 * first tell `masters` that master failed, so the caller's retry goes to the
 * next. An abort through `init.signal` throws as `fetch` does and moves
 * nothing (the caller is stopping).
 */
export async function fetchFromMaster(masters: MasterChoice, path: string, init: MasterFetchOptions = {}): Promise<Response> {
  const base = masters.current;
  const { timeoutMs, signal, fetch: call = fetch, ...rest } = init;
  const signals = [signal, timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)].filter((s): s is AbortSignal => s !== undefined && s !== null);
  let res: Response;
  try {
    res = await call(`${base.replace(/\/+$/, '')}${path}`, { ...rest, ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}) });
  } catch (err) {
    if (signal?.aborted) throw err;
    masters.failed(base);
    throw new MasterUnreachableError(base, path, err);
  }
  if (res.status >= 500) masters.failed(base);
  return res;
}

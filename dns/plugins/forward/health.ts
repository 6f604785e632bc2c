/**
 * Upstream health and choice, pure (time and randomness come in as values).
 *
 * Spartan keeps a cumulative failure counter per upstream that never goes
 * down, so one bad minute marks a resolver for the life of the process. Here
 * each failure adds 1 to a score that halves every `halfLifeMs`, so an
 * upstream that recovered is chosen again after a few half-lives.
 *
 * Choice (Spartan's dual dispatch, with the decaying score): with fewer than
 * 3 upstreams all are asked at once; otherwise upstreams are grouped by their
 * score rounded to a whole number, shuffled within a group, and the first 2
 * are asked at once. The rest, in the same order, are the fallbacks tried as
 * earlier attempts fail. Rounding means one failure keeps an upstream out of
 * the first group for one half-life, two failures for two, and so on.
 */

export interface HealthState {
  /** Failure score at `atMs`. */
  readonly score: number;
  readonly atMs: number;
}

export class UpstreamHealth {
  readonly #halfLifeMs: number;
  readonly #states = new Map<string, HealthState>();

  constructor(options: { halfLifeMs: number }) {
    this.#halfLifeMs = options.halfLifeMs;
  }

  /** The decayed failure score of `key` at `nowMs` (0 = healthy). */
  score(key: string, nowMs: number): number {
    const state = this.#states.get(key);
    if (!state) return 0;
    return state.score * Math.pow(0.5, Math.max(0, nowMs - state.atMs) / this.#halfLifeMs);
  }

  recordFailure(key: string, nowMs: number): void {
    this.#states.set(key, { score: this.score(key, nowMs) + 1, atMs: nowMs });
  }

  /** A success takes half a failure off: recovery is quicker under traffic than by time alone. */
  recordSuccess(key: string, nowMs: number): void {
    const score = this.score(key, nowMs);
    if (score > 0) this.#states.set(key, { score: score < 0.05 ? 0 : score / 2, atMs: nowMs });
  }
}

export interface Plan<T> {
  /** Asked at once. */
  readonly first: readonly T[];
  /** Asked one by one as attempts fail, in this order. */
  readonly fallbacks: readonly T[];
}

/** Orders upstreams for one query. `random` returns [0, 1). */
export function planAttempts<T extends { readonly key: string }>(
  upstreams: readonly T[],
  scoreOf: (key: string) => number,
  random: () => number,
): Plan<T> {
  if (upstreams.length < 3) return { first: upstreams, fallbacks: [] };
  const ranked = upstreams
    .map((u) => ({ u, bucket: Math.round(scoreOf(u.key)), tie: random() }))
    .sort((a, b) => a.bucket - b.bucket || a.tie - b.tie)
    .map((r) => r.u);
  return { first: ranked.slice(0, 2), fallbacks: ranked.slice(2) };
}

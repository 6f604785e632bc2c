/**
 * The scaffolding every watch-driven leader loop shares (VIP allocator,
 * agent monitor, overlay address reaper): rounds run one at a time, a
 * change in any watched view wakes the next one (after `debounceMs`), a
 * round may ask to run again at once or at a time of its own, a failed
 * round is retried after a second, a fenced write ends the loop (another
 * master leads), and a view that stops gives the leadership up. The
 * decisions stay in each loop's `round`.
 */
import { isStrataError } from '../common/errors.ts';
import type { RecordView } from './model/records.ts';
import type { Leadership } from './store/election.ts';

export interface LeaderRoundsOptions {
  readonly leadership: Leadership;
  readonly log: { error(obj: object, msg: string): void };
  /** What the loop does, for its log lines ("VIP allocation"). */
  readonly what: string;
  /** The views whose changes wake a round; closed when the loop ends. */
  readonly views: readonly RecordView<unknown>[];
  /** Wait this long after a change before the round, so bursts cost one (default 0). */
  readonly debounceMs?: number;
  /**
   * One round. Returns `'again'` to run once more at once (a write lost its
   * check-and-set), a time (ms since the epoch) to run again without a
   * change, or nothing.
   */
  readonly round: () => Promise<'again' | number | undefined>;
  /** Retry a failed round after this long (ms; default 1000). */
  readonly retryMs?: number;
}

/** Run rounds until the leadership ends (or a view fails, which resigns it). */
export async function runLeaderRounds(options: LeaderRoundsOptions): Promise<void> {
  const { leadership, log, views } = options;
  const { signal } = leadership;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;

  const schedule = (delayMs: number): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void rounds(), Math.max(0, delayMs));
  };
  const rounds = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        if (signal.aborted) return;
        const next = await options.round();
        if (next === 'again') again = true;
        else if (next !== undefined && !again) schedule(next - Date.now());
      } while (again && !signal.aborted);
    } catch (err) {
      if (isStrataError(err, 'STORE_FENCED') || signal.aborted) return;
      log.error({ err }, `${options.what} round failed; retrying in ${(options.retryMs ?? 1000) / 1000} s`);
      schedule(options.retryMs ?? 1000);
    } finally {
      running = false;
    }
  };
  const wake = (): void => schedule(options.debounceMs ?? 0);

  for (const view of views) view.subscribe(wake);
  wake();
  try {
    await Promise.race(views.map((v) => v.ended));
  } catch (err) {
    if (!signal.aborted) {
      log.error({ err }, `a ${options.what} view stopped; resigning the leadership`);
      await leadership.resign();
    }
  } finally {
    if (timer) clearTimeout(timer);
    for (const view of views) view.close();
  }
}

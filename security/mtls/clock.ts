/**
 * Time and timers as a port: certificate renewal schedules itself with
 * `setTimer`, so tests fire renewals themselves instead of waiting.
 */
export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): { cancel(): void };
}

/** The real clock; timers are unref'd (a pending renewal never keeps a process alive) and longer than 2^31-1 ms re-arm. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const max = 2 ** 31 - 1;
    let timer: NodeJS.Timeout;
    const arm = (left: number): void => {
      timer = setTimeout(() => (left > max ? arm(left - max) : fn()), Math.min(left, max));
      timer.unref();
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(timer) };
  },
};

/** A clock for tests: time moves only when told, timers fire only through `fire`/`advance`. */
export class ManualClock implements Clock {
  #now: number;
  readonly #timers = new Set<{ at: number; fn: () => void }>();

  constructor(startMs = Date.now()) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): { cancel(): void } {
    const t = { at: this.#now + Math.max(0, ms), fn };
    this.#timers.add(t);
    return { cancel: () => this.#timers.delete(t) };
  }

  /** When the next timer is due (ms since epoch), if any. */
  get nextAt(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers) if (min === undefined || t.at < min) min = t.at;
    return min;
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Move to the next timer's time and fire every timer due by then. */
  fireNext(): void {
    const at = this.nextAt;
    if (at !== undefined) this.advance(Math.max(0, at - this.#now));
  }

  advance(ms: number): void {
    this.#now += ms;
    for (const t of [...this.#timers]) {
      if (t.at <= this.#now) {
        this.#timers.delete(t);
        t.fn();
      }
    }
  }
}

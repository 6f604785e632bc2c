/**
 * The timers of a task's periodic probes (health and readiness checks):
 * schedule a probe, and stop them all at once when the task ends. After
 * `stop()`, nothing is scheduled any more and `stopped` tells a probe in
 * flight to drop its result.
 */
export class ProbeTimers {
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Run `probe` after `delayMs`, unless stopped by then. */
  schedule(delayMs: number, probe: () => Promise<void>): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void probe();
    }, delayMs);
    this.#timers.add(timer);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

/**
 * The masters an agent talks to: `--agent-master-url` may list several
 * (`http://m1:8080,http://m2:8080`). Every master serves the agent endpoints
 * from the shared store (a standby too), so the agent uses one at a time and
 * moves to the next when a call to it fails for a reason that another master
 * may not have (no connection, a timeout, a 5xx). With one URL nothing moves.
 * Shared by the registration loop and the task runner, so both follow the
 * same master.
 */
import { StrataError } from '../../common/errors.ts';

export class MasterUrls {
  readonly #urls: readonly string[];
  #current = 0;

  constructor(urls: string | readonly string[]) {
    const list = (typeof urls === 'string' ? urls.split(',') : urls).map((u) => u.trim().replace(/\/+$/, '')).filter((u) => u !== '');
    if (list.length === 0) throw new StrataError('CONFIG_INVALID', 'config: agent.masterUrl names no master');
    for (const u of list) {
      if (!/^https?:\/\/[^\s,]+$/.test(u)) throw new StrataError('CONFIG_INVALID', `config: agent.masterUrl has ${JSON.stringify(u)}; each master must be an http(s) URL`);
    }
    this.#urls = list;
  }

  /** Every master, in the configured order. */
  get all(): readonly string[] {
    return this.#urls;
  }

  /** The master to call now. */
  get current(): string {
    return this.#urls[this.#current]!;
  }

  /**
   * A call to `url` failed in a way another master may not: use the next one.
   * Ignored when `url` is no longer the current master (a call that started
   * before someone else moved on), so concurrent failures move one step.
   */
  failed(url: string): void {
    if (this.#urls.length > 1 && url === this.current) this.#current = (this.#current + 1) % this.#urls.length;
  }
}

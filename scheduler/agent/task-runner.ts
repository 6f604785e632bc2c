/**
 * The agent's task runner: it long-polls the master for the tasks assigned
 * to this agent, runs them with the {@link Executor} and reports every state
 * back.
 *
 * Contract with the master (see README.md next to this file):
 * - `GET /v1/agents/{id}/tasks?index=N&wait=S` → `{index, tasks}`: every
 *   non-terminal task assigned here, blocking until something changes past N.
 * - `PUT /v1/agents/{id}/tasks/{taskId}/status` → the updated task; 404 = not
 *   ours (any more), 409 = already terminal: both end that report.
 * - A task the master sets to KILLING is killed here (the app's grace).
 * - `GET /v1/agents/{id}/tasks/{taskId}/app` → the app at the task's version
 *   (under the agent's own permission; only for its own tasks).
 *
 * What it does with each listing:
 * - STAGING and not known here: fetch the app version, build the spec with
 *   `launchSpecFromApp`, launch. A missing app version or a spec the
 *   executor refuses is reported ERROR; a transient failure is retried.
 * - KILLING: kill it; unknown here: report KILLED at once.
 * - STARTING/RUNNING (or any other non-terminal state) unknown here: LOST.
 * - The master shows a state other than ours and no report is pending: ours
 *   is sent again (a report lost in a failover, an UNREACHABLE task back).
 * - Running here but no longer listed: killed once it has been missing for
 *   `orphanGraceMs` and at least two listings in a row (the master removed
 *   it or gave it up as lost; a listing racing a launch cannot kill it).
 *
 * Reports go through a queue per task: one request in flight per task, and
 * a newer status replaces one not yet sent (coalescing: while the master is
 * unreachable only the latest state is kept, never lost; a terminal state
 * is never replaced). Failures are retried with doubling backoff up to
 * `retryMaxMs`; a listing that succeeds after failures retries at once.
 *
 * Health checks: for each RUNNING task whose app has `healthChecks`, a
 * `HealthChecker` (`../executor/health.ts`) runs them; results ride on the
 * task's reports (`healthCheckResults`), queued only when `alive` or a
 * failure count changes. A check reaching `maxConsecutiveFailures` makes
 * this agent kill the task (KILLING/KILLED with REASON_HEALTH_CHECK_FAILED);
 * the controller has the same rule as a backstop. Readiness checks
 * (`../executor/readiness.ts`) run the same way until the task is ready;
 * their verdicts ride on reports as `readinessCheckResults`.
 *
 * On start, `recover()` runs first: re-attached tasks are reported RUNNING
 * and dead ones LOST (through the same queue); tasks that had ended are kept
 * as local knowledge and re-reported only when the master still lists them.
 * `close()` stops polling and reporting but leaves tasks running: the next
 * start recovers them, and what was not yet reported is derived again.
 */
import type { FetchLike } from '../../security/mtls/client.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { StrataError } from '../../common/errors.ts';
import { TERMINAL_TASK_STATES, type App, type HealthCheckResult, type ReadinessCheckResult, type Task, type TaskIpAddress, type TaskState } from '../../control-plane/model/schemas.ts';
import { taskEnvironment } from '../executor/env.ts';
import type { Executor, TaskStatus } from '../executor/executor.ts';
import { HealthChecker } from '../executor/health.ts';
import { ReadinessChecker } from '../executor/readiness.ts';
import { launchSpecFromApp } from '../executor/spec.ts';
import { MasterUrls } from './masters.ts';
import { containerNetworkOf, type TaskNetworking } from './task-networking.ts';

export interface TaskRunnerOptions {
  readonly agentId: string;
  /** The master's API, or several, comma-separated. */
  readonly masterUrl: string;
  /** The masters to follow, shared with the registration loop (default: made from `masterUrl`). */
  readonly masters?: MasterUrls;
  /** Asked before every request (tokens may be renewed). */
  readonly token: () => Promise<string>;
  readonly executor: Executor;
  readonly logger: Logger;
  /** Long-poll `wait` in seconds. Default 30. */
  readonly waitSeconds?: number;
  /** First retry delay of a failed report, listing or app fetch; doubles up to `retryMaxMs`. Default 500 ms. */
  readonly retryInitialMs?: number;
  /** Default 30 s. */
  readonly retryMaxMs?: number;
  /** How long a task running here may be missing from the master's listings before it is killed. Default 30 s. */
  readonly orphanGraceMs?: number;
  /** Shortest time between two listings that return the same index (guards against a master that does not block). Default 250 ms. */
  readonly minPollIntervalMs?: number;
  /** Container networks (apps with `networks: [{mode: "container"}]`); without it their tasks are ERROR. */
  readonly networking?: TaskNetworking;
  /** How to call the master (default: global fetch; agents pass their mTLS client's). */
  readonly fetch?: FetchLike;
}

/** What the status endpoint takes. */
export interface StatusReport {
  readonly state: TaskState;
  readonly message?: string;
  readonly reason?: string;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly timestamp?: string;
  readonly healthCheckResults?: readonly HealthCheckResult[];
  readonly readinessCheckResults?: readonly ReadinessCheckResult[];
  readonly ipAddresses?: readonly TaskIpAddress[];
}

/** Mesos's reason for a task killed because its health checks failed. */
export const REASON_HEALTH_CHECK_FAILED = 'REASON_HEALTH_CHECK_FAILED';

/** A failure worth retrying (network, 5xx, 401/403 while a token renews). */
class TransientError extends Error {}
/** The master refused a task's secrets: the launch fails with Mesos's `REASON_SECRET_GENERATION_FAILED`. */
class SecretFetchError extends Error {}

const isTerminal = (state: TaskState): boolean => TERMINAL_TASK_STATES.has(state);
/** The app's health checks (a master may leave the field out). */
const checksOf = (app: App): App['healthChecks'] => (Array.isArray(app.healthChecks) ? app.healthChecks : []);
/** The app's readiness checks (a master may leave the field out). */
const readinessOf = (app: App): App['readinessChecks'] => (Array.isArray(app.readinessChecks) ? app.readinessChecks : []);
/** Whether the agent has checks to run for the app's tasks (health or readiness). */
const hasChecks = (app: App): boolean => checksOf(app).length > 0 || readinessOf(app).length > 0;

function statusReport(status: TaskStatus, health: readonly HealthCheckResult[] | undefined, readiness?: readonly ReadinessCheckResult[], ipAddresses?: readonly TaskIpAddress[]): StatusReport {
  return {
    ...(ipAddresses !== undefined ? { ipAddresses } : {}),
    ...(health !== undefined ? { healthCheckResults: health } : {}),
    ...(readiness !== undefined ? { readinessCheckResults: readiness } : {}),
    state: status.state,
    timestamp: status.timestamp,
    ...(status.message !== undefined ? { message: status.message.slice(0, 4096) } : {}),
    ...(status.reason !== undefined ? { reason: status.reason.slice(0, 128) } : {}),
    ...(status.exitCode !== undefined ? { exitCode: status.exitCode } : {}),
    ...(status.signal !== undefined ? { signal: status.signal } : {}),
  };
}

interface ReportQueue {
  /** The status to send next (the latest one not yet delivered). */
  pending: TaskStatus | undefined;
  inFlight: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

/** App versions kept for launches (the oldest fetched goes first). */
const MAX_APP_VERSIONS = 256;

export class TaskRunner {
  readonly #o: Required<Omit<TaskRunnerOptions, 'logger' | 'executor' | 'token' | 'masters' | 'networking' | 'fetch'>> & Pick<TaskRunnerOptions, 'logger' | 'executor' | 'token' | 'networking' | 'fetch'>;
  /** Container IPs of tasks attached by this run, sent with their reports. */
  readonly #ips = new Map<string, readonly TaskIpAddress[]>();
  readonly #masters: MasterUrls;
  readonly #abort = new AbortController();
  readonly #queues = new Map<string, ReportQueue>();
  readonly #idleWaiters = new Set<() => void>();
  /** The latest status of every task this agent knows of (launched, re-attached, lost, ended before a restart). */
  readonly #local = new Map<string, TaskStatus>();
  readonly #launching = new Set<string>();
  readonly #killAfterLaunch = new Set<string>();
  readonly #missingSince = new Map<string, { since: number; listings: number }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Secret values of tasks launched here (for their COMMAND health checks' environment), dropped when the task ends. */
  readonly #secrets = new Map<string, Readonly<Record<string, string>>>();
  /** Apps of the tasks launched here (for their health checks). */
  readonly #apps = new Map<string, App>();
  readonly #checkers = new Map<string, HealthChecker>();
  /** Readiness checkers (kept once ready, as the marker that the task's checks started). */
  readonly #readinessCheckers = new Map<string, ReadinessChecker>();
  /** The readiness results to send with the task's next report. */
  readonly #readiness = new Map<string, readonly ReadinessCheckResult[]>();
  readonly #healthStarting = new Set<string>();
  /**
   * Apps by `<app id>@<version>`, fetched (or being fetched) for a task of
   * that app version: the other tasks of the same version reuse it (stored
   * versions never change), so launching 100 instances asks the master once,
   * not 100 times. A failed fetch is forgotten (the next one asks again).
   */
  readonly #appVersions = new Map<string, Promise<App>>();
  /** Tasks whose app has no health checks (so it is not fetched again for them). */
  readonly #noChecks = new Set<string>();
  /** The health results to send with the task's next report (the latest significant ones). */
  readonly #health = new Map<string, readonly HealthCheckResult[]>();
  /** Tasks this agent kills for failed health checks, and why. */
  readonly #healthKilled = new Map<string, string>();
  #listed = new Map<string, Task>();
  #index = 0;
  #listingFailures = 0;
  #loop: Promise<void> | undefined;
  #closed = false;
  readonly #onStatus = (raw: TaskStatus): void => {
    let status = raw;
    const why = this.#healthKilled.get(status.taskId);
    if (why !== undefined && (status.state === 'KILLING' || status.state === 'KILLED')) {
      status = { ...status, reason: REASON_HEALTH_CHECK_FAILED, message: `${why}; ${status.message ?? ''}`.replace(/; $/, '') };
    }
    this.#local.set(status.taskId, status);
    if (status.state === 'RUNNING') {
      const app = this.#apps.get(status.taskId);
      if (app) this.#startHealth(status.taskId, app, this.#listed.get(status.taskId)?.ports);
    } else if (status.state !== 'STAGING' && status.state !== 'STARTING') {
      this.#stopHealth(status.taskId);
    }
    if (status.state !== 'STAGING') this.#enqueue(status);
    if (isTerminal(status.state)) {
      this.#detach(status.taskId);
      this.#apps.delete(status.taskId);
      this.#secrets.delete(status.taskId);
      this.#noChecks.delete(status.taskId);
      this.#healthKilled.delete(status.taskId);
    }
  };

  constructor(options: TaskRunnerOptions) {
    this.#o = {
      waitSeconds: 30,
      retryInitialMs: 500,
      retryMaxMs: 30_000,
      orphanGraceMs: 30_000,
      minPollIntervalMs: 250,
      ...options,
    };
    this.#masters = options.masters ?? new MasterUrls(options.masterUrl);
  }

  /** The index of the last listing applied. */
  get index(): number {
    return this.#index;
  }

  /** Recovers the executor's sandboxes (reporting RUNNING or LOST for each), then starts polling. */
  async start(): Promise<void> {
    if (this.#loop) throw new Error('the task runner is already started');
    const { executor, logger } = this.#o;
    executor.on('status', this.#onStatus);
    const report = await executor.recover();
    for (const status of report.terminated) if (!this.#local.has(status.taskId)) this.#local.set(status.taskId, status);
    // Running tasks keep their namespaces and veths untouched; those of tasks that ended meanwhile go.
    for (const status of [...report.terminated, ...report.lost]) this.#detach(status.taskId);
    if (report.recovered.length + report.lost.length > 0) {
      logger.info({ recovered: report.recovered.map((h) => h.taskId), lost: report.lost.map((s) => s.taskId) }, 'recovered the sandboxes of an earlier run');
    }
    this.#loop = this.#pollLoop();
  }

  /** Stops polling and reporting; tasks keep running (the next start recovers them). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#o.executor.off('status', this.#onStatus);
    for (const q of this.#queues.values()) clearTimeout(q.timer);
    for (const t of this.#timers) clearTimeout(t);
    for (const c of this.#checkers.values()) c.stop();
    this.#checkers.clear();
    for (const c of this.#readinessCheckers.values()) c.stop();
    this.#readinessCheckers.clear();
    await this.#loop;
    for (const resolve of this.#idleWaiters) resolve();
  }

  /** Resolves when no report is pending or in flight (tests; a clean shutdown). */
  reportsIdle(): Promise<void> {
    if (this.#allIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.add(resolve));
  }

  // --- the listing loop

  async #pollLoop(): Promise<void> {
    const { logger, agentId } = this.#o;
    const path = `/v1/agents/${encodeURIComponent(agentId)}/tasks`;
    while (!this.#closed) {
      const started = Date.now();
      try {
        const wait = this.#listingWaitSeconds(started);
        const body = await this.#request('GET', `${path}?index=${this.#index}&wait=${wait}`, undefined, (wait + 15) * 1000);
        const { index, tasks } = (body ?? {}) as { index?: unknown; tasks?: unknown };
        if (typeof index !== 'number' || !Array.isArray(tasks)) throw new StrataError('API_BAD_REQUEST', 'the master answered the task listing without {index, tasks}');
        if (this.#listingFailures > 0) {
          logger.info({ failures: this.#listingFailures }, 'task listing works again');
          this.#listingFailures = 0;
          this.#retryReportsNow();
        }
        const same = index === this.#index;
        this.#index = index;
        this.#apply(tasks as Task[]);
        if (same && Date.now() - started < this.#o.minPollIntervalMs) await this.#sleep(this.#o.minPollIntervalMs - (Date.now() - started));
      } catch (err) {
        if (this.#closed) break;
        this.#listingFailures++;
        const level = this.#listingFailures === 1 || this.#listingFailures % 10 === 0 ? 'warn' : 'debug';
        logger[level]({ err, failures: this.#listingFailures }, 'task listing failed; retrying with backoff');
        await this.#sleep(this.#backoff(this.#listingFailures));
      }
    }
  }

  /**
   * How long the next listing may block: `waitSeconds`, or less while a task
   * is missing from the listings, so that the listing that finds it still
   * missing comes once its grace is over (a blocking listing of an agent
   * whose tasks do not change would otherwise keep an orphan alive for
   * `waitSeconds` more).
   */
  #listingWaitSeconds(now: number): number {
    let wait = this.#o.waitSeconds;
    for (const m of this.#missingSince.values()) wait = Math.min(wait, Math.max(0.5, (m.since + this.#o.orphanGraceMs - now) / 1000));
    return Math.round(wait * 10) / 10;
  }

  #apply(tasks: readonly Task[]): void {
    const { executor, logger } = this.#o;
    this.#listed = new Map(tasks.filter((t) => t && typeof t.id === 'string').map((t) => [t.id, t]));
    for (const task of this.#listed.values()) {
      try {
        this.#applyOne(task);
      } catch (err) {
        logger.error({ err, taskId: task.id }, 'could not act on a listed task');
      }
    }
    // Orphans: running here, no longer listed by the master.
    const now = Date.now();
    const missing = new Set<string>();
    for (const handle of executor.tasks()) {
      const id = handle.taskId;
      if (isTerminal(handle.state) || this.#listed.has(id) || this.#launching.has(id)) continue;
      missing.add(id);
      const m = this.#missingSince.get(id) ?? { since: now, listings: 0 };
      m.listings++;
      this.#missingSince.set(id, m);
      if (m.listings >= 2 && now - m.since >= this.#o.orphanGraceMs && handle.state !== 'KILLING') {
        logger.warn({ taskId: id, missingMs: now - m.since }, 'killing a task the master no longer assigns to this agent');
        void handle.kill();
      }
    }
    for (const id of this.#missingSince.keys()) if (!missing.has(id)) this.#missingSince.delete(id);
  }

  #applyOne(task: Task): void {
    const { executor, logger } = this.#o;
    const handle = executor.get(task.id);
    const local = handle?.status ?? this.#local.get(task.id);
    if (task.state === 'KILLING') {
      if (this.#launching.has(task.id)) {
        this.#killAfterLaunch.add(task.id);
      } else if (handle && !isTerminal(handle.state)) {
        if (handle.state !== 'KILLING') logger.info({ taskId: task.id }, 'killing a task, as the master asks');
        void handle.kill();
      } else if (local) {
        this.#reReport(local);
      } else {
        this.#reportUnknown(task.id, 'KILLED', 'Killed: the task was not running on this agent');
      }
      return;
    }
    if (this.#launching.has(task.id)) return;
    if (handle?.state === 'RUNNING' && !this.#checkers.has(task.id) && !this.#readinessCheckers.has(task.id) && !this.#noChecks.has(task.id)) this.#ensureHealth(task);
    if (task.state === 'STAGING' && !local) {
      this.#launching.add(task.id);
      void this.#launch(task, 0);
      return;
    }
    if (!local) {
      this.#reportUnknown(task.id, 'LOST', `The task (${task.state} on the master) is unknown to this agent`, 'REASON_RECONCILIATION');
      return;
    }
    // The master shows another state than ours: send ours again (only when nothing is on its way).
    if (local.state !== task.state && local.state !== 'STAGING') this.#reReport(local);
  }

  async #launch(task: Task, attempt: number): Promise<void> {
    const { executor, logger } = this.#o;
    try {
      const app = await this.#fetchApp(task.id, task.appId, task.version);
      if (this.#closed) return;
      // Secrets before the network: a refused secret leaves nothing attached.
      const secrets = Object.keys(app.secrets ?? {}).length > 0 ? await this.#fetchSecrets(task.id) : undefined;
      if (this.#closed) return;
      const network = containerNetworkOf(app);
      let netnsPath: string | undefined;
      if (network !== undefined) {
        try {
          if (!this.#o.networking) throw new StrataError('OVERLAY_ATTACH', 'this agent runs without container networking');
          const attached = await this.#o.networking.attach(task.id, network);
          netnsPath = attached.netnsPath;
          this.#ips.set(task.id, attached.ipAddresses);
        } catch (err) {
          if (this.#closed) return;
          this.#launching.delete(task.id);
          this.#killAfterLaunch.delete(task.id);
          logger.error({ err, taskId: task.id, network }, 'cannot attach a task to its network');
          const status: TaskStatus = { taskId: task.id, state: 'ERROR', timestamp: new Date().toISOString(), reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Cannot join network ${JSON.stringify(network)}: ${(err as Error).message}` };
          this.#local.set(task.id, status);
          this.#enqueue(status);
          return;
        }
        if (this.#closed) return;
      }
      const spec = { ...launchSpecFromApp(app, { id: task.id, ports: task.ports ?? [] }, secrets), ...(netnsPath !== undefined ? { netnsPath } : {}) };
      if (secrets) this.#secrets.set(task.id, secrets);
      if (hasChecks(app)) this.#apps.set(task.id, app);
      else this.#noChecks.add(task.id);
      const handle = executor.launch(spec);
      logger.info({ taskId: task.id, appId: task.appId, version: task.version }, 'launching a task');
      this.#launching.delete(task.id);
      if (this.#killAfterLaunch.delete(task.id)) void handle.kill();
    } catch (err) {
      if (this.#closed) return;
      if (err instanceof TransientError) {
        logger.warn({ err, taskId: task.id, attempt }, 'cannot fetch the app of a task yet; retrying');
        this.#later(this.#backoff(attempt + 1), () => {
          const now = this.#listed.get(task.id);
          if (now?.state === 'STAGING' && !this.#killAfterLaunch.has(task.id)) return void this.#launch(now, attempt + 1);
          this.#launching.delete(task.id);
          if (this.#killAfterLaunch.delete(task.id)) this.#reportUnknown(task.id, 'KILLED', 'Killed before it was launched', 'REASON_TASK_KILLED_DURING_LAUNCH');
        });
        return;
      }
      this.#launching.delete(task.id);
      const killed = this.#killAfterLaunch.delete(task.id);
      logger.error({ err, taskId: task.id }, 'cannot launch a task');
      const status: TaskStatus = killed
        ? { taskId: task.id, state: 'KILLED', timestamp: new Date().toISOString(), reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before it was launched' }
        : err instanceof SecretFetchError
          ? { taskId: task.id, state: 'ERROR', timestamp: new Date().toISOString(), reason: 'REASON_SECRET_GENERATION_FAILED', message: `Cannot launch: ${err.message}` }
          : { taskId: task.id, state: 'ERROR', timestamp: new Date().toISOString(), reason: 'REASON_TASK_INVALID', message: `Cannot launch: ${(err as Error).message}` };
      this.#local.set(task.id, status);
      this.#enqueue(status);
    }
  }

  /** The app at `version` for a task of it: shared by every task of that app version (see `#appVersions`). */
  #fetchApp(taskId: string, appId: string, version: string): Promise<App> {
    const key = `${appId}@${version}`;
    const known = this.#appVersions.get(key);
    if (known) return known;
    const fetching = this.#fetchAppOnce(taskId, appId).then((app) => {
      if (app.version !== version) this.#appVersions.delete(key);
      return app;
    });
    fetching.catch(() => this.#appVersions.delete(key));
    this.#appVersions.set(key, fetching);
    if (this.#appVersions.size > MAX_APP_VERSIONS) this.#appVersions.delete(this.#appVersions.keys().next().value!);
    return fetching;
  }

  async #fetchAppOnce(taskId: string, appId: string): Promise<App> {
    const path = `/v1/agents/${encodeURIComponent(this.#o.agentId)}/tasks/${encodeURIComponent(taskId)}/app`;
    let body: App | undefined;
    try {
      body = (await this.#request('GET', path, undefined, 10_000)) as App | undefined;
    } catch (err) {
      // No permission to read the app: retrying will not help; the task's ERROR says why.
      if (err instanceof TransientError && / 403 /.test(err.message)) throw new StrataError('API_FORBIDDEN', err.message);
      throw err;
    }
    const app = body;
    if (!app || typeof app !== 'object' || app.id !== appId) throw new StrataError('API_BAD_REQUEST', `the master answered ${path} without the app`);
    return app;
  }

  /**
   * The values of a launching task's secrets, from the master (which checks
   * that the task is launching here and that each secret is in its app's
   * space). Kept in memory only, for the task's life (COMMAND health checks
   * see the task's environment); never logged.
   */
  async #fetchSecrets(taskId: string): Promise<Record<string, string>> {
    const path = `/v1/agents/${encodeURIComponent(this.#o.agentId)}/tasks/${encodeURIComponent(taskId)}/secrets`;
    let body: { secrets?: Record<string, string> } | undefined;
    try {
      body = (await this.#request('GET', path, undefined, 10_000)) as typeof body;
    } catch (err) {
      // Refused (not this task's, outside the app's space, no permission): retrying will not help.
      if (err instanceof TransientError && / 403 /.test(err.message)) throw new SecretFetchError(err.message);
      if (err instanceof StrataError) throw new SecretFetchError(err.message);
      throw err;
    }
    if (!body || typeof body.secrets !== 'object' || body.secrets === null) throw new SecretFetchError(`the master answered ${path} without the secrets`);
    return body.secrets;
  }

  /** A task the master lists that this agent does not know: answered with a terminal state, once. */
  #reportUnknown(taskId: string, state: TaskState, message: string, reason?: string): void {
    const status: TaskStatus = { taskId, state, timestamp: new Date().toISOString(), message, ...(reason ? { reason } : {}) };
    this.#local.set(taskId, status);
    this.#o.logger.warn({ taskId, state }, 'the master lists a task this agent does not know');
    this.#enqueue(status);
  }

  /** A task ended (or ended while the agent was down): its veth and namespace go (the master releases its IP). */
  #detach(taskId: string): void {
    const networking = this.#o.networking;
    if (!networking) return;
    networking.detach(taskId).catch((err: unknown) => this.#o.logger.warn({ err, taskId }, 'cannot remove the network namespace of an ended task'));
  }

  #reReport(status: TaskStatus): void {
    const q = this.#queues.get(status.taskId);
    if (q && (q.pending || q.inFlight)) return;
    this.#enqueue(status);
  }

  // --- health checks

  /** A RUNNING task without a checker (re-attached after a restart, or launched before): fetch its app if needed, then start. */
  #ensureHealth(task: Task): void {
    const app = this.#apps.get(task.id);
    if (app) return this.#startHealth(task.id, app, task.ports);
    if (this.#healthStarting.has(task.id)) return;
    this.#healthStarting.add(task.id);
    this.#fetchApp(task.id, task.appId, task.version)
      .then((fetched) => {
        if (!hasChecks(fetched)) return void this.#noChecks.add(task.id);
        this.#apps.set(task.id, fetched);
        this.#startHealth(task.id, fetched, task.ports);
      })
      .catch((err: unknown) => this.#o.logger.warn({ err, taskId: task.id }, 'cannot fetch the app of a running task for its health checks; retrying at the next listing'))
      .finally(() => this.#healthStarting.delete(task.id));
  }

  #startHealth(taskId: string, app: App, ports: readonly number[] | undefined): void {
    const { executor, logger } = this.#o;
    const handle = executor.get(taskId);
    if (this.#closed || this.#checkers.has(taskId) || this.#readinessCheckers.has(taskId) || !handle || handle.state !== 'RUNNING' || !hasChecks(app)) return;
    const taskPorts = ports ?? this.#listed.get(taskId)?.ports ?? [];
    // A task on a container network is probed at its container IP and container ports (its own namespace).
    const containerIp = containerNetworkOf(app) === undefined ? undefined : (this.#ips.get(taskId) ?? this.#listed.get(taskId)?.ipAddresses)?.[0]?.ipAddress;
    if (readinessOf(app).length > 0) {
      const readiness = new ReadinessChecker({
        taskId, app: { ...app, readinessChecks: readinessOf(app) }, ports: taskPorts,
        ...(containerIp === undefined ? {} : { host: containerIp, containerNetwork: true }),
        onResult: (results) => this.#onReadiness(taskId, results),
      });
      this.#readinessCheckers.set(taskId, readiness);
      logger.debug({ taskId, checks: readinessOf(app).length }, 'readiness checks started');
    }
    if (checksOf(app).length === 0) return;
    const spec = launchSpecFromApp(app, { id: taskId, ports: taskPorts }, this.#secrets.get(taskId));
    // COMMAND checks of a task in its own namespace run there too (`curl localhost:8080` means the task's port).
    const netnsPath = handle.netnsPath;
    const networking = this.#o.networking;
    let env: Record<string, string>;
    try {
      env = taskEnvironment(spec, { host: executor.host, sandbox: handle.sandbox });
    } catch (err) {
      logger.warn({ err, taskId }, 'cannot build the environment of COMMAND health checks');
      env = {};
    }
    const firstRunning = handle.history.find((s) => s.state === 'RUNNING');
    const startedAt = firstRunning ? Date.parse(firstRunning.timestamp) : Date.now();
    const checker = new HealthChecker({
      checks: checksOf(app),
      ports: containerIp === undefined ? taskPorts : spec.ports ?? [],
      ...(containerIp === undefined ? {} : { host: containerIp }),
      ...(netnsPath !== undefined && networking ? { spawnWithin: <T>(fn: () => T): T => networking.within(netnsPath, fn) } : {}),
      sandbox: handle.sandbox,
      env,
      startedAt,
      onResult: (results, changed, bad) => this.#onHealth(taskId, app, results, changed, bad),
    });
    this.#checkers.set(taskId, checker);
    logger.debug({ taskId, checks: checksOf(app).length }, 'health checks started');
  }

  #onHealth(taskId: string, app: App, results: readonly HealthCheckResult[], changed: boolean, bad: number | undefined): void {
    const { executor, logger } = this.#o;
    const handle = executor.get(taskId);
    if (!handle || handle.state !== 'RUNNING') return;
    if (bad !== undefined) {
      // The agent kills at once (as Mesos-level checks do); the KILLING and KILLED reports carry the results and the reason.
      const check = app.healthChecks[bad]!;
      const r = results[bad]!;
      const why = `Killed: health check ${bad} (${check.protocol}) failed ${r.consecutiveFailures} times in a row (maxConsecutiveFailures ${check.maxConsecutiveFailures}): ${r.lastFailureCause ?? ''}`.trim();
      logger.warn({ taskId, check: bad, failures: r.consecutiveFailures }, 'killing an unhealthy task');
      this.#health.set(taskId, results);
      this.#healthKilled.set(taskId, why);
      this.#stopHealth(taskId);
      void handle.kill();
      return;
    }
    if (!changed) return; // coalesced: a steady task does not report every interval
    this.#health.set(taskId, results);
    const local = this.#local.get(taskId);
    if (local && local.state === 'RUNNING') this.#enqueue(local);
  }

  #stopHealth(taskId: string): void {
    this.#checkers.get(taskId)?.stop();
    this.#checkers.delete(taskId);
    this.#readinessCheckers.get(taskId)?.stop();
    this.#readinessCheckers.delete(taskId);
  }

  /** A readiness verdict changed: it rides on the task's next report. */
  #onReadiness(taskId: string, results: readonly ReadinessCheckResult[]): void {
    const handle = this.#o.executor.get(taskId);
    if (!handle || handle.state !== 'RUNNING') return;
    this.#readiness.set(taskId, results);
    const local = this.#local.get(taskId);
    if (local && local.state === 'RUNNING') this.#enqueue(local);
  }

  // --- reports

  #enqueue(status: TaskStatus): void {
    if (this.#closed) return;
    let q = this.#queues.get(status.taskId);
    if (!q) {
      q = { pending: undefined, inFlight: false, failures: 0, timer: undefined };
      this.#queues.set(status.taskId, q);
    }
    // Coalesce: the newer status replaces one not yet sent, unless that one is terminal.
    if (!q.pending || !isTerminal(q.pending.state)) q.pending = status;
    if (!q.inFlight && !q.timer) void this.#send(status.taskId, q);
  }

  async #send(taskId: string, q: ReportQueue): Promise<void> {
    const { logger, agentId } = this.#o;
    while (q.pending && !this.#closed) {
      const status = q.pending;
      q.pending = undefined;
      q.inFlight = true;
      try {
        await this.#request('PUT', `/v1/agents/${encodeURIComponent(agentId)}/tasks/${encodeURIComponent(taskId)}/status`, statusReport(status, this.#health.get(taskId), this.#readiness.get(taskId), this.#ips.get(taskId)), 10_000);
        if (q.failures > 0) logger.info({ taskId, state: status.state, failures: q.failures }, 'status delivered after retries');
        q.failures = 0;
        logger.debug({ taskId, state: status.state }, 'status reported');
      } catch (err) {
        if (this.#closed) break;
        if (err instanceof TransientError) {
          // A newer status wins (it was queued while this one was in flight), unless this one is terminal.
          const newer = q.pending as TaskStatus | undefined;
          if (!newer || (isTerminal(status.state) && !isTerminal(newer.state))) q.pending = status;
          q.failures++;
          q.inFlight = false;
          const level = q.failures === 1 || q.failures % 10 === 0 ? 'warn' : 'debug';
          logger[level]({ err, taskId, state: status.state, failures: q.failures }, 'status report failed; retrying with backoff');
          q.timer = setTimeout(() => {
            q.timer = undefined;
            void this.#send(taskId, q);
          }, this.#backoff(q.failures));
          return;
        }
        // 404 (not ours any more), 409 (already terminal), 4xx: this report is over.
        const code = err instanceof StrataError ? err.message : String(err);
        logger.info({ taskId, state: status.state, answer: code }, 'the master refused a status report; dropped');
      } finally {
        q.inFlight = false;
      }
    }
    if (!q.pending && !q.timer && !q.inFlight) {
      this.#queues.delete(taskId);
      const state = this.#local.get(taskId)?.state;
      if (state !== undefined && isTerminal(state)) {
        this.#ips.delete(taskId);
        this.#health.delete(taskId);
        this.#readiness.delete(taskId);
      }
      if (this.#allIdle()) {
        for (const resolve of this.#idleWaiters) resolve();
        this.#idleWaiters.clear();
      }
    }
  }

  #retryReportsNow(): void {
    for (const [taskId, q] of this.#queues) {
      if (!q.timer) continue;
      clearTimeout(q.timer);
      q.timer = undefined;
      void this.#send(taskId, q);
    }
  }

  #allIdle(): boolean {
    for (const q of this.#queues.values()) if (q.pending || q.inFlight || q.timer) return false;
    return true;
  }

  // --- plumbing

  async #request(method: 'GET' | 'PUT', path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    let response: Response;
    const base = this.#masters.current;
    try {
      response = await (this.#o.fetch ?? fetch)(`${base}${path}`, {
        method,
        headers: { authorization: `token=${await this.#o.token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (err) {
      if (!this.#closed) this.#masters.failed(base);
      throw new TransientError(`${method} ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (response.status >= 500) this.#masters.failed(base);
    const text = await response.text().catch(() => '');
    if (response.ok) {
      try {
        return text ? (JSON.parse(text) as unknown) : undefined;
      } catch {
        throw new TransientError(`${method} ${path}: the master answered ${response.status} with no JSON`);
      }
    }
    const what = `${method} ${path}: ${response.status} ${text.slice(0, 300)}`;
    if (response.status >= 500 || response.status === 401 || response.status === 403 || response.status === 408 || response.status === 429) throw new TransientError(what);
    throw new StrataError('API_BAD_REQUEST', what);
  }

  #backoff(failures: number): number {
    const base = Math.min(this.#o.retryInitialMs * 2 ** Math.min(Math.max(failures - 1, 0), 16), this.#o.retryMaxMs);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  async #sleep(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.#abort.signal }).catch(() => {});
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(timer);
  }
}

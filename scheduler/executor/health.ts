/**
 * Health checks run by the agent for each RUNNING task (issue 3 item 6).
 *
 * Two parts:
 * - a pure state machine, {@link recordOutcome}: folds one check outcome
 *   into a Marathon `HealthCheckResult` (alive, consecutiveFailures,
 *   firstSuccess, lastSuccess, lastFailure, lastFailureCause). Failures
 *   within `gracePeriodSeconds` of the task's start, before its first
 *   success, do not count. {@link exceeded}: `maxConsecutiveFailures` > 0 and
 *   reached (Marathon kills at `consecutiveFailures >= max`); 0 never kills.
 * - {@link HealthChecker}: the I/O. Per check, one probe at once and then
 *   every `intervalSeconds`, each bounded by `timeoutSeconds`:
 *   HTTP/HTTPS and MESOS_HTTP/MESOS_HTTPS (GET `path` on 127.0.0.1 at the
 *   port; 200–399 healthy; certificates not verified), TCP/MESOS_TCP
 *   (connect), COMMAND (`/bin/sh -c` in the sandbox with the task's
 *   environment; exit 0 healthy; its process group killed at the timeout).
 *   The port is `port`, else the task's host port at `portIndex` (0).
 */
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { HealthCheck, HealthCheckResult } from '../../control-plane/model/schemas.ts';
import { ProbeTimers } from './probe-timers.ts';

export type ProbeOutcome = { readonly ok: true } | { readonly ok: false; readonly cause: string };

/** The result before any probe ran. */
export function initialResult(): HealthCheckResult {
  return { alive: false, consecutiveFailures: 0 };
}

/**
 * The result after one probe that ended at `at` (ms since the epoch) for a
 * task that started (RUNNING) at `taskStartedAt`. Pure.
 */
export function recordOutcome(
  check: Pick<HealthCheck, 'gracePeriodSeconds'>,
  previous: HealthCheckResult,
  outcome: ProbeOutcome,
  at: number,
  taskStartedAt: number,
): HealthCheckResult {
  const iso = new Date(at).toISOString();
  if (outcome.ok) {
    const next: HealthCheckResult = { ...previous, alive: true, consecutiveFailures: 0, lastSuccess: iso };
    if (previous.firstSuccess === undefined) next.firstSuccess = iso;
    return next;
  }
  const cause = outcome.cause.slice(0, 4096);
  const inGrace = previous.firstSuccess === undefined && at < taskStartedAt + check.gracePeriodSeconds * 1000;
  if (inGrace) return { ...previous, alive: false, lastFailure: iso, lastFailureCause: cause };
  return { ...previous, alive: false, consecutiveFailures: previous.consecutiveFailures + 1, lastFailure: iso, lastFailureCause: cause };
}

/** True when the task must be killed for this check: `maxConsecutiveFailures` > 0 and reached. */
export function exceeded(check: Pick<HealthCheck, 'maxConsecutiveFailures'>, result: HealthCheckResult): boolean {
  return check.maxConsecutiveFailures > 0 && result.consecutiveFailures >= check.maxConsecutiveFailures;
}

/** What a report must carry again: a change of alive or of the failure count (not a routine success). */
export function significantChange(before: readonly HealthCheckResult[], after: readonly HealthCheckResult[]): boolean {
  if (before.length !== after.length) return true;
  return after.some((r, i) => r.alive !== before[i]!.alive || r.consecutiveFailures !== before[i]!.consecutiveFailures);
}

/** The port a network check probes: `port`, else the task's host port at `portIndex` (default 0). */
export function checkPort(check: Pick<HealthCheck, 'port' | 'portIndex'>, ports: readonly number[]): number | undefined {
  if (check.port !== undefined) return check.port;
  return ports[check.portIndex ?? 0];
}

export interface ProbeContext {
  readonly ports: readonly number[];
  /** Working directory of COMMAND checks. */
  readonly sandbox: string;
  /** Environment of COMMAND checks (the task's). */
  readonly env: Readonly<Record<string, string>>;
  /** Default 127.0.0.1 (tasks share the agent's network). */
  readonly host?: string;
  /** Spawns COMMAND checks inside the task's network namespace (a task on a container network): runs `fn` (synchronous) there. */
  readonly spawnWithin?: <T>(fn: () => T) => T;
}

/** Runs one probe of `check`; never throws. */
export async function probe(check: HealthCheck, ctx: ProbeContext): Promise<ProbeOutcome> {
  const timeoutMs = check.timeoutSeconds * 1000;
  const host = ctx.host ?? '127.0.0.1';
  try {
    switch (check.protocol) {
      case 'HTTP':
      case 'HTTPS':
      case 'MESOS_HTTP':
      case 'MESOS_HTTPS': {
        const port = checkPort(check, ctx.ports);
        if (port === undefined) return { ok: false, cause: `no port at portIndex ${check.portIndex ?? 0}` };
        return await probeHttp(check.protocol.endsWith('HTTPS'), host, port, check.path ?? '/', timeoutMs);
      }
      case 'TCP':
      case 'MESOS_TCP': {
        const port = checkPort(check, ctx.ports);
        if (port === undefined) return { ok: false, cause: `no port at portIndex ${check.portIndex ?? 0}` };
        return await probeTcp(host, port, timeoutMs);
      }
      case 'COMMAND':
        if (!check.command) return { ok: false, cause: 'COMMAND check without a command' };
        return await probeCommand(check.command.value, ctx, timeoutMs);
    }
  } catch (err) {
    return { ok: false, cause: (err as Error).message };
  }
  return { ok: false, cause: `unknown protocol ${String(check.protocol)}` };
}

function probeHttp(tls: boolean, host: string, port: number, path: string, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const options = { host, port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'strata-health-check' }, ...(tls ? { rejectUnauthorized: false } : {}) };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      resolve(status >= 200 && status <= 399 ? { ok: true } : { ok: false, cause: `HTTP ${status} from ${tls ? 'https' : 'http'}://${host}:${port}${path}` });
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, cause: `${tls ? 'https' : 'http'}://${host}:${port}${path}: ${err.message}` }));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (outcome: ProbeOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ ok: false, cause: `tcp ${host}:${port}: timed out after ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ok: true }));
    socket.once('error', (err) => done({ ok: false, cause: `tcp ${host}:${port}: ${err.message}` }));
  });
}

function probeCommand(command: string, ctx: ProbeContext, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const start = (): ReturnType<typeof spawn> => spawn('/bin/sh', ['-c', command], { cwd: ctx.sandbox, env: { ...ctx.env }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let child: ReturnType<typeof spawn>;
    try {
      child = ctx.spawnWithin ? ctx.spawnWithin(start) : start();
    } catch (err) {
      return resolve({ ok: false, cause: `command: ${(err as Error).message}` });
    }
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 1024) stderr += b.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, cause: `command: ${err.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ ok: false, cause: `command timed out after ${timeoutMs} ms` });
      if (code === 0) return resolve({ ok: true });
      resolve({ ok: false, cause: `command exited with ${code === null ? `signal ${signal}` : `status ${code}`}${stderr ? `: ${stderr.trim().slice(0, 512)}` : ''}` });
    });
  });
}

export interface HealthCheckerOptions extends ProbeContext {
  readonly checks: readonly HealthCheck[];
  /** When the task became RUNNING (ms since the epoch); grace periods count from it. */
  readonly startedAt: number;
  /** After every probe: all results (in the checks' order), whether they changed significantly, and the index of a check that exceeded its maxConsecutiveFailures (if any). */
  readonly onResult: (results: readonly HealthCheckResult[], changed: boolean, exceededCheck: number | undefined) => void;
  readonly now?: () => number;
}

/** Runs an app's health checks for one task until {@link stop}. */
export class HealthChecker {
  readonly #o: HealthCheckerOptions;
  readonly #timers = new ProbeTimers();
  #results: HealthCheckResult[];

  constructor(options: HealthCheckerOptions) {
    this.#o = options;
    this.#results = options.checks.map(() => initialResult());
    options.checks.forEach((_, i) => this.#schedule(i, 0));
  }

  get results(): readonly HealthCheckResult[] {
    return this.#results;
  }

  stop(): void {
    this.#timers.stop();
  }

  #schedule(i: number, delayMs: number): void {
    this.#timers.schedule(delayMs, () => this.#run(i));
  }

  async #run(i: number): Promise<void> {
    const check = this.#o.checks[i]!;
    const outcome = await probe(check, this.#o);
    if (this.#timers.stopped) return;
    const now = (this.#o.now ?? Date.now)();
    const before = this.#results;
    const after = [...before];
    after[i] = recordOutcome(check, before[i]!, outcome, now, this.#o.startedAt);
    this.#results = after;
    const bad = this.#o.checks.findIndex((c, j) => exceeded(c, after[j]!));
    this.#o.onResult(after, significantChange(before, after), bad === -1 ? undefined : bad);
    this.#schedule(i, check.intervalSeconds * 1000);
  }
}

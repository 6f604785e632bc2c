/**
 * Readiness checks run by the agent for each RUNNING task (Marathon's
 * `readinessChecks`, shared/reference/scheduler.md §2.2): an HTTP or HTTPS
 * GET of `path` on the task's port named `portName`, every
 * `intervalSeconds`, each bounded by `timeoutSeconds`; the task is ready
 * when the status is one of `httpStatusCodesForReady`. As in Marathon the
 * checks stop once the task is ready (readiness gates a deployment, health
 * watches the task afterwards). Certificates are not verified (as health
 * checks).
 *
 * Two parts: pure {@link readinessResult} and {@link readinessPort}, and the
 * I/O, {@link ReadinessChecker}.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { App, ReadinessCheck, ReadinessCheckResult } from '../../control-plane/model/schemas.ts';
import { ProbeTimers } from './probe-timers.ts';

/** Longest response body kept with `preserveLastResponse` (the result's schema bound). */
export const MAX_PRESERVED_BODY = 65_536;

export type ReadinessResponse = { readonly status: number; readonly contentType: string; readonly body: string } | { readonly error: string };

/** The verdict of one probe. Pure. */
export function readinessResult(check: ReadinessCheck, taskId: string, response: ReadinessResponse): ReadinessCheckResult {
  if ('error' in response) return { taskId, name: check.name, ready: false };
  const ready = check.httpStatusCodesForReady.includes(response.status);
  const keep = check.preserveLastResponse && response.status >= 100 && response.status <= 599;
  return {
    taskId,
    name: check.name,
    ready,
    ...(keep ? { lastResponse: { status: response.status, contentType: response.contentType.slice(0, 256), body: response.body.slice(0, MAX_PRESERVED_BODY) } } : {}),
  };
}

/**
 * The host port of the port named `portName`: the task's ports follow the
 * app's port definitions (host mode) or its port mappings with a host port;
 * with `containerNetwork`, the mapping's container port when it has one.
 */
export function readinessPort(check: Pick<ReadinessCheck, 'portName'>, app: Pick<App, 'networks' | 'portDefinitions' | 'container'>, ports: readonly number[], options: { readonly containerNetwork?: boolean } = {}): number | undefined {
  // Tolerant of a partial app (an agent may be handed one without Marathon's defaults filled in).
  const mode = (app.networks as App['networks'] | undefined)?.[0]?.mode ?? 'host';
  // A task in its own namespace on a container network is probed at the mapping's container port.
  const mapped = options.containerNetwork ? (app.container?.portMappings ?? []).find((m) => m.name === check.portName) : undefined;
  if (mapped && mapped.containerPort > 0) return mapped.containerPort;
  const names = mode === 'host' ? ((app.portDefinitions as App['portDefinitions'] | undefined) ?? []).map((p) => p.name) : (app.container?.portMappings ?? []).filter((m) => m.hostPort !== undefined).map((m) => m.name);
  const i = names.indexOf(check.portName);
  return i === -1 ? undefined : ports[i];
}

/** One GET; never throws. The body is read up to {@link MAX_PRESERVED_BODY} characters. */
export function probeReadiness(check: ReadinessCheck, host: string, port: number): Promise<ReadinessResponse> {
  const tls = check.protocol === 'HTTPS';
  const timeoutMs = check.timeoutSeconds * 1000;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}${check.path}`;
  return new Promise((resolve) => {
    const options = { host, port, path: check.path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'strata-readiness-check' }, ...(tls ? { rejectUnauthorized: false } : {}) };
    const req = (tls ? httpsRequest : httpRequest)(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < MAX_PRESERVED_BODY) body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
      res.on('error', (err) => resolve({ error: `${url}: ${err.message}` }));
    });
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ error: `${url}: ${err.message}` }));
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

export interface ReadinessCheckerOptions {
  readonly taskId: string;
  readonly app: Pick<App, 'readinessChecks' | 'networks' | 'portDefinitions' | 'container'>;
  readonly ports: readonly number[];
  /** Default 127.0.0.1 (tasks share the agent's network); a container-network task's container IP. */
  readonly host?: string;
  /** The task runs in its own namespace on a container network: probe the mappings' container ports. */
  readonly containerNetwork?: boolean;
  /** After every probe whose verdict (or preserved response) changed: every check's latest result. */
  readonly onResult: (results: readonly ReadinessCheckResult[]) => void;
}

/** Runs an app's readiness checks for one task until each is ready, or {@link stop}. */
export class ReadinessChecker {
  readonly #o: ReadinessCheckerOptions;
  readonly #timers = new ProbeTimers();
  #results: ReadinessCheckResult[] = [];

  constructor(options: ReadinessCheckerOptions) {
    this.#o = options;
    options.app.readinessChecks.forEach((_, i) => this.#schedule(i, 0));
  }

  get results(): readonly ReadinessCheckResult[] {
    return this.#results;
  }

  stop(): void {
    this.#timers.stop();
  }

  #schedule(i: number, delayMs: number): void {
    this.#timers.schedule(delayMs, () => this.#run(i));
  }

  async #run(i: number): Promise<void> {
    const check = this.#o.app.readinessChecks[i]!;
    const port = readinessPort(check, this.#o.app, this.#o.ports, { containerNetwork: this.#o.containerNetwork ?? false });
    const response: ReadinessResponse = port === undefined ? { error: `no port named ${check.portName}` } : await probeReadiness(check, this.#o.host ?? '127.0.0.1', port);
    if (this.#timers.stopped) return;
    const result = readinessResult(check, this.#o.taskId, response);
    const before = this.#results.find((r) => r.name === check.name);
    this.#results = [...this.#results.filter((r) => r.name !== check.name), result];
    if (JSON.stringify(before) !== JSON.stringify(result)) this.#o.onResult(this.#results);
    if (!result.ready) this.#schedule(i, check.intervalSeconds * 1000);
  }
}

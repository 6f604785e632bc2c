/**
 * The gateway's request pipeline, apart from any listener (tests and the
 * benchmark mount it on their own servers):
 *
 *   classify the path (routes.ts) → 404 if unknown
 *   → public? : credentials → CSRF (cookie only) → token → revocation → ACL
 *     (401 `WWW-Authenticate: acsjwt`, 403 as DC/OS)
 *   → /service/<app>: resolve the app, check `dcos:adminrouter:service:<app>`,
 *     pick a healthy task (round robin) → 503 if none
 *   → proxy (streaming; websockets joined; `/` and `/ui/` to the master's web
 *     UI) or answer itself (status, system health)
 *   → one access log line (no token, no query string) and the metrics.
 */
import type { Agent, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { StrataError, type ErrorCode } from '../common/errors.ts';
import { AUTH_COOKIE, credentialsOf, csrfProblem, withoutAuthCookie, type AccessDecider, type Credentials } from './access.ts';
import type { GatewayMetrics } from './metrics.ts';
import { proxyRequest, proxyUpgrade, type ProxyOutcome, type UpstreamTarget } from './proxy.ts';
import { classify, serviceRid, type GatewayRoute, type RouteClass } from './routes.ts';
import type { ServiceCatalog } from './services.ts';

/** The log the gateway writes to (a pino logger fits). */
export interface GatewayLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface GatewayHandlerOptions {
  readonly access: AccessDecider;
  readonly services: ServiceCatalog;
  /** The control-plane API the gateway fronts. */
  readonly api: { readonly host: string; readonly port: number };
  readonly agent: Agent;
  readonly metrics: GatewayMetrics;
  readonly log: GatewayLog;
  readonly accessLog: boolean;
  readonly connectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  /** What `GET /gateway/v1/status` adds about the listener and certificate. */
  readonly status: () => Record<string, unknown>;
}

type Decision =
  | { readonly kind: 'error'; readonly error: StrataError; readonly routeClass: RouteClass | 'unmatched'; readonly uid?: string }
  | { readonly kind: 'self'; readonly route: GatewayRoute & { target: { kind: 'self' } }; readonly uid?: string }
  | { readonly kind: 'proxy'; readonly route: GatewayRoute; readonly target: UpstreamTarget; readonly uid?: string; readonly taskId?: string };

const STATUS_TEXT: Partial<Record<number, string>> = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

function errorHeaders(error: StrataError): OutgoingHttpHeaders {
  // DC/OS's Admin Router (enterprise) challenges with acsjwt.
  return error.httpStatus === 401 ? { 'www-authenticate': 'acsjwt' } : {};
}

function writeError(res: ServerResponse, error: StrataError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...errorHeaders(error) });
  res.end(body);
}

function writeSocketError(socket: Duplex, error: StrataError): void {
  const body = JSON.stringify(error.toJSON());
  const extra = Object.entries(errorHeaders(error)).map(([k, v]) => `${k}: ${String(v)}\r\n`).join('');
  socket.end(`HTTP/1.1 ${error.httpStatus} ${STATUS_TEXT[error.httpStatus] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
}

/** The `exp` of a JWT, unverified (the API just issued it): for the cookie's Max-Age. */
function expiresInSeconds(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? Math.max(0, Math.floor(payload.exp - Date.now() / 1000)) : undefined;
  } catch {
    return undefined;
  }
}

/** The cookie a login through the gateway sets (Secure, HttpOnly, SameSite=Strict; as long as the token lives). */
export function authCookie(token: string): string {
  const maxAge = expiresInSeconds(token);
  return `${AUTH_COOKIE}=${token}; Path=/; ${maxAge === undefined ? '' : `Max-Age=${maxAge}; `}HttpOnly; Secure; SameSite=Strict`;
}

/** `X-Forwarded-For` with the client's address appended. */
function forwardedFor(header: string | string[] | undefined, remote: string | undefined): string | undefined {
  const before = Array.isArray(header) ? header.join(', ') : header;
  if (!before) return remote;
  return remote ? `${before}, ${remote}` : before;
}

export interface GatewayHandler {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export function createGatewayHandler(options: GatewayHandlerOptions): GatewayHandler {
  const { access, services, metrics, log } = options;
  const onNewConnection = (): void => metrics.upstreamConnectionOpened();

  /** Authenticate and authorise; `undefined` = allowed. */
  async function check(req: IncomingMessage, credentials: Credentials, rid: string, action: 'full'): Promise<{ error?: StrataError; uid?: string; result: 'allowed' | 'unauthenticated' | 'forbidden' | 'csrf' }> {
    if (credentials.via === 'none') {
      return { result: 'unauthenticated', error: new StrataError('API_UNAUTHENTICATED', `this path needs a token: send "Authorization: token=<jwt>" or log in at /acs/api/v1/auth/login`) };
    }
    if (credentials.via === 'cookie') {
      const problem = csrfProblem(req.method ?? 'GET', req.headers);
      if (problem) return { result: 'csrf', error: new StrataError('GATEWAY_CSRF_REFUSED', problem) };
    }
    const who = await access.authenticate(credentials.token);
    if (!who.ok) return { result: 'unauthenticated', error: who.error };
    if (!access.allows(who.principal, rid, action)) {
      return { result: 'forbidden', uid: who.uid, error: new StrataError('API_FORBIDDEN', `${who.uid} lacks ${action} on ${rid}`, { details: { rid, action } }) };
    }
    return { result: 'allowed', uid: who.uid };
  }

  async function decide(req: IncomingMessage): Promise<Decision> {
    const classified = classify(req.url ?? '/');
    if (classified === undefined) return { kind: 'error', routeClass: 'unmatched', error: new StrataError('GATEWAY_NO_ROUTE', `the gateway serves no ${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0]}`) };
    if ('problem' in classified) return { kind: 'error', routeClass: 'unmatched', error: new StrataError('API_BAD_REQUEST', `path refused: ${classified.problem}`) };
    const route = classified;
    const credentials = credentialsOf(req.headers);
    const started = performance.now();
    const forwarded: Record<string, string | undefined> = {
      'x-forwarded-for': forwardedFor(req.headers['x-forwarded-for'], req.socket.remoteAddress),
      'x-forwarded-proto': 'https',
      'x-forwarded-host': req.headers.host,
    };

    if (route.target.kind === 'service') {
      // Who first (an anonymous caller learns nothing about which apps exist), then which app.
      const rest = route.target.rest;
      const resolved = services.resolve(rest, route.target.query);
      const rid = resolved ? serviceRid(resolved.appId) : serviceRid(rest.split('/')[0]!);
      const verdict = await check(req, credentials, rid, 'full');
      metrics.decision(verdict.result, (performance.now() - started) / 1000);
      if (verdict.error) return { kind: 'error', routeClass: 'service', error: verdict.error, ...(verdict.uid ? { uid: verdict.uid } : {}) };
      if (!resolved) return { kind: 'error', routeClass: 'service', uid: verdict.uid!, error: new StrataError('GATEWAY_NO_ROUTE', `no app is named by /service/${rest.split('?')[0]} (app ids with groups: /service/<group>/<app>/...)`) };
      const picked = services.pick(resolved.appId);
      if ('problem' in picked) return { kind: 'error', routeClass: 'service', uid: verdict.uid!, error: new StrataError('GATEWAY_NO_HEALTHY_TASK', picked.problem) };
      return {
        kind: 'proxy',
        route,
        uid: verdict.uid!,
        taskId: picked.backend.taskId,
        // The task never sees the browser's session cookie; an Authorization header passes through, as in DC/OS.
        target: { host: picked.backend.host, port: picked.backend.port, path: resolved.upstreamPath, headers: { ...forwarded, cookie: withoutAuthCookie(req.headers.cookie), 'x-forwarded-prefix': resolved.prefix } },
      };
    }

    let uid: string | undefined;
    const headers: Record<string, string | undefined> = { ...forwarded };
    if (route.access.public) {
      // Login CSRF: a foreign page must not log the browser in as someone else (tools send no Origin).
      if (route.login && req.headers.origin !== undefined && csrfProblem(req.method ?? 'POST', req.headers) !== undefined) {
        metrics.decision('csrf', (performance.now() - started) / 1000);
        return { kind: 'error', routeClass: route.routeClass, error: new StrataError('GATEWAY_CSRF_REFUSED', `a login from ${req.headers.origin} is refused: log in from https://${req.headers.host ?? 'the gateway'} itself`) };
      }
      metrics.decision('public', (performance.now() - started) / 1000);
      // A cross-site state change must not ride the cookie even on public paths (logout).
      if (credentials.via === 'cookie' && csrfProblem(req.method ?? 'GET', req.headers) !== undefined) headers['cookie'] = withoutAuthCookie(req.headers.cookie);
    } else {
      const verdict = await check(req, credentials, route.access.rid, 'full');
      metrics.decision(verdict.result, (performance.now() - started) / 1000);
      if (verdict.error) return { kind: 'error', routeClass: route.routeClass, error: verdict.error, ...(verdict.uid ? { uid: verdict.uid } : {}) };
      uid = verdict.uid;
      if (credentials.via === 'cookie') {
        // The API checks its own permission again: hand it the token as a header, not the cookie.
        headers['authorization'] = `token=${credentials.token}`;
        headers['cookie'] = withoutAuthCookie(req.headers.cookie);
      }
    }
    if (route.target.kind === 'self') return { kind: 'self', route: route as GatewayRoute & { target: { kind: 'self' } }, ...(uid ? { uid } : {}) };
    return { kind: 'proxy', route, ...(uid ? { uid } : {}), target: { host: options.api.host, port: options.api.port, path: route.target.path, headers } };
  }

  function accessLog(req: IncomingMessage, fields: { routeClass: string; status: number; startedMs: number; upstreamMs?: number; uid?: string; taskId?: string; note?: string }): void {
    metrics.request(fields.routeClass as RouteClass, fields.status);
    if (!options.accessLog) return;
    log.info(
      {
        method: req.method,
        path: (req.url ?? '/').split('?')[0],
        class: fields.routeClass,
        status: fields.status,
        ms: Math.round((performance.now() - fields.startedMs) * 1000) / 1000,
        ...(fields.upstreamMs === undefined ? {} : { upstreamMs: Math.round(fields.upstreamMs * 1000) / 1000 }),
        ...(fields.uid ? { uid: fields.uid } : {}),
        ...(fields.taskId ? { task: fields.taskId } : {}),
        ...(fields.note ? { note: fields.note } : {}),
        remote: req.socket.remoteAddress,
      },
      'gateway request',
    );
  }

  function upstreamError(routeClass: RouteClass, outcome: ProxyOutcome, what: string): StrataError {
    const code: ErrorCode = outcome.kind === 'timeout' ? 'GATEWAY_UPSTREAM_TIMEOUT' : 'GATEWAY_UPSTREAM_UNAVAILABLE';
    const message = outcome.kind === 'timeout'
      ? `the ${routeClass} upstream (${what}) sent no response: ${outcome.message}`
      : `the ${routeClass} upstream (${what}) cannot be reached: ${'message' in outcome ? outcome.message : ''}`;
    return new StrataError(code, message);
  }

  async function serveSelf(_req: IncomingMessage, res: ServerResponse, page: 'status' | 'system-health'): Promise<number> {
    let body: unknown;
    if (page === 'status') {
      body = { ...options.status(), api: `http://${options.api.host}:${options.api.port}`, services: services.summary() };
    } else {
      // dcos-diagnostics' shape: health 0 = healthy, 1 = unhealthy.
      const api = await fetch(`http://${options.api.host.includes(':') ? `[${options.api.host}]` : options.api.host}:${options.api.port}/health`, { signal: AbortSignal.timeout(options.connectTimeoutMs) })
        .then(async (r) => ({ ok: r.ok, output: JSON.stringify(await r.json().catch(() => ({}))) }))
        .catch((err: unknown) => ({ ok: false, output: String((err as Error).cause ?? err) }));
      body = {
        units: [
          { id: 'strata-gateway', name: 'Gateway (Admin Router)', health: 0, output: 'serving' },
          { id: 'strata-api', name: 'Control-plane API (Marathon, IAM, CA, Mesos-DNS, networking)', health: api.ok ? 0 : 1, output: api.output },
        ],
      };
    }
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return 200;
  }

  return {
    onRequest(req, res) {
      const startedMs = performance.now();
      decide(req).then(
        async (decision) => {
          if (decision.kind === 'error') {
            writeError(res, decision.error);
            accessLog(req, { routeClass: decision.routeClass, status: decision.error.httpStatus, startedMs, ...(decision.uid ? { uid: decision.uid } : {}), note: decision.error.code });
            req.resume();
            return;
          }
          if (decision.kind === 'self') {
            const status = await serveSelf(req, res, decision.route.target.page);
            accessLog(req, { routeClass: decision.route.routeClass, status, startedMs, ...(decision.uid ? { uid: decision.uid } : {}) });
            req.resume();
            return;
          }
          const { route, target } = decision;
          proxyRequest(req, res, target, {
            agent: options.agent,
            onNewConnection: onNewConnection,
            connectTimeoutMs: options.connectTimeoutMs,
            responseTimeoutMs: options.upstreamTimeoutMs,
            ...(route.login
              ? {
                  transform: (status: number, headers: Record<string, unknown>, body: Buffer) => {
                    const out: OutgoingHttpHeaders = {};
                    for (const [k, v] of Object.entries(headers)) if (!['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) out[k] = v as string;
                    if (status === 200) {
                      let token: unknown;
                      try {
                        token = (JSON.parse(body.toString('utf8')) as { token?: unknown }).token;
                      } catch {
                        token = undefined; // not the API's JSON: passed on as is, no cookie
                      }
                      if (typeof token === 'string') out['set-cookie'] = authCookie(token);
                    }
                    return { headers: out, body };
                  },
                }
              : {}),
            onOutcome: (outcome) => {
              if (outcome.kind !== 'aborted') metrics.upstream(route.routeClass, outcome.upstreamMs / 1000);
              const base = { routeClass: route.routeClass, startedMs, upstreamMs: outcome.upstreamMs, ...(decision.uid ? { uid: decision.uid } : {}), ...(decision.taskId ? { taskId: decision.taskId } : {}) };
              if (outcome.kind === 'response') return accessLog(req, { ...base, status: outcome.status });
              if (outcome.kind === 'aborted') return accessLog(req, { ...base, status: 499, note: outcome.message });
              const error = upstreamError(route.routeClass, outcome, decision.taskId ? `task ${decision.taskId} at ${target.host}:${target.port}` : `${target.host}:${target.port}`);
              writeError(res, error);
              accessLog(req, { ...base, status: error.httpStatus, note: error.code });
            },
          });
        },
      ).catch((err: unknown) => {
        // Never crash the server: a store outage in the IAM (say) is a 503 with a code.
        const error = err instanceof StrataError ? err : new StrataError('API_INTERNAL', 'internal gateway error');
        if (!(err instanceof StrataError)) log.warn({ err }, 'gateway request failed');
        writeError(res, error);
        accessLog(req, { routeClass: 'unmatched' as RouteClass, status: error.httpStatus, startedMs, note: error.code });
      });
    },

    onUpgrade(req, socket, head) {
      const startedMs = performance.now();
      socket.on('error', () => socket.destroy());
      decide(req).then(
        (decision) => {
          if (decision.kind === 'error') {
            writeSocketError(socket, decision.error);
            accessLog(req, { routeClass: decision.routeClass, status: decision.error.httpStatus, startedMs, note: decision.error.code });
            return;
          }
          if (decision.kind === 'self') {
            writeSocketError(socket, new StrataError('API_BAD_REQUEST', 'this path does not upgrade'));
            return;
          }
          const { route, target } = decision;
          proxyUpgrade(req, socket, head, target, {
            connectTimeoutMs: options.connectTimeoutMs,
            onOutcome: (outcome) => {
              metrics.upstream(route.routeClass, outcome.upstreamMs / 1000);
              const base = { routeClass: route.routeClass, startedMs, upstreamMs: outcome.upstreamMs, ...(decision.uid ? { uid: decision.uid } : {}), ...(decision.taskId ? { taskId: decision.taskId } : {}) };
              if (outcome.kind === 'response') return accessLog(req, { ...base, status: outcome.status });
              const error = upstreamError(route.routeClass, outcome, `${target.host}:${target.port}`);
              writeSocketError(socket, error);
              accessLog(req, { ...base, status: error.httpStatus, note: error.code });
            },
          });
        },
      ).catch((err: unknown) => {
        log.warn({ err }, 'gateway upgrade failed');
        writeSocketError(socket, err instanceof StrataError ? err : new StrataError('API_INTERNAL', 'internal gateway error'));
      });
    },
  };
}

/**
 * The agent's sandbox log endpoint, served on the agent's own HTTP port
 * (like the Mesos agent's `/files/read`, which DC/OS reaches through the
 * master): `GET /v1/sandboxes/{taskId}/logs?stream=stdout|stderr&lines=N&follow=true`.
 *
 * - The answer is the log itself as `text/plain`: the last `lines` lines
 *   (default 10, as `dcos task log`), across rotated files, from at most the
 *   last 1 MiB (longer tails are cut there); with `follow`
 *   it then streams what the task writes (chunked) until the task has ended
 *   and everything is sent, or the caller goes away. Rotation while
 *   following is handled by `followLog` (`../executor/logs.ts`). Memory is
 *   one chunk per request: a slow reader slows the file reads.
 * - Only the master calls it. It authenticates with a *grant*: a JWT the
 *   master signs for one task on one agent (`scope` {@link SANDBOX_LOG_SCOPE},
 *   `agentId`, `taskId`, 60 s), verified here against the master's JWKS
 *   (`/acs/api/v1/auth/jwks`) with the configured issuer and audience. The
 *   master checks the user's permission (read on the task's app) before it
 *   signs. User tokens carry no scope and are refused here; grants are
 *   refused by the master's API.
 * - Errors are JSON `{code, message}`: 401 `AUTH_TOKEN_INVALID`, 404
 *   `EXECUTOR_TASK_NOT_FOUND` (no sandbox: never here, or removed), 400
 *   `EXECUTOR_LOG_RANGE_INVALID`.
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { StrataError, isStrataError } from '../../common/errors.ts';
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';
import { ALLOWED_ALGORITHMS } from '../../security/tokens.ts';
import type { Executor } from '../executor/executor.ts';
import { followLog, readLogTail } from '../executor/logs.ts';

export const SANDBOX_LOG_SCOPE = 'sandbox:logs';
/** Default number of lines, as `dcos task log`. */
export const DEFAULT_LOG_LINES = 10;
export const MAX_LOG_LINES = 100_000;

/** What a verified grant allows. */
export interface LogGrant {
  readonly agentId: string;
  readonly taskId: string;
}

/** Verifies a grant token; throws `AUTH_TOKEN_INVALID`. */
export type GrantVerifier = (token: string) => Promise<LogGrant>;

/** Grants signed by the master's keys (fetched from its JWKS, cached, refetched for an unknown `kid`). */
export function jwksGrantVerifier(options: { masterUrl: () => string; issuer: string; audience: string }): GrantVerifier {
  // Every master serves the same keys (they live in the store): ask the master the agent talks to now.
  const sets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  const jwksOf = (base: string): ReturnType<typeof createRemoteJWKSet> => {
    let set = sets.get(base);
    if (!set) {
      set = createRemoteJWKSet(new URL('/acs/api/v1/auth/jwks', base), { timeoutDuration: 5000, cooldownDuration: 10_000 });
      sets.set(base, set);
    }
    return set;
  };
  return async (token) => {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwksOf(options.masterUrl()), {
        algorithms: [...ALLOWED_ALGORITHMS],
        issuer: options.issuer,
        audience: options.audience,
        requiredClaims: ['exp', 'scope', 'agentId', 'taskId'],
      }));
    } catch (err) {
      throw new StrataError('AUTH_TOKEN_INVALID', `grant rejected: ${(err as Error).message}`, { cause: err });
    }
    if (payload['scope'] !== SANDBOX_LOG_SCOPE || typeof payload['agentId'] !== 'string' || typeof payload['taskId'] !== 'string') {
      throw new StrataError('AUTH_TOKEN_INVALID', `grant rejected: not a ${SANDBOX_LOG_SCOPE} grant`);
    }
    return { agentId: payload['agentId'], taskId: payload['taskId'] };
  };
}

export interface LogQuery {
  readonly stream: 'stdout' | 'stderr';
  readonly lines: number;
  readonly follow: boolean;
}

/** `?stream=&lines=&follow=` → the query, or `EXECUTOR_LOG_RANGE_INVALID` naming the bad parameter. */
export function parseLogQuery(params: URLSearchParams): LogQuery {
  const stream = params.get('stream') ?? 'stdout';
  if (stream !== 'stdout' && stream !== 'stderr') throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', `stream must be stdout or stderr, not ${JSON.stringify(stream.slice(0, 40))}`);
  const rawLines = params.get('lines');
  const lines = rawLines === null ? DEFAULT_LOG_LINES : Number(rawLines);
  if (!Number.isInteger(lines) || lines < 0 || lines > MAX_LOG_LINES) throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', `lines must be an integer from 0 to ${MAX_LOG_LINES}, not ${JSON.stringify((rawLines ?? '').slice(0, 40))}`);
  const rawFollow = params.get('follow');
  if (rawFollow !== null && rawFollow !== 'true' && rawFollow !== 'false') throw new StrataError('EXECUTOR_LOG_RANGE_INVALID', `follow must be true or false, not ${JSON.stringify(rawFollow.slice(0, 40))}`);
  return { stream, lines, follow: rawFollow === 'true' };
}

const ROUTE = /^\/v1\/sandboxes\/([^/?]+)\/logs(?:\?(.*))?$/;
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,399}$/;

function sendError(res: ServerResponse, err: StrataError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(err.httpStatus, { 'content-type': 'application/json' }).end(JSON.stringify(err.toJSON()));
}

/**
 * The handler: true when it took the request (its path is the log route),
 * false to let the agent's server answer (404, `/health`).
 */
export function sandboxLogHandler(options: {
  readonly agentId: string;
  readonly executor: Pick<Executor, 'get' | 'sandboxPath'>;
  readonly verify: GrantVerifier;
  /** How often a followed file is checked (default 250 ms). */
  readonly pollMs?: number;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const m = req.method === 'GET' ? ROUTE.exec(req.url ?? '') : null;
    if (!m) return false;
    void serve(req, res, m[1]!, new URLSearchParams(m[2] ?? '')).catch((err: unknown) => {
      sendError(res, isStrataError(err) ? err : new StrataError('API_INTERNAL', `reading the log failed: ${(err as Error).message}`));
    });
    return true;
  };

  async function serve(req: IncomingMessage, res: ServerResponse, rawTaskId: string, params: URLSearchParams): Promise<void> {
    let taskId: string;
    try {
      taskId = decodeURIComponent(rawTaskId);
    } catch {
      taskId = '';
    }
    const header = req.headers.authorization ?? '';
    const token = /^(?:token=|Bearer\s+)(\S+)\s*$/i.exec(header)?.[1];
    if (token === undefined) throw new StrataError('AUTH_TOKEN_INVALID', 'this endpoint needs a grant from the master: "Authorization: token=<jwt>"');
    const grant = await options.verify(token);
    if (grant.agentId !== options.agentId || grant.taskId !== taskId) {
      throw new StrataError('AUTH_TOKEN_INVALID', `grant rejected: it is for task ${grant.taskId} on agent ${grant.agentId}`);
    }
    // Task ids are Mesos-style; anything else never names a sandbox (and never a path outside them).
    if (!TASK_ID.test(taskId)) throw new StrataError('EXECUTOR_TASK_NOT_FOUND', `${JSON.stringify(rawTaskId.slice(0, 80))} is not a task id`);
    const query = parseLogQuery(params);
    const handle = options.executor.get(taskId);
    const sandbox = handle?.sandbox ?? options.executor.sandboxPath(taskId);
    if (!existsSync(sandbox)) throw new StrataError('EXECUTOR_TASK_NOT_FOUND', `the sandbox of task ${taskId} is not on agent ${options.agentId} (never launched here, or removed)`);
    const tail = await readLogTail(sandbox, { stream: query.stream, lines: query.lines });
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.write(tail.data);
    if (!query.follow) {
      res.end();
      return;
    }
    const stop = new AbortController();
    const onClose = (): void => stop.abort();
    res.once('close', onClose);
    try {
      await followLog(sandbox, {
        stream: query.stream,
        from: tail.end,
        signal: stop.signal,
        ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
        finished: () => {
          const live = options.executor.get(taskId);
          return live === undefined || TERMINAL_TASK_STATES.has(live.state);
        },
        onData: async (chunk) => {
          if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(stop.signal, 'abort')]);
        },
      });
    } finally {
      res.off('close', onClose);
    }
    if (!res.destroyed) res.end();
  }
}

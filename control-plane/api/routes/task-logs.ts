/**
 * Task logs through the master, as `dcos task log` reads them through the
 * master from the agent's files API:
 * `GET /v1/tasks/{taskId}/logs?stream=stdout|stderr&lines=N&follow=true`.
 *
 * The master finds the task and its agent in the store, checks that the
 * caller may read the task's app (`dcos:service:marathon:marathon:services:<app id>`,
 * besides the Marathon gate every `/v2` collection route needs), signs a
 * 60 s grant for that one task on that one agent, and proxies the agent's
 * answer (`scheduler/agent/sandbox-logs.ts`) as `text/plain`: the last
 * `lines` lines (default 10), then, with `follow`, what the task writes
 * (chunked) until it ends or the caller disconnects (the agent request is
 * aborted with it). Backpressure runs end to end, so memory per request is
 * bounded by the stream buffers.
 *
 * Transport: when this master runs mTLS (`security.mtls` not `off`) it calls
 * the agent over `https://` at the agent's registered address, presenting
 * its master certificate (with the cluster root and CRLs as trust) and
 * accepting only a server certificate naming `spiffe://<td>/agent/<that
 * agent's id>`. Enrolled agents serve mTLS on that port (first-byte demux).
 * An agent that answers the TLS handshake with plain HTTP (not enrolled:
 * its master had mTLS off, or an older agent) is retried over plain HTTP in
 * `permissive` only; a certificate that fails verification is never
 * retried. The grant is sent either way (defence in depth).
 *
 * Errors: 404 `RECORD_NOT_FOUND` (no such task; expunged tasks are
 * unknown), 403 without read on the app, 502 `TASK_LOG_AGENT_UNAVAILABLE`
 * (agent unknown, unreachable, or refusing the grant), 410 `TASK_LOG_GONE`
 * (the sandbox was removed), 400 for a bad stream or lines.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Counter, type Registry } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { agentCertificateProblem, tlsFetch } from '../../../security/mtls/client.ts';
import { DEFAULT_LOG_LINES, MAX_LOG_LINES, SANDBOX_LOG_SCOPE } from '../../../scheduler/agent/sandbox-logs.ts';
import { TaskId } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { MARATHON_GATE_RID, appRid, assertCallerMay } from './marathon-store.ts';

/** The uid grants are signed for (no principal has it; grants never authenticate API calls). */
export const LOG_GRANT_ISSUER_UID = 'strata-master';
export const LOG_GRANT_TTL_SECONDS = 60;
/** How long the agent may take to start answering. */
const AGENT_CONNECT_TIMEOUT_MS = 10_000;

const Params = Type.Object({ taskId: TaskId });
const Query = Type.Object({
  stream: Type.Optional(Type.Union([Type.Literal('stdout'), Type.Literal('stderr')], { default: 'stdout' })),
  lines: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LOG_LINES, default: DEFAULT_LOG_LINES, description: `last lines to show first (default ${DEFAULT_LOG_LINES}, as dcos task log)` })),
  follow: Type.Optional(Type.Boolean({ default: false, description: 'then stream new output until the task ends or the caller disconnects' })),
});

const counters = new WeakMap<Registry, { requests: Counter; transport: Counter }>();
function logCounters(registry: Registry): { requests: Counter; transport: Counter } {
  let c = counters.get(registry);
  if (!c) {
    c = {
      requests: new Counter({ name: 'strata_task_log_requests_total', help: 'Task log reads proxied to agents, by result', labelNames: ['result'], registers: [registry] }),
      transport: new Counter({ name: 'strata_task_log_agent_calls_total', help: 'Calls from this master to agents\' log endpoints, by transport (mtls, plain) ', labelNames: ['transport'], registers: [registry] }),
    };
    counters.set(registry, c);
  }
  return c;
}

/** The TLS handshake was answered by something that does not speak TLS (a plain HTTP agent): worth a plain retry in permissive mode. */
function notTls(err: unknown): boolean {
  const e = err as Error & { code?: string };
  return e.code === 'EPROTO' || e.code === 'ECONNRESET' || e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || e.message === 'socket hang up';
}

export function taskLogRoutes(app: ApiInstance, ctx: ApiContext): void {
  const { requests, transport } = logCounters(ctx.metrics.registry);
  const mode = ctx.config.security.mtls;
  app.get('/v1/tasks/:taskId/logs', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'A task\'s stdout or stderr (the last ?lines=N, default 10; ?follow=true streams new output), read from its agent',
      description: 'Also needs read on dcos:service:marathon:marathon:services:<the task\'s app id>. Answers text/plain. 404 unknown task, 410 log gone from the agent, 502 agent unreachable.',
      params: Params,
      querystring: Query,
    },
  }, async (request, reply) => {
    const { taskId } = request.params;
    const { stream = 'stdout', lines = DEFAULT_LOG_LINES, follow = false } = request.query;
    const task = await ctx.records.get('task', taskId);
    if (!task) {
      requests.inc({ result: 'unknown-task' });
      throw new StrataError('RECORD_NOT_FOUND', `unknown task ${JSON.stringify(taskId)} (never launched, or expunged)`);
    }
    await assertCallerMay(ctx, request, appRid(task.value.appId), 'read');
    const agent = await ctx.records.get('agent', task.value.agentId);
    if (!agent) {
      requests.inc({ result: 'agent-unavailable' });
      throw new StrataError('TASK_LOG_AGENT_UNAVAILABLE', `task ${taskId} ran on agent ${task.value.agentId}, which is no longer registered`);
    }
    const { ip, port } = agent.value.address;
    const hostPort = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    let base = ctx.mtls ? `https://${hostPort}` : `http://${hostPort}`;
    const { token } = await ctx.tokens.issue(LOG_GRANT_ISSUER_UID, { ttlSeconds: LOG_GRANT_TTL_SECONDS, scope: SANDBOX_LOG_SCOPE, claims: { agentId: agent.value.id, taskId } });
    const upstream = new AbortController();
    const onClose = (): void => upstream.abort();
    reply.raw.once('close', onClose);
    const connectTimer = setTimeout(() => upstream.abort(new Error(`no answer within ${AGENT_CONNECT_TIMEOUT_MS / 1000} s`)), AGENT_CONNECT_TIMEOUT_MS);
    const unreachable = agent.value.health.status === 'unreachable' ? ' (the agent is marked unreachable)' : '';
    let response: Response;
    const path = `/v1/sandboxes/${encodeURIComponent(taskId)}/logs?stream=${stream}&lines=${lines}&follow=${follow}`;
    const init = { headers: { authorization: `token=${token}` }, signal: upstream.signal };
    const mtls = ctx.mtls;
    try {
      if (mtls) {
        const trustDomain = mtls.trustDomain;
        const agentId = agent.value.id;
        try {
          response = await tlsFetch(new URL(`${base}${path}`), init, {
            ...mtls.secureContextOptions(),
            agent: false,
            checkServerIdentity: (_host, cert) => {
              const problem = agentCertificateProblem(cert, trustDomain, agentId);
              return problem ? new Error(`mTLS: ${problem}`) : undefined;
            },
          });
          transport.inc({ transport: 'mtls' });
        } catch (err) {
          if (mode !== 'permissive' || upstream.signal.aborted || !notTls(err)) throw err;
          request.log.debug({ agentId, err: (err as Error).message }, 'the agent does not serve mTLS; reading its log over plain HTTP (security.mtls=permissive)');
          base = `http://${hostPort}`;
          response = await fetch(`${base}${path}`, init);
          transport.inc({ transport: 'plain' });
        }
      } else {
        response = await fetch(`${base}${path}`, init);
        transport.inc({ transport: 'plain' });
      }
    } catch (err) {
      reply.raw.off('close', onClose);
      requests.inc({ result: 'agent-unavailable' });
      const cause = upstream.signal.reason instanceof Error ? upstream.signal.reason.message : (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      throw new StrataError('TASK_LOG_AGENT_UNAVAILABLE', `agent ${agent.value.id} at ${base} cannot be reached${unreachable}: ${cause}`);
    } finally {
      clearTimeout(connectTimer);
    }
    if (!response.ok || !response.body) {
      reply.raw.off('close', onClose);
      const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
      if (response.status === 404 && body.code === 'EXECUTOR_TASK_NOT_FOUND') {
        requests.inc({ result: 'gone' });
        throw new StrataError('TASK_LOG_GONE', `the log of task ${taskId} is gone: ${body.message ?? 'its sandbox was removed'}`);
      }
      if (response.status === 400 && body.code === 'EXECUTOR_LOG_RANGE_INVALID') throw new StrataError('API_BAD_REQUEST', body.message ?? 'bad log request');
      requests.inc({ result: 'agent-unavailable' });
      throw new StrataError('TASK_LOG_AGENT_UNAVAILABLE', `agent ${agent.value.id} at ${base} refused the log request (${response.status} ${body.code ?? ''}): ${body.message ?? ''}`.trim());
    }
    requests.inc({ result: 'ok' });
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    body.once('error', () => body.destroy());
    body.once('close', () => reply.raw.off('close', onClose));
    return reply.code(200).header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(body);
  });
}

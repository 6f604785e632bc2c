/**
 * Marathon's event stream, `GET /v2/events` (server-sent events). Needs
 * `Accept: text/event-stream` (405 otherwise, as Marathon). Events are
 * derived from store changes: the route lists the apps, tasks and
 * deployments, watches the three prefixes from the listing's index and
 * translates each batch against what it held before ({@link translate},
 * pure):
 *
 * - apps: `api_post_event` (created or changed; Marathon's `appDefinition`),
 *   `app_terminated_event` (deleted);
 * - tasks: `status_update_event` (state changed, `taskStatus` as `TASK_…`),
 *   `instance_changed_event` (same change, Marathon's instance view),
 *   `health_status_changed_event` (a task's health verdict flipped);
 * - deployments: `deployment_info` (created, or its step changed),
 *   `deployment_step_success` (the step advanced), `deployment_success`
 *   (the record was deleted: finished, or cancelled — the store does not tell
 *   the two apart — unless it had failed), `deployment_step_failure` and
 *   `deployment_failed` (the deployment was marked failed: its deadline
 *   passed; with its `reason` and `waitReasons`); for a deployment of a
 *   `/v2/groups` write also `group_change_success` / `group_change_failed`
 *   (`groupId`, `version`).
 *
 * `event_stream_attached` is sent first. `?event_type=` (repeatable) keeps
 * only those types. A comment line (`:`) every 15 s keeps proxies from
 * closing an idle stream; a client that stops reading is dropped once
 * {@link MAX_BUFFERED_BYTES} wait for it. A `resync` batch is translated as the difference
 * between the old and the new view. The stream ends when the client goes
 * (the watches are closed) or the server closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { Type } from 'typebox';
import type { RecordBatch } from '../../model/records.ts';
import type { App, Deployment, RecordKind, Task } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { MARATHON_GATE_RID } from './marathon-store.ts';

export const EVENT_TYPES = [
  'event_stream_attached',
  'api_post_event',
  'app_terminated_event',
  'status_update_event',
  'instance_changed_event',
  'health_status_changed_event',
  'deployment_info',
  'deployment_step_success',
  'deployment_success',
  'deployment_failed',
  'deployment_step_failure',
  'group_change_success',
  'group_change_failed',
] as const;

export interface MarathonEvent {
  readonly eventType: string;
  readonly timestamp: string;
  readonly [field: string]: unknown;
}

export const DEFAULT_KEEP_ALIVE_MS = 15_000;
/** Unsent bytes after which a stream whose client does not read is closed. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

type Watched = 'app' | 'task' | 'deployment';
type Value<K extends Watched> = K extends 'app' ? App : K extends 'task' ? Task : Deployment;

const alive = (t: Task | undefined): boolean | undefined =>
  t === undefined || t.healthCheckResults.length === 0 ? undefined : t.healthCheckResults.every((h) => h.alive);

const plan = (d: Deployment): Record<string, unknown> => ({
  id: d.id,
  version: d.version,
  steps: d.steps,
  affectedApps: d.affectedApps,
  original: { apps: d.previous },
  target: { apps: d.affectedApps },
});

const currentStep = (d: Deployment): Record<string, unknown> => ({ actions: d.currentActions.map((a) => ({ action: a.action, app: a.app })) });

/** Pure: the Marathon events for one record going from `before` to `after` (either may be absent). */
export function translate<K extends Watched>(kind: K, before: Value<K> | undefined, after: Value<K> | undefined, timestamp: string): MarathonEvent[] {
  const out: MarathonEvent[] = [];
  if (kind === 'app') {
    const [b, a] = [before as App | undefined, after as App | undefined];
    if (a && (!b || b.version !== a.version)) out.push({ eventType: 'api_post_event', timestamp, clientIp: null, uri: `/v2/apps${a.id}`, appDefinition: a });
    if (b && !a) out.push({ eventType: 'app_terminated_event', timestamp, appId: b.id });
  } else if (kind === 'task') {
    const [b, a] = [before as Task | undefined, after as Task | undefined];
    if (a && (!b || b.state !== a.state)) {
      out.push({
        eventType: 'status_update_event',
        timestamp,
        slaveId: a.agentId,
        taskId: a.id,
        taskStatus: `TASK_${a.state}`,
        message: a.message ?? '',
        appId: a.appId,
        host: a.host,
        ipAddresses: a.ipAddresses,
        ports: a.ports,
        version: a.version,
      });
      out.push({
        eventType: 'instance_changed_event',
        timestamp,
        instanceId: a.id.replace(/\._app\.\d+$/, ''),
        condition: a.state.charAt(0) + a.state.slice(1).toLowerCase(),
        runSpecId: a.appId,
        agentId: a.agentId,
        host: a.host,
        runSpecVersion: a.version,
      });
    }
    const [hb, ha] = [alive(b), alive(a)];
    if (a && ha !== undefined && ha !== hb) {
      out.push({ eventType: 'health_status_changed_event', timestamp, appId: a.appId, taskId: a.id, instanceId: a.id.replace(/\._app\.\d+$/, ''), version: a.version, alive: ha });
    }
  } else {
    const [b, a] = [before as Deployment | undefined, after as Deployment | undefined];
    if (a && (!b || b.currentStep !== a.currentStep)) {
      if (b && a.currentStep > b.currentStep && b.currentStep > 0) out.push({ eventType: 'deployment_step_success', timestamp, plan: plan(a), currentStep: currentStep(b) });
      out.push({ eventType: 'deployment_info', timestamp, plan: plan(a), currentStep: currentStep(a) });
    }
    if (a && a.state === 'failed' && b?.state !== 'failed') {
      out.push({ eventType: 'deployment_step_failure', timestamp, plan: plan(a), currentStep: currentStep(a) });
      out.push({ eventType: 'deployment_failed', timestamp, id: a.id, plan: plan(a), reason: a.failureMessage ?? 'failed', waitReasons: a.waitReasons ?? [] });
      if (a.groupId !== undefined) out.push({ eventType: 'group_change_failed', timestamp, groupId: a.groupId, version: a.version, reason: a.failureMessage ?? 'failed' });
    }
    // A failed deployment that goes (rolled back, or removed by hand) did not succeed.
    if (b && !a && b.state !== 'failed') {
      out.push({ eventType: 'deployment_success', timestamp, id: b.id, plan: plan(b) });
      if (b.groupId !== undefined) out.push({ eventType: 'group_change_success', timestamp, groupId: b.groupId, version: b.version });
    }
  }
  return out;
}

/** Pure: apply one decoded batch to `state` (id → value) and return the events it makes. */
export function applyBatch<K extends Watched>(kind: K, state: Map<string, Value<K>>, batch: RecordBatch<Value<K>>, timestamp: string): MarathonEvent[] {
  const out: MarathonEvent[] = [];
  if (batch.kind === 'resync') {
    const next = new Map(batch.records.map((r) => [r.id, r.value] as const));
    for (const [id, before] of state) if (!next.has(id)) out.push(...translate(kind, before, undefined, timestamp));
    for (const [id, after] of next) out.push(...translate(kind, state.get(id), after, timestamp));
    state.clear();
    for (const [id, v] of next) state.set(id, v);
    return out;
  }
  for (const e of batch.events) {
    if (e.type === 'put') {
      out.push(...translate(kind, state.get(e.record.id), e.record.value, timestamp));
      state.set(e.record.id, e.record.value);
    } else {
      out.push(...translate(kind, state.get(e.id), undefined, timestamp));
      state.delete(e.id);
    }
  }
  for (const i of batch.invalid) if (i.id !== undefined) state.delete(i.id);
  return out;
}

/** The SSE frame of one event. */
export function sseFrame(event: MarathonEvent): string {
  return `event: ${event.eventType}\ndata: ${JSON.stringify(event)}\n\n`;
}

const Query = Type.Object({
  event_type: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z_]{1,64}$' }), { description: `only these event types (repeatable): ${EVENT_TYPES.join(', ')}` })),
});

export interface EventRouteOptions {
  /** Interval of the keep-alive comment (default 15 s). */
  readonly keepAliveMs?: number;
}

/** The route module with options (tests); {@link marathonEventRoutes} uses the defaults. */
export function marathonEventRoutesWith(options: EventRouteOptions = {}): (app: ApiInstance, ctx: ApiContext) => void {
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  return (app, ctx) => {
    // Open streams end before the server closes (a hijacked response would hold it open).
    const open = new Map<AbortController, ServerResponse>();
    app.addHook('preClose', (done) => {
      for (const [stop, res] of open) {
        stop.abort();
        if (!res.writableEnded) res.end();
      }
      done();
    });
    app.get('/v2/events', {
      config: { permission: requires(MARATHON_GATE_RID, 'full') },
      schema: {
        summary: 'Marathon event stream (server-sent events; needs Accept: text/event-stream, else 405)',
        description: `Derived from store changes of apps, tasks and deployments. Types: ${EVENT_TYPES.join(', ')}. Order across kinds is not guaranteed (as in Marathon).`,
        querystring: Query,
      },
    }, async (request, reply) => {
      if (!(request.headers.accept ?? '').includes('text/event-stream')) {
        return reply.code(405).send({ message: 'GET /v2/events needs the header Accept: text/event-stream' });
      }
      const wanted = request.query.event_type && request.query.event_type.length > 0 ? new Set(request.query.event_type) : undefined;
      const stop = new AbortController();
      open.set(stop, reply.raw);
      reply.hijack();
      try {
        await stream(ctx, request.raw, reply.raw, stop, { keepAliveMs, wanted, remoteAddress: request.ip, log: request.log });
      } finally {
        open.delete(stop);
      }
      return reply;
    });
  };
}

export const marathonEventRoutes = marathonEventRoutesWith();

let activeStreams = 0;
/** Event streams open in this process (diagnostics, tests). */
export const openEventStreams = (): number => activeStreams;

interface Follower {
  readonly kind: Watched;
  readonly state: Map<string, unknown>;
  readonly index: number;
}

async function stream(
  ctx: ApiContext,
  req: IncomingMessage,
  res: ServerResponse,
  stop: AbortController,
  options: { readonly keepAliveMs: number; readonly wanted: ReadonlySet<string> | undefined; readonly remoteAddress: string; readonly log: FastifyBaseLogger },
): Promise<void> {
  activeStreams++;
  const end = (): void => stop.abort();
  const socket = req.socket;
  socket.once('close', end);
  res.once('close', end);
  const send = (events: readonly MarathonEvent[]): void => {
    if (stop.signal.aborted || res.writableEnded) return;
    const frames = events.filter((e) => !options.wanted || options.wanted.has(e.eventType)).map(sseFrame).join('');
    if (!frames) return;
    // A client that reads nothing must not grow the master's memory without bound.
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      options.log.warn({ buffered: res.writableLength }, 'event stream client is not reading; closing its stream');
      stop.abort();
      res.destroy();
      return;
    }
    res.write(frames);
  };
  let keepAlive: NodeJS.Timeout | undefined;
  try {
    // List first, so that every change after `event_stream_attached` is seen.
    const followers: Follower[] = await Promise.all((['app', 'task', 'deployment'] as const).map(async (kind) => {
      const listed = await ctx.records.list(kind as RecordKind);
      return { kind, index: listed.index, state: new Map<string, unknown>(listed.records.map((r) => [r.id, r.value])) };
    }));
    if (stop.signal.aborted) return;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    send([{ eventType: 'event_stream_attached', timestamp: new Date().toISOString(), remoteAddress: options.remoteAddress }]);
    keepAlive = setInterval(() => {
      if (!stop.signal.aborted && !res.writableEnded) res.write(':\n\n');
    }, options.keepAliveMs);
    const results = await Promise.allSettled(followers.map(async (f) => {
      const watch = ctx.records.watch(f.kind as RecordKind, { fromIndex: f.index, signal: stop.signal });
      try {
        for await (const batch of watch) {
          send(applyBatch(f.kind, f.state as Map<string, never>, batch as RecordBatch<never>, new Date().toISOString()));
        }
      } finally {
        watch.close();
      }
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed && !stop.signal.aborted) options.log.warn({ err: failed.reason }, 'event stream watch failed; closing the stream');
  } catch (err) {
    if (!stop.signal.aborted) options.log.warn({ err }, 'event stream failed; closing it');
  } finally {
    activeStreams--;
    if (keepAlive) clearInterval(keepAlive);
    socket.off('close', end);
    res.off('close', end);
    stop.abort();
    if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
    if (!res.writableEnded) res.end();
  }
}

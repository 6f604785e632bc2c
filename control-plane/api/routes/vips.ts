/**
 * VIPs (DC/OS `/networking/api/v1/vips`): every VIP the apps publish, with
 * its allocated addresses, its DNS name, and its backends with their
 * weights. `GET /networking/api/v1/vips/{vip}` takes the VIP's name
 * (`/web`, URL-encoded), its DNS label (`web`), or an address (`11.x.y.z`).
 * The list is also a blocking query (`?index=N&wait=S`, as Consul's): it
 * answers when apps, tasks, VIPs or agents change after `index`, which is
 * how each agent's L4 dataplane follows the backends without polling.
 */
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { canonicalIp } from '../../../common/ip.ts';
import { isIP } from 'node:net';
import type { App, Task, Vip } from '../../model/schemas.ts';
import { vipDnsLabel } from '../../model/vip-label.ts';
import { vipViewOf, type VipView } from '../../vips/view.ts';
import { VipFeedHub } from '../../vips/feed-hub.ts';
import type { FastifyReply } from 'fastify';
import { desiredVips } from '../../vips/plan.ts';
import { DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS, blockingView } from '../blocking.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';

/** DC/OS's Admin Router resource for the networking API. */
export const NETWORKING_RID = 'dcos:adminrouter:ops:networking';

const Backend = Type.Object({
  appId: Type.String(),
  taskId: Type.String(),
  agentId: Type.String(),
  ip: Type.String(),
  port: Type.Integer(),
  protocol: Type.String(),
  vipPort: Type.Integer(),
  state: Type.String(),
  weight: Type.Integer(),
  why: Type.Optional(Type.String()),
  /** The backend's agent is marked unreachable (dataplanes drop such backends unless all are). */
  agentUnreachable: Type.Optional(Type.Boolean()),
});

const VipView = Type.Object({
  id: Type.String(),
  framework: Type.String(),
  name: Type.String(),
  kind: Type.String(),
  /** `<label>.<framework>.l4lb.thisdcos.directory` for named VIPs. */
  dnsName: Type.Optional(Type.String()),
  ipv4: Type.Optional(Type.String()),
  ipv6: Type.Optional(Type.String()),
  /** false while the allocator has not stored it yet. */
  allocated: Type.Boolean(),
  ports: Type.Array(Type.Object({ port: Type.Integer(), protocol: Type.String() })),
  apps: Type.Array(Type.String()),
  backends: Type.Array(Backend),
});
const ListQuery = Type.Object({
  index: Type.Optional(Type.Integer({ minimum: 0, description: 'block until apps, tasks, VIPs or agents change after this store index (from the previous reply)' })),
  wait: Type.Optional(Type.Number({ minimum: 0, description: `longest wait in seconds (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})` })),
  delta: Type.Optional(Type.Boolean({ description: 'the delta feed agents follow: {type: "snapshot", epoch, index, vips} (every VIP) or {type: "changes", epoch, index, vips, removed} (only the VIPs changed, and the ids removed, after ?index within ?epoch)' })),
  epoch: Type.Optional(Type.String({ maxLength: 64, description: 'with delta: the epoch of the previous reply (absent, or not this master\'s: a snapshot)' })),
});

/** What a VIP's view is made of: a change under any of these prefixes may change it. */
const VIP_INPUTS = ['app', 'task', 'vip', 'agent'] as const;

async function vipViews(ctx: ApiContext): Promise<{ index: number; vips: VipView[] }> {
  const [apps, tasks, vips, agents] = await Promise.all([ctx.records.list('app'), ctx.records.list('task'), ctx.records.list('vip'), ctx.records.list('agent')]);
  const unreachable = new Set(agents.records.filter((r) => r.value.health.status === 'unreachable').map((r) => r.id));
  const agentIps = new Map(agents.records.map((r) => [r.id, r.value.address.ip]));
  const appsById = new Map<string, App>(apps.records.map((r) => [r.id, r.value]));
  const tasksByApp = new Map<string, Task[]>();
  for (const r of tasks.records) {
    const list = tasksByApp.get(r.value.appId) ?? [];
    list.push(r.value);
    tasksByApp.set(r.value.appId, list);
  }
  const stored = new Map<string, Vip>(vips.records.map((r) => [r.id, r.value]));
  const inputs = { apps: appsById, tasksByApp, stored, agentIps, unreachableAgents: unreachable };
  const views = [...desiredVips([...appsById.values()]).values()].map((d) => vipViewOf(d, inputs));
  return { index: Math.max(apps.index, tasks.index, vips.index, agents.index), vips: views };
}

function matches(view: VipView, wanted: string): boolean {
  if (view.name === wanted || view.id === wanted) return true;
  if (view.kind === 'named' && vipDnsLabel(view.name) === wanted.toLowerCase()) return true;
  if (isIP(wanted) !== 0) {
    const ip = canonicalIp(wanted);
    return view.ipv4 === ip || view.ipv6 === ip;
  }
  return false;
}

export function vipRoutes(app: ApiInstance, ctx: ApiContext): void {
  const feedReplies = new Counter({ name: 'strata_vip_feed_replies_total', help: 'Replies of the VIP delta feed (?delta=true), by type (snapshot: every VIP; changes: only those changed)', labelNames: ['type'], registers: [ctx.metrics.registry] });
  const feedChanges = new Counter({ name: 'strata_vip_feed_changed_vips_total', help: 'VIP views the delta feed found changed (or removed) after store changes', registers: [ctx.metrics.registry] });
  let hub: VipFeedHub | undefined;
  app.addHook('onClose', async () => hub?.close());
  const feed = async (query: { epoch?: string | undefined; index?: number | undefined; wait?: number | undefined }, reply: FastifyReply): Promise<string> => {
    hub ??= new VipFeedHub(ctx.records, { onError: (err) => app.log.error({ err }, 'VIP feed view failed'), onChanges: (n) => feedChanges.inc(n) });
    const stop = new AbortController();
    const onClose = (): void => stop.abort();
    reply.raw.once('close', onClose);
    try {
      const waitMs = Math.min(query.wait ?? DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS) * 1000;
      const answer = await hub.read(query.epoch, query.index ?? 0, waitMs, stop.signal);
      feedReplies.inc({ type: answer.type });
      // Already JSON (each VIP's text is cached by the hub): sent as is.
      reply.type('application/json');
      return answer.json;
    } finally {
      reply.raw.off('close', onClose);
    }
  };

  app.get('/networking/api/v1/vips', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: {
      summary: 'Every VIP published by app port labels (VIP_n), with addresses and backends; with ?index=N a blocking query (agents\' dataplanes use it)',
      querystring: ListQuery,
      response: { 200: Type.Object({ index: Type.Integer({ minimum: 0 }), vips: Type.Array(VipView) }) },
    },
  }, async (request, reply) => (request.query.delta === true
    // The feed's JSON text is not the list's shape: the type provider only knows the list's.
    ? reply.send((await feed(request.query, reply)) as never)
    : blockingView(ctx, reply, { kinds: VIP_INPUTS, index: request.query.index, waitSeconds: request.query.wait, view: () => vipViews(ctx) })));

  app.get('/networking/api/v1/vips/:vip', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: {
      summary: 'One VIP, by name (/web), DNS label (web) or address',
      params: Type.Object({ vip: Type.String({ minLength: 1, maxLength: 256 }) }),
      response: { 200: VipView },
    },
  }, async (request) => {
    const wanted = request.params.vip;
    const found = (await vipViews(ctx)).vips.find((v) => matches(v, wanted));
    if (!found) throw new StrataError('RECORD_NOT_FOUND', `no VIP ${JSON.stringify(wanted)} (give its name such as /web, its DNS label, or its address)`);
    return found;
  });
}

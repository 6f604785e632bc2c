/**
 * VIPs (DC/OS `/networking/api/v1/vips`): every VIP the apps publish, with
 * its allocated addresses, its DNS name, and its backends with their
 * weights. `GET /networking/api/v1/vips/{vip}` takes the VIP's name
 * (`/web`, URL-encoded), its DNS label (`web`), or an address (`11.x.y.z`).
 * The list is also a blocking query (`?index=N&wait=S`, as Consul's): it
 * answers when apps, tasks, VIPs or agents change after `index`, which is
 * how each agent's L4 dataplane follows the backends without polling.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { canonicalIp } from '../../../common/ip.ts';
import { isIP } from 'node:net';
import type { App, Task, Vip } from '../../model/schemas.ts';
import { vipDnsLabel } from '../../model/vip-label.ts';
import { vipBackends, type VipBackend } from '../../vips/backends.ts';
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
type VipView = {
  id: string; framework: string; name: string; kind: string; dnsName?: string; ipv4?: string; ipv6?: string;
  allocated: boolean; ports: { port: number; protocol: string }[]; apps: string[]; backends: (VipBackend & { agentUnreachable?: boolean })[];
};

const ListQuery = Type.Object({
  index: Type.Optional(Type.Integer({ minimum: 0, description: 'block until apps, tasks, VIPs or agents change after this store index (from the previous reply)' })),
  wait: Type.Optional(Type.Number({ minimum: 0, description: `longest wait in seconds (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})` })),
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
  const desired = desiredVips([...appsById.values()]);
  const views: VipView[] = [];
  for (const d of desired.values()) {
    const s = stored.get(d.id);
    views.push({
      id: d.id,
      framework: d.framework,
      name: d.name,
      kind: d.kind,
      ...(d.kind === 'named' ? { dnsName: `${vipDnsLabel(d.name)}.${d.framework}.l4lb.thisdcos.directory` } : {}),
      ...(s?.ipv4 === undefined ? {} : { ipv4: s.ipv4 }),
      ...(s?.ipv6 === undefined ? {} : { ipv6: s.ipv6 }),
      allocated: s !== undefined,
      ports: [...d.ports],
      apps: [...new Set(d.uses.map((u) => u.appId))].sort(),
      backends: vipBackends(d, appsById, tasksByApp, (id) => agentIps.get(id)).map((b) => (unreachable.has(b.agentId) ? { ...b, agentUnreachable: true } : b)),
    });
  }
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
  app.get('/networking/api/v1/vips', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: {
      summary: 'Every VIP published by app port labels (VIP_n), with addresses and backends; with ?index=N a blocking query (agents\' dataplanes use it)',
      querystring: ListQuery,
      response: { 200: Type.Object({ index: Type.Integer({ minimum: 0 }), vips: Type.Array(VipView) }) },
    },
  }, async (request, reply) => blockingView(ctx, reply, { kinds: VIP_INPUTS, index: request.query.index, waitSeconds: request.query.wait, view: () => vipViews(ctx) }));

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

/**
 * Network policy (`/networking/api/v1/policies`): list, show, add, replace,
 * remove, and `POST .../explain` saying which rule of which policy decides
 * a flow. Each policy carries its store version (`version`, the record's
 * modify index) so a client can replace exactly what it read (`?version=`).
 */
import { Type, type Static } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { DnsLabel, Policy } from '../../model/schemas.ts';
import { decide, policyEndpoints, resolveEndpoint } from '../../policies/evaluate.ts';
import { blockingView, DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS } from '../blocking.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { NETWORKING_RID } from './vips.ts';

const Params = Type.Object({ name: DnsLabel });
const Versioned = Type.Object({ ...Policy.properties, version: Type.Integer({ minimum: 0 }) });
const WriteQuery = Type.Object({ version: Type.Optional(Type.Integer({ minimum: 0, description: 'replace only if the stored policy still has this version' })) });

const ExplainBody = Type.Object(
  {
    from: Type.String({ minLength: 1, maxLength: 512, description: 'an app id (/web), a task id, or an IP address' }),
    to: Type.String({ minLength: 1, maxLength: 512 }),
    protocol: Type.Enum(['tcp', 'udp', 'icmp'] as const, { default: 'tcp' }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  },
  { additionalProperties: false },
);

const Decision = Type.Object({
  action: Type.String(),
  summary: Type.String(),
  verdicts: Type.Array(Type.Object({ policy: Type.String(), action: Type.String(), decidedBy: Type.Union([Type.Integer(), Type.String()]), why: Type.String() })),
});

const Endpoint = Type.Object({
  appId: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  networks: Type.Array(Type.String()),
  ips: Type.Array(Type.String()),
});
const ViewQuery = Type.Object({
  index: Type.Optional(Type.Integer({ minimum: 0, description: 'block until policies, apps or tasks change after this store index (from the previous reply)' })),
  wait: Type.Optional(Type.Number({ minimum: 0, description: `longest wait in seconds (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})` })),
});
/** What the enforcement view is made of: a change to any of these may change it. */
const VIEW_INPUTS = ['policy', 'app', 'task'] as const;

/** Every policy and every live task with a container IP (its app, labels, networks): what agents compile into nftables. */
async function policyView(ctx: ApiContext): Promise<{ index: number; policies: Static<typeof Versioned>[]; endpoints: ReturnType<typeof policyEndpoints> }> {
  const [policies, apps, tasks] = await Promise.all([ctx.records.list('policy'), ctx.records.list('app'), ctx.records.list('task')]);
  return {
    index: Math.max(policies.index, apps.index, tasks.index),
    policies: policies.records.map((r) => ({ ...r.value, version: r.modifyIndex })),
    endpoints: policyEndpoints(new Map(apps.records.map((r) => [r.id, r.value])), tasks.records.map((r) => r.value)),
  };
}

export function policyRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/networking/api/v1/policy-view', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: {
      summary: 'What the agents enforce: every policy and every live task with a container IP (app, labels, networks, addresses); with ?index=N a blocking query (the agents\' policy enforcement follows it)',
      querystring: ViewQuery,
      response: { 200: Type.Object({ index: Type.Integer({ minimum: 0 }), policies: Type.Array(Versioned), endpoints: Type.Array(Endpoint) }) },
    },
  }, async (request, reply) => blockingView(ctx, reply, { kinds: VIEW_INPUTS, index: request.query.index, waitSeconds: request.query.wait, view: () => policyView(ctx) }));

  app.get('/networking/api/v1/policies', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'Every network policy, with its version', response: { 200: Type.Object({ policies: Type.Array(Versioned) }) } },
  }, async () => ({ policies: (await ctx.records.list('policy')).records.map((r) => ({ ...r.value, version: r.modifyIndex })) }));

  app.get('/networking/api/v1/policies/:name', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'One network policy', params: Params, response: { 200: Versioned } },
  }, async (request) => {
    const found = await ctx.records.get('policy', request.params.name);
    if (!found) throw new StrataError('RECORD_NOT_FOUND', `no policy ${JSON.stringify(request.params.name)}`);
    return { ...found.value, version: found.modifyIndex };
  });

  app.post('/networking/api/v1/policies', {
    config: { permission: requires(NETWORKING_RID, 'create') },
    schema: { summary: 'Add a network policy', body: Policy, response: { 201: Versioned } },
  }, async (request, reply) => {
    const result = await ctx.records.put('policy', request.body, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `policy ${JSON.stringify(request.body.name)} already exists (replace it with PUT)`);
    return reply.code(201).send({ ...request.body, version: result.index });
  });

  app.put('/networking/api/v1/policies/:name', {
    config: { permission: requires(NETWORKING_RID, 'update') },
    schema: { summary: 'Replace (or create) a network policy; ?version= replaces only that version', params: Params, querystring: WriteQuery, body: Type.Omit(Policy, ['name']), response: { 200: Versioned } },
  }, async (request) => {
    const policy = { ...request.body, name: request.params.name } as Policy;
    const current = await ctx.records.get('policy', policy.name);
    const expected = request.query.version;
    if (expected !== undefined && current?.modifyIndex !== expected) {
      throw new StrataError('RECORD_CONFLICT', `policy ${JSON.stringify(policy.name)} is at version ${current?.modifyIndex ?? 'none'}, not ${expected}; read it again`);
    }
    const result = await ctx.records.put('policy', policy, { casIndex: current?.modifyIndex ?? 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `policy ${JSON.stringify(policy.name)} changed while being replaced; retry`);
    return { ...policy, version: result.index };
  });

  app.delete('/networking/api/v1/policies/:name', {
    config: { permission: requires(NETWORKING_RID, 'delete') },
    schema: { summary: 'Remove a network policy', params: Params },
  }, async (request, reply) => {
    const current = await ctx.records.get('policy', request.params.name);
    if (!current) throw new StrataError('RECORD_NOT_FOUND', `no policy ${JSON.stringify(request.params.name)}`);
    const result = await ctx.records.delete('policy', request.params.name, { casIndex: current.modifyIndex });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `policy ${JSON.stringify(request.params.name)} changed while being removed; retry`);
    return reply.code(204).send();
  });

  app.post('/networking/api/v1/policies/explain', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'Which policy and rule decide a flow (from, to: app id, task id or IP; protocol; port)', body: ExplainBody, response: { 200: Decision } },
  }, async (request) => {
    const [policies, apps, tasks] = await Promise.all([ctx.records.list('policy'), ctx.records.list('app'), ctx.records.list('task')]);
    const appsById = new Map(apps.records.map((r) => [r.id, r.value]));
    const taskList = tasks.records.map((r) => r.value);
    const { from, to, protocol, port } = request.body;
    const src = resolveEndpoint(from, appsById, taskList);
    if (!src) throw new StrataError('API_BAD_REQUEST', `from: ${JSON.stringify(from)} is no app id, live task id or IP address`, { details: [{ path: '/from', message: 'names no app, live task or IP address' }] });
    const dst = resolveEndpoint(to, appsById, taskList);
    if (!dst) throw new StrataError('API_BAD_REQUEST', `to: ${JSON.stringify(to)} is no app id, live task id or IP address`, { details: [{ path: '/to', message: 'names no app, live task or IP address' }] });
    if (protocol !== 'icmp' && port === undefined) throw new StrataError('API_BAD_REQUEST', `port is required for ${protocol}`, { details: [{ path: '/port', message: `is required for ${protocol}` }] });
    const decision = decide(policies.records.map((r) => r.value), { from: src, to: dst, protocol, ...(port === undefined ? {} : { port }) });
    return { ...decision, verdicts: [...decision.verdicts] };
  });
}

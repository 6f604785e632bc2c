/**
 * Overlay networks as data (`/networking/api/v1/networks`): list, show,
 * add, change, remove. Added networks must not overlap another network or
 * the VTEP range, nor reuse a VNI; a network apps ask for, or tasks run on,
 * cannot be removed, and its addressing cannot change under running tasks.
 * Clusters start with DC/OS's `dcos` (9.0.0.0/8, /24 per agent, MTU 1420,
 * VNI 1024) and `dcos6`.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import type { Records } from '../../model/records.ts';
import { DEFAULT_NETWORKS, Network, NetworkName } from '../../model/schemas.ts';
import { formatIssues } from '../../model/validate.ts';
import { changeProblems, networkConflicts, removalProblems } from '../../networks/rules.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { NETWORKING_RID } from './vips.ts';

const Params = Type.Object({ name: NetworkName });
const NetworkBody = Type.Omit(Network, ['name']);

/**
 * DC/OS's networks, for a new cluster (the master calls this on the start
 * that creates the cluster's superuser, so a network removed later is not
 * brought back). Create-only: an existing record is left as it is.
 */
export async function ensureDefaultNetworks(records: Records): Promise<void> {
  for (const n of DEFAULT_NETWORKS) await records.put('network', n, { casIndex: 0 });
}

async function state(ctx: ApiContext) {
  const [networks, apps, tasks] = await Promise.all([ctx.records.list('network'), ctx.records.list('app'), ctx.records.list('task')]);
  return { networks: networks.records, apps: apps.records.map((r) => r.value), tasks: tasks.records.map((r) => r.value) };
}

function conflict(issues: { path: string; message: string }[]): StrataError {
  return new StrataError('NETWORK_CONFLICT', `network conflicts: ${formatIssues(issues)}`, { details: issues });
}

export function networkRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/networking/api/v1/networks', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'Every overlay network', response: { 200: Type.Object({ networks: Type.Array(Network) }) } },
  }, async () => ({ networks: (await ctx.records.list('network')).records.map((r) => r.value) }));

  app.get('/networking/api/v1/networks/:name', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'One overlay network', params: Params, response: { 200: Network } },
  }, async (request) => {
    const found = await ctx.records.get('network', request.params.name);
    if (!found) throw new StrataError('RECORD_NOT_FOUND', `no network ${JSON.stringify(request.params.name)}`);
    return found.value;
  });

  app.post('/networking/api/v1/networks', {
    config: { permission: requires(NETWORKING_RID, 'create') },
    schema: { summary: 'Add an overlay network (name at most 13 characters; subnet and/or subnet6; prefix per agent; VNI; MTU)', body: Network, response: { 201: Network } },
  }, async (request, reply) => {
    const network = request.body;
    const { networks } = await state(ctx);
    if (networks.some((r) => r.id === network.name)) throw new StrataError('NETWORK_CONFLICT', `network ${JSON.stringify(network.name)} already exists (change it with PUT)`);
    const issues = networkConflicts(network, networks.map((r) => r.value));
    if (issues.length > 0) throw conflict(issues);
    const result = await ctx.records.put('network', network, { casIndex: 0 });
    if (!result.ok) throw new StrataError('NETWORK_CONFLICT', `network ${JSON.stringify(network.name)} was created concurrently`);
    return reply.code(201).send(network);
  });

  app.put('/networking/api/v1/networks/:name', {
    config: { permission: requires(NETWORKING_RID, 'update') },
    schema: { summary: 'Change an overlay network (addressing only while no task runs on it)', params: Params, body: NetworkBody, response: { 200: Network } },
  }, async (request) => {
    const next = { ...request.body, name: request.params.name } as Network;
    const { networks, apps, tasks } = await state(ctx);
    const current = networks.find((r) => r.id === next.name);
    if (!current) throw new StrataError('RECORD_NOT_FOUND', `no network ${JSON.stringify(next.name)} (add it with POST)`);
    const issues = networkConflicts(next, networks.map((r) => r.value));
    if (issues.length > 0) throw conflict(issues);
    const problems = changeProblems(current.value, next, apps, tasks);
    if (problems.length > 0) throw new StrataError('NETWORK_IN_USE', `network ${JSON.stringify(next.name)}: ${formatIssues(problems)}`, { details: problems });
    const result = await ctx.records.put('network', next, { casIndex: current.modifyIndex });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `network ${JSON.stringify(next.name)} changed while being updated; retry`);
    return next;
  });

  app.delete('/networking/api/v1/networks/:name', {
    config: { permission: requires(NETWORKING_RID, 'delete') },
    schema: { summary: 'Remove an overlay network no app asks for and no task runs on', params: Params },
  }, async (request, reply) => {
    const { name } = request.params;
    const { networks, apps, tasks } = await state(ctx);
    const current = networks.find((r) => r.id === name);
    if (!current) throw new StrataError('RECORD_NOT_FOUND', `no network ${JSON.stringify(name)}`);
    const problems = removalProblems(name, apps, tasks);
    if (problems.length > 0) throw new StrataError('NETWORK_IN_USE', `network ${JSON.stringify(name)} is in use: ${problems.join('; ')}`);
    const result = await ctx.records.delete('network', name, { casIndex: current.modifyIndex });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `network ${JSON.stringify(name)} changed while being removed; retry`);
    return reply.code(204).send();
  });
}

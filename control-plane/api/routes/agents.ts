/**
 * Agent registration and listing. An agent `PUT`s its description to
 * `/v1/agents/{id}` when it starts and again at every heartbeat; the master
 * keeps what only it decides (registration time, maintenance, reservations)
 * and stamps the heartbeat. Unreachable handling is the scheduler's.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { Agent, AgentId } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';

export const AGENT_RID = 'dcos:mesos:master:agent';

/** What an agent says about itself; the rest of the record is the master's. */
export const AgentRegistration = Type.Omit(Agent, ['id', 'health', 'registeredAt', 'maintenance', 'reservations']);
const Params = Type.Object({ agentId: AgentId });

export function agentRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/v1/agents', {
    config: { permission: requires(AGENT_RID, 'read') },
    schema: { summary: 'Every registered agent', response: { 200: Type.Object({ agents: Type.Array(Agent) }) } },
  }, async () => {
    const { records } = await ctx.records.list('agent');
    return { agents: records.map((r) => r.value) };
  });

  app.get('/v1/agents/:agentId', {
    config: { permission: requires(AGENT_RID, 'read') },
    schema: { summary: 'One agent', params: Params, response: { 200: Agent } },
  }, async (request) => {
    const found = await ctx.records.get('agent', request.params.agentId);
    if (!found) throw new StrataError('RECORD_NOT_FOUND', `no agent ${JSON.stringify(request.params.agentId)}`);
    return found.value;
  });

  app.put('/v1/agents/:agentId', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: { summary: 'Register an agent, or heartbeat', params: Params, body: AgentRegistration, response: { 200: Agent } },
  }, async (request) => {
    const id = request.params.agentId;
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await ctx.records.get('agent', id);
      const now = new Date().toISOString();
      const record = {
        ...request.body,
        id,
        health: { status: 'healthy' as const, lastSeenAt: now },
        registeredAt: current?.value.registeredAt ?? now,
        maintenance: current?.value.maintenance ?? 'none',
        reservations: current?.value.reservations ?? [],
      } as Agent;
      const result = await ctx.records.put('agent', record, { casIndex: current?.modifyIndex ?? 0 });
      if (result.ok) return record;
    }
    throw new StrataError('RECORD_CONFLICT', `agent ${id} changed concurrently five times; retry`);
  });
}

/**
 * Overlay IPAM over HTTP. An agent asks for its lease when it starts (and
 * again when networks change): `PUT /networking/api/v1/agents/{id}/overlay`
 * allocates, on whichever master answers, what the agent lacks (a VTEP
 * address and MAC, a subnet of every network) and returns the whole lease;
 * it is idempotent and safe against agents registering at once (create-only
 * claims, see `control-plane/networks/ipam-store.ts`). Every agent reads every
 * lease (`GET /networking/api/v1/overlay/leases`) to program routes, FDB and
 * neighbour entries to the others; a task's container IP comes from
 * `POST .../overlay/addresses`.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { OverlayIpam } from '../../networks/ipam-store.ts';
import { AgentId, Ipv4, NetworkName, OverlayAddress, OverlayLease, TaskId } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { AGENT_RID } from './agents.ts';
import { NETWORKING_RID } from './vips.ts';

const Params = Type.Object({ agentId: AgentId });
const Exhausted = Type.Array(Type.Object({ network: Type.String(), message: Type.String() }));
const LeaseReply = Type.Object({ lease: OverlayLease, exhausted: Exhausted });

export function overlayRoutes(app: ApiInstance, ctx: ApiContext): void {
  const ipam = new OverlayIpam(ctx.store, ctx.records);

  app.get('/networking/api/v1/overlay/leases', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'Every agent\'s overlay lease (VTEP address and MAC, subnet per network)', response: { 200: Type.Object({ leases: Type.Array(OverlayLease) }) } },
  }, async () => ({ leases: await ipam.leases() }));

  app.get('/networking/api/v1/agents/:agentId/overlay', {
    config: { permission: requires(NETWORKING_RID, 'read') },
    schema: { summary: 'One agent\'s overlay lease', params: Params, response: { 200: OverlayLease } },
  }, async (request) => {
    const lease = await ipam.lease(request.params.agentId);
    if (!lease) throw new StrataError('RECORD_NOT_FOUND', `agent ${request.params.agentId} has no overlay lease`);
    return lease;
  });

  app.put('/networking/api/v1/agents/:agentId/overlay', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'Allocate what the agent lacks of its overlay lease (idempotent); `exhausted` names networks with no free subnet',
      params: Params,
      body: Type.Object({ underlayIp: Type.Optional(Ipv4) }, { additionalProperties: false }),
      response: { 200: LeaseReply },
    },
  }, async (request) => {
    const { agentId } = request.params;
    const agent = await ctx.records.get('agent', agentId);
    if (!agent) throw new StrataError('RECORD_NOT_FOUND', `no agent ${JSON.stringify(agentId)} (register it with PUT /v1/agents/${agentId} first)`);
    const result = await ipam.ensureLease(agentId, request.body.underlayIp ?? agent.value.address.ip);
    if (result.exhausted.length > 0) request.log.warn({ agentId, exhausted: result.exhausted }, 'overlay subnets exhausted');
    return { lease: result.lease, exhausted: [...result.exhausted] };
  });

  app.post('/networking/api/v1/agents/:agentId/overlay/addresses', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'A container IP (one per family of the network) for a task on this agent (idempotent per task)',
      params: Params,
      body: Type.Object({
        network: NetworkName,
        taskId: TaskId,
        holder: Type.Optional(Type.Enum(['task', 'cni'] as const, { description: '`cni`: a container the CNI plugin attaches (taskId `cni.<container id>`); released by DELETE, not when a task ends' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ addresses: Type.Array(OverlayAddress) }) },
    },
  }, async (request) => {
    const { network, taskId, holder } = request.body;
    if (holder === 'cni' && !taskId.startsWith('cni.')) throw new StrataError('API_BAD_REQUEST', `taskId ${JSON.stringify(taskId)}: a CNI container's id must start with "cni."`, { details: [{ path: '/taskId', message: 'must start with cni. when holder is cni' }] });
    return { addresses: await ipam.assignAddresses(request.params.agentId, network, taskId, holder ? { holder } : {}) };
  });

  app.delete('/networking/api/v1/agents/:agentId/overlay/addresses/:network/:taskId', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'Release the container IPs a task or CNI container holds on this agent (CNI DEL); they are quarantined before reuse. Idempotent.',
      params: Type.Object({ agentId: AgentId, network: NetworkName, taskId: TaskId }),
      response: { 200: Type.Object({ released: Type.Integer({ minimum: 0 }) }) },
    },
  }, async (request) => ({ released: await ipam.releaseTask(request.params.network, request.params.taskId, request.params.agentId) }));
}

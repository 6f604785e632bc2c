/** Read-only cluster verbs: `strata leader`, `strata agent list`. */
import type { Agent, LeaderInfo } from '../control-plane/model/schemas.ts';
import type { ParsedArgs } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

export async function showLeader(args: ParsedArgs): Promise<number> {
  const leader = await apiRequest<LeaderInfo>(await loggedIn(), 'GET', '/v1/leader');
  if (args.booleans.has('json')) console.log(JSON.stringify(leader, null, 2));
  else console.log(`leader ${leader.id} at ${leader.apiUrl}, elected ${leader.electedAt}, fencing token ${leader.fencingToken ?? '?'}`);
  return 0;
}

export async function listAgents(args: ParsedArgs): Promise<number> {
  const { agents } = await apiRequest<{ agents: Agent[] }>(await loggedIn(), 'GET', '/v1/agents');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(agents, null, 2));
    return 0;
  }
  const rows = agents.map((a) => [
    a.id,
    a.hostname,
    a.address.ip,
    String(a.resources.cpus),
    String(a.resources.memMb),
    a.health.status,
    a.health.lastSeenAt,
  ]);
  console.log(table(['ID', 'HOSTNAME', 'IP', 'CPUS', 'MEM_MB', 'HEALTH', 'LAST_SEEN'], rows));
  return 0;
}

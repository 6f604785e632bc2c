/**
 * `strata task show TASK [--json]`: one task as Marathon shows it, with
 * its container IPs (tasks on a virtual network: the address every other
 * task reaches it at) or "host networking". TASK may be part of an id.
 */
import type { ParsedArgs } from './args.ts';
import { apiRequest, loggedIn } from './client.ts';
import { resolveTask } from './task-log.ts';

interface ShownTask {
  readonly id: string;
  readonly appId: string;
  readonly host: string;
  readonly state: string;
  readonly ports: readonly number[];
  readonly ipAddresses?: readonly { readonly ipAddress: string; readonly protocol: string }[];
  readonly startedAt?: string;
  readonly stagedAt?: string;
  readonly version?: string;
  readonly message?: string;
}

export async function taskShow(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  const taskId = await resolveTask(state, args.words[2]!);
  const { tasks } = await apiRequest<{ tasks: ShownTask[] }>(state, 'GET', '/v2/tasks');
  const task = tasks.find((x) => x.id === taskId)!;
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(task, null, 2));
    return 0;
  }
  const ips = task.ipAddresses ?? [];
  const rows: [string, string][] = [
    ['ID', task.id],
    ['APP', task.appId],
    ['HOST', task.host],
    ['STATE', task.state],
    ['CONTAINER IP', ips.length === 0 ? '- (host networking)' : ips.map((a) => `${a.ipAddress} (${a.protocol})`).join(', ')],
    ['HOST PORTS', task.ports.join(',') || '-'],
    ['VERSION', task.version ?? '-'],
    ['STAGED', task.stagedAt ?? '-'],
    ['STARTED', task.startedAt ?? '-'],
    ...(task.message ? [['MESSAGE', task.message] as [string, string]] : []),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'));
  return 0;
}

/**
 * `strata queue list` (Marathon's launch queue: apps waiting for
 * instances, with their restart backoff) and `strata queue reset ID`
 * (`DELETE /v2/queue/ID/delay`: launch again now). DC/OS shows the same
 * through `dcos marathon debug list`.
 */
import type { ParsedArgs } from './args.ts';
import { appPath } from './apps.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface QueueEntry {
  count: number;
  delay: { timeLeftSeconds: number; overdue: boolean };
  since: string;
  app: { id: string; instances: number; version: string };
}

export async function queueList(args: ParsedArgs): Promise<number> {
  const { queue } = await apiRequest<{ queue: QueueEntry[] }>(await loggedIn(), 'GET', '/v2/queue');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(queue, null, 2));
    return 0;
  }
  const rows = queue.map((e) => [e.app.id, String(e.count), e.delay.overdue ? 'no (overdue)' : `${e.delay.timeLeftSeconds}s`, e.since]);
  console.log(table(['APP', 'WAITING', 'DELAY', 'SINCE'], rows));
  return 0;
}

export async function queueReset(args: ParsedArgs): Promise<number> {
  const id = args.words[2]!;
  await apiRequest<undefined>(await loggedIn(), 'DELETE', `${appPath(id).replace('/v2/apps/', '/v2/queue/')}/delay`);
  console.log(`Reset the launch delay of ${id}: it launches again now`);
  return 0;
}

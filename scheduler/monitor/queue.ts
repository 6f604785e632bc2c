/**
 * Marathon's launch queue (`GET /v2/queue`), decided from stored state: an
 * app is queued while it has fewer active instances than `instances`.
 * Active = non-terminal and not *inactive* (the controller's rule: an
 * UNREACHABLE task, or one whose agent is unreachable or gone, once the
 * app's `unreachableStrategy.inactiveAfterSeconds` has passed). Tasks of
 * every version count (during a rolling upgrade the count is what is still
 * missing, not the new instances the upgrade will start).
 *
 * The delay is the app's stored launch delay (the restart backoff the
 * leading controller keeps in `launchDelay` records): `timeLeftSeconds`
 * until `delayUntil`, and `overdue` once it has passed (Marathon's "the
 * delay is over, waiting for resources"); an app with no record has none.
 */
import type { Agent, App, LaunchDelay, Task } from '../../control-plane/model/schemas.ts';
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';

export interface QueueEntry {
  readonly app: App;
  /** Instances still to launch. */
  readonly count: number;
  readonly delay: { readonly timeLeftSeconds: number; readonly overdue: boolean };
  /** Since when the app waits: the newest of its version and its newest task end (ISO). */
  readonly since: string;
}

/** Whether a non-terminal task no longer counts as an instance (unreachable past the app's `inactiveAfterSeconds`). */
export function isInactive(task: Task, app: App, agents: ReadonlyMap<string, Agent>, now: number): boolean {
  if (app.unreachableStrategy === 'disabled') return false;
  const agent = agents.get(task.agentId);
  let since: number | undefined;
  if (task.state === 'UNREACHABLE') since = Date.parse(task.stateChangedAt) || 0;
  else if (!agent) since = 0;
  else if (agent.health.status === 'unreachable') since = now; // written UNREACHABLE by the controller now; its clock starts then
  if (since === undefined) return false;
  return now - since >= app.unreachableStrategy.inactiveAfterSeconds * 1000;
}

/** Pure: the queue, by app id. */
/** Marathon's `delay` of an app: seconds left (rounded up) and whether it is over. */
export function delayOf(record: LaunchDelay | undefined, app: Pick<App, 'version'>, now: number): QueueEntry['delay'] {
  if (!record || record.version !== app.version) return { timeLeftSeconds: 0, overdue: true };
  const leftMs = Date.parse(record.delayUntil) - now;
  return leftMs > 0 ? { timeLeftSeconds: Math.ceil(leftMs / 1000), overdue: false } : { timeLeftSeconds: 0, overdue: true };
}

export function launchQueue(apps: readonly App[], tasks: readonly Task[], agents: readonly Agent[], now: number, delays: ReadonlyMap<string, LaunchDelay> = new Map()): QueueEntry[] {
  const byAgent = new Map(agents.map((a) => [a.id, a]));
  const byApp = new Map<string, Task[]>();
  for (const t of tasks) {
    const list = byApp.get(t.appId) ?? [];
    list.push(t);
    byApp.set(t.appId, list);
  }
  const out: QueueEntry[] = [];
  for (const app of [...apps].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const own = byApp.get(app.id) ?? [];
    const active = own.filter((t) => !TERMINAL_TASK_STATES.has(t.state) && !isInactive(t, app, byAgent, now)).length;
    const count = app.instances - active;
    if (count <= 0) continue;
    let since = Date.parse(app.version) || 0;
    for (const t of own) if (TERMINAL_TASK_STATES.has(t.state)) since = Math.max(since, Date.parse(t.stateChangedAt) || 0);
    out.push({ app, count, delay: delayOf(delays.get(app.id), app, now), since: new Date(since).toISOString() });
  }
  return out;
}

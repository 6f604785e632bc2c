/**
 * `reconcile(view, options)`: what the deployment controller must write to
 * take the stored tasks towards the stored apps. Pure: it reads a read-only
 * snapshot (apps, tasks, agents, roles, deployments, the leader's backoff
 * memory, the time) and returns actions; the controller (`controller.ts`)
 * applies them with fenced transactions. Task ids come from
 * `options.newUuid` (random in production, a counter in tests).
 *
 * Per app (details and the choices made: README.md):
 * - instances = non-terminal tasks that are not *inactive* (an UNREACHABLE
 *   task, or one whose agent is unreachable or gone, once the app's
 *   `unreachableStrategy.inactiveAfterSeconds` has passed);
 * - tasks at the app's version ("current") and others ("old");
 * - capacity: `maxCapacity = floor(instances × (1 + maximumOverCapacity))`
 *   bounds the app's counted tasks (KILLING ones included) when launching;
 *   `minHealthy = ceil(instances × minimumHealthCapacity)` bounds how many
 *   old tasks are killed before new ones are RUNNING (and healthy);
 * - launches go through `plan()` of `scheduler/placement` with an explicit
 *   `launch` count per app; an app in backoff or held by an earlier
 *   deployment step launches nothing.
 */
import type { Agent, App, AppVersion, Deployment, ReadinessCheckResult, Role, Task, TaskState, WaitReason } from '../../control-plane/model/schemas.ts';
import { isConfigChange } from '../deployments/plan.ts';
import { TERMINAL_TASK_STATES } from '../../control-plane/model/schemas.ts';
import { plan } from '../placement/plan.ts';
import type { Placement, PlanOptions, Unplaced } from '../placement/types.ts';

/** What reconcile reads. Records may be frozen; nothing is changed. */
export interface ReconcileView {
  readonly apps: readonly App[];
  readonly tasks: readonly Task[];
  readonly agents: readonly Agent[];
  readonly roles: readonly Role[];
  readonly deployments: readonly Deployment[];
  /**
   * Stored app versions (at least those tasks run). A task at another version
   * than its app's still counts as current when that version differs from
   * the app only in `instances` (a scale is no restart, as in Marathon).
   */
  readonly appVersions?: readonly AppVersion[];
}

/**
 * The leader's memory of an app's launch failures (kept in memory, not in the
 * store: a new leader starts every app without delay).
 */
export interface BackoffState {
  /** The app version the failures were counted for; another version resets it. */
  readonly version: string;
  /** Failures counted so far. */
  readonly failures: number;
  /** The newest failure counted (ms since the epoch, from the task's `stateChangedAt`). */
  readonly lastFailureAt: number;
  /** No launch before this time (ms since the epoch). */
  readonly delayUntil: number;
}

export interface ReconcileOptions {
  /** Now, in ms since the epoch. */
  readonly now: number;
  /** Random part of new task ids. */
  readonly newUuid: () => string;
  /** Backoff memory from the previous round (absent: none). */
  readonly backoff?: ReadonlyMap<string, BackoffState>;
  /** How long terminal tasks are kept before they are deleted (default 5 minutes). */
  readonly terminalRetentionMs?: number;
  readonly strategy?: PlanOptions['strategy'];
}

export interface KillAction {
  readonly taskId: string;
  readonly appId: string;
  /** The state to write: KILLING (the agent kills and reports KILLED), or KILLED for a task whose agent is gone. */
  readonly state: 'KILLING' | 'KILLED';
  readonly reason: 'scale-down' | 'app-removed' | 'upgrade' | 'agent-gone' | 'unhealthy';
}

export interface ReconcileActions {
  /** New task records (STAGING) to create. */
  readonly launch: readonly Task[];
  readonly kill: readonly KillAction[];
  /**
   * Tasks to write UNREACHABLE (their agent is marked unreachable): live
   * tasks that are not being killed. The app's `unreachableStrategy` then
   * counts from this moment (the task's `stateChangedAt`).
   */
  readonly unreachable?: readonly string[];
  /** Terminal (or expunged unreachable) tasks to delete. */
  readonly expunge: readonly string[];
  /** Deployments whose progress fields changed (written back). */
  readonly updateDeployments: readonly Deployment[];
  /** Finished deployments to delete (which unlocks their apps). */
  readonly completeDeployments: readonly string[];
  /** Failed deployments to roll back now (`rollbackOnFailure`); the controller plans and writes each rollback. */
  readonly rollbacks: readonly string[];
  /** The backoff memory to keep for the next round. */
  readonly backoff: ReadonlyMap<string, BackoffState>;
  /** Instances wanted but not placed, and why (for logs and, later, the deployment status). */
  readonly unplaced: readonly Unplaced[];
  /** When reconcile should run again even if nothing changes (a backoff or retention ends), ms since the epoch. */
  readonly wakeAt: number | undefined;
}

export const DEFAULT_TERMINAL_RETENTION_MS = 5 * 60_000;

/**
 * Terminal states that do not count for backoff: a kill the scheduler (or an
 * operator) asked for. Everything else does, FINISHED included: as in
 * Marathon's rate limiter, a long-running app whose command exits 0 is
 * relaunched with the same growing delay as one that fails (else a command
 * that exits 0 at once is relaunched in a tight loop).
 */
const NOT_FAILURES: ReadonlySet<TaskState> = new Set(['KILLED', 'GONE_BY_OPERATOR']);

export const isTerminal = (t: Pick<Task, 'state'>): boolean => TERMINAL_TASK_STATES.has(t.state);

/** Marathon's task id: `/group/web` → `group_web.instance-<uuid>._app.1`. */
export function taskIdFor(appId: string, uuid: string): string {
  return `${appId.slice(1).replaceAll('/', '_')}.instance-${uuid}._app.1`;
}

/** `floor(instances × (1 + maximumOverCapacity))`: most counted tasks an app may have when launching. */
export function maxCapacity(app: Pick<App, 'instances' | 'upgradeStrategy'>): number {
  return Math.floor(app.instances * (1 + app.upgradeStrategy.maximumOverCapacity) + 1e-9);
}

/** `ceil(instances × minimumHealthCapacity)`: healthy tasks an upgrade keeps while it kills old ones. */
export function minHealthy(app: Pick<App, 'instances' | 'upgradeStrategy'>): number {
  return Math.ceil(app.instances * app.upgradeStrategy.minimumHealthCapacity - 1e-9);
}

/** `backoffSeconds × backoffFactor^(failures-1)`, at most `maxLaunchDelaySeconds`, in ms. */
export function backoffDelayMs(app: Pick<App, 'backoffSeconds' | 'backoffFactor' | 'maxLaunchDelaySeconds'>, failures: number): number {
  if (failures <= 0) return 0;
  const seconds = Math.min(app.backoffSeconds * app.backoffFactor ** (failures - 1), app.maxLaunchDelaySeconds);
  return Math.round(seconds * 1000);
}

const time = (iso: string | undefined): number => (iso === undefined ? 0 : Date.parse(iso));

/**
 * Healthy = RUNNING, and, when the app has health checks, a result reported
 * alive for every one of them (Marathon's "healthy"). A task with no result
 * yet for some check is not healthy.
 */
export function healthy(task: Task, app: Pick<App, 'healthChecks'>): boolean {
  if (task.state !== 'RUNNING') return false;
  const n = app.healthChecks.length;
  if (n === 0) return true;
  return task.healthCheckResults.length >= n && task.healthCheckResults.slice(0, n).every((h) => h.alive);
}

/** Every readiness check of the app has reported the task ready (true when the app has none). */
export function readinessPassed(task: Task, app: Pick<App, 'readinessChecks'>): boolean {
  return app.readinessChecks.every((c) => (task.readinessCheckResults ?? []).some((r) => r.name === c.name && r.ready));
}

/**
 * Ready = healthy and, when the app has readiness checks, reported ready by
 * each (Marathon counts a new task of a deployment only when it is both).
 * Old tasks of an upgrade are judged on health alone: readiness gates new
 * tasks only, as in Marathon.
 */
export function ready(task: Task, app: Pick<App, 'healthChecks' | 'readinessChecks'>): boolean {
  return healthy(task, app) && readinessPassed(task, app);
}

/**
 * True when a RUNNING task's health says it must go: some check with
 * `maxConsecutiveFailures` > 0 has that many consecutive failures (0 never
 * kills). The agent kills such a task itself; this is the controller's
 * backstop (an agent that reports but did not kill).
 */
export function healthExceeded(task: Task, app: Pick<App, 'healthChecks'>): boolean {
  if (task.state !== 'RUNNING') return false;
  return app.healthChecks.some((c, i) => {
    const r = task.healthCheckResults[i];
    return r !== undefined && c.maxConsecutiveFailures > 0 && r.consecutiveFailures >= c.maxConsecutiveFailures;
  });
}

/** Order of kills: tasks not yet running first, then by `killSelection` on `stagedAt`, then id. */
function killOrder(app: Pick<App, 'killSelection'>): (a: Task, b: Task) => number {
  const youngest = app.killSelection === 'YOUNGEST_FIRST';
  return (a, b) => {
    const ra = a.state === 'RUNNING' ? 1 : 0;
    const rb = b.state === 'RUNNING' ? 1 : 0;
    if (ra !== rb) return ra - rb;
    const ta = time(a.stagedAt);
    const tb = time(b.stagedAt);
    if (ta !== tb) return youngest ? tb - ta : ta - tb;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  };
}

interface AppTasks {
  /** Non-terminal, not inactive. */
  readonly counted: Task[];
  readonly killing: Task[];
  readonly current: Task[];
  readonly old: Task[];
  readonly inactive: Task[];
}

/** Where each deployment stands: its first unfinished step, and the apps that must wait for it. */
interface DeploymentProgress {
  readonly deployment: Deployment;
  /** 0-based index of the first unfinished step; `steps.length` when every step is done. */
  readonly step: number;
}

/**
 * Some actions end tasks at once (a kill of a task whose agent is gone is
 * written KILLED; expunges delete), and that can finish a deployment step
 * and release the next. So that one call says everything the state asks for
 * (and calling it again after its own actions asks for nothing), decide,
 * apply the actions in memory, and decide again while such actions appear.
 */
export function reconcile(view: ReconcileView, options: ReconcileOptions): ReconcileActions {
  let v = view;
  let backoff = options.backoff;
  const launch = new Map<string, Task>();
  const kill = new Map<string, KillAction>();
  const unreachable = new Set<string>();
  const expunge = new Set<string>();
  const updates = new Map<string, Deployment>();
  const complete = new Set<string>();
  let last: ReconcileActions | undefined;
  let wakeAt: number | undefined;
  for (let pass = 0; pass < 10; pass++) {
    const a = reconcileOnce(v, { ...options, ...(backoff ? { backoff } : {}) });
    last = a;
    backoff = a.backoff;
    if (a.wakeAt !== undefined && (wakeAt === undefined || a.wakeAt < wakeAt)) wakeAt = a.wakeAt;
    for (const t of a.launch) launch.set(t.id, t);
    for (const id of a.unreachable ?? []) unreachable.add(id);
    for (const k of a.kill) {
      const launched = launch.get(k.taskId);
      if (launched) launch.set(k.taskId, { ...launched, state: k.state });
      else kill.set(k.taskId, k);
    }
    for (const id of a.expunge) {
      if (launch.delete(id)) continue;
      expunge.add(id);
      kill.delete(id);
      unreachable.delete(id);
    }
    for (const d of a.updateDeployments) updates.set(d.id, d);
    for (const id of a.completeDeployments) complete.add(id);
    if (!a.kill.some((k) => k.state === 'KILLED') && a.expunge.length === 0) break;
    v = applyInMemory(v, a, new Date(options.now).toISOString());
  }
  // Deployment status (wait reasons, current actions) describes the state the round leaves behind:
  // when the round launches or kills, decide once more over the state with its actions applied and
  // keep that status, so the next round (which sees those writes) finds nothing to change.
  let rollbacks = last!.rollbacks;
  if ((launch.size > 0 || kill.size > 0) && view.deployments.some((d) => !complete.has(d.id))) {
    const merged: ReconcileActions = { ...last!, launch: [...launch.values()], kill: [...kill.values()], expunge: [...expunge], updateDeployments: [...updates.values()], completeDeployments: [...complete] };
    const settled = reconcileOnce(applyInMemory(view, merged, new Date(options.now).toISOString()), { ...options, ...(backoff ? { backoff } : {}) });
    for (const d of settled.updateDeployments) if (!complete.has(d.id)) updates.set(d.id, d);
    rollbacks = settled.rollbacks;
  }
  for (const id of complete) updates.delete(id);
  for (const id of kill.keys()) unreachable.delete(id);
  return {
    launch: [...launch.values()],
    kill: [...kill.values()],
    unreachable: [...unreachable],
    expunge: [...expunge],
    updateDeployments: [...updates.values()],
    completeDeployments: [...complete],
    rollbacks,
    backoff: last!.backoff,
    unplaced: last!.unplaced,
    wakeAt,
  };
}

/** What applying `actions` makes of `view` (the controller's writes, in memory). */
export function applyInMemory(view: ReconcileView, actions: ReconcileActions, nowIso: string): ReconcileView {
  const tasks = new Map(view.tasks.map((t) => [t.id, t]));
  for (const id of actions.unreachable ?? []) {
    const t = tasks.get(id);
    if (t) tasks.set(t.id, { ...t, state: 'UNREACHABLE', stateChangedAt: nowIso });
  }
  for (const k of actions.kill) {
    const t = tasks.get(k.taskId);
    if (t) tasks.set(t.id, { ...t, state: k.state, stateChangedAt: nowIso });
  }
  for (const t of actions.launch) tasks.set(t.id, t);
  for (const id of actions.expunge) tasks.delete(id);
  const deployments = new Map(view.deployments.map((d) => [d.id, d]));
  for (const d of actions.updateDeployments) deployments.set(d.id, d);
  for (const id of actions.completeDeployments) deployments.delete(id);
  return { ...view, tasks: [...tasks.values()], deployments: [...deployments.values()] };
}

/** One decision over `view` (see {@link reconcile}). */
export function reconcileOnce(view: ReconcileView, options: ReconcileOptions): ReconcileActions {
  const { now } = options;
  const retention = options.terminalRetentionMs ?? DEFAULT_TERMINAL_RETENTION_MS;
  const nowIso = new Date(now).toISOString();
  const apps = new Map(view.apps.map((a) => [a.id, a]));
  const agents = new Map(view.agents.map((a) => [a.id, a]));
  let wakeAt: number | undefined;
  const wake = (at: number): void => {
    if (at > now && (wakeAt === undefined || at < wakeAt)) wakeAt = at;
  };

  const launch: Task[] = [];
  const kill: KillAction[] = [];
  const expunge: string[] = [];
  const killed = new Set<string>();

  // --- Inactive tasks: unreachable (by state or agent) past inactiveAfterSeconds. A live task
  // of an unreachable agent is written UNREACHABLE now, so its clock starts now.
  const unreachable: string[] = [];
  const unreachableSince = (t: Task): number | undefined => {
    const agent = agents.get(t.agentId);
    if (!agent) return time(t.stateChangedAt);
    if (t.state === 'UNREACHABLE') return time(t.stateChangedAt);
    if (agent.health.status === 'unreachable') return now;
    return undefined;
  };
  const agentGone = (t: Task): boolean => {
    const agent = agents.get(t.agentId);
    return !agent || agent.health.status === 'unreachable';
  };

  // --- Group tasks by app; expunge terminal tasks after the retention.
  const byApp = new Map<string, Task[]>();
  for (const t of [...view.tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (isTerminal(t)) {
      const due = t.wipe ? now : time(t.stateChangedAt) + retention;
      if (due <= now) expunge.push(t.id);
      else wake(due);
      continue;
    }
    const list = byApp.get(t.appId) ?? [];
    list.push(t);
    byApp.set(t.appId, list);
    if (t.state !== 'UNREACHABLE' && t.state !== 'KILLING' && agents.get(t.agentId)?.health.status === 'unreachable') unreachable.push(t.id);
  }

  const versions = new Map((view.appVersions ?? []).map((v) => [`${v.id}@${v.version}`, v]));
  const sameConfig = new Map<string, boolean>();
  // A restart (Marathon's RestartApplication) bumps only the version: tasks
  // older than the newest restart deployment of their app are replaced even
  // though their definition is the same.
  // A RestartApplication that comes with a configuration change (a new definition, or a rollback to an
  // older one) replaces only the tasks whose configuration differs, which `sameConfig` below decides.
  const restartedAt = new Map<string, string>();
  for (const d of view.deployments) {
    for (const step of d.steps) {
      for (const action of step.actions) {
        const prev = restartedAt.get(action.app);
        if (action.action !== 'RestartApplication' || (prev !== undefined && d.version <= prev)) continue;
        const before = d.previous.find((p) => p.app === action.app)?.version;
        const beforeApp = before === undefined ? undefined : versions.get(`${action.app}@${before}`);
        const app = apps.get(action.app);
        if (beforeApp !== undefined && app !== undefined && isConfigChange(beforeApp, app)) continue;
        restartedAt.set(action.app, d.version);
      }
    }
  }
  const isCurrent = (app: App, t: Task): boolean => {
    if (t.version === app.version) return true;
    const restart = restartedAt.get(app.id);
    if (restart !== undefined && t.version < restart) return false;
    const key = `${app.id}@${t.version}`;
    let same = sameConfig.get(key);
    if (same === undefined) {
      const old = versions.get(key);
      same = old !== undefined && !isConfigChange(old, app);
      sameConfig.set(key, same);
    }
    return same;
  };

  const grouped = new Map<string, AppTasks>();
  for (const [appId, list] of byApp) {
    const app = apps.get(appId);
    const g: AppTasks = { counted: [], killing: [], current: [], old: [], inactive: [] };
    for (const t of list) {
      const since = unreachableSince(t);
      const strategy = app?.unreachableStrategy;
      if (since !== undefined && strategy !== undefined && strategy !== 'disabled') {
        const inactiveAt = since + strategy.inactiveAfterSeconds * 1000;
        if (inactiveAt <= now) {
          g.inactive.push(t);
          const expungeAt = since + strategy.expungeAfterSeconds * 1000;
          if (expungeAt <= now) expunge.push(t.id);
          else wake(expungeAt);
          continue;
        }
        wake(inactiveAt);
      }
      g.counted.push(t);
      if (t.state === 'KILLING') g.killing.push(t);
      else if (app && isCurrent(app, t)) g.current.push(t);
      else g.old.push(t);
    }
    grouped.set(appId, g);
  }
  const tasksOf = (appId: string): AppTasks => grouped.get(appId) ?? { counted: [], killing: [], current: [], old: [], inactive: [] };

  const killTask = (t: Task, reason: KillAction['reason']): void => {
    if (killed.has(t.id)) return;
    killed.add(t.id);
    kill.push({ taskId: t.id, appId: t.appId, state: agentGone(t) ? 'KILLED' : 'KILLING', reason: agentGone(t) ? 'agent-gone' : reason });
  };

  // --- Tasks of removed apps: kill them all (KILLING ones are already on their way).
  for (const [appId, g] of grouped) {
    if (apps.has(appId)) continue;
    for (const t of [...g.current, ...g.old]) killTask(t, 'app-removed');
    for (const t of g.killing) if (agentGone(t)) killTask(t, 'agent-gone');
  }

  // --- Deployments: which step each stands at; apps in later steps wait.
  const converged = (appId: string): boolean => {
    const app = apps.get(appId);
    const g = tasksOf(appId);
    if (!app) return g.counted.length === 0;
    return g.counted.length === app.instances && g.current.length === app.instances && g.current.every((t) => ready(t, app));
  };
  const actionDone = (action: Deployment['steps'][number]['actions'][number]): boolean => {
    if (action.action === 'StartApplication' || action.action === 'ResolveArtifacts') return true;
    if (action.action === 'StopApplication') return tasksOf(action.app).counted.length === 0;
    return converged(action.app);
  };
  const progress: DeploymentProgress[] = [...view.deployments]
    .sort((a, b) => time(a.createdAt) - time(b.createdAt) || (a.id < b.id ? -1 : 1))
    .map((deployment) => {
      // A failed deployment goes no further: its later steps stay held until it is rolled back or overridden.
      if (deployment.state === 'failed') return { deployment, step: Math.max(0, deployment.currentStep - 1) };
      let step = 0;
      while (step < deployment.steps.length && deployment.steps[step]!.actions.every(actionDone)) step++;
      return { deployment, step };
    });
  const held = new Set<string>();
  for (const { deployment, step } of progress) {
    const active = new Set<string>();
    // StartApplication starts an app at 0 instances: it does not release the app's instances.
    const acting = (a: { action: string }): boolean => a.action !== 'StartApplication' && a.action !== 'ResolveArtifacts';
    for (let i = 0; i <= step && i < deployment.steps.length; i++) for (const a of deployment.steps[i]!.actions) if (acting(a)) active.add(a.app);
    for (let i = step + 1; i < deployment.steps.length; i++) for (const a of deployment.steps[i]!.actions) if (!active.has(a.app)) held.add(a.app);
  }

  // --- Backoff: count new failures of the current version.
  const backoff = new Map<string, BackoffState>();
  const failuresByApp = new Map<string, number[]>();
  /** The latest failed task's state and message per app, shown with the backoff (why the launches fail: a network without free IPs, a crash). */
  const lastFailure = new Map<string, { at: number; message: string }>();
  for (const t of view.tasks) {
    if (!isTerminal(t) || NOT_FAILURES.has(t.state)) continue;
    const app = apps.get(t.appId);
    if (!app || !isCurrent(app, t)) continue;
    const list = failuresByApp.get(t.appId) ?? [];
    list.push(time(t.stateChangedAt));
    failuresByApp.set(t.appId, list);
    const last = lastFailure.get(t.appId);
    if (t.message !== undefined && (!last || time(t.stateChangedAt) >= last.at)) lastFailure.set(t.appId, { at: time(t.stateChangedAt), message: `${t.state}: ${t.message}` });
  }
  for (const app of view.apps) {
    const before = options.backoff?.get(app.id);
    let state: BackoffState | undefined = before && before.version === app.version ? before : undefined;
    const fresh = (failuresByApp.get(app.id) ?? []).filter((at) => at > (state?.lastFailureAt ?? -Infinity)).sort((a, b) => a - b);
    if (fresh.length > 0) {
      const failures = (state?.failures ?? 0) + fresh.length;
      const lastFailureAt = fresh[fresh.length - 1]!;
      state = { version: app.version, failures, lastFailureAt, delayUntil: lastFailureAt + backoffDelayMs(app, failures) };
    }
    // As Marathon's rate limiter (cleanUpOverdueDelays): the delay starts over once
    // maxLaunchDelaySeconds have passed since it ended with no new failure. Not when the
    // instances run again: a task is RUNNING as soon as its process starts, so a command that
    // crashes a moment later would never back off past backoffSeconds. (`lastFailureAt` is
    // kept, so the failures already counted are not counted again.)
    if (state && state.failures > 0 && now - state.delayUntil >= app.maxLaunchDelaySeconds * 1000) state = { ...state, failures: 0, delayUntil: 0 };
    if (state) {
      backoff.set(app.id, state);
      wake(state.delayUntil);
    }
  }

  // --- Per app: kills (surplus, upgrade) and how many to launch.
  const wanted: Record<string, number> = {};
  /** Apps mid-upgrade with nothing in flight and no old task killed this round: the old tasks left, in kill order. */
  const stallable = new Map<string, Task[]>();
  for (const app of [...view.apps].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    wanted[app.id] = 0;
    if (held.has(app.id)) continue;
    const g = tasksOf(app.id);
    const order = killOrder(app);
    for (const t of g.killing) if (agentGone(t)) killTask(t, 'agent-gone');
    const counted = g.counted.length;
    // Unhealthy beyond maxConsecutiveFailures: killed and replaced (they are no instance any more).
    for (const t of [...g.current, ...g.old]) if (healthExceeded(t, app)) killTask(t, 'unhealthy');
    const current = g.current.filter((t) => !killed.has(t.id));
    const old = g.old.filter((t) => !killed.has(t.id));

    // Surplus current instances.
    if (current.length > app.instances) {
      current.sort(order);
      for (const t of current.splice(0, current.length - app.instances)) killTask(t, 'scale-down');
    }
    // Old instances: keep minHealthy ready ones until the new ones are ready.
    let killedOld = 0;
    if (old.length > 0) {
      const readyNew = current.filter((t) => ready(t, app)).length;
      const readyOld = old.filter((t) => healthy(t, app)).length;
      old.sort(order);
      // Not-ready old tasks never help health: kill them first, without limit.
      const allowed = Math.max(0, readyNew + readyOld - minHealthy(app));
      let readyKills = 0;
      for (const t of [...old]) {
        const r = healthy(t, app);
        if (r && readyKills >= allowed) continue;
        if (r) readyKills++;
        killTask(t, 'upgrade');
        old.splice(old.indexOf(t), 1);
        killedOld++;
      }
    }
    // Launch: the missing current instances, within maxCapacity (KILLING tasks still count).
    const missing = Math.max(0, app.instances - current.length);
    const room = Math.max(0, maxCapacity(app) - counted);
    const b = backoff.get(app.id);
    const delayed = b !== undefined && b.delayUntil > now;
    const n = delayed ? 0 : Math.min(missing, room);
    // No room, nothing in flight, nothing killed: kill one old instance so the upgrade
    // can go on (minimumHealthCapacity 1 with maximumOverCapacity 0, or UNIQUE on a full cluster).
    const inFlight = g.killing.length > 0 || current.length + old.length < g.current.length + g.old.length || current.some((t) => !ready(t, app));
    if (n === 0 && missing > 0 && room === 0 && killedOld === 0 && old.length > 0 && !inFlight && !delayed) {
      killTask(old.sort(order)[0]!, 'upgrade');
    } else if (n > 0 && killedOld === 0 && old.length > 0 && !inFlight) {
      stallable.set(app.id, old.sort(order));
    }
    wanted[app.id] = n;
  }

  // --- Placement of every wanted instance in one plan (DRF across roles).
  const placed = plan(
    { agents: view.agents, tasks: view.tasks, apps: view.apps, roles: view.roles },
    { launch: wanted, ...(options.strategy ? { strategy: options.strategy } : {}) },
  );
  for (const p of placed.placements) launch.push(newTask(apps.get(p.appId)!, p, options.newUuid(), nowIso));
  // An upgrade whose new instances fit nowhere (UNIQUE on a small cluster, a full cluster) while
  // nothing is in flight: kill one old instance to free its place (below minimumHealthCapacity
  // for a moment rather than a deployment that never ends). Only where freeing a place can help:
  // not for a quota, no agent at all, or a constraint no agent meets whatever runs (LIKE, IS, ...).
  for (const u of placed.unplaced) {
    const old = stallable.get(u.appId);
    if (old && freeingHelps(u.reason) && !launch.some((t) => t.appId === u.appId)) killTask(old[0]!, 'upgrade');
  }

  /** Marathon's `currentActions[].readinessCheckResults`: the verdicts of the app's new tasks. */
  const readinessOf = (appId: string): ReadinessCheckResult[] => {
    const app = apps.get(appId);
    if (!app || app.readinessChecks.length === 0) return [];
    return tasksOf(appId).current.flatMap((t) => t.readinessCheckResults ?? []);
  };

  // --- Why each deployment waits (Strata): per app of its current step, and for the apps it holds.
  const appReasons = (appId: string): Omit<WaitReason, 'since'>[] => {
    const out: Omit<WaitReason, 'since'>[] = [];
    const app = apps.get(appId);
    const g = tasksOf(appId);
    const killing = g.killing.length + kill.filter((k) => k.appId === appId && k.state === 'KILLING').length;
    if (!app) {
      if (g.counted.length > 0) out.push({ app: appId, reason: 'waiting-for-kill', message: `${g.counted.length} task(s) of the removed app still being killed`, instances: g.counted.length });
      return out;
    }
    for (const u of placed.unplaced.filter((x) => x.appId === appId)) out.push({ app: appId, ...describeUnplaced(u) });
    const b = backoff.get(appId);
    if (b !== undefined && b.delayUntil > now) {
      out.push({ app: appId, reason: 'backoff', message: `launches delayed until ${new Date(b.delayUntil).toISOString()} after ${b.failures} failed task(s) (backoffSeconds ${app.backoffSeconds}, backoffFactor ${app.backoffFactor})${lastFailure.has(appId) ? `; last failure: ${lastFailure.get(appId)!.message.slice(0, 512)}` : ''}` });
    }
    if (killing > 0) out.push({ app: appId, reason: 'waiting-for-kill', message: `${killing} task(s) being killed before the deployment can go on`, instances: killing });
    const current = g.current.filter((t) => !killed.has(t.id));
    const starting = current.filter((t) => t.state !== 'RUNNING').length + launch.filter((t) => t.appId === appId).length;
    if (starting > 0) out.push({ app: appId, reason: 'tasks-starting', message: `${starting} new task(s) launched, not yet RUNNING`, instances: starting });
    const running = current.filter((t) => t.state === 'RUNNING');
    const unhealthy = running.filter((t) => !healthy(t, app));
    if (unhealthy.length > 0) {
      const cause = unhealthy.flatMap((t) => t.healthCheckResults.map((h) => h.lastFailureCause)).find((c) => c !== undefined);
      out.push({ app: appId, reason: 'health-failing', message: `${unhealthy.length} of ${running.length} running new task(s) not healthy yet${cause ? ` (last failure: ${cause})` : ' (no passing health check yet)'}`, instances: unhealthy.length });
    }
    const unready = running.filter((t) => healthy(t, app) && !readinessPassed(t, app));
    if (unready.length > 0) {
      const last = unready.flatMap((t) => t.readinessCheckResults ?? []).find((r) => !r.ready)?.lastResponse;
      out.push({ app: appId, reason: 'readiness-failing', message: `${unready.length} healthy new task(s) not ready yet (readiness check ${app.readinessChecks.map((c) => c.name).join(', ')})${last ? `; last response HTTP ${last.status}` : ''}`, instances: unready.length });
    }
    return out;
  };
  const reasonsOf = (deployment: Deployment, step: number): Omit<WaitReason, 'since'>[] => {
    if (step >= deployment.steps.length) return [];
    const blocking = deployment.steps[step]!.actions.filter((a) => !actionDone(a)).map((a) => a.app);
    const out = blocking.flatMap(appReasons);
    const acting = new Set(deployment.steps[step]!.actions.map((a) => a.app));
    const laterApps = new Set(deployment.steps.slice(step + 1).flatMap((s) => s.actions.map((a) => a.app)).filter((a) => !acting.has(a)));
    for (const appId of [...laterApps].sort()) {
      out.push({ app: appId, reason: 'dependency-not-ready', message: `waits for step ${step + 1} of ${deployment.steps.length}: ${blocking.join(', ')} not yet ready` });
    }
    return out;
  };

  // --- Deployment records: delete the finished, fail those past their deadline, record the step and wait reasons of the others.
  const completeDeployments: string[] = [];
  const updateDeployments: Deployment[] = [];
  const rollbacks: string[] = [];
  for (const { deployment, step } of progress) {
    // Failed (in an earlier round, so the failure is stored and seen) and asked to roll back: the controller does it.
    if (deployment.state === 'failed' && deployment.rollbackOnFailure === true) {
      rollbacks.push(deployment.id);
      continue;
    }
    // A deployment is finished only when nothing is about to change its apps' tasks.
    const touched = deployment.affectedApps.some((a) => launch.some((t) => t.appId === a) || kill.some((k) => k.appId === a));
    if (step >= deployment.steps.length && !touched && deployment.state !== 'failed') {
      completeDeployments.push(deployment.id);
      continue;
    }
    const at = Math.min(step, deployment.steps.length - 1);
    const currentStep = at + 1;
    const actions = deployment.steps[at]?.actions ?? [];
    const currentActions = actions.map((a) => ({ action: a.action, app: a.app, readinessCheckResults: readinessOf(a.app) }));
    const previous = new Map((deployment.waitReasons ?? []).map((r) => [`${r.app} ${r.reason}`, r.since]));
    const waitReasons: WaitReason[] = reasonsOf(deployment, step).map((r) => ({ ...r, since: previous.get(`${r.app} ${r.reason}`) ?? nowIso }));
    let state = deployment.state === 'failed' ? 'failed' as const : 'running' as const;
    let failure: Pick<Deployment, 'failedAt' | 'failureMessage'> = {};
    const deadline = deployment.deadline === undefined ? undefined : Date.parse(deployment.deadline);
    if (state === 'running' && deadline !== undefined) {
      if (deadline <= now) {
        state = 'failed';
        const why = waitReasons.map((r) => `${r.app}: ${r.message}`).join('; ');
        failure = { failedAt: nowIso, failureMessage: `deadline ${deployment.deadline} passed at step ${currentStep} of ${deployment.steps.length}${why ? `: ${why}` : ''}`.slice(0, 8192) };
      } else wake(deadline);
    }
    const next: Deployment = { ...deployment, state, currentStep, currentActions, waitReasons, ...failure };
    if (JSON.stringify(next) !== JSON.stringify(deployment)) updateDeployments.push(next);
  }

  const killedIds = new Set(kill.map((k) => k.taskId));
  const expunged = new Set(expunge);
  return {
    launch,
    kill,
    unreachable: unreachable.filter((id) => !killedIds.has(id) && !expunged.has(id)),
    expunge,
    updateDeployments,
    completeDeployments,
    rollbacks,
    backoff,
    unplaced: placed.unplaced,
    wakeAt,
  };
}

/** Constraint operators whose verdict depends on where the app's tasks run (so a killed old task can make room). */
const PLACEMENT_DEPENDENT: ReadonlySet<string> = new Set(['UNIQUE', 'MAX_PER', 'GROUP_BY', 'CLUSTER']);

/** Whether killing an old instance can let an unplaced new one fit: no room, or a constraint counting the app's tasks. */
export function freeingHelps(reason: Unplaced['reason']): boolean {
  if (reason.kind === 'insufficient') return true;
  if (reason.kind !== 'constraint') return false;
  const [, operator, value] = reason.constraint;
  return operator !== undefined && PLACEMENT_DEPENDENT.has(operator) && !(operator === 'CLUSTER' && value !== undefined);
}

/** A placement failure as a wait reason. */
export function describeUnplaced(u: Unplaced): Pick<WaitReason, 'reason' | 'message' | 'instances'> {
  const n = `${u.instances} instance(s)`;
  const r = u.reason;
  switch (r.kind) {
    case 'no-agents':
      return { reason: 'no-capacity', message: `${n} cannot be placed: no agent is available (none registered, or all unreachable, unhealthy or draining)`, instances: u.instances };
    case 'no-resources-for-roles':
      return { reason: 'no-capacity', message: `${n} cannot be placed: acceptedResourceRoles ${r.acceptedResourceRoles.join(', ')} names neither the app's role nor *`, instances: u.instances };
    case 'quota':
      return { reason: 'quota', message: `${n} wait for quota: role ${r.role} would exceed its limit by ${Object.entries(r.exceeded).map(([k, v]) => `${k} ${v}`).join(', ')}`, instances: u.instances };
    case 'constraint':
      return { reason: 'constraint-unmet', message: `${n} fit on no agent: constraint ${r.constraint.join(':')} turned away ${r.agents} agent(s)`, instances: u.instances };
    case 'insufficient': {
      const m = r.missing;
      const lacks = [
        m.cpus === undefined ? undefined : `cpus ${m.cpus}`,
        m.memMb === undefined ? undefined : `mem ${m.memMb} MB`,
        m.diskMb === undefined ? undefined : `disk ${m.diskMb} MB`,
        m.gpus === undefined ? undefined : `gpus ${m.gpus}`,
        m.ports === undefined ? undefined : `${m.ports} port(s)`,
        m.hostPorts === undefined ? undefined : `host port(s) ${m.hostPorts.join(',')}`,
      ].filter((x) => x !== undefined);
      return { reason: 'no-capacity', message: `${n} fit on no agent: the closest (${r.agentId}) lacks ${lacks.join(', ') || 'room'}`, instances: u.instances };
    }
  }
}

function servicePortsOf(app: App): number[] {
  const mode = app.networks[0]?.mode ?? 'host';
  if (mode === 'host') return app.portDefinitions.map((p) => p.port);
  return (app.container?.portMappings ?? []).filter((m) => m.hostPort !== undefined).map((m) => m.servicePort);
}

function newTask(app: App, p: Placement, uuid: string, nowIso: string): Task {
  return {
    id: taskIdFor(app.id, uuid),
    appId: app.id,
    agentId: p.agentId,
    host: p.hostname,
    state: 'STAGING',
    stagedAt: nowIso,
    stateChangedAt: nowIso,
    ports: [...p.ports],
    servicePorts: servicePortsOf(app),
    ipAddresses: [],
    healthCheckResults: [],
    version: app.version,
    resources: { ...p.resources },
    role: p.role,
  };
}

/** True if the actions write nothing to the store (the backoff memory and wake time aside). */
export function isEmpty(actions: ReconcileActions): boolean {
  return actions.launch.length + actions.kill.length + (actions.unreachable?.length ?? 0) + actions.expunge.length + actions.updateDeployments.length + actions.completeDeployments.length + actions.rollbacks.length === 0;
}

/**
 * The Marathon API's writes: every change to apps (create, update, delete,
 * rollback) is planned (`scheduler/deployments/plan.ts`) and stored in ONE
 * store transaction: the apps, a new appVersion for each app written, the
 * deployment record, and the removal of deployments it supersedes. The
 * transaction is conditioned on the `modifyIndex` of every app it changes
 * (and of every deployment it removes), so concurrent writers never lose
 * an update: the loser re-reads and tries again, and then sees the lock.
 * (Within one API instance writes also run one at a time.)
 *
 * Locks: an app is locked while a deployment that affects it exists. Every
 * deployment writes each app it affects, so the app's `modifyIndex`
 * condition also guards the lock check. A change to a locked app is refused
 * with `APP_LOCKED` (Marathon's 409 with `deployments:[{id}]`) unless forced;
 * a forced change removes the deployments it overrides (Marathon cancels
 * them).
 *
 * The deployment controller (`scheduler/controller/`, a leader loop) runs
 * them: it launches and kills tasks until the apps match, records the step
 * a deployment is at (`running`, `currentStep`) and deletes it when done.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Counter, type Registry } from 'prom-client';
import { StrataError } from '../../../common/errors.ts';
import { keyOf, appVersionId } from '../../model/keys.ts';
import type { Versioned } from '../../model/records.ts';
import { TERMINAL_TASK_STATES, type App, type AppVersion, type Deployment, type ServicePort, type Task } from '../../model/schemas.ts';
import { assignServicePorts, servicePortsOf } from '../../model/service-ports.ts';
import { assertRecord } from '../../model/validate.ts';
import { allows, type Action } from '../../../security/iam.ts';
import { planDeployment } from '../../../scheduler/deployments/plan.ts';
import type { TxnCondition, TxnWrite } from '../../store/port.ts';
import { vipConflicts, vipRangesOf } from '../../vips/plan.ts';
import { meshConfig } from '../../xds/labels.ts';
import type { ApiContext } from '../context.ts';

/** The DC/OS resource of a Marathon app (or group) path. */
export const MARATHON_SERVICES_RID = 'dcos:service:marathon:marathon:services:';
/** What a user needs to reach Marathon's collection routes at all (Admin Router's rid; `full` only, as in DC/OS). */
export const MARATHON_GATE_RID = 'dcos:adminrouter:service:marathon';

export const appRid = (appId: string): string => `${MARATHON_SERVICES_RID}${appId}`;

/** Whether the caller (authenticated by the auth hook) holds `action` on `rid`. */
export async function callerMay(ctx: ApiContext, request: FastifyRequest, rid: string, action: Action): Promise<boolean> {
  const uid = request.principalUid;
  if (uid === undefined) return false;
  const principal = await ctx.iam.getPrincipal(uid);
  return principal !== undefined && allows(principal, rid, action);
}

export async function assertCallerMay(ctx: ApiContext, request: FastifyRequest, rid: string, action: Action): Promise<void> {
  if (!(await callerMay(ctx, request, rid, action))) {
    throw new StrataError('API_FORBIDDEN', `${request.principalUid ?? 'the caller'} lacks ${action} on ${rid}`, { details: { rid, action } });
  }
}

/** What the store holds now: every app and every deployment, with their indexes. */
export interface MarathonState {
  readonly apps: ReadonlyMap<string, Versioned<App>>;
  readonly deployments: readonly Versioned<Deployment>[];
}

export async function readState(ctx: ApiContext): Promise<MarathonState> {
  const [apps, deployments] = await Promise.all([ctx.records.list('app'), ctx.records.list('deployment')]);
  return { apps: new Map(apps.records.map((r) => [r.id, r])), deployments: deployments.records };
}

/** The deployments that lock any of `appIds`. */
export function locking(deployments: readonly Versioned<Deployment>[], appIds: Iterable<string>): Versioned<Deployment>[] {
  const ids = new Set(appIds);
  return deployments.filter((d) => d.value.affectedApps.some((a) => ids.has(a)));
}

/** One app's new definition (without its version, which the write stamps), or `undefined` to remove it. */
export type AppChange = { readonly id: string; readonly next: Omit<App, 'version'> | undefined };

export interface ChangeOptions {
  /** Override locks: remove the deployments that lock the changed apps. */
  readonly force: boolean;
  /** A deployment this change replaces (a rollback): removed, and never a lock. */
  readonly replaces?: string;
  /** Strata: mark the deployment failed if it is not done this many seconds after it is written (and roll it back when `rollback`). */
  readonly deadline?: DeadlineOption | undefined;
  /** The group a `/v2/groups` write changes (recorded on the deployment, for group events). */
  readonly groupId?: string;
  /** Apps to restart (Marathon POST /v2/apps/<id>/restart): a RestartApplication step for each, even when the definition is unchanged (the write bumps the version). */
  readonly restart?: readonly string[];
}

export interface DeadlineOption {
  readonly seconds: number;
  readonly rollback: boolean;
}

/** The query parameters every deployment-starting write accepts (Strata, beyond Marathon). */
export const DeadlineQuery = {
  deadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400, description: 'Strata: mark the deployment failed (deployment_failed event) if it is not done after this many seconds' })),
  rollbackOnFailure: Type.Optional(Type.Boolean({ description: 'Strata, with deadlineSeconds: roll the deployment back automatically when it fails' })),
};

/** The deadline a write asked for; `rollbackOnFailure` without `deadlineSeconds` is refused (it would never apply). */
export function deadlineOf(query: { deadlineSeconds?: number | undefined; rollbackOnFailure?: boolean | undefined }): DeadlineOption | undefined {
  if (query.deadlineSeconds === undefined) {
    if (query.rollbackOnFailure) throw new StrataError('API_BAD_REQUEST', 'rollbackOnFailure needs deadlineSeconds (a deployment fails only when its deadline passes)', { details: { field: 'rollbackOnFailure' } });
    return undefined;
  }
  return { seconds: query.deadlineSeconds, rollback: query.rollbackOnFailure ?? false };
}

export interface ChangeResult {
  /** The new deployment's id (a deployment with no steps is finished at once and not stored). */
  readonly deploymentId: string;
  readonly version: string;
  readonly deployment: Deployment | undefined;
  /** The apps as written (absent: removed). */
  readonly apps: ReadonlyMap<string, App | undefined>;
  /** Whether each changed app existed before. */
  readonly existed: ReadonlyMap<string, boolean>;
}

const ATTEMPTS = 8;

/**
 * Writes through one API instance run one at a time, so its own concurrent
 * requests never race each other's check-and-set; the transaction's
 * conditions still settle races with other masters.
 */
const queues = new WeakMap<ApiContext, Promise<unknown>>();

function oneAtATime<T>(ctx: ApiContext, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(ctx) ?? Promise.resolve()).then(fn, fn);
  queues.set(ctx, run.catch(() => undefined));
  return run;
}

/** A version later than `now` and than every version in `previous` (so each write's version is new). */
function nextVersion(previous: readonly string[]): string {
  let t = Date.now();
  for (const v of previous) t = Math.max(t, Date.parse(v) + 1);
  return new Date(t).toISOString();
}

export function lockedError(deployments: readonly { id: string }[]): StrataError {
  const ids = deployments.map((d) => d.id);
  return new StrataError(
    'APP_LOCKED',
    `App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'. (${ids.join(', ')})`,
    { details: { deployments: ids.map((id) => ({ id })) } },
  );
}

/**
 * Apply `decide(state)`'s changes in one transaction, retrying (re-reading
 * and deciding again) when another writer got there first. `decide` may
 * throw (not found, conflict) and sees the state the transaction is
 * conditioned on.
 */
export function changeApps(ctx: ApiContext, decide: (state: MarathonState) => Promise<AppChange[]> | AppChange[], options: ChangeOptions): Promise<ChangeResult> {
  return oneAtATime(ctx, () => changeAppsNow(ctx, decide, options));
}

async function changeAppsNow(ctx: ApiContext, decide: (state: MarathonState) => Promise<AppChange[]> | AppChange[], options: ChangeOptions): Promise<ChangeResult> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const state = await readState(ctx);
    const changes = await decide(state);
    const replaced = options.replaces === undefined ? undefined : state.deployments.find((d) => d.id === options.replaces);
    if (options.replaces !== undefined && !replaced) throw new StrataError('RECORD_NOT_FOUND', `no deployment ${JSON.stringify(options.replaces)}`);
    const version = nextVersion(changes.map((c) => state.apps.get(c.id)?.value.version).filter((v): v is string => v !== undefined));

    // Service ports: filled in for each written app against the ports held now; claims and
    // releases go into this transaction (create-only claims: a concurrent writer's loses).
    const held = await heldServicePorts(ctx, state);
    const claims: number[] = [];
    const releases = new Map<number, Versioned<ServicePort> | undefined>();
    const written = new Map<string, App | undefined>();
    for (const c of changes) {
      let app = c.next === undefined ? undefined : ({ ...c.next, id: c.id, version } as App);
      const ports = app ? assignServicePorts(app, state.apps.get(c.id)?.value, held.owners) : { claim: [], release: [...held.owners].filter(([, owner]) => owner === c.id).map(([p]) => p) };
      if (app) app = (ports as { app: App }).app;
      for (const p of ports.claim) {
        held.owners.set(p, c.id);
        releases.delete(p); // released by an app changed earlier in this write: its record is rewritten
        claims.push(p);
      }
      for (const p of ports.release) {
        held.owners.delete(p);
        releases.set(p, held.records.get(p));
      }
      if (app) assertRecord('app', app);
      written.set(c.id, app);
    }
    const current = [...state.apps.values()].map((r) => r.value);
    const target = [...state.apps.values()].filter((r) => !written.has(r.id)).map((r) => r.value);
    for (const app of written.values()) if (app) target.push(app);
    const vipIssues = vipConflicts(target, new Set([...written].filter(([, app]) => app !== undefined).map(([id]) => id)), vipRangesOf(ctx.config));
    if (vipIssues.length > 0) {
      throw new StrataError('RECORD_INVALID', `VIP labels conflict: ${vipIssues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { details: vipIssues });
    }
    // Mesh labels (control-plane/xds) must parse; which VIPs their routes name is checked when they are served.
    const meshIssues = [...written.values()].flatMap((app) =>
      app ? meshConfig(app, app.id).issues.map((i) => ({ path: `/labels/${i.label}`, message: i.message })) : [],
    );
    if (meshIssues.length > 0) {
      throw new StrataError('RECORD_INVALID', `mesh labels are invalid: ${meshIssues.map((i) => `${i.path} ${i.message}`).join('; ')}`, { details: meshIssues });
    }
    const planned = planDeployment(current, target, { version });
    const restartNow = (options.restart ?? []).filter((id) => !planned.affectedApps.includes(id) && written.get(id) !== undefined);
    const plan = restartNow.length === 0
      ? planned
      : { ...planned, steps: [...planned.steps, { actions: restartNow.map((app) => ({ action: 'RestartApplication' as const, app })) }], affectedApps: [...planned.affectedApps, ...restartNow].sort() };

    const touched = new Set([...written.keys(), ...plan.affectedApps]);
    const locks = locking(state.deployments, touched).filter((d) => d.id !== options.replaces);
    if (locks.length > 0 && !options.force) throw lockedError(locks.map((d) => d.value));
    const removed = replaced ? [...locks, replaced] : locks;

    const now = new Date().toISOString();
    const deploymentId = randomUUID();
    const deployment: Deployment | undefined =
      plan.steps.length === 0
        ? undefined
        : {
            id: deploymentId,
            version,
            affectedApps: plan.affectedApps,
            affectedPods: [],
            steps: plan.steps,
            currentActions: [],
            currentStep: 0,
            totalSteps: plan.steps.length,
            state: 'pending',
            createdAt: now,
            previous: plan.affectedApps.map((app) => {
              const before = state.apps.get(app)?.value.version;
              return before === undefined ? { app } : { app, version: before };
            }),
            ...(options.groupId === undefined ? {} : { groupId: options.groupId }),
            ...(options.deadline
              ? { deadline: new Date(Date.parse(now) + options.deadline.seconds * 1000).toISOString(), rollbackOnFailure: options.deadline.rollback }
              : {}),
          };
    if (deployment) assertRecord('deployment', deployment);

    const conditions: TxnCondition[] = [];
    const writes: TxnWrite[] = [];
    for (const [id, app] of written) {
      const key = keyOf('app', id);
      conditions.push({ key, modifyIndex: state.apps.get(id)?.modifyIndex ?? 0 });
      if (app) {
        writes.push({ op: 'put', key, value: JSON.stringify(app) });
        const kept: AppVersion = app;
        assertRecord('appVersion', kept);
        writes.push({ op: 'put', key: keyOf('appVersion', appVersionId(id, version)), value: JSON.stringify(kept) });
      } else if (state.apps.has(id)) {
        writes.push({ op: 'delete', key });
      }
    }
    for (const d of removed) {
      conditions.push({ key: d.key, modifyIndex: d.modifyIndex });
      writes.push({ op: 'delete', key: d.key });
    }
    for (const port of claims) {
      const key = keyOf('servicePort', String(port));
      const record: ServicePort = { port, appId: held.owners.get(port)! };
      assertRecord('servicePort', record);
      conditions.push({ key, modifyIndex: held.records.get(port)?.modifyIndex ?? 0 });
      writes.push({ op: 'put', key, value: JSON.stringify(record) });
    }
    for (const [, record] of releases) {
      if (!record) continue; // held by an app written before service port records existed: nothing stored
      conditions.push({ key: record.key, modifyIndex: record.modifyIndex });
      writes.push({ op: 'delete', key: record.key });
    }
    if (deployment) writes.push({ op: 'put', key: keyOf('deployment', deployment.id), value: JSON.stringify(deployment) });
    const result = await ctx.store.txn({ conditions, writes });
    if (result.ok) {
      if (claims.length > 0) servicePortCounter(ctx.metrics.registry).inc(claims.length);
      const existed = new Map([...written.keys()].map((id) => [id, state.apps.has(id)]));
      return { deploymentId, version, deployment, apps: written, existed };
    }
  }
  throw new StrataError('RECORD_CONFLICT', `the apps changed concurrently ${ATTEMPTS} times while this change was being stored; retry`);
}

const portCounters = new WeakMap<Registry, Counter>();
function servicePortCounter(registry: Registry): Counter {
  let c = portCounters.get(registry);
  if (!c) {
    c = new Counter({ name: 'strata_marathon_service_ports_claimed_total', help: 'Service ports claimed by app writes (assigned from 10000-20000 or given by the app)', registers: [registry] });
    portCounters.set(registry, c);
  }
  return c;
}

/** Every held service port and its app: the `servicePort` records, plus non-zero ports of stored apps that have none (written before the records existed). */
async function heldServicePorts(ctx: ApiContext, state: MarathonState): Promise<{ owners: Map<number, string>; records: Map<number, Versioned<ServicePort>> }> {
  const { records } = await ctx.records.list('servicePort');
  const owners = new Map<number, string>();
  const byPort = new Map<number, Versioned<ServicePort>>();
  for (const r of records) {
    owners.set(r.value.port, r.value.appId);
    byPort.set(r.value.port, r);
  }
  for (const { value: app } of state.apps.values()) {
    for (const p of servicePortsOf(app)) if (p !== 0 && !owners.has(p)) owners.set(p, app.id);
  }
  return { owners, records: byPort };
}

export interface KillResult {
  /** The tasks as written (KILLING), or as found when already terminal or killing. */
  readonly tasks: Task[];
  /** The scale-down deployment (with `scale`), if one was needed. */
  readonly change: ChangeResult | undefined;
}

/**
 * Kill tasks (Marathon `DELETE /v2/apps/<id>/tasks/<task>`, `POST
 * /v2/tasks/delete`): each live task is set to KILLING with check-and-set
 * (the agent kills it and reports KILLED). Without `scale` the deployment
 * controller replaces them; with `scale` each app's `instances` is lowered
 * by its killed tasks, in one deployment (refused while a deployment locks
 * the app, unless forced; the lock is checked before any task is touched).
 * With `wipe` (Marathon's `wipe=true`, not with `scale`) each task is also
 * marked `wipe`: the controller expunges its record as soon as it is
 * terminal, and it is replaced like any killed task (Strata has no resident
 * volumes to destroy). `authorize` runs once per app before anything is written.
 */
export async function killTasks(
  ctx: ApiContext,
  ids: readonly string[],
  options: { readonly scale: boolean; readonly force: boolean; readonly wipe?: boolean; readonly authorize: (appId: string) => Promise<void> },
): Promise<KillResult> {
  if (options.scale && options.wipe) throw new StrataError('API_BAD_REQUEST', 'You cannot use scale and wipe at the same time.', { details: { scale: true, wipe: true } });
  const found: Versioned<Task>[] = [];
  for (const id of new Set(ids)) {
    const task = await ctx.records.get('task', id).catch((err: unknown) => {
      if (err instanceof StrataError && err.code === 'RECORD_ID_INVALID') return undefined;
      throw err;
    });
    if (!task) throw new StrataError('RECORD_NOT_FOUND', `Task '${id}' does not exist`);
    found.push(task);
  }
  const appIds = [...new Set(found.map((t) => t.value.appId))];
  for (const appId of appIds) await options.authorize(appId);
  if (options.scale && !options.force) {
    const locks = locking((await readState(ctx)).deployments, appIds);
    if (locks.length > 0) throw lockedError(locks.map((d) => d.value));
  }
  const tasks: Task[] = [];
  const killedPerApp = new Map<string, number>();
  for (let task of found) {
    for (let attempt = 0; ; attempt++) {
      const done = TERMINAL_TASK_STATES.has(task.value.state) || task.value.state === 'KILLING';
      if (done && (!options.wipe || task.value.wipe)) {
        tasks.push(task.value);
        break;
      }
      const next: Task = done
        ? { ...task.value, wipe: true }
        : { ...task.value, state: 'KILLING', stateChangedAt: new Date().toISOString(), ...(options.wipe ? { wipe: true } : {}) };
      const written = await ctx.records.put('task', next, { casIndex: task.modifyIndex });
      if (written.ok) {
        tasks.push(next);
        if (!done) killedPerApp.set(next.appId, (killedPerApp.get(next.appId) ?? 0) + 1);
        break;
      }
      const again = attempt < ATTEMPTS ? await ctx.records.get('task', task.id) : undefined;
      if (!again) throw new StrataError('RECORD_CONFLICT', `task ${task.id} changed concurrently while it was being killed; retry`);
      task = again;
    }
  }
  let change: ChangeResult | undefined;
  if (options.scale && killedPerApp.size > 0) {
    change = await changeApps(ctx, (state) => {
      const changes: AppChange[] = [];
      for (const [appId, n] of killedPerApp) {
        const app = state.apps.get(appId)?.value;
        if (!app) continue;
        const { version: _v, ...definition } = app;
        changes.push({ id: appId, next: { ...definition, instances: Math.max(0, app.instances - n) } });
      }
      return changes;
    }, { force: options.force });
  }
  return { tasks, change };
}

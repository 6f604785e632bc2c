/**
 * The deployment controller: a leader loop (`control-plane/master.ts`) that
 * keeps views of apps, tasks, agents, roles and deployments, and after each
 * change (debounced) runs the pure {@link reconcile} and writes its actions
 * through `leadership.fencedTxn`, in transactions of at most
 * {@link MAX_TXN_OPS} operations (each write carries the check-and-set of the
 * record it replaces). A lost check-and-set means the state moved on: the
 * loop waits for its views to see the change and reconciles again. After a
 * successful write it waits until its views hold that write, so it never
 * decides twice from the same stale state. It stops when leadership is lost
 * (`signal` aborts) or a write is fenced.
 *
 * The backoff (Marathon's launch delay) is kept in the store, one
 * `launchDelay` record per app, written with the same fenced transactions:
 * each round starts from the stored records, so a new leader continues the
 * delays and `DELETE /v2/queue/{id}/delay` (which resets a record) takes
 * effect at once.
 */
import { randomUUID } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { isStrataError } from '../../common/errors.ts';
import type { LeaderLoop, LeaderLoopContext } from '../../control-plane/master.ts';
import { keyOf } from '../../control-plane/model/keys.ts';
import { openView, type RecordView } from '../../control-plane/model/records.ts';
import type { LaunchDelay, RecordKind, RecordTypes, Task } from '../../control-plane/model/schemas.ts';
import { assertRecord } from '../../control-plane/model/validate.ts';
import type { Leadership } from '../../control-plane/store/election.ts';
import type { TxnCondition, TxnWrite } from '../../control-plane/store/port.ts';
import { planRollback } from '../deployments/rollback.ts';
import type { Deployment } from '../../control-plane/model/schemas.ts';
import { appVersionId } from '../../control-plane/model/keys.ts';
import { isEmpty, reconcile, type BackoffState, type ReconcileActions } from './reconcile.ts';

/** Conditions plus writes per transaction (the store allows 64; the fence takes one). */
export const MAX_TXN_OPS = 60;

export interface DeploymentControllerOptions {
  /** Quiet time after a change before reconciling (default 20 ms). */
  readonly debounceMs?: number;
  /** How long terminal tasks are kept (default 5 minutes). */
  readonly terminalRetentionMs?: number;
  readonly strategy?: 'spread' | 'binpack';
  /** Clock (tests). */
  readonly now?: () => number;
  /** Random part of task ids (tests). */
  readonly newUuid?: () => string;
  /** Called after each round (tests, diagnostics). */
  readonly onRound?: (actions: ReconcileActions) => void;
}

interface Metrics {
  readonly failed: Counter;
  readonly rollbacks: Counter;
  readonly launched: Counter;
  readonly killed: Counter;
  readonly rounds: Counter;
  readonly conflicts: Counter;
  readonly unreachable: Counter;
}

const metricsByRegistry = new WeakMap<Registry, Metrics>();

function metricsOf(registry: Registry): Metrics {
  let m = metricsByRegistry.get(registry);
  if (!m) {
    const r = [registry];
    m = {
      failed: new Counter({ name: 'strata_scheduler_deployments_failed_total', help: 'Deployments marked failed because their deadline passed', registers: r }),
      rollbacks: new Counter({ name: 'strata_scheduler_deployment_rollbacks_total', help: 'Automatic rollbacks of failed deployments, by outcome', labelNames: ['outcome'], registers: r }),
      launched: new Counter({ name: 'strata_scheduler_tasks_launched_total', help: 'Task records created by the deployment controller', registers: r }),
      killed: new Counter({ name: 'strata_scheduler_tasks_killed_total', help: 'Tasks the deployment controller asked to kill', labelNames: ['reason'], registers: r }),
      rounds: new Counter({ name: 'strata_scheduler_reconcile_rounds_total', help: 'Reconcile rounds that wrote something', registers: r }),
      conflicts: new Counter({ name: 'strata_scheduler_write_conflicts_total', help: 'Controller transactions refused by a check-and-set (then reconciled again)', registers: r }),
      unreachable: new Counter({ name: 'strata_scheduler_tasks_unreachable_total', help: 'Tasks written UNREACHABLE because their agent was marked unreachable', registers: r }),
    };
    metricsByRegistry.set(registry, m);
  }
  return m;
}

type Views = { readonly [K in 'app' | 'task' | 'agent' | 'role' | 'deployment' | 'appVersion' | 'launchDelay']: RecordView<RecordTypes[K]> };

interface Op {
  readonly kind: RecordKind;
  /** Creates a task. */
  readonly launch?: boolean;
  /** Kills a task, for this reason. */
  readonly killReason?: string;
  /** Marks a task UNREACHABLE. */
  readonly unreachable?: boolean;
  readonly condition: TxnCondition;
  readonly write: TxnWrite;
}

/** The store operations of a round's actions, each with the check-and-set of the record it replaces. */
export function operationsOf(actions: ReconcileActions, views: Views, nowIso: string): Op[] {
  const ops: Op[] = [];
  const task = (t: Task): string => {
    assertRecord('task', t);
    return JSON.stringify(t);
  };
  for (const k of actions.kill) {
    const current = views.task.records.get(k.taskId);
    if (!current) continue;
    const next: Task = {
      ...current.value,
      state: k.state,
      stateChangedAt: nowIso,
      ...(k.state === 'KILLED' ? { message: `killed by the scheduler (${k.reason}) while its agent was unreachable or gone` } : {}),
    };
    ops.push({ kind: 'task', killReason: k.reason, condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'put', key: current.key, value: task(next) } });
  }
  for (const id of actions.unreachable ?? []) {
    const current = views.task.records.get(id);
    if (!current) continue;
    const next: Task = { ...current.value, state: 'UNREACHABLE', stateChangedAt: nowIso, message: `agent ${current.value.agentId} is unreachable` };
    ops.push({ kind: 'task', unreachable: true, condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'put', key: current.key, value: task(next) } });
  }
  for (const t of actions.launch) {
    const key = keyOf('task', t.id);
    ops.push({ kind: 'task', launch: true, condition: { key, modifyIndex: 0 }, write: { op: 'put', key, value: task(t) } });
  }
  for (const id of actions.expunge) {
    const current = views.task.records.get(id);
    if (!current) continue;
    ops.push({ kind: 'task', condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'delete', key: current.key } });
  }
  for (const d of actions.updateDeployments) {
    const current = views.deployment.records.get(d.id);
    if (!current) continue;
    assertRecord('deployment', d);
    ops.push({ kind: 'deployment', condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'put', key: current.key, value: JSON.stringify(d) } });
  }
  for (const id of actions.completeDeployments) {
    const current = views.deployment.records.get(id);
    if (!current) continue;
    ops.push({ kind: 'deployment', condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'delete', key: current.key } });
  }
  return ops;
}

/**
 * The one transaction that rolls a failed deployment back (`rollbackOnFailure`):
 * the restored apps (each with its appVersion), the removed ones, the failed
 * deployment deleted and the rollback deployment created, every app and the
 * failed deployment guarded by check-and-set. When the rollback cannot be
 * planned (a version no longer stored, a dependency cycle), the failed
 * deployment is kept, no longer asking for a rollback, its message saying why.
 */
export function rollbackOperations(failedId: string, views: Views, now: number, newId: string): { ok: boolean; ops: Op[]; message?: string } {
  const failed = views.deployment.records.get(failedId);
  if (!failed) return { ok: true, ops: [] };
  const apps = new Map([...views.app.records.values()].map((r) => [r.id, r.value]));
  const versions = new Map([...views.appVersion.records.values()].map((r) => [r.id, r.value]));
  let plan: ReturnType<typeof planRollback>;
  try {
    plan = planRollback(failed.value, apps, versions, { now, id: newId });
  } catch (err) {
    plan = { error: err instanceof Error ? err.message : String(err) };
  }
  const condition = { key: failed.key, modifyIndex: failed.modifyIndex };
  if ('error' in plan) {
    const kept: Deployment = { ...failed.value, rollbackOnFailure: false, failureMessage: `${failed.value.failureMessage ?? 'failed'}; automatic rollback impossible: ${plan.error}`.slice(0, 8192) };
    assertRecord('deployment', kept);
    return { ok: false, message: plan.error, ops: [{ kind: 'deployment', condition, write: { op: 'put', key: failed.key, value: JSON.stringify(kept) } }] };
  }
  const ops: Op[] = [{ kind: 'deployment', condition, write: { op: 'delete', key: failed.key } }];
  for (const app of plan.put) {
    assertRecord('app', app);
    const key = keyOf('app', app.id);
    ops.push({ kind: 'app', condition: { key, modifyIndex: views.app.records.get(app.id)?.modifyIndex ?? 0 }, write: { op: 'put', key, value: JSON.stringify(app) } });
    const versionKey = keyOf('appVersion', appVersionId(app.id, app.version));
    ops.push({ kind: 'appVersion', condition: { key: versionKey, modifyIndex: 0 }, write: { op: 'put', key: versionKey, value: JSON.stringify(app) } });
  }
  for (const id of plan.remove) {
    const current = views.app.records.get(id);
    if (current) ops.push({ kind: 'app', condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'delete', key: current.key } });
  }
  if (plan.deployment) {
    assertRecord('deployment', plan.deployment);
    const key = keyOf('deployment', plan.deployment.id);
    ops.push({ kind: 'deployment', condition: { key, modifyIndex: 0 }, write: { op: 'put', key, value: JSON.stringify(plan.deployment) } });
  }
  return { ok: true, ops };
}

const EPOCH = new Date(0).toISOString();

/** A stored launch delay as the backoff state reconcile works with. */
export function backoffOf(record: LaunchDelay): BackoffState {
  return { version: record.version, failures: record.failures, lastFailureAt: Date.parse(record.lastFailureAt), delayUntil: Date.parse(record.delayUntil) };
}

/** The record of an app's backoff state. */
export function launchDelayOf(appId: string, state: BackoffState): LaunchDelay {
  const iso = (ms: number): string => (Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : EPOCH);
  return { appId, version: state.version, failures: state.failures, lastFailureAt: iso(state.lastFailureAt), delayUntil: iso(state.delayUntil) };
}

/**
 * The writes that make the stored launch delays equal reconcile's backoff:
 * changed ones put (check-and-set on what the view holds), those of apps
 * with no backoff any more (removed, or a new version) deleted.
 */
export function launchDelayOperations(backoff: ReadonlyMap<string, BackoffState>, view: RecordView<LaunchDelay>): Op[] {
  const ops: Op[] = [];
  for (const [appId, state] of backoff) {
    const next = launchDelayOf(appId, state);
    const current = view.records.get(appId);
    if (current && JSON.stringify(current.value) === JSON.stringify(next)) continue;
    assertRecord('launchDelay', next);
    const key = current?.key ?? keyOf('launchDelay', appId);
    ops.push({ kind: 'launchDelay', condition: { key, modifyIndex: current?.modifyIndex ?? 0 }, write: { op: 'put', key, value: JSON.stringify(next) } });
  }
  for (const [appId, current] of view.records) {
    if (backoff.has(appId)) continue;
    ops.push({ kind: 'launchDelay', condition: { key: current.key, modifyIndex: current.modifyIndex }, write: { op: 'delete', key: current.key } });
  }
  return ops;
}

/** Split operations into transactions of at most `maxOps` conditions plus writes. */
export function batches<T>(ops: readonly T[], maxOps = MAX_TXN_OPS): T[][] {
  const per = Math.max(1, Math.floor(maxOps / 2));
  const out: T[][] = [];
  for (let i = 0; i < ops.length; i += per) out.push(ops.slice(i, i + per));
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The deployment controller as a leader loop: `startMaster({leaderLoops: [deploymentController()]})`. */
export function deploymentController(options: DeploymentControllerOptions = {}): LeaderLoop {
  return (leadership, context) => runController(leadership, context, options);
}

async function runController(leadership: Leadership, context: LeaderLoopContext, options: DeploymentControllerOptions): Promise<void> {
  const { signal } = leadership;
  const { records, logger } = context;
  const log = logger.child({ component: 'deployment-controller' });
  const metrics = metricsOf(context.metrics);
  const debounceMs = options.debounceMs ?? 20;
  const now = options.now ?? Date.now;
  const newUuid = options.newUuid ?? randomUUID;
  if (signal.aborted) return;

  let pending = true;
  let kick: (() => void) | undefined;
  const wake = (): void => {
    pending = true;
    kick?.();
  };
  const viewOptions = { signal, onError: (err: unknown) => log.error({ err }, 'view listener failed') };
  const opened: RecordView<unknown>[] = [];
  const open = async <K extends RecordKind>(kind: K): Promise<RecordView<RecordTypes[K]>> => {
    const v = await openView(records, kind, viewOptions);
    opened.push(v as RecordView<unknown>);
    v.subscribe(wake);
    return v;
  };
  let timer: NodeJS.Timeout | undefined;
  try {
    const views: Views = {
      app: await open('app'),
      task: await open('task'),
      agent: await open('agent'),
      role: await open('role'),
      deployment: await open('deployment'),
      appVersion: await open('appVersion'),
      launchDelay: await open('launchDelay'),
    };
    let viewEnded = false;
    for (const v of opened) {
      v.ended
        .catch((err: unknown) => (signal.aborted ? undefined : log.error({ err }, 'a controller view failed')))
        .finally(() => {
          viewEnded = true;
          wake();
        });
    }
    log.info('deployment controller started');
    while (!signal.aborted) {
      if (!pending) {
        await new Promise<void>((resolve) => {
          kick = resolve;
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        kick = undefined;
      }
      await sleep(debounceMs, signal);
      if (signal.aborted) break;
      // A view that stopped would leave the controller deciding from a frozen state: give up the
      // leadership so that a master with working watches (possibly this one, again) takes over.
      if (viewEnded) {
        log.error('a controller view stopped; resigning the leadership');
        await leadership.resign();
        break;
      }
      pending = false;
      try {
        const t = now();
        const actions = reconcile(
          {
            apps: [...views.app.records.values()].map((r) => r.value),
            tasks: [...views.task.records.values()].map((r) => r.value),
            agents: [...views.agent.records.values()].map((r) => r.value),
            roles: [...views.role.records.values()].map((r) => r.value),
            deployments: [...views.deployment.records.values()].map((r) => r.value),
            appVersions: [...views.appVersion.records.values()].map((r) => r.value),
          },
          // The backoff is the stored launch delays (a new leader keeps them; DELETE /v2/queue/{id}/delay resets one).
          { now: t, newUuid, backoff: new Map([...views.launchDelay.records].map(([id, r]) => [id, backoffOf(r.value)])), ...(options.terminalRetentionMs === undefined ? {} : { terminalRetentionMs: options.terminalRetentionMs }), ...(options.strategy ? { strategy: options.strategy } : {}) },
        );
        if (timer) clearTimeout(timer);
        timer = actions.wakeAt === undefined ? undefined : setTimeout(wake, Math.max(0, actions.wakeAt - t) + 5);
        options.onRound?.(actions);
        if (actions.unplaced.length > 0) log.debug({ unplaced: actions.unplaced }, 'instances wait for room');
        const ops = [...operationsOf(actions, views, new Date(t).toISOString()), ...launchDelayOperations(actions.backoff, views.launchDelay)];
        if (ops.length === 0 && isEmpty(actions)) continue;
        if (!isEmpty(actions)) metrics.rounds.inc();
        let conflicted = false;
        const newlyFailed = actions.updateDeployments.filter((d) => d.state === 'failed' && views.deployment.records.get(d.id)?.value.state !== 'failed');
        for (const batch of batches(ops)) {
          const result = await leadership.fencedTxn({ conditions: batch.map((o) => o.condition), writes: batch.map((o) => o.write) });
          if (!result.ok) {
            metrics.conflicts.inc();
            log.debug({ failed: result.failed.length }, 'a controller write lost its check-and-set; reconciling again');
            pending = true;
            conflicted = true;
            break;
          }
          const kinds = new Set(batch.map((o) => o.kind));
          metrics.launched.inc(batch.filter((o) => o.launch).length);
          metrics.unreachable.inc(batch.filter((o) => o.unreachable).length);
          for (const o of batch) if (o.killReason !== undefined) metrics.killed.inc({ reason: o.killReason });
          await Promise.all([...kinds].map((k) => views[k as 'task' | 'deployment' | 'launchDelay'].waitFor(result.index)));
        }
        if (!conflicted) {
          for (const d of newlyFailed) {
            metrics.failed.inc();
            log.warn({ deployment: d.id, message: d.failureMessage }, 'deployment failed: its deadline passed');
          }
        }
        for (const id of conflicted ? [] : actions.rollbacks) {
          const { ok, ops: rb, message } = rollbackOperations(id, views, t, newUuid());
          if (rb.length === 0) continue;
          if (rb.length > MAX_TXN_OPS) {
            log.error({ deployment: id, ops: rb.length }, 'the automatic rollback touches too many apps for one transaction; roll back with DELETE /v2/deployments/<id>');
            continue;
          }
          const result = await leadership.fencedTxn({ conditions: rb.map((o) => o.condition), writes: rb.map((o) => o.write) });
          if (!result.ok) {
            metrics.conflicts.inc();
            pending = true;
            break;
          }
          metrics.rollbacks.inc({ outcome: ok ? 'rolled-back' : 'impossible' });
          if (ok) log.warn({ deployment: id }, 'failed deployment rolled back automatically');
          else log.error({ deployment: id, message }, 'failed deployment cannot be rolled back automatically');
          await Promise.all(['app', 'deployment', 'appVersion'].map((k) => views[k as 'app' | 'deployment' | 'appVersion'].waitFor(result.index)));
        }
        if (actions.launch.length > 0 || actions.kill.length > 0) {
          log.info({ launched: actions.launch.length, killed: actions.kill.length, expunged: actions.expunge.length, completed: actions.completeDeployments }, 'reconciled');
        }
      } catch (err) {
        if (isStrataError(err, 'STORE_FENCED') || signal.aborted) break;
        log.error({ err }, 'controller round failed; retrying in 1 s');
        await sleep(1000, signal);
        pending = true;
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
    for (const v of opened) v.close();
    log.info('deployment controller stopped');
  }
}

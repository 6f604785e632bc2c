/**
 * The automatic rollback of a failed deployment (Strata, beyond Marathon: a
 * deployment written with `?deadlineSeconds=N&rollbackOnFailure=true` that
 * is not done N seconds later is marked failed, then rolled back). Pure:
 * from the failed deployment, the apps now and the stored app versions to
 * the apps to write (each at a new version), the apps to remove and the
 * rollback deployment (planned by {@link planDeployment}), which replaces
 * the failed one. The deployment controller writes it in one fenced
 * transaction; `DELETE /v2/deployments/<id>` does the same by hand.
 */
import type { App, AppVersion, Deployment } from '../../control-plane/model/schemas.ts';
import { planDeployment } from './plan.ts';

export interface RollbackPlan {
  /** Apps to write, each at `version`. */
  readonly put: readonly App[];
  /** Apps to remove (they did not exist before the failed deployment). */
  readonly remove: readonly string[];
  /** The rollback deployment; undefined when nothing differs (the failed deployment is then simply removed). */
  readonly deployment: Deployment | undefined;
  readonly version: string;
}

/** A version later than `now` and than every version in `previous`. */
function nextVersion(now: number, previous: readonly string[]): string {
  let t = now;
  for (const v of previous) t = Math.max(t, Date.parse(v) + 1);
  return new Date(t).toISOString();
}

/**
 * The rollback of `failed`, or a reason it cannot be done (a previous
 * version that is no longer stored).
 */
export function planRollback(
  failed: Deployment,
  apps: ReadonlyMap<string, App>,
  versions: ReadonlyMap<string, AppVersion>,
  options: { readonly now: number; readonly id: string },
): RollbackPlan | { readonly error: string } {
  const restored = new Map<string, Omit<App, 'version'> | undefined>();
  for (const p of failed.previous) {
    if (p.version === undefined) {
      if (apps.has(p.app)) restored.set(p.app, undefined);
      continue;
    }
    const old = versions.get(`${p.app}@${p.version}`);
    if (!old) return { error: `cannot roll back ${p.app}: its version ${p.version} is no longer stored` };
    const { version: _v, ...definition } = old;
    restored.set(p.app, definition);
  }
  const version = nextVersion(options.now, [...restored.keys()].map((id) => apps.get(id)?.version).filter((v): v is string => v !== undefined));
  const put: App[] = [];
  const remove: string[] = [];
  for (const [id, def] of restored) {
    if (def === undefined) remove.push(id);
    else put.push({ ...def, id, version } as App);
  }
  const current = [...apps.values()];
  const target = [...current.filter((a) => !restored.has(a.id)), ...put];
  const plan = planDeployment(current, target, { version });
  const nowIso = new Date(options.now).toISOString();
  const deployment: Deployment | undefined =
    plan.steps.length === 0
      ? undefined
      : {
          id: options.id,
          version,
          affectedApps: plan.affectedApps,
          affectedPods: [],
          steps: plan.steps,
          currentActions: [],
          currentStep: 0,
          totalSteps: plan.steps.length,
          state: 'pending',
          createdAt: nowIso,
          previous: plan.affectedApps.map((app) => {
            const before = apps.get(app)?.version;
            return before === undefined ? { app } : { app, version: before };
          }),
          rollbackOf: failed.id,
        };
  return { put, remove, deployment, version };
}

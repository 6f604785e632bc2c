/**
 * The deployment planner: a pure function from the apps before a change and
 * the apps after it to the steps Marathon would run
 * ([M] `core/deployment/DeploymentPlan.scala`, shared/reference/scheduler.md §2.1):
 *
 * 1. one step stopping every removed app (`StopApplication`);
 * 2. one step starting every new app at 0 instances (`StartApplication`);
 * 3. one step per dependency layer of the target, ordered by the longest
 *    dependency path below each app, holding `ScaleApplication` for new apps
 *    and scale-only changes and `RestartApplication` for configuration
 *    changes. An app's dependencies are therefore always acted on in an
 *    earlier step than the app.
 *
 * Empty steps are left out; an app that did not change is in no step. Actions
 * within a step may run in parallel; a step starts when the one before it
 * has finished. Dependencies on apps that are not in the target are ignored
 * for ordering (Marathon does not require them to exist). A dependency cycle
 * among the target's apps is refused with `DEPLOYMENT_DEPENDENCY_CYCLE`,
 * naming the apps in it.
 */
import { StrataError } from '../../common/errors.ts';
import { expandDependencies } from '../../control-plane/model/app-groups.ts';
import type { App, DeploymentAction, DeploymentStep } from '../../control-plane/model/schemas.ts';

export interface DeploymentPlan {
  /** The version the plan deploys (the target apps' new version). */
  readonly version: string;
  readonly steps: DeploymentStep[];
  /** Every app acted on, sorted. */
  readonly affectedApps: string[];
}

/** Anything an app definition holds: what differs between two definitions, ignoring `version` (and `instances` when asked). */
type Definition = Omit<App, 'version'> & { version?: string };

/** JSON with object keys sorted, so two definitions compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function withoutVersion(app: Definition, dropInstances: boolean): string {
  const { version: _v, instances, ...rest } = app;
  return canonical(dropInstances ? rest : { ...rest, instances });
}

/** True if `next` changes more of `prev` than its instance count (a restart is needed). */
export function isConfigChange(prev: Definition, next: Definition): boolean {
  return withoutVersion(prev, true) !== withoutVersion(next, true);
}

/** True if the two definitions differ in anything but `version`. */
export function isChange(prev: Definition, next: Definition): boolean {
  return withoutVersion(prev, false) !== withoutVersion(next, false);
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Longest dependency path below each app (0 for an app that depends on no app
 * of the set). Throws `DEPLOYMENT_DEPENDENCY_CYCLE` on a cycle.
 */
export function dependencyDepths(apps: ReadonlyMap<string, Pick<App, 'id' | 'dependencies'>>): Map<string, number> {
  const depth = new Map<string, number>();
  const ids = new Set(apps.keys());
  const depsOf = new Map<string, string[]>();
  const dependenciesOf = (id: string): string[] => {
    let deps = depsOf.get(id);
    if (deps === undefined) {
      deps = expandDependencies(apps.get(id)!, ids);
      depsOf.set(id, deps);
    }
    return deps;
  };
  const onPath: string[] = [];
  const visiting = new Set<string>();
  // Iterative DFS, so a long dependency chain cannot overflow the stack.
  for (const root of [...apps.keys()].sort(byId)) {
    if (depth.has(root)) continue;
    const stack: { id: string; next: number }[] = [{ id: root, next: 0 }];
    visiting.add(root);
    onPath.push(root);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const deps = dependenciesOf(frame.id);
      if (frame.next < deps.length) {
        const dep = deps[frame.next++]!;
        if (depth.has(dep)) continue;
        if (visiting.has(dep)) {
          const cycle = [...onPath.slice(onPath.indexOf(dep)), dep];
          throw new StrataError('DEPLOYMENT_DEPENDENCY_CYCLE', `the dependencies ${cycle.join(' -> ')} form a cycle; an app cannot (indirectly) depend on itself`, {
            details: { cycle },
          });
        }
        visiting.add(dep);
        onPath.push(dep);
        stack.push({ id: dep, next: 0 });
        continue;
      }
      depth.set(frame.id, Math.max(-1, ...deps.map((d) => depth.get(d)!)) + 1);
      visiting.delete(frame.id);
      onPath.pop();
      stack.pop();
    }
  }
  return depth;
}

/**
 * The steps that take `current` to `target` (both: every app of the cluster,
 * or at least every app the change touches and their dependencies).
 */
export function planDeployment(current: readonly App[], target: readonly App[], options: { readonly version: string }): DeploymentPlan {
  const before = new Map(current.map((a) => [a.id, a]));
  const after = new Map(target.map((a) => [a.id, a]));
  const depths = dependencyDepths(after);

  const stop: DeploymentAction[] = [...before.keys()].filter((id) => !after.has(id)).sort(byId).map((app) => ({ action: 'StopApplication', app }));
  const start: DeploymentAction[] = [...after.keys()].filter((id) => !before.has(id)).sort(byId).map((app) => ({ action: 'StartApplication', app }));
  const layers = new Map<number, DeploymentAction[]>();
  for (const [id, next] of [...after].sort(([a], [b]) => byId(a, b))) {
    const prev = before.get(id);
    let action: DeploymentAction['action'] | undefined;
    if (!prev) action = 'ScaleApplication';
    else if (isConfigChange(prev, next)) action = 'RestartApplication';
    else if (prev.instances !== next.instances) action = 'ScaleApplication';
    if (action === undefined) continue;
    const d = depths.get(id)!;
    const layer = layers.get(d) ?? [];
    layer.push({ action, app: id });
    layers.set(d, layer);
  }
  const steps: DeploymentStep[] = [];
  if (stop.length > 0) steps.push({ actions: stop });
  if (start.length > 0) steps.push({ actions: start });
  for (const d of [...layers.keys()].sort((a, b) => a - b)) steps.push({ actions: layers.get(d)! });
  const affectedApps = [...new Set(steps.flatMap((s) => s.actions.map((a) => a.app)))].sort(byId);
  return { version: options.version, steps, affectedApps };
}

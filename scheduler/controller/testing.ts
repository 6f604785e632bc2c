/**
 * Builders and a tiny simulator for controller tests: full model records
 * (apps with Marathon's defaults, agents), `applyActions` (what the
 * controller writes, applied to a view in memory) and `agentStep` (a fake
 * agent: STAGING → RUNNING, KILLING → KILLED).
 */
import { withAppDefaults } from '../../control-plane/model/app-defaults.ts';
import type { Agent, App, AppDefinition, Deployment, Task } from '../../control-plane/model/schemas.ts';
import { applyInMemory, type ReconcileView } from './reconcile.ts';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');

export function mkApp(id: string, def: Partial<AppDefinition> = {}, version = '2026-01-01T00:00:00.000Z'): App {
  return withAppDefaults({ id, cmd: 'sleep 1000', cpus: 0.5, mem: 64, portDefinitions: [], ...def }, { version });
}

export function mkAgent(id: string, extra: { cpus?: number; memMb?: number; status?: Agent['health']['status']; attributes?: Record<string, string> } = {}): Agent {
  return {
    id,
    hostname: `${id}.example`,
    address: { ip: '10.0.0.1', port: 5051 },
    attributes: extra.attributes ?? {},
    resources: { cpus: extra.cpus ?? 4, memMb: extra.memMb ?? 4096, diskMb: 10000, gpus: 0, ports: [{ begin: 10000, end: 10100 }] },
    reservations: [],
    health: { status: extra.status ?? 'healthy', lastSeenAt: new Date(T0).toISOString() },
    maintenance: 'none',
    registeredAt: new Date(T0).toISOString(),
  };
}

export function mkDeployment(id: string, steps: Deployment['steps'], affectedApps: string[]): Deployment {
  return {
    id,
    version: '2026-01-01T00:00:00.000Z',
    affectedApps,
    affectedPods: [],
    steps,
    currentActions: [],
    currentStep: 0,
    totalSteps: steps.length,
    state: 'pending',
    createdAt: new Date(T0).toISOString(),
    previous: [],
  };
}

export function view(parts: Partial<ReconcileView>): ReconcileView {
  return { apps: [], tasks: [], agents: [], roles: [], deployments: [], ...parts };
}

/** What the controller's writes would make of `v`. */
export const applyActions = applyInMemory;

/** A fake agent on every agent: tasks being started run, tasks being killed end KILLED. */
export function agentStep(v: ReconcileView, nowIso: string): ReconcileView {
  const tasks = v.tasks.map((t): Task => {
    if (t.state === 'STAGING' || t.state === 'STARTING') return { ...t, state: 'RUNNING', startedAt: nowIso, stateChangedAt: nowIso };
    if (t.state === 'KILLING') return { ...t, state: 'KILLED', stateChangedAt: nowIso };
    return t;
  });
  return { ...v, tasks };
}

let seq = 0;
export const counterUuid = (): string => `u${(++seq).toString(36)}`;

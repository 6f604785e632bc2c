/**
 * Scheduler benchmark (issue 3): placement decisions per second for 10,000
 * tasks onto 1,000 simulated agents, 3 weighted roles under DRF, apps with
 * UNIQUE (hostname) and MAX_PER (zone) constraints and one dynamic port each,
 * on one core (the planner is synchronous). No peer runs here: the issue's
 * anchors are Nomad C1M (3,750/s) and Kubernetes scheduler_perf (680-810/s).
 *
 * Then the end-to-end parts (`scheduler-api.ts`): GET /v2/apps latency with
 * 10,000 tasks in state, and POST /v2/apps of 100 instances to all RUNNING
 * with a master and an agent as processes.
 *
 * Options: --runs N (default 5, median reported), --tasks N, --agents N;
 * --parts placement,get,post (default all); --get-apps N --get-tasks-per-app N
 * --get-requests N (default 1000, 10, 50); --post-instances N --post-runs N
 * (default 100, 10).
 */
import { plan } from '../scheduler/placement/plan.ts';
import { getAppsLatency, postToRunning } from './scheduler-api.ts';
import { agent, app, view } from '../scheduler/placement/testing.ts';
import type { ClusterStateView } from '../scheduler/placement/types.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

function scenario(tasks: number, agents: number): ClusterStateView {
  const zones = ['a', 'b', 'c', 'd'];
  const roles = [
    { name: 'web', weight: 1 },
    { name: 'batch', weight: 2 },
    { name: 'ads', weight: 3 },
  ];
  const agentList = Array.from({ length: agents }, (_, i) =>
    agent(`agent-${String(i).padStart(4, '0')}`, { cpus: 16, memMb: 65536, diskMb: 100_000, zone: zones[i % zones.length]!, region: 'r1' }),
  );
  const perApp = 50;
  const apps = Array.from({ length: Math.ceil(tasks / perApp) }, (_, i) =>
    app(`/bench/app-${i}`, {
      instances: perApp,
      cpus: 0.5,
      mem: 256,
      role: roles[i % roles.length]!.name,
      constraints: i % 2 === 0 ? [['hostname', 'UNIQUE']] : [['@zone', 'MAX_PER', String(Math.ceil(perApp / zones.length) + 1)]],
      portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: {} }],
    }),
  );
  return view({ agents: agentList, apps, roles: roles.map((r) => ({ ...r, quota: undefined })) as ClusterStateView['roles'] });
}

export async function run(args: string[]): Promise<unknown> {
  const i = args.indexOf('--parts');
  const parts = new Set((i >= 0 && args[i + 1] ? args[i + 1]! : 'placement,get,post').split(','));
  return {
    area: 'scheduler',
    node: process.version,
    ...(parts.has('placement') ? { placement: placement(args) } : {}),
    ...(parts.has('get') ? { getApps: await getAppsLatency({ apps: option(args, 'get-apps', 1000), tasksPerApp: option(args, 'get-tasks-per-app', 10), requests: option(args, 'get-requests', 50) }) } : {}),
    ...(parts.has('post') ? { postToRunning: await postToRunning({ instances: option(args, 'post-instances', 100), runs: option(args, 'post-runs', 10) }) } : {}),
  };
}

function placement(args: string[]): Record<string, unknown> {
  const runs = option(args, 'runs', 5);
  const tasks = option(args, 'tasks', 10_000);
  const agents = option(args, 'agents', 1_000);
  const v = scenario(tasks, agents);
  const rates: number[] = [];
  let placed = 0;
  let unplaced = 0;
  for (let r = 0; r < runs; r++) {
    const start = performance.now();
    const p = plan(v);
    const seconds = (performance.now() - start) / 1000;
    placed = p.placements.length;
    unplaced = p.unplaced.reduce((n, u) => n + u.instances, 0);
    rates.push(placed / seconds);
  }
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return {
    scenario: { tasks, agents, roles: 3, constraints: ['hostname UNIQUE', '@zone MAX_PER'], runs },
    placed,
    unplaced,
    placementsPerSecondMedian: Math.round(median),
    placementsPerSecondAll: rates.map((x) => Math.round(x)),
    anchors: { nomadC1M: 3750, kubernetesSchedulerPerfFloor: 680 },
    goals: { placementsPerSecondAtLeast10000: median >= 10_000 },
  };
}

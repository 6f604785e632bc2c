/**
 * The agents' blocking task query at scale: N agents wait for their tasks
 * (M tasks spread over them) while tasks change one at a time; each change
 * must wake its agent with the agent's task list. Measured in the same run:
 *
 * - `index`: what the route does now (`AgentTaskIndex`: one watch of the
 *   task prefix, tasks by agent in memory, the changed agent woken);
 * - `relist` (the peer, the route before it): every waiting agent holds its
 *   own store watch of the task prefix, decodes each batch to see whether it
 *   concerns it, and the woken one re-lists and decodes the whole prefix.
 *
 * Reports the latency from the write to the woken agent's answer (median,
 * p99) and the CPU per change. Options: --agents N (default 200), --tasks M
 * (default 5000), --changes K (default 200), --runs R (default 3, medians).
 */
import { AgentTaskIndex } from '../control-plane/api/routes/agent-task-index.ts';
import { prefix } from '../control-plane/model/keys.ts';
import { Records, decodeEntry } from '../control-plane/model/records.ts';
import { TERMINAL_TASK_STATES, type Task } from '../control-plane/model/schemas.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import type { StateStore } from '../control-plane/store/port.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

function mkTask(i: number, agentId: string): Task {
  const at = '2026-01-01T00:00:00.000Z';
  return {
    id: `bench_app.instance-${i}._app.1`, appId: '/bench/app', agentId, host: `${agentId}.example`, state: 'RUNNING', stagedAt: at, stateChangedAt: at,
    ports: [], servicePorts: [], ipAddresses: [], healthCheckResults: [], version: at, resources: { cpus: 0.01, memMb: 1, diskMb: 0, gpus: 0 }, role: '*',
  };
}

type Waiters = { answered: (agentId: string) => Promise<number>; close(): void };

/** The route's way now. */
async function indexWaiters(records: Records, agents: readonly string[]): Promise<Waiters> {
  const index = await AgentTaskIndex.open(records);
  const stop = new AbortController();
  const listeners = new Map<string, (at: number) => void>();
  for (const agent of agents) {
    void (async () => {
      let from = index.index;
      while (!stop.signal.aborted) {
        await index.waitForChange(agent, from, stop.signal);
        if (stop.signal.aborted) return;
        from = index.index;
        index.tasksOf(agent);
        listeners.get(agent)?.(performance.now());
      }
    })();
  }
  return {
    answered: (agent) => new Promise((resolve) => listeners.set(agent, resolve)),
    close: () => {
      stop.abort();
      index.close();
    },
  };
}

/** The route's way before (the peer). */
function relistWaiters(store: StateStore, agents: readonly string[], startIndex: number): Waiters {
  const stop = new AbortController();
  const listeners = new Map<string, (at: number) => void>();
  const list = async (agent: string): Promise<{ index: number; known: Set<string> }> => {
    const now = await store.list(prefix('task'));
    const known = new Set<string>();
    for (const entry of now.entries) {
      const d = decodeEntry('task', entry);
      if (d.ok && d.record.value.agentId === agent && !TERMINAL_TASK_STATES.has(d.record.value.state)) known.add(d.record.id);
    }
    return { index: now.index, known };
  };
  for (const agent of agents) {
    void (async () => {
      let { known } = await list(agent);
      let from = startIndex;
      while (!stop.signal.aborted) {
        try {
          for await (const batch of store.watch(prefix('task'), { fromIndex: from, signal: stop.signal })) {
            if (batch.kind === 'resync') break;
            const relevant = batch.events.some((e) => {
              if (e.type === 'delete') return false;
              const d = decodeEntry('task', e.entry);
              return d.ok && (known.has(d.record.id) || d.record.value.agentId === agent);
            });
            if (relevant) break;
          }
        } catch {
          return;
        }
        if (stop.signal.aborted) return;
        ({ index: from, known } = await list(agent));
        listeners.get(agent)?.(performance.now());
      }
    })();
  }
  return { answered: (agent) => new Promise((resolve) => listeners.set(agent, resolve)), close: () => stop.abort() };
}

async function measure(kind: 'index' | 'relist', agentCount: number, taskCount: number, changes: number): Promise<{ p50Ms: number; p99Ms: number; cpuMsPerChange: number }> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  try {
    const records = new Records(store);
    const agents = Array.from({ length: agentCount }, (_, i) => `agent-${i}`);
    const tasks = Array.from({ length: taskCount }, (_, i) => mkTask(i, agents[i % agentCount]!));
    for (let i = 0; i < tasks.length; i += 60) {
      await store.txn({ conditions: [], writes: tasks.slice(i, i + 60).map((t) => ({ op: 'put' as const, key: `${prefix('task')}${t.id}`, value: JSON.stringify(t) })) });
    }
    const start = (await store.list(prefix('task'))).index;
    const waiters = kind === 'index' ? await indexWaiters(records, agents) : relistWaiters(store, agents, start);
    await new Promise((r) => setTimeout(r, 200)); // every waiter in place
    const latencies: number[] = [];
    const cpu = process.cpuUsage();
    for (let c = 0; c < changes; c++) {
      const task = tasks[(c * 7919) % tasks.length]!;
      const answered = waiters.answered(task.agentId);
      const at = performance.now();
      await store.put(`${prefix('task')}${task.id}`, JSON.stringify({ ...task, stateChangedAt: new Date(Date.parse(task.stateChangedAt) + c + 1).toISOString() }));
      latencies.push((await answered) - at);
      await new Promise((r) => setImmediate(r));
    }
    const used = process.cpuUsage(cpu);
    waiters.close();
    return { p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), cpuMsPerChange: round((used.user + used.system) / 1000 / changes) };
  } finally {
    await store.close();
  }
}

export async function run(args: string[]): Promise<unknown> {
  const agents = option(args, 'agents', 200);
  const tasks = option(args, 'tasks', 5000);
  const changes = option(args, 'changes', 200);
  const runs = option(args, 'runs', 3);
  const results: Record<'index' | 'relist', { p50Ms: number; p99Ms: number; cpuMsPerChange: number }[]> = { index: [], relist: [] };
  for (let r = 0; r < runs; r++) {
    results.index.push(await measure('index', agents, tasks, changes));
    results.relist.push(await measure('relist', agents, tasks, changes));
  }
  const med = (kind: 'index' | 'relist', field: 'p50Ms' | 'p99Ms' | 'cpuMsPerChange'): number => round(median(results[kind].map((x) => x[field])));
  const summary = (kind: 'index' | 'relist') => ({ p50Ms: med(kind, 'p50Ms'), p99Ms: med(kind, 'p99Ms'), cpuMsPerChange: med(kind, 'cpuMsPerChange') });
  const index = summary('index');
  const relist = summary('relist');
  return {
    area: 'agent-tasks',
    setup: { agents, tasks, changes, runs },
    index,
    relist,
    ratio: { p50: round(relist.p50Ms / index.p50Ms, 1), cpuPerChange: round(relist.cpuMsPerChange / index.cpuMsPerChange, 1) },
  };
}

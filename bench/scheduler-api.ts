/**
 * End-to-end scheduler benchmarks (issue 3), run by `npm run bench -- scheduler`:
 *
 * - `getApps`: `GET /v2/apps` and `GET /v2/apps?embed=apps.tasks` latency
 *   over real HTTP with 10,000 tasks in state (1,000 apps × 10 tasks by
 *   default), seeded straight into an embedded store on disk; the master
 *   runs in this process with no leader loops (nothing changes the seeded
 *   state). Anchor: Marathon took 12 s at 1,000 tasks (marathon#1274),
 *   under 100 ms after its fix.
 * - `postToRunning`: `POST /v2/apps` of 100 instances (`sleep 1000`) to all
 *   of them RUNNING, with `strata master` and `strata agent` as separate
 *   processes (the production code path; the agent spawns 100 real
 *   processes). Timed from the POST's response to the `status_update_event`
 *   that makes the 100th task RUNNING on `/v2/events` (the master has stored
 *   it), and from the POST's start. Each run then deletes its app and waits
 *   for every task process to be gone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../control-plane/config/load.ts';
import { startMaster } from '../control-plane/master.ts';
import { withAppDefaults } from '../control-plane/model/app-defaults.ts';
import { keyOf } from '../control-plane/model/keys.ts';
import type { App, Task } from '../control-plane/model/schemas.ts';
import { assertRecord } from '../control-plane/model/validate.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { taskIdFor } from '../scheduler/controller/reconcile.ts';
import { startProcessCluster, until } from '../test/harness/cluster.ts';

export const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

function summary(xs: readonly number[]): { p50Ms: number; p99Ms: number; minMs: number; maxMs: number; samples: number } {
  return { p50Ms: round(percentile(xs, 50)), p99Ms: round(percentile(xs, 99)), minMs: round(Math.min(...xs)), maxMs: round(Math.max(...xs)), samples: xs.length };
}

/** Runs `fn` with a teardown list, then runs the teardowns in reverse order, whatever happened. */
async function withTeardown<T>(fn: (t: { teardown(f: () => Promise<void> | void): void }) => Promise<T>): Promise<T> {
  const teardowns: (() => Promise<void> | void)[] = [];
  try {
    return await fn({ teardown: (f) => teardowns.push(f) });
  } finally {
    for (const f of teardowns.reverse()) await f();
  }
}

const T0 = Date.parse('2026-11-25T00:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function seedApp(i: number): App {
  return withAppDefaults(
    {
      id: `/bench/group-${Math.floor(i / 100)}/app-${i}`,
      cmd: `./serve --port $PORT0 --name app-${i}`,
      instances: 10,
      cpus: 0.1,
      mem: 64,
      env: { NAME: `app-${i}` },
      labels: { team: `team-${i % 7}` },
      healthChecks: [{ protocol: 'MESOS_HTTP', path: '/health', portIndex: 0 }],
    } as Parameters<typeof withAppDefaults>[0],
    { version: iso(T0 + i) },
  );
}

function seedTask(app: App, n: number, agent: number): Task {
  const at = iso(T0 + 60_000 + n);
  return {
    id: taskIdFor(app.id, `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`),
    appId: app.id,
    agentId: `bench-agent-${agent}-S0`,
    host: `agent-${agent}.bench`,
    state: 'RUNNING',
    stagedAt: at,
    startedAt: at,
    stateChangedAt: at,
    ports: [31000 + (n % 1000)],
    servicePorts: [10000 + (n % 1000)],
    ipAddresses: [{ ipAddress: `10.0.${agent % 250}.${n % 250}`, protocol: 'IPv4' }],
    healthCheckResults: [{ alive: true, consecutiveFailures: 0, firstSuccess: at, lastSuccess: at }],
    version: app.version,
    resources: { cpus: 0.1, memMb: 64, diskMb: 0, gpus: 0 },
    role: '*',
  };
}

export async function getAppsLatency(options: { apps: number; tasksPerApp: number; requests: number }): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-api-'));
  try {
    const store = await openEmbeddedStore({ path: join(dir, 'state.db') });
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'api.port': 0 } });
    const master = await startMaster({ config, logger: pino({ level: 'silent' }), store, leaderLoops: [] });
    try {
      const puts: Promise<unknown>[] = [];
      let n = 0;
      for (let i = 0; i < options.apps; i++) {
        const app = seedApp(i);
        assertRecord('app', app);
        puts.push(store.put(keyOf('app', app.id), JSON.stringify(app)));
        for (let k = 0; k < options.tasksPerApp; k++, n++) {
          const task = seedTask(app, n, n % 100);
          assertRecord('task', task);
          puts.push(store.put(keyOf('task', task.id), JSON.stringify(task)));
        }
        if (puts.length >= 512) await Promise.all(puts.splice(0));
      }
      await Promise.all(puts);
      const token = (await master.tokens.issue(config.auth.bootstrapUid)).token;
      const measure = async (path: string): Promise<{ latency: ReturnType<typeof summary>; bodyBytes: number; apps: number; tasks: number }> => {
        const times: number[] = [];
        let bodyBytes = 0;
        let body: { apps: { tasks?: unknown[] }[] } = { apps: [] };
        for (let r = 0; r < options.requests + 3; r++) {
          const start = performance.now();
          const res = await fetch(`${master.apiUrl}${path}`, { headers: { authorization: `token=${token}` } });
          const text = await res.text();
          const ms = performance.now() - start;
          if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 200)}`);
          if (r >= 3) times.push(ms); // the first requests warm the JIT up
          bodyBytes = text.length;
          if (r === 0) body = JSON.parse(text) as typeof body;
        }
        return { latency: summary(times), bodyBytes, apps: body.apps.length, tasks: body.apps.reduce((s, a) => s + (a.tasks?.length ?? 0), 0) };
      };
      const plain = await measure('/v2/apps');
      const embedded = await measure('/v2/apps?embed=apps.tasks');
      return {
        state: { apps: options.apps, tasks: n },
        getApps: plain,
        getAppsEmbedTasks: embedded,
        anchor: { marathonGetAppsAt1000TasksMs: 12_000, marathonAfterFixMs: 100, source: 'marathon#1274, PR #1277' },
        goals: { getAppsP99AtMost50Ms: plain.latency.p99Ms <= 50, getAppsEmbedTasksP99AtMost50Ms: embedded.latency.p99Ms <= 50 },
      };
    } finally {
      await master.close();
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Counts distinct tasks of `appId` seen RUNNING on `/v2/events`; resolves `when(n)` at the n-th. */
function runningWatcher(apiUrl: string, token: string, signal: AbortSignal): { attached: Promise<void>; reached(appId: string, n: number): Promise<number> } {
  const seen = new Map<string, Set<string>>();
  const waiters: { appId: string; n: number; resolve: (at: number) => void }[] = [];
  let attach!: () => void;
  const attached = new Promise<void>((r) => (attach = r));
  void (async () => {
    const res = await fetch(`${apiUrl}/v2/events?event_type=status_update_event&event_type=event_stream_attached`, { headers: { authorization: `token=${token}`, accept: 'text/event-stream' }, signal });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const now = performance.now();
      buffer += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\n');
        if (!data) continue;
        const event = JSON.parse(data) as { eventType: string; appId?: string; taskId?: string; taskStatus?: string };
        if (event.eventType === 'event_stream_attached') attach();
        if (event.eventType !== 'status_update_event' || event.taskStatus !== 'TASK_RUNNING' || !event.appId || !event.taskId) continue;
        const set = seen.get(event.appId) ?? new Set<string>();
        set.add(event.taskId);
        seen.set(event.appId, set);
        for (const w of [...waiters]) {
          if (w.appId === event.appId && set.size >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(now);
          }
        }
      }
    }
  })().catch(() => undefined);
  return {
    attached,
    reached: (appId, n) => new Promise((resolve) => waiters.push({ appId, n, resolve })),
  };
}

export async function postToRunning(options: { instances: number; runs: number }): Promise<Record<string, unknown>> {
  return withTeardown(async (t) => {
    const c = await startProcessCluster(t, 'bench-post');
    const master = await c.startMaster('m1');
    const token = await c.login(master);
    await c.startAgent('a1', master);
    const abort = new AbortController();
    t.teardown(() => abort.abort());
    const events = runningWatcher(master.apiUrl, token, abort.signal);
    await events.attached;
    const fromResponse: number[] = [];
    const fromRequest: number[] = [];
    const removal: number[] = [];
    for (let r = 0; r < options.runs; r++) {
      const id = `/bench/post-${r}`;
      const all = events.reached(id, options.instances);
      const sent = performance.now();
      const res = await c.api('POST', '/v2/apps', { id, instances: options.instances, cmd: 'sleep 1000', cpus: 0.01, mem: 1, portDefinitions: [], taskKillGracePeriodSeconds: 1 });
      const answered = performance.now();
      if (res.status !== 201) throw new Error(`POST: ${res.status} ${JSON.stringify(res.body)}`);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([all, new Promise<number>((_, reject) => (timer = setTimeout(() => reject(new Error(`run ${r}: not all RUNNING after 60 s`)), 60_000)))]);
      clearTimeout(timer);
      const check = (await c.api('GET', `/v2/apps${id}`)).body as { app: { tasksRunning: number } };
      if (check.app.tasksRunning !== options.instances) throw new Error(`run ${r}: GET shows ${check.app.tasksRunning} running`);
      fromResponse.push(done - answered);
      fromRequest.push(done - sent);
      const deleting = performance.now();
      const removed = await c.api('DELETE', `/v2/apps${id}?force=true`);
      if (removed.status !== 200) throw new Error(`DELETE: ${removed.status}`);
      await until('the app gone', async () => (await c.api('GET', `/v2/apps${id}`)).status === 404 && ((await c.api('GET', '/v2/deployments')).body as unknown[]).length === 0, 60_000);
      removal.push(performance.now() - deleting);
      await until('every task process gone', async () => (await c.liveTaskGroups()).length === 0, 60_000);
    }
    const s = summary(fromResponse);
    return {
      instances: options.instances,
      runs: options.runs,
      fromPostResponseToAllRunning: s,
      fromPostRequestToAllRunning: summary(fromRequest),
      allMs: fromResponse.map((x) => round(x)),
      deleteToDeploymentDone: summary(removal),
      goals: { allRunningP99AtMost300Ms: s.p99Ms <= 300 },
    };
  });
}

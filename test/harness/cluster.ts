/**
 * A cluster of separate processes for fault tests: `strata master`
 * processes (embedded store in their data dir, or an etcd prefix) and
 * `strata agent` processes, each in a temp dir, on free ports. A master can
 * be SIGKILLed and started again on the same port and store; an agent can be
 * SIGKILLed and started again on the same data dir (same agent id, its
 * sandboxes recovered).
 *
 * Task processes are detached process groups that outlive a SIGKILLed
 * agent, so the teardown reads every sandbox's `task.json` and SIGKILLs the
 * groups still running (checking the recorded start time, so a reused pid
 * is never signalled), after killing every master and agent, even when the
 * test failed.
 */
import { claimPortRange } from './ports.ts';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSameLiveProcess, signalGroup } from '../../scheduler/executor/proc.ts';
import { startStrata, type StrataProcess } from './process.ts';

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface MasterOptions {
  /** `embedded` (default: `<dir>/<name>/state.db`) or etcd endpoints with a key prefix. */
  readonly etcd?: { readonly endpoints: readonly string[]; readonly prefix: string };
  /** Where this master keeps its files (default `<cluster dir>/<name>`); two embedded masters never share one. */
  readonly dataDir?: string;
  /** Extra config flags. */
  readonly flags?: readonly string[];
  /** Extra environment (e.g. `NODE_OPTIONS: '--cpu-prof'` to profile the process). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface ClusterMaster {
  readonly name: string;
  readonly apiUrl: string;
  readonly port: number;
  process: StrataProcess;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** Start it again with the same flags (same port, same store). */
  restart(): Promise<void>;
}

export interface ClusterAgent {
  readonly name: string;
  readonly dataDir: string;
  readonly id: string;
  process: StrataProcess;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export type Api = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown) => Promise<{ status: number; body: unknown }>;

export interface ProcessCluster {
  readonly dir: string;
  startMaster(name: string, options?: MasterOptions): Promise<ClusterMaster>;
  /** Logs in with the bootstrap credentials the first master wrote; the token serves the API calls and the agents. */
  login(master: ClusterMaster): Promise<string>;
  /** An agent of `master`, or of several masters (in that order: it moves to the next when one fails). */
  startAgent(name: string, master: ClusterMaster | readonly ClusterMaster[], options?: { readonly portRanges?: string; readonly flags?: readonly string[]; readonly env?: NodeJS.ProcessEnv }): Promise<ClusterAgent>;
  /** Calls the API of `master` (or the one given to `useMaster`) as the superuser. */
  api: Api;
  useMaster(master: ClusterMaster): void;
  /** Pids (= process groups) of task processes still alive, from every agent's sandboxes. */
  liveTaskGroups(): Promise<{ taskId: string; pid: number }[]>;
}

/** The fields of a sandbox's `task.json` (scheduler/executor/executor.ts) read here. */
interface TaskJson {
  readonly taskId: string;
  readonly pid?: number;
  readonly procStartTime?: string;
}

async function sandboxRecords(agentDirs: readonly string[]): Promise<{ taskId: string; pid: number; startTime: string | undefined }[]> {
  const out: { taskId: string; pid: number; startTime: string | undefined }[] = [];
  for (const dir of agentDirs) {
    const sandboxes = join(dir, 'sandboxes');
    const names = await readdir(sandboxes).catch(() => [] as string[]);
    for (const name of names) {
      const text = await readFile(join(sandboxes, name, 'task.json'), 'utf8').catch(() => '');
      if (!text) continue;
      try {
        const record = JSON.parse(text) as TaskJson;
        if (record.pid !== undefined) out.push({ taskId: record.taskId, pid: record.pid, startTime: record.procStartTime });
      } catch {
        // a task.json being rewritten: skipped this time
      }
    }
  }
  return out;
}

export async function startProcessCluster(t: { teardown(fn: () => Promise<void> | void): void }, name: string): Promise<ProcessCluster> {
  const dir = await mkdtemp(join(tmpdir(), `strata-${name}-`));
  const processes: StrataProcess[] = [];
  const agentDirs: string[] = [];
  const portClaims: { release(): void }[] = [];
  const killAll = async (): Promise<void> => {
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited()));
    for (const r of await sandboxRecords(agentDirs)) if (r.startTime !== undefined && isSameLiveProcess(r.pid, r.startTime)) signalGroup(r.pid, 'SIGKILL');
  };
  t.teardown(async () => {
    await killAll();
    for (const claim of portClaims) claim.release();
    await rm(dir, { recursive: true, force: true });
  });
  let token: string | undefined;
  let current: ClusterMaster | undefined;
  let credentialsFile: string | undefined;

  const spawnTracked = (args: readonly string[], env: NodeJS.ProcessEnv | undefined): StrataProcess => {
    const p = startStrata(args, env ? { env } : {});
    processes.push(p);
    return p;
  };

  const cluster: ProcessCluster = {
    dir,
    async startMaster(masterName, options = {}) {
      const dataDir = options.dataDir ?? join(dir, masterName);
      const port = await freePort();
      const args = [
        'master',
        '--data-dir', dataDir,
        '--api-port', String(port),
        '--master-leader-ttl-seconds', '2',
        '--log-level', 'warn',
        ...(options.etcd ? ['--store-backend', 'etcd', '--store-etcd-endpoints', options.etcd.endpoints.join(','), '--store-prefix', options.etcd.prefix] : []),
        ...(options.flags ?? []),
      ];
      const start = async (): Promise<StrataProcess> => {
        const p = spawnTracked(args, options.env);
        await p.waitFor(/serving the API at (http:\/\/\S+)/, 60_000);
        return p;
      };
      const master: ClusterMaster = {
        name: masterName,
        apiUrl: `http://127.0.0.1:${port}`,
        port,
        process: await start(),
        async kill() {
          master.process.kill('SIGKILL');
          await master.process.exited();
        },
        async restart() {
          master.process = await start();
        },
      };
      credentialsFile ??= join(dataDir, 'bootstrap-credentials.json');
      current ??= master;
      return master;
    },
    async login(master) {
      const credentials = JSON.parse(await readFile(credentialsFile!, 'utf8')) as { uid: string; password: string };
      const res = await fetch(`${master.apiUrl}/acs/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ uid: credentials.uid, password: credentials.password }),
      });
      if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
      token = ((await res.json()) as { token: string }).token;
      await writeFile(join(dir, 'token'), token, { mode: 0o600 });
      return token;
    },
    async startAgent(agentName, master, options = {}) {
      if (!token) throw new Error('log in before starting agents');
      const dataDir = join(dir, agentName);
      const ports = claimPortRange();
      portClaims.push(ports);
      const portBase = ports.first;
      await mkdir(dataDir, { recursive: true });
      agentDirs.push(dataDir);
      const args = [
        'agent',
        '--data-dir', dataDir,
        '--agent-master-url', [master].flat().map((m) => m.apiUrl).join(','),
        '--agent-token-file', join(dir, 'token'),
        '--agent-port', '0',
        '--agent-heartbeat-seconds', '1',
        '--agent-port-ranges', options.portRanges ?? `${portBase}-${portBase + 99}`,
        '--log-level', 'warn',
        ...(options.flags ?? []),
      ];
      const start = async (): Promise<{ p: StrataProcess; id: string }> => {
        const p = spawnTracked(args, options.env);
        const [, id] = await p.waitFor(/strata agent (\S+) registered/, 60_000);
        return { p, id: id! };
      };
      const first = await start();
      const agent: ClusterAgent = {
        name: agentName,
        dataDir,
        id: first.id,
        process: first.p,
        async kill() {
          agent.process.kill('SIGKILL');
          await agent.process.exited();
        },
        async restart() {
          agent.process = (await start()).p;
        },
      };
      return agent;
    },
    async api(method, path, body) {
      const res = await fetch(`${current!.apiUrl}${path}`, {
        method,
        headers: { authorization: `token=${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed };
    },
    useMaster(master) {
      current = master;
    },
    async liveTaskGroups() {
      return (await sandboxRecords(agentDirs)).filter((r) => r.startTime !== undefined && isSameLiveProcess(r.pid, r.startTime)).map(({ taskId, pid }) => ({ taskId, pid }));
    },
  };
  return cluster;
}

/** Polls `check` every 100 ms until it returns true; fails after `ms` with `what`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // a master restarting: try again
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Test harness: a real etcd cluster (1 or 3 members) on 127.0.0.1.
 *
 * - Client and peer ports are free ports found by binding port 0 on
 *   127.0.0.1; if etcd still loses a port race ("address already in use")
 *   the whole cluster is started again on new ports.
 * - Data lives in a fresh temp directory that `stop()` removes.
 * - Health is polled over HTTP (`/health` per member), the leader is found
 *   through each member's `/metrics` (`etcd_server_is_leader 1`), and
 *   compaction goes through etcd's JSON gateway (`/v3/kv/compaction`): no
 *   etcdctl spawns, no extra gRPC client in the test process.
 * - Every etcd process is killed in `stop()`, on process exit, and by a
 *   small watchdog shell that SIGKILLs the members (after checking their
 *   command line names this cluster's data directory) if the test process
 *   dies without cleaning up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EtcdClusterOptions {
  /** Number of members: 1 or 3 (default 3). */
  readonly members?: number;
  /**
   * `--heartbeat-interval=50 --election-timeout=500` for fast failover
   * (default true). With etcd's defaults (100/1000 ms) leader failover takes
   * about 1.2-1.7 s on the project machines.
   */
  readonly fastElection?: boolean;
  /** `--quota-backend-bytes` (default 256 MiB). */
  readonly quotaBackendBytes?: number;
  /** `--auto-compaction-retention` in revisions (mode is `revision`; default 10000). */
  readonly autoCompactionRetention?: number;
  /**
   * `--max-request-bytes` (default 40 MiB, so one transaction can carry the
   * port's 64 operations of 512 KiB each; etcd's own default is 1.5 MiB).
   */
  readonly maxRequestBytes?: number;
  /** How long to wait for the cluster to become healthy (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Path of the etcd binary (default `$STRATA_ETCD_BIN` or `/usr/bin/etcd`). */
  readonly binary?: string;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
}

export interface RawEtcdEntry {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** Lease id in decimal; '0' when none. */
  readonly lease: string;
}

export interface RawRange {
  readonly revision: number;
  readonly kvs: readonly RawEtcdEntry[];
}

export interface EtcdCluster {
  /** Client URLs of all members (`http://127.0.0.1:port`), in member order. */
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdMember[];
  /** The temp directory holding data dirs and logs. */
  readonly dir: string;
  /** Index of the member that is raft leader now, or -1 if no live member says so. */
  leaderIndex(): Promise<number>;
  /** Polls until some live member is leader; returns its index. */
  waitForLeader(timeoutMs?: number): Promise<number>;
  /** Whether member i's process is running. */
  isRunning(i: number): boolean;
  /** PID of member i (undefined when it is not running). */
  pid(i: number): number | undefined;
  /** Sends `signal` to member i and waits for the process to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts member i again with its old ports and data; waits until its /health passes. */
  restart(i: number, options?: { readonly waitHealthy?: boolean }): Promise<void>;
  /** Polls member i's /health until it reports healthy. */
  waitHealthy(i: number, timeoutMs?: number): Promise<void>;
  /** The cluster's current revision (read through any live member). */
  currentRevision(): Promise<number>;
  /**
   * Compacts the cluster's history up to `revision` (default: the current
   * revision) and waits for it to be physically applied. Returns the revision.
   */
  compact(revision?: number): Promise<number>;
  /** Reads keys straight from etcd's JSON gateway, bypassing any store. */
  rawRange(key: string, options?: { readonly prefix?: boolean }): Promise<RawRange>;
  /** The last lines of member i's log (for failure messages). */
  logTail(i: number, lines?: number): string;
  /** Kills every member and removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

const LOCAL = '127.0.0.1';

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, LOCAL);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  if (port === 0) throw new Error('could not obtain a free port');
  return port;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    server.listen(port, LOCAL);
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
    server.close();
    await once(server, 'close');
    return true;
  } catch {
    server.close();
    return false;
  }
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

async function fetchText(url: string, init: RequestInit = {}, timeoutMs = 1500): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: await response.text() };
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Processes started by any cluster of this test process, killed on exit. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

class PortInUse extends Error {}

interface MemberState {
  readonly member: EtcdMember;
  readonly logPath: string;
  child: ChildProcess | undefined;
  exited: Promise<void> | undefined;
}

class Cluster implements EtcdCluster {
  readonly dir: string;
  readonly members: readonly EtcdMember[];
  readonly endpoints: readonly string[];
  readonly #states: MemberState[];
  readonly #binary: string;
  readonly #args: (i: number) => string[];
  readonly #pidFile: string;
  #watchdog: ChildProcess | undefined;
  #stopped = false;

  constructor(dir: string, members: EtcdMember[], binary: string, args: (i: number) => string[]) {
    this.dir = dir;
    this.members = members;
    this.endpoints = members.map((m) => m.clientUrl);
    this.#states = members.map((member) => ({ member, logPath: join(dir, `${member.name}.log`), child: undefined, exited: undefined }));
    this.#binary = binary;
    this.#args = args;
    this.#pidFile = join(dir, 'pids');
  }

  #state(i: number): MemberState {
    const state = this.#states[i];
    if (state === undefined) throw new Error(`no etcd member ${i} (cluster has ${this.#states.length})`);
    return state;
  }

  #writePidFile(): void {
    const pids = this.#states.flatMap((s) => (s.child?.pid !== undefined && s.child.exitCode === null && s.child.signalCode === null ? [String(s.child.pid)] : []));
    writeFileSync(this.#pidFile, pids.join('\n') + '\n');
  }

  /** Shell watchdog: when this process dies, SIGKILL members still listed in the pid file. */
  startWatchdog(): void {
    const script = [
      'parent=$1; dir=$2; pids=$3',
      'while kill -0 "$parent" 2>/dev/null; do sleep 1; done',
      'for p in $(cat "$pids" 2>/dev/null); do',
      '  if grep -q "$dir" "/proc/$p/cmdline" 2>/dev/null; then kill -9 "$p" 2>/dev/null; fi',
      'done',
      'rm -rf "$dir"',
    ].join('\n');
    const watchdog = spawn('sh', ['-c', script, 'etcd-watchdog', String(process.pid), this.dir, this.#pidFile], {
      stdio: 'ignore',
      detached: true,
    });
    watchdog.on('error', () => undefined);
    watchdog.unref();
    this.#watchdog = watchdog;
  }

  spawnMember(i: number): void {
    const state = this.#state(i);
    if (state.child !== undefined) throw new Error(`etcd member ${i} is already running`);
    const log = openSync(state.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.#binary, this.#args(i), { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    liveChildren.add(child);
    child.on('error', () => undefined);
    state.child = child;
    state.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        liveChildren.delete(child);
        if (state.child === child) {
          state.child = undefined;
          if (!this.#stopped) this.#writePidFile();
        }
        resolve();
      });
    });
    this.#writePidFile();
  }

  isRunning(i: number): boolean {
    return this.#state(i).child !== undefined;
  }

  pid(i: number): number | undefined {
    return this.#state(i).child?.pid;
  }

  logTail(i: number, lines = 20): string {
    try {
      return readFileSync(this.#state(i).logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async #healthy(i: number): Promise<boolean> {
    try {
      const { status, body } = await fetchText(`${this.#state(i).member.clientUrl}/health`);
      return status === 200 && /"health"\s*:\s*"?true"?/.test(body);
    } catch {
      return false;
    }
  }

  async waitHealthy(i: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = this.#state(i);
      if (state.child === undefined) {
        const tail = this.logTail(i);
        if (/address already in use/.test(tail)) throw new PortInUse(`etcd ${state.member.name}: port in use`);
        throw new Error(`etcd ${state.member.name} exited before it became healthy:\n${tail}`);
      }
      if (await this.#healthy(i)) return;
      if (Date.now() > deadline) throw new Error(`etcd ${state.member.name} not healthy after ${timeoutMs} ms:\n${this.logTail(i)}`);
      await sleep(50);
    }
  }

  async #isLeader(i: number): Promise<boolean> {
    if (!this.isRunning(i)) return false;
    try {
      const { status, body } = await fetchText(`${this.#state(i).member.clientUrl}/metrics`);
      return status === 200 && /^etcd_server_is_leader 1$/m.test(body);
    } catch {
      return false;
    }
  }

  async leaderIndex(): Promise<number> {
    const flags = await Promise.all(this.#states.map((_, i) => this.#isLeader(i)));
    return flags.indexOf(true);
  }

  async waitForLeader(timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.leaderIndex();
      if (leader >= 0) return leader;
      if (Date.now() > deadline) throw new Error(`no etcd leader after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const state = this.#state(i);
    const child = state.child;
    if (child === undefined) return;
    child.kill(signal);
    await state.exited;
  }

  async restart(i: number, options: { readonly waitHealthy?: boolean } = {}): Promise<void> {
    if (this.#stopped) throw new Error('cluster is stopped');
    const member = this.#state(i).member;
    // The member must come back on its own ports; never start it while
    // something else answers there (gotcha: a test talking to a stale server).
    const deadline = Date.now() + 10_000;
    while (!((await portIsFree(member.clientPort)) && (await portIsFree(member.peerPort)))) {
      if (Date.now() > deadline) throw new Error(`ports of etcd ${member.name} are still taken; cannot restart it`);
      await sleep(100);
    }
    this.spawnMember(i);
    if (options.waitHealthy !== false) await this.waitHealthy(i);
  }

  async #gateway(path: string, body: unknown): Promise<Record<string, unknown>> {
    let lastError: unknown = new Error('no etcd member is running');
    for (let i = 0; i < this.#states.length; i++) {
      if (!this.isRunning(i)) continue;
      try {
        const { status, body: text } = await fetchText(
          `${this.#state(i).member.clientUrl}${path}`,
          { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
          10_000,
        );
        if (status !== 200) throw new Error(`etcd ${path} answered ${status}: ${text}`);
        return JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  async currentRevision(): Promise<number> {
    const response = await this.#gateway('/v3/kv/range', { key: Buffer.from('\0').toString('base64'), count_only: true });
    const header = response.header as { revision?: string } | undefined;
    return Number(header?.revision ?? 0);
  }

  async rawRange(key: string, options: { readonly prefix?: boolean } = {}): Promise<RawRange> {
    const start = Buffer.from(key, 'utf8');
    const body: Record<string, string> = { key: start.toString('base64') };
    if (options.prefix === true) body.range_end = prefixEnd(start).toString('base64');
    const response = await this.#gateway('/v3/kv/range', body);
    const header = response.header as { revision?: string } | undefined;
    const kvs = (response.kvs ?? []) as Array<Record<string, string | undefined>>;
    return {
      revision: Number(header?.revision ?? 0),
      kvs: kvs.map((kv) => ({
        key: Buffer.from(kv.key ?? '', 'base64').toString('utf8'),
        value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
        createRevision: Number(kv.create_revision ?? 0),
        modRevision: Number(kv.mod_revision ?? 0),
        lease: kv.lease ?? '0',
      })),
    };
  }

  async compact(revision?: number): Promise<number> {
    const target = revision ?? (await this.currentRevision());
    try {
      await this.#gateway('/v3/kv/compaction', { revision: String(target), physical: true });
    } catch (err) {
      // Compacting to (or below) the current compaction point is a no-op.
      if (!/required revision has been compacted/.test(String(err))) throw err;
    }
    return target;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all(this.#states.map((_, i) => this.kill(i, 'SIGKILL')));
    if (this.#watchdog?.pid !== undefined && this.#watchdog.exitCode === null) {
      try {
        process.kill(this.#watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function tryStart(options: EtcdClusterOptions): Promise<Cluster> {
  const count = options.members ?? 3;
  if (count !== 1 && count !== 3) throw new Error(`etcd cluster must have 1 or 3 members, not ${count}`);
  const binary = options.binary ?? process.env.STRATA_ETCD_BIN ?? '/usr/bin/etcd';
  const dir = mkdtempSync(join(tmpdir(), 'strata-etcd-'));
  const ports = await distinctFreePorts(count * 2);
  const members: EtcdMember[] = [];
  for (let i = 0; i < count; i++) {
    const clientPort = ports[2 * i] as number;
    const peerPort = ports[2 * i + 1] as number;
    const dataDir = join(dir, `m${i}`);
    mkdirSync(dataDir, { mode: 0o700 });
    members.push({
      name: `m${i}`,
      clientPort,
      peerPort,
      clientUrl: `http://${LOCAL}:${clientPort}`,
      peerUrl: `http://${LOCAL}:${peerPort}`,
      dataDir,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `strata-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const fast = options.fastElection ?? true;
  const args = (i: number): string[] => {
    const m = members[i] as EtcdMember;
    return [
      `--name=${m.name}`,
      `--data-dir=${m.dataDir}`,
      `--listen-client-urls=${m.clientUrl}`,
      `--advertise-client-urls=${m.clientUrl}`,
      `--listen-peer-urls=${m.peerUrl}`,
      `--initial-advertise-peer-urls=${m.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${token}`,
      '--auto-compaction-mode=revision',
      `--auto-compaction-retention=${options.autoCompactionRetention ?? 10_000}`,
      `--quota-backend-bytes=${options.quotaBackendBytes ?? 256 * 1024 * 1024}`,
      `--max-request-bytes=${options.maxRequestBytes ?? 40 * 1024 * 1024}`,
      ...(fast ? ['--heartbeat-interval=50', '--election-timeout=500'] : []),
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
  };
  const cluster = new Cluster(dir, members, binary, args);
  cluster.startWatchdog();
  try {
    for (let i = 0; i < count; i++) cluster.spawnMember(i);
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    await Promise.all(members.map((_, i) => cluster.waitHealthy(i, timeoutMs)));
    await cluster.waitForLeader(timeoutMs);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Starts an etcd cluster and waits until every member is healthy and a leader is elected. */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  installExitHook();
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryStart(options);
    } catch (err) {
      if (err instanceof PortInUse && attempt < 4) continue;
      throw err;
    }
  }
}

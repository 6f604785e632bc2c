/**
 * The executor: runs each task as a real process on this agent and reports
 * its Mesos state.
 *
 * Per task: a sandbox `<workDir>/<task id>/` (mode 0700) holding `stdout`,
 * `stderr` (rotated by size, see `logs.ts`) and `task.json` (what a restarted
 * agent needs: pid, process group, the process's start time, boot id, state
 * history). The process is `/bin/sh -c <cmd>` or `args` as argv (no shell),
 * started detached, so it leads its own session and process group; its
 * environment is built by `env.ts`; it is moved into its cgroups when the
 * host has them (`cgroups.ts`).
 *
 * States (Mesos): STAGING (accepted) → STARTING (sandbox ready) → RUNNING
 * (exec succeeded) → FINISHED (exit 0) | FAILED (non-zero exit or a
 * signal) | KILLING → KILLED (after a kill, whatever the exit), and ERROR
 * when the launch itself fails (sandbox, secret, exec). A kill sends SIGTERM
 * to the whole process group and SIGKILL after the grace period
 * (`taskKillGracePeriodSeconds`, default 3 s). When the task's main process
 * ends, whatever is left of its process group (and cgroup) is SIGKILLed, as
 * Mesos destroys a task's container.
 *
 * After an agent restart, {@link Executor.recover} re-attaches to tasks
 * whose process is still the one recorded (same pid and start time, same
 * boot) and reports the others LOST.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { constants as osConstants, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { StrataError } from '../../common/errors.ts';
import { TERMINAL_TASK_STATES, type TaskState } from '../../control-plane/model/schemas.ts';
import { noCgroups, type CgroupManager } from './cgroups.ts';
import { SecretMissingError, taskEnvironment } from './env.ts';
import { writeSecretFiles } from './secret-files.ts';
import { DEFAULT_LOG_ROTATION, LOG_STREAMS, openLogFiles, readLogRange, readLogTail, rotateIfNeeded, type LogRange, type LogRotation } from './logs.ts';
import { bootId, decodeWaitStatus, isSameLiveProcess, processGroupExists, readProcStat, signalGroup } from './proc.ts';
import { checkLaunchSpec, sandboxName, type TaskLaunchSpec } from './spec.ts';

/** Grace period from SIGTERM to SIGKILL when the app sets no `taskKillGracePeriodSeconds` (Mesos's default is 3 s too). */
export const DEFAULT_KILL_GRACE_PERIOD_SECONDS = 3;

/** One status update: a state the task entered, when, and why. */
export interface TaskStatus {
  readonly taskId: string;
  readonly state: TaskState;
  /** RFC 3339, when the state was entered. */
  readonly timestamp: string;
  /** Human-readable detail (exit status, cgroup notes, launch error). */
  readonly message?: string;
  /** Mesos reason (`REASON_COMMAND_EXECUTOR_FAILED`, …) when there is one. */
  readonly reason?: string;
  /** Exit status of the task's main process, if it exited. */
  readonly exitCode?: number;
  /** The signal that ended it (`SIGKILL`, …), if one did. */
  readonly signal?: string;
  /** The task's main process (and process group) id, once started. */
  readonly pid?: number;
}

export interface ExecutorOptions {
  /** Holds one sandbox per task. Created (0700) if missing. */
  readonly workDir: string;
  /** `HOST` for tasks. Default: this machine's host name. */
  readonly host?: string;
  /** Default: none (tasks run without limits; their RUNNING status says so). Use `detectCgroups()` on a real agent. */
  readonly cgroups?: CgroupManager;
  readonly logRotation?: Partial<LogRotation>;
  /** How often live tasks' logs are checked for rotation. Default 1000 ms. */
  readonly logCheckIntervalMs?: number;
  /** Default {@link DEFAULT_KILL_GRACE_PERIOD_SECONDS}. */
  readonly defaultKillGracePeriodSeconds?: number;
  /** The environment every task starts from (the agent's own is not inherited). Default: a standard `PATH`. */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** How often re-attached tasks (not children of this process) are checked for exit. Default 250 ms. */
  readonly pollIntervalMs?: number;
  readonly now?: () => Date;
  /** Runs `fn` synchronously inside a network namespace (tasks whose spec has `netnsPath` are spawned through it); without it such tasks are ERROR. */
  readonly enterNetns?: <T>(netnsPath: string, fn: () => T) => T;
}

/** What `<sandbox>/task.json` holds. */
interface TaskRecord {
  readonly format: 1;
  readonly taskId: string;
  readonly appId: string;
  readonly version: string;
  readonly killGracePeriodSeconds: number;
  cgroup?: string;
  pid?: number;
  procStartTime?: string;
  bootId: string;
  killRequested?: boolean;
  /** The network namespace it was started in (a container network). */
  netnsPath?: string;
  history: TaskStatus[];
}

const RECORD_FILE = 'task.json';

const ALLOWED: Partial<Record<TaskState, readonly TaskState[]>> = {
  STAGING: ['STARTING', 'ERROR', 'KILLED'],
  STARTING: ['RUNNING', 'ERROR', 'KILLED'],
  RUNNING: ['RUNNING', 'KILLING', 'FINISHED', 'FAILED'],
  KILLING: ['KILLED'],
};

const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

interface ExitInfo {
  readonly exitCode?: number;
  readonly signal?: string;
  /** The process ended while not our child: its status was not seen. */
  readonly unknown?: boolean;
}

interface TaskContext {
  readonly now: () => Date;
  readonly enterNetns: (<T>(netnsPath: string, fn: () => T) => T) | undefined;
  readonly cgroups: CgroupManager;
  readonly pollIntervalMs: number;
  readonly logRotation: LogRotation;
  onStatus(status: TaskStatus): void;
  onEnd(handle: TaskHandle): void;
}

/** A task launched (or re-attached) by this executor. Emits `status` for every state it enters. */
export class TaskHandle extends EventEmitter<{ status: [TaskStatus] }> {
  readonly taskId: string;
  /** Absolute path of the task's sandbox (also `MESOS_SANDBOX`). */
  readonly sandbox: string;
  readonly killGracePeriodSeconds: number;
  /** Every status so far, oldest first. */
  readonly history: TaskStatus[] = [];
  /** Resolves with the terminal status. */
  readonly terminated: Promise<TaskStatus>;

  readonly #ctx: TaskContext;
  readonly #record: TaskRecord;
  #resolveTerminated!: (status: TaskStatus) => void;
  #child: ChildProcess | undefined;
  #exited = false;
  #graceTimer: NodeJS.Timeout | undefined;
  #killAt = Infinity;
  #monitor: NodeJS.Timeout | undefined;
  /** Records are written synchronously (`#persist`): always settled; kept for the callers that wait for the disk. */
  readonly #writes: Promise<void> = Promise.resolve();

  /** @internal use {@link Executor.launch} or {@link Executor.recover}. */
  constructor(record: TaskRecord, sandbox: string, ctx: TaskContext) {
    super();
    this.taskId = record.taskId;
    this.sandbox = sandbox;
    this.killGracePeriodSeconds = record.killGracePeriodSeconds;
    this.#record = record;
    this.#ctx = ctx;
    this.terminated = new Promise((resolve) => {
      this.#resolveTerminated = resolve;
    });
    this.history.push(...record.history);
  }

  /** The latest status. */
  get status(): TaskStatus {
    return this.history.at(-1)!;
  }

  get state(): TaskState {
    return this.status.state;
  }

  /** The task's main process and process group id, once it runs. */
  get pid(): number | undefined {
    return this.#record.pid;
  }

  /** The network namespace the task runs in (a container network; kept across agent restarts), if any. */
  get netnsPath(): string | undefined {
    return this.#record.netnsPath;
  }

  /**
   * Kills the task: SIGTERM to its process group, SIGKILL after
   * `gracePeriodSeconds` (default: the task's). A second kill with a shorter
   * grace brings the SIGKILL forward. Resolves with the terminal status.
   */
  kill(gracePeriodSeconds: number = this.killGracePeriodSeconds): Promise<TaskStatus> {
    if (this.#isTerminal() || this.#exited) return this.terminated;
    this.#record.killRequested = true;
    if (this.state === 'RUNNING') {
      this.#transition('KILLING', { message: `Killing: SIGTERM to the process group, SIGKILL after ${gracePeriodSeconds} s` });
      this.#signal('SIGTERM');
    }
    if (this.state === 'KILLING') this.#scheduleSigkill(gracePeriodSeconds);
    // STAGING / STARTING: the launch sees `killRequested` and ends KILLED before any process starts.
    return this.terminated;
  }

  /** Reads a byte range of one log file (see `readLogRange`). */
  readLog(options: Parameters<typeof readLogRange>[1]): Promise<LogRange> {
    return readLogRange(this.sandbox, options);
  }

  /** The last lines of a log stream, across rotated files (see `readLogTail`). */
  tailLog(options: Parameters<typeof readLogTail>[1]): ReturnType<typeof readLogTail> {
    return readLogTail(this.sandbox, options);
  }

  // --- internals, used by the executor

  /** @internal */
  emitInitial(): void {
    const status = this.status;
    queueMicrotask(() => {
      this.emit('status', status);
      this.#ctx.onStatus(status);
    });
  }

  /** @internal The launch sequence; never throws: an unexpected failure ends the task in ERROR (killing it if it started). */
  async launch(spec: TaskLaunchSpec, env: { host: string; baseEnv?: Readonly<Record<string, string>>; workDir: string }): Promise<void> {
    try {
      await this.#launchSteps(spec, env);
    } catch (err) {
      if (this.#isTerminal()) return;
      if (this.#record.pid !== undefined) signalGroup(this.#record.pid, 'SIGKILL');
      const state = this.state === 'STAGING' || this.state === 'STARTING' ? 'ERROR' : this.state === 'KILLING' ? 'KILLED' : 'FAILED';
      await this.#end(state, { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Launch failed: ${(err as Error).message}` }).catch(() => {});
    }
  }

  async #launchSteps(spec: TaskLaunchSpec, env: { host: string; baseEnv?: Readonly<Record<string, string>>; workDir: string }): Promise<void> {
    try {
      await mkdir(env.workDir, { recursive: true, mode: 0o700 });
      await mkdir(this.sandbox, { mode: 0o700 });
      await chmod(this.sandbox, 0o700);
    } catch (err) {
      return this.#end('ERROR', { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Cannot create the sandbox ${this.sandbox}: ${(err as Error).message}` });
    }
    let environment: Record<string, string>;
    try {
      environment = taskEnvironment(spec, { host: env.host, sandbox: this.sandbox, ...(env.baseEnv ? { baseEnv: env.baseEnv } : {}) });
      await writeSecretFiles(this.sandbox, spec);
    } catch (err) {
      if (!(err instanceof SecretMissingError)) throw err;
      return this.#end('ERROR', { reason: 'REASON_SECRET_GENERATION_FAILED', message: err.message });
    }
    this.#persist();
    if (this.#record.killRequested) return this.#end('KILLED', { reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before it started' });
    const cgroupName = sandboxName(this.taskId);
    const cgroup = await this.#ctx.cgroups.prepare(cgroupName, { cpus: spec.resources.cpus, memMb: spec.resources.memMb });
    this.#record.cgroup = cgroupName;
    this.#transition('STARTING', cgroup.detail ? { message: cgroup.detail } : {});
    if (this.#record.killRequested) return this.#end('KILLED', { reason: 'REASON_TASK_KILLED_DURING_LAUNCH', message: 'Killed before it started' });

    let fds: Record<(typeof LOG_STREAMS)[number], number>;
    try {
      fds = openLogFiles(this.sandbox);
    } catch (err) {
      return this.#end('ERROR', { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Cannot open the log files: ${(err as Error).message}` });
    }
    const file = spec.cmd !== undefined ? '/bin/sh' : spec.args![0]!;
    const argv = spec.cmd !== undefined ? ['-c', spec.cmd] : spec.args!.slice(1);
    let child: ChildProcess;
    try {
      const start = (): ChildProcess => spawn(file, argv, { cwd: this.sandbox, env: environment, detached: true, stdio: ['ignore', fds.stdout, fds.stderr] });
      if (spec.netnsPath !== undefined) {
        // Forked by the main thread while it is inside the task's network namespace: the task starts (and stays) there.
        if (!this.#ctx.enterNetns) return this.#end('ERROR', { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `The task needs the network namespace ${spec.netnsPath} but this executor cannot enter namespaces` });
        this.#record.netnsPath = spec.netnsPath;
        child = this.#ctx.enterNetns(spec.netnsPath, start);
      } else child = start();
    } catch (err) {
      return this.#end('ERROR', { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Cannot start ${file}: ${(err as Error).message}` });
    } finally {
      closeSync(fds.stdout);
      closeSync(fds.stderr);
    }
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once('error', resolve));
      return this.#end('ERROR', { reason: 'REASON_CONTAINER_LAUNCH_FAILED', message: `Cannot start ${file}: ${err.message}` });
    }
    // No await between the spawn and these: the process is moved into its
    // cgroups before it can do much, and its exit cannot be missed.
    const attached = this.#ctx.cgroups.attach(cgroupName, pid);
    this.#child = child;
    child.on('error', () => {
      // kill() errors after the spawn: the exit event still comes
    });
    child.once('exit', (code, signal) => {
      void this.#onExit(code !== null ? { exitCode: code } : { ...(signal ? { signal } : { unknown: true }) });
    });
    this.#record.pid = pid;
    this.#record.procStartTime = readProcStat(pid)?.startTime;
    const detail = [cgroup.detail, attached.detail].filter(Boolean).join('; ');
    this.#transition('RUNNING', { pid, ...(detail ? { message: detail } : {}) });
    if (this.#record.killRequested) void this.kill();
  }

  /** @internal Re-attach to a process found alive by recovery. */
  reattach(): void {
    const wasKilling = this.state === 'KILLING';
    if (!wasKilling) this.#transition('RUNNING', { pid: this.#record.pid!, message: 'Re-attached after an agent restart' });
    else this.emitInitial();
    this.#monitor = setInterval(() => this.#poll(), this.#ctx.pollIntervalMs);
    if (wasKilling) {
      // The kill was under way when the agent stopped: start it again.
      this.#signal('SIGTERM');
      this.#scheduleSigkill(this.killGracePeriodSeconds);
    }
  }

  #scheduleSigkill(gracePeriodSeconds: number): void {
    const at = Date.now() + Math.max(0, gracePeriodSeconds) * 1000;
    if (at >= this.#killAt) return;
    this.#killAt = at;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = setTimeout(() => this.#signal('SIGKILL'), at - Date.now());
  }

  /** @internal Rotates this task's logs if they are over the limit. */
  rotateLogs(rotation: LogRotation): void {
    for (const stream of LOG_STREAMS) {
      try {
        rotateIfNeeded(this.sandbox, stream, rotation);
      } catch {
        // the sandbox went away or a file is unreadable: next check
      }
    }
  }

  /** @internal Stop watching (agent shutdown); the process keeps running. */
  detach(): void {
    clearInterval(this.#monitor);
    clearTimeout(this.#graceTimer);
    this.#child?.removeAllListeners('exit');
    this.#child?.unref();
    this.#exited = true; // this handle reports nothing more
  }

  /** @internal Written state, so a close can wait for it. */
  flushed(): Promise<void> {
    return this.#writes;
  }

  #isTerminal(): boolean {
    return TERMINAL_TASK_STATES.has(this.state);
  }

  #poll(): void {
    const { pid, procStartTime } = this.#record;
    if (pid === undefined || procStartTime === undefined) return;
    if (isSameLiveProcess(pid, procStartTime)) return;
    // A zombie not yet reaped by its new parent still shows its wait status.
    const stat = readProcStat(pid);
    if (stat && stat.startTime === procStartTime && stat.state === 'Z') {
      const decoded = decodeWaitStatus(stat.exitCode);
      if (decoded.signal !== undefined) void this.#onExit({ signal: SIGNAL_NAMES.get(decoded.signal) ?? `signal ${decoded.signal}` });
      else void this.#onExit({ exitCode: decoded.exitCode! });
      return;
    }
    void this.#onExit({ unknown: true });
  }

  #signal(signal: NodeJS.Signals): void {
    const { pid, procStartTime } = this.#record;
    if (pid === undefined || this.#exited) return;
    // A re-attached task is signalled only while its leader is still the recorded process.
    if (!this.#child && (procStartTime === undefined || !isSameLiveProcess(pid, procStartTime))) return;
    signalGroup(pid, signal);
    if (signal === 'SIGKILL') void this.#killCgroup();
  }

  async #killCgroup(): Promise<void> {
    if (!this.#record.cgroup) return;
    for (const pid of await this.#ctx.cgroups.pids(this.#record.cgroup)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  async #onExit(exit: ExitInfo): Promise<void> {
    if (this.#exited || this.#isTerminal()) return;
    this.#exited = true;
    clearInterval(this.#monitor);
    clearTimeout(this.#graceTimer);
    const pid = this.#record.pid!;
    // The main process is gone: nothing else of the task may outlive it.
    if (groupStillOurs(pid, this.#record.procStartTime)) signalGroup(pid, 'SIGKILL');
    await this.#killCgroup();
    const oom = this.#record.cgroup ? await this.#ctx.cgroups.memoryLimitHit(this.#record.cgroup) : false;
    const how =
      exit.exitCode !== undefined
        ? `Command exited with status ${exit.exitCode}`
        : exit.signal !== undefined
          ? `Command terminated with signal ${exit.signal}`
          : 'Command ended while the agent was restarting; its exit status is unknown';
    const facts = { ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}), ...(exit.signal !== undefined ? { signal: exit.signal } : {}), pid };
    if (this.#record.killRequested) return this.#end('KILLED', { ...facts, message: how });
    if (exit.exitCode === 0) return this.#end('FINISHED', { ...facts, message: how });
    return this.#end('FAILED', {
      ...facts,
      reason: oom ? 'REASON_CONTAINER_LIMITATION_MEMORY' : 'REASON_COMMAND_EXECUTOR_FAILED',
      message: oom ? `Memory limit exceeded; ${how}` : how,
    });
  }

  async #end(state: TaskState, extra: Omit<TaskStatus, 'taskId' | 'state' | 'timestamp'>): Promise<void> {
    this.#exited = true;
    clearInterval(this.#monitor);
    clearTimeout(this.#graceTimer);
    if (this.#record.cgroup) await this.#ctx.cgroups.destroy(this.#record.cgroup);
    if (this.#record.pid !== undefined) this.rotateLogs(this.#ctx.logRotation);
    this.#transition(state, extra);
    this.#ctx.onEnd(this);
    await this.#writes;
  }

  #transition(state: TaskState, extra: Omit<TaskStatus, 'taskId' | 'state' | 'timestamp'> = {}): void {
    const from = this.state;
    if (!ALLOWED[from]?.includes(state)) throw new Error(`executor bug: task ${this.taskId} cannot go from ${from} to ${state}`);
    const status: TaskStatus = { taskId: this.taskId, state, timestamp: this.#ctx.now().toISOString(), ...extra };
    this.history.push(status);
    this.#record.history = this.history;
    this.#persist();
    this.emit('status', status);
    this.#ctx.onStatus(status);
    // `terminated` resolves once the terminal state is on disk too.
    if (TERMINAL_TASK_STATES.has(state)) void this.#writes.then(() => this.#resolveTerminated(status));
  }

  /**
   * Writes `task.json` now, synchronously (write a temp file, rename it over).
   * An agent SIGKILLed at any point after a spawn must find the pid on disk:
   * with the write queued on the event loop, an agent killed in the
   * milliseconds after the spawn (under load: longer) left the STARTING record
   * without a pid, so recovery reported the task LOST without being able to
   * kill it, and the process ran on, unknown, next to its replacement.
   */
  #persist(): void {
    try {
      writeRecordSync(this.sandbox, JSON.stringify(this.#record, null, 2));
    } catch {
      // the sandbox is gone (removed under us): nothing to keep
    }
  }
}

/**
 * Whether process group `pgid` (the task's, led by its main process) still
 * has members that are the task's: the leader's pid is free (a group id is
 * not reused while the group has members) or still names the recorded
 * process; not when the pid now names another process, whose group may be
 * someone else's.
 */
function groupStillOurs(pgid: number, leaderStartTime: string | undefined): boolean {
  const stat = readProcStat(pgid);
  if (stat !== undefined && stat.startTime !== leaderStartTime) return false;
  return processGroupExists(pgid);
}

function writeRecordSync(sandbox: string, text: string): void {
  const tmp = join(sandbox, `.${RECORD_FILE}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, join(sandbox, RECORD_FILE));
}

async function writeRecord(sandbox: string, text: string): Promise<void> {
  const tmp = join(sandbox, `.${RECORD_FILE}.tmp`);
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, join(sandbox, RECORD_FILE));
}

export interface RecoveryReport {
  /** Tasks whose process is still the recorded one: re-attached, RUNNING (or still KILLING). */
  readonly recovered: TaskHandle[];
  /** Tasks that were not terminal but whose process is gone: now LOST. */
  readonly lost: TaskStatus[];
  /** Tasks that had ended before the restart: their last status (for reconciliation). */
  readonly terminated: TaskStatus[];
}

/** Runs and tracks the tasks of one agent. Emits `status` for every task's every state. */
export class Executor extends EventEmitter<{ status: [TaskStatus] }> {
  readonly workDir: string;
  readonly host: string;
  readonly defaultKillGracePeriodSeconds: number;
  readonly logRotation: LogRotation;
  readonly #options: ExecutorOptions;
  readonly #ctx: TaskContext;
  readonly #tasks = new Map<string, TaskHandle>();
  readonly #launching = new Set<Promise<void>>();
  #logTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ExecutorOptions) {
    super();
    this.#options = options;
    this.workDir = resolve(options.workDir);
    this.host = options.host ?? hostname();
    this.defaultKillGracePeriodSeconds = options.defaultKillGracePeriodSeconds ?? DEFAULT_KILL_GRACE_PERIOD_SECONDS;
    this.logRotation = { ...DEFAULT_LOG_ROTATION, ...options.logRotation };
    this.#ctx = {
      now: options.now ?? (() => new Date()),
      enterNetns: options.enterNetns,
      cgroups: options.cgroups ?? noCgroups('cgroups not configured for this executor; running without limits'),
      pollIntervalMs: options.pollIntervalMs ?? 250,
      logRotation: this.logRotation,
      onStatus: (status) => this.emit('status', status),
      onEnd: () => this.#updateLogTimer(),
    };
  }

  /** The sandbox directory of a task id. */
  sandboxPath(taskId: string): string {
    return join(this.workDir, sandboxName(taskId));
  }

  /**
   * Launches a task. Returns at once with the handle in STAGING; the launch
   * continues asynchronously and every state is emitted (listeners attached
   * right after this call see STAGING too). Launch failures end the task in
   * ERROR rather than throwing; a malformed spec or a task id already used
   * on this agent throws.
   */
  launch(spec: TaskLaunchSpec): TaskHandle {
    if (this.#closed) throw new StrataError('EXECUTOR_CLOSED', 'the executor is closed');
    checkLaunchSpec(spec);
    const sandbox = this.sandboxPath(spec.taskId);
    if (this.#tasks.has(spec.taskId) || existsSync(sandbox)) {
      throw new StrataError('EXECUTOR_TASK_EXISTS', `task ${spec.taskId} was already launched on this agent`);
    }
    const record: TaskRecord = {
      format: 1,
      taskId: spec.taskId,
      appId: spec.appId,
      version: spec.version,
      killGracePeriodSeconds: spec.taskKillGracePeriodSeconds ?? this.defaultKillGracePeriodSeconds,
      bootId: bootId(),
      history: [{ taskId: spec.taskId, state: 'STAGING', timestamp: this.#ctx.now().toISOString() }],
    };
    const handle = new TaskHandle(record, sandbox, this.#ctx);
    this.#tasks.set(spec.taskId, handle);
    handle.emitInitial();
    const launching = handle.launch(spec, { host: this.host, workDir: this.workDir, ...(this.#options.baseEnv ? { baseEnv: this.#options.baseEnv } : {}) });
    this.#launching.add(launching);
    void launching.finally(() => this.#launching.delete(launching));
    this.#updateLogTimer();
    return handle;
  }

  /**
   * After an agent restart: reads every sandbox's `task.json`; re-attaches to
   * tasks whose process is still the recorded one (same pid, start time and
   * boot) and reports the rest LOST, killing what is left of their process
   * group and cgroup.
   */
  async recover(): Promise<RecoveryReport> {
    if (this.#closed) throw new StrataError('EXECUTOR_CLOSED', 'the executor is closed');
    const recovered: TaskHandle[] = [];
    const lost: TaskStatus[] = [];
    const terminated: TaskStatus[] = [];
    let entries;
    try {
      entries = await readdir(this.workDir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { recovered, lost, terminated };
      throw err;
    }
    const boot = bootId();
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const sandbox = join(this.workDir, entry.name);
      let record: TaskRecord;
      try {
        record = JSON.parse(await readFile(join(sandbox, RECORD_FILE), 'utf8')) as TaskRecord;
      } catch {
        continue; // not a sandbox, or one whose record was never written
      }
      if (record.format !== 1 || typeof record.taskId !== 'string' || !Array.isArray(record.history) || record.history.length === 0) continue;
      if (this.#tasks.has(record.taskId)) continue;
      const last = record.history.at(-1)!;
      if (TERMINAL_TASK_STATES.has(last.state)) {
        terminated.push(last);
        continue;
      }
      const { pid, procStartTime } = record;
      const alive = pid !== undefined && procStartTime !== undefined && record.bootId === boot && isSameLiveProcess(pid, procStartTime);
      if (alive) {
        const handle = new TaskHandle(record, sandbox, this.#ctx);
        this.#tasks.set(record.taskId, handle);
        handle.reattach();
        recovered.push(handle);
        continue;
      }
      lost.push(await this.#markLost(record, sandbox, boot));
    }
    this.#updateLogTimer();
    return { recovered, lost, terminated };
  }

  async #markLost(record: TaskRecord, sandbox: string, boot: string): Promise<TaskStatus> {
    const { pid, procStartTime } = record;
    if (record.bootId === boot && pid !== undefined) {
      // Kill what is left of the group, unless the leader's pid now names
      // another process (then the group id may not be ours).
      if (groupStillOurs(pid, procStartTime)) signalGroup(pid, 'SIGKILL');
    }
    if (record.cgroup) {
      for (const p of await this.#ctx.cgroups.pids(record.cgroup)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await this.#ctx.cgroups.destroy(record.cgroup);
    }
    const status: TaskStatus = {
      taskId: record.taskId,
      state: 'LOST',
      timestamp: this.#ctx.now().toISOString(),
      reason: record.bootId !== boot ? 'REASON_AGENT_RESTARTED' : 'REASON_EXECUTOR_TERMINATED',
      message:
        record.bootId !== boot
          ? 'The machine rebooted; the task is gone'
          : pid === undefined
            ? 'The agent restarted before the task was started'
            : 'The task ended while the agent was restarting (or its pid now names another process)',
      ...(pid !== undefined ? { pid } : {}),
    };
    record.history.push(status);
    await writeRecord(sandbox, JSON.stringify(record, null, 2)).catch(() => {});
    this.emit('status', status);
    return status;
  }

  get(taskId: string): TaskHandle | undefined {
    return this.#tasks.get(taskId);
  }

  /** Every task this executor launched or re-attached, terminal ones included. */
  tasks(): TaskHandle[] {
    return [...this.#tasks.values()];
  }

  /** Kills a task (see {@link TaskHandle.kill}); `EXECUTOR_TASK_NOT_FOUND` for an unknown id. */
  kill(taskId: string, gracePeriodSeconds?: number): Promise<TaskStatus> {
    const handle = this.#tasks.get(taskId);
    if (!handle) throw new StrataError('EXECUTOR_TASK_NOT_FOUND', `no task ${taskId} on this agent`);
    return gracePeriodSeconds === undefined ? handle.kill() : handle.kill(gracePeriodSeconds);
  }

  /** Kills every live task and waits for all to end. */
  async killAll(gracePeriodSeconds?: number): Promise<TaskStatus[]> {
    return Promise.all(this.tasks().map((h) => (gracePeriodSeconds === undefined ? h.kill() : h.kill(gracePeriodSeconds))));
  }

  /** A byte range of a task's log, for any task with a sandbox here (ended ones too). */
  async readLog(taskId: string, options: Parameters<typeof readLogRange>[1]): Promise<LogRange> {
    return readLogRange(this.#existingSandbox(taskId), options);
  }

  /** The last lines of a task's log stream, across rotated files. */
  async tailLog(taskId: string, options: Parameters<typeof readLogTail>[1]): ReturnType<typeof readLogTail> {
    return readLogTail(this.#existingSandbox(taskId), options);
  }

  /** Rotates every live task's logs that are over the limit (also run on a timer). */
  checkLogs(): void {
    for (const handle of this.#tasks.values()) if (!TERMINAL_TASK_STATES.has(handle.state)) handle.rotateLogs(this.logRotation);
  }

  /**
   * Stops watching, once launches under way have finished: timers end, tasks keep running (a new executor's
   * `recover()` re-attaches them). Use {@link killAll} first to stop them.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#launching); // launches under way finish first (they are short)
    clearInterval(this.#logTimer);
    this.#logTimer = undefined;
    for (const handle of this.#tasks.values()) handle.detach();
    await Promise.all([...this.#tasks.values()].map((h) => h.flushed()));
  }

  #existingSandbox(taskId: string): string {
    const sandbox = this.#tasks.get(taskId)?.sandbox ?? this.sandboxPath(taskId);
    if (!existsSync(sandbox)) throw new StrataError('EXECUTOR_TASK_NOT_FOUND', `no sandbox for task ${taskId} on this agent`);
    return sandbox;
  }

  #updateLogTimer(): void {
    const live = [...this.#tasks.values()].some((h) => !TERMINAL_TASK_STATES.has(h.state));
    if (live && !this.#logTimer && !this.#closed) {
      this.#logTimer = setInterval(() => this.checkLogs(), this.#options.logCheckIntervalMs ?? 1000);
      this.#logTimer.unref();
    } else if (!live && this.#logTimer) {
      clearInterval(this.#logTimer);
      this.#logTimer = undefined;
    }
  }
}

/** Launches one task with an executor of its own (see {@link Executor.launch}); an agent keeps one {@link Executor} instead. */
export function launch(spec: TaskLaunchSpec, options: ExecutorOptions): TaskHandle {
  return new Executor(options).launch(spec);
}

/** A new executor over `workDir` and what it recovered there (see {@link Executor.recover}). */
export async function recover(workDir: string, options: Omit<ExecutorOptions, 'workDir'> = {}): Promise<RecoveryReport & { executor: Executor }> {
  const executor = new Executor({ ...options, workDir });
  return { executor, ...(await executor.recover()) };
}

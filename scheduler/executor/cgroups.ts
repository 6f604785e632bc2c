/**
 * Resource limits for tasks through cgroup v1, behind a small port so the
 * executor runs (without limits, saying so in the task's status) where the
 * host has no writable cgroup v1 hierarchies, and so tests can use the fake
 * in `fake-cgroups.ts`.
 *
 * Limits follow the Mesos agent's cgroups isolators:
 * - memory: `memory.limit_in_bytes` = mem MB × 2^20, at least 32 MB (Mesos's
 *   minimum); swap is not limited separately (Mesos `--cgroups_limit_swap` off);
 * - cpu: `cpu.shares` = cpus × 1024 (at least 2) and, unless disabled, a CFS
 *   quota of cpus × `cpu.cfs_period_us` (100 ms) per period, at least 1 ms
 *   (Mesos `--cgroups_enable_cfs`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CgroupLimits {
  readonly cpus: number;
  readonly memMb: number;
}

/** What a cgroup step achieved: `applied` false means the task runs without (some) limits, `detail` says why. */
export interface CgroupResult {
  readonly applied: boolean;
  readonly detail: string;
}

export interface CgroupManager {
  /** Creates the task's groups and sets their limits. Never throws: a failure is in the result. */
  prepare(name: string, limits: CgroupLimits): Promise<CgroupResult>;
  /** Moves `pid` into the task's groups; synchronous, called right after the spawn. Never throws. */
  attach(name: string, pid: number): CgroupResult;
  /** Pids in the task's groups (to kill processes that left the task's process group). */
  pids(name: string): Promise<number[]>;
  /** True when the kernel OOM-killed a process of the task (its memory limit was hit). */
  memoryLimitHit(name: string): Promise<boolean>;
  /** Removes the task's groups once they are empty; false when something is left. Never throws. */
  destroy(name: string): Promise<boolean>;
}

export const MIN_MEMORY_BYTES = 32 * 1024 * 1024;
export const CPU_SHARES_PER_CPU = 1024;
export const MIN_CPU_SHARES = 2;
export const CFS_PERIOD_US = 100_000;
export const MIN_CFS_QUOTA_US = 1_000;

/** The values written for `limits` (pure; the real manager and tests share it). */
export function cgroupValues(limits: CgroupLimits, cpuQuota: boolean): { memoryBytes: number; cpuShares: number; cfsQuotaUs?: number } {
  const memoryBytes = Math.max(MIN_MEMORY_BYTES, Math.round(limits.memMb * 1024 * 1024));
  const cpuShares = Math.max(MIN_CPU_SHARES, Math.round(limits.cpus * CPU_SHARES_PER_CPU));
  if (!cpuQuota || !(limits.cpus > 0)) return { memoryBytes, cpuShares };
  return { memoryBytes, cpuShares, cfsQuotaUs: Math.max(MIN_CFS_QUOTA_US, Math.round(limits.cpus * CFS_PERIOD_US)) };
}

/** A manager that applies nothing, for hosts (or configurations) without cgroups. */
export function noCgroups(detail: string): CgroupManager {
  const result = { applied: false, detail };
  return {
    prepare: () => Promise.resolve(result),
    attach: () => ({ applied: false, detail: '' }),
    pids: () => Promise.resolve([]),
    memoryLimitHit: () => Promise.resolve(false),
    destroy: () => Promise.resolve(true),
  };
}

export interface CgroupV1Options {
  /** Where the v1 hierarchies are mounted (`<mountRoot>/memory`, `<mountRoot>/cpu`). Default `/sys/fs/cgroup`. */
  readonly mountRoot?: string;
  /** Name of the group holding every task's group. Default `strata`. */
  readonly groupName?: string;
  /**
   * Nest `strata/` under this process's own group in each hierarchy (read
   * from `/proc/self/cgroup`), so an agent confined to a group keeps its tasks
   * inside it. Default true; false puts it at the hierarchy's root.
   */
  readonly nestUnderSelf?: boolean;
  /** Set a CFS quota as well as shares. Default true. */
  readonly cpuQuota?: boolean;
  /** For tests: the file read instead of `/proc/self/cgroup`. */
  readonly selfCgroupFile?: string;
}

type Controller = 'memory' | 'cpu';
const CONTROLLERS: readonly Controller[] = ['memory', 'cpu'];

function selfGroup(controller: Controller, file: string): string {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [, list, path] = line.split(':');
      if (list !== undefined && path !== undefined && list.split(',').includes(controller)) return path;
    }
  } catch {
    // no /proc/self/cgroup: use the root
  }
  return '/';
}

function errText(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** cgroup v1: one group per task under `<hierarchy>/<self>/strata/<name>` in the memory and cpu hierarchies. */
export class CgroupV1Manager implements CgroupManager {
  /** The parent directory per usable controller. */
  readonly parents: Partial<Record<Controller, string>>;
  /** Why a controller is not used, if one is not. */
  readonly unavailable: string;
  readonly #cpuQuota: boolean;

  private constructor(parents: Partial<Record<Controller, string>>, unavailable: string, cpuQuota: boolean) {
    this.parents = parents;
    this.unavailable = unavailable;
    this.#cpuQuota = cpuQuota;
  }

  /** Finds the hierarchies and creates `strata/` in each; a controller that cannot be used is left out (see `unavailable`). */
  static async detect(options: CgroupV1Options = {}): Promise<CgroupV1Manager> {
    const mountRoot = options.mountRoot ?? '/sys/fs/cgroup';
    const parents: Partial<Record<Controller, string>> = {};
    const missing: string[] = [];
    for (const controller of CONTROLLERS) {
      const hierarchy = join(mountRoot, controller);
      if (!existsSync(join(hierarchy, 'cgroup.procs'))) {
        missing.push(`${controller}: no cgroup v1 hierarchy at ${hierarchy}`);
        continue;
      }
      const own = options.nestUnderSelf === false ? '/' : selfGroup(controller, options.selfCgroupFile ?? '/proc/self/cgroup');
      const parent = join(hierarchy, own, options.groupName ?? 'strata');
      try {
        await mkdir(parent, { recursive: true });
        parents[controller] = parent;
      } catch (err) {
        missing.push(`${controller}: cannot create ${parent} (${errText(err)})`);
      }
    }
    return new CgroupV1Manager(parents, missing.join('; '), options.cpuQuota ?? true);
  }

  #dirs(name: string): [Controller, string][] {
    return CONTROLLERS.flatMap((c) => (this.parents[c] ? [[c, join(this.parents[c], name)] as [Controller, string]] : []));
  }

  async prepare(name: string, limits: CgroupLimits): Promise<CgroupResult> {
    const values = cgroupValues(limits, this.#cpuQuota);
    const done: string[] = [];
    const failed: string[] = this.unavailable ? [this.unavailable] : [];
    for (const [controller, dir] of this.#dirs(name)) {
      try {
        await mkdir(dir, { recursive: true });
        if (controller === 'memory') {
          await writeFile(join(dir, 'memory.limit_in_bytes'), String(values.memoryBytes));
          done.push(`memory ${values.memoryBytes} bytes`);
        } else {
          await writeFile(join(dir, 'cpu.shares'), String(values.cpuShares));
          if (values.cfsQuotaUs !== undefined) {
            await writeFile(join(dir, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
            await writeFile(join(dir, 'cpu.cfs_quota_us'), String(values.cfsQuotaUs));
          }
          done.push(`cpu.shares ${values.cpuShares}${values.cfsQuotaUs !== undefined ? `, cfs quota ${values.cfsQuotaUs}/${CFS_PERIOD_US} us` : ''}`);
        }
      } catch (err) {
        failed.push(`${controller}: ${errText(err)} in ${dir}`);
      }
    }
    const detail = [done.length ? `cgroup limits: ${done.join(', ')}` : '', failed.length ? `cgroups unavailable (${failed.join('; ')}); running without those limits` : '']
      .filter(Boolean)
      .join('; ');
    return { applied: failed.length === 0, detail };
  }

  attach(name: string, pid: number): CgroupResult {
    const failed: string[] = [];
    for (const [controller, dir] of this.#dirs(name)) {
      try {
        writeFileSync(join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        failed.push(`${controller}: ${errText(err)}`);
      }
    }
    return failed.length ? { applied: false, detail: `could not move the task into its cgroups (${failed.join('; ')})` } : { applied: true, detail: '' };
  }

  async pids(name: string): Promise<number[]> {
    const found = new Set<number>();
    for (const [, dir] of this.#dirs(name)) {
      try {
        for (const line of (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n')) if (/^\d+$/.test(line)) found.add(Number(line));
      } catch {
        // gone already
      }
    }
    return [...found];
  }

  async memoryLimitHit(name: string): Promise<boolean> {
    const dir = this.parents.memory;
    if (!dir) return false;
    try {
      const m = /^oom_kill (\d+)$/m.exec(await readFile(join(dir, name, 'memory.oom_control'), 'utf8'));
      return m !== null && Number(m[1]) > 0;
    } catch {
      return false;
    }
  }

  async destroy(name: string): Promise<boolean> {
    let ok = true;
    for (const [, dir] of this.#dirs(name)) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          // EBUSY: a killed process is not yet out of the group.
          if (code !== 'EBUSY' || attempt >= 20) {
            ok = false;
            break;
          }
          await sleep(25);
        }
      }
    }
    return ok;
  }
}

/** The host's cgroup v1 manager, or {@link noCgroups} with the reason when neither memory nor cpu can be used. */
export async function detectCgroups(options: CgroupV1Options = {}): Promise<CgroupManager> {
  const manager = await CgroupV1Manager.detect(options);
  return Object.keys(manager.parents).length > 0 ? manager : noCgroups(`cgroups unavailable (${manager.unavailable}); running without limits`);
}

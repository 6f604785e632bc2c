/**
 * An in-memory {@link CgroupManager} for tests: it records what the executor
 * asked for, and can be told to be unavailable.
 */
import { cgroupValues, type CgroupLimits, type CgroupManager, type CgroupResult } from './cgroups.ts';
import { isSameLiveProcess, readProcStat } from './proc.ts';

export interface FakeCgroup {
  readonly limits: CgroupLimits;
  readonly values: ReturnType<typeof cgroupValues>;
  /** Every pid attached (with its start time, so a reused pid is never reported). */
  readonly pids: { pid: number; startTime: string }[];
  destroyed: boolean;
}

export class FakeCgroupManager implements CgroupManager {
  readonly groups = new Map<string, FakeCgroup>();
  /** Set to make every call report the host as having no cgroups. */
  unavailable: string | undefined;
  /** Names the test marks as OOM-killed. */
  readonly oomKilled = new Set<string>();

  constructor(options: { unavailable?: string } = {}) {
    this.unavailable = options.unavailable;
  }

  prepare(name: string, limits: CgroupLimits): Promise<CgroupResult> {
    if (this.unavailable) return Promise.resolve({ applied: false, detail: `cgroups unavailable (${this.unavailable}); running without limits` });
    const values = cgroupValues(limits, true);
    this.groups.set(name, { limits, values, pids: [], destroyed: false });
    return Promise.resolve({ applied: true, detail: `cgroup limits: memory ${values.memoryBytes} bytes, cpu.shares ${values.cpuShares}` });
  }

  attach(name: string, pid: number): CgroupResult {
    const group = this.groups.get(name);
    if (!group) return { applied: false, detail: this.unavailable ?? `no cgroup ${name}` };
    group.pids.push({ pid, startTime: readProcStat(pid)?.startTime ?? '' });
    return { applied: true, detail: '' };
  }

  pids(name: string): Promise<number[]> {
    // Only attached processes still alive, as a real group lists its members.
    return Promise.resolve((this.groups.get(name)?.pids ?? []).filter((p) => isSameLiveProcess(p.pid, p.startTime)).map((p) => p.pid));
  }

  memoryLimitHit(name: string): Promise<boolean> {
    return Promise.resolve(this.oomKilled.has(name));
  }

  destroy(name: string): Promise<boolean> {
    const group = this.groups.get(name);
    if (group) group.destroyed = true;
    return Promise.resolve(true);
  }
}

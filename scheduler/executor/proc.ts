/**
 * What the executor reads from `/proc` (Linux only): a process's state,
 * process group and start time, so a pid persisted before an agent restart
 * is only trusted if it still names the same process (pids are reused).
 */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  readonly pid: number;
  /** `R`, `S`, `D`, `Z` (zombie: exited, not yet reaped), `T`, … */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** Start time in clock ticks since boot (field 22); with the boot id, identifies the process. */
  readonly startTime: string;
  /** A zombie's wait status (field 52, Linux >= 3.5); 0 while it runs. */
  readonly exitCode: number;
}

/** Parses `/proc/<pid>/stat`; the command name (field 2) may hold spaces and parentheses. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  // Fields from 3 on, so rest[0] is field 3.
  const rest = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number): string | undefined => rest[n - 3];
  const startTime = field(22);
  if (!Number.isInteger(pid) || startTime === undefined) return undefined;
  return {
    pid,
    state: field(3) ?? '?',
    ppid: Number(field(4)),
    pgrp: Number(field(5)),
    session: Number(field(6)),
    startTime,
    exitCode: Number(field(52) ?? 0),
  };
}

/** The process's stat, or undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** This boot's id: start times only compare within one boot. */
export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** True while `pid` runs (not a zombie) and started at `startTime`: the same process as recorded. */
export function isSameLiveProcess(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** True while any process is in group `pgid` (zombies count, as the kernel counts them). */
export function processGroupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `signal` to every process of group `pgid`; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!(pgid > 1)) return false; // never -1 (every process) or 0 (our own group)
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Decodes a `waitpid` status word into an exit code or a signal number. */
export function decodeWaitStatus(status: number): { exitCode?: number; signal?: number } {
  const sig = status & 0x7f;
  return sig === 0 ? { exitCode: (status >> 8) & 0xff } : { signal: sig };
}

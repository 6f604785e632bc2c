/**
 * Go's `time.ParseDuration` and `time.Duration.String()`, which Consul uses
 * for every duration it reads (`wait`, `TTL`, `LockDelay`) and prints (error
 * messages such as `must be between [10s=24h0m0s]`).
 */

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3,
  'μs': 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds, or undefined when Go would refuse the text. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/u.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const part of (match[2] ?? '').matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gu)) {
    total += Number(part[1]) * (UNIT_NS[part[2] ?? ''] ?? Number.NaN);
  }
  if (!Number.isFinite(total)) return undefined;
  return match[1] === '-' ? -Math.round(total) : Math.round(total);
}

/** `time.Duration.String()` for whole seconds and above (what Consul prints). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e9) return `${ns / 1e6}ms`;
  let seconds = ns / 1e9;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const s = `${Number(seconds.toFixed(9))}s`;
  if (hours > 0) return `${hours}h${minutes}m${s}`;
  if (minutes > 0) return `${minutes}m${s}`;
  return s;
}

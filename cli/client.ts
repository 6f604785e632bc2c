/**
 * The CLI's API client: the address and token kept by `strata auth login`,
 * JSON requests, and API errors turned into one clear line.
 */
import { readCliState, type CliState } from './auth.ts';
import { UsageError } from './args.ts';
import { trustKeptCa } from './trust.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export async function loggedIn(): Promise<CliState> {
  const state = await readCliState();
  if (!state) throw new UsageError('not logged in: run `strata auth login` first');
  await trustKeptCa(state);
  return state;
}

export async function apiRequest<T>(state: CliState, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${state.url}${path}`, {
      method,
      headers: { authorization: `token=${state.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    throw new ApiError(0, undefined, `cannot reach ${state.url}: ${cause}`);
  }
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!response.ok) {
    const e = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
    const hint = response.status === 401 ? ' (log in again: `strata auth login`)' : '';
    const details = Array.isArray(e.details) ? ` ${JSON.stringify(e.details)}` : '';
    throw new ApiError(response.status, e.code, `${method} ${path}: ${response.status} ${e.code ?? ''} ${e.message ?? ''}${details}${hint}`.replace(/\s+/g, ' ').trim());
  }
  return parsed as T;
}

/** Columns padded to their widest cell. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

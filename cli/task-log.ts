/**
 * `strata task log TASK [--stderr] [--lines N] [--follow]`, as
 * `dcos task log`: the last N lines (default 10) of a task's stdout (or
 * stderr), read through the master from the task's agent
 * (`GET /v1/tasks/{id}/logs`); `--follow` keeps printing what the task
 * writes until it ends (or Ctrl-C). TASK may be part of a task id when
 * exactly one task of the apps you may read matches it.
 */
import { UsageError, type ParsedArgs } from './args.ts';
import { ApiError, apiRequest, loggedIn } from './client.ts';

/** The one task id containing `text` (itself when it is an exact id). */
export async function resolveTask(state: Awaited<ReturnType<typeof loggedIn>>, text: string): Promise<string> {
  const { tasks } = await apiRequest<{ tasks: { id: string }[] }>(state, 'GET', '/v2/tasks');
  if (tasks.some((t) => t.id === text)) return text;
  const matches = tasks.filter((t) => t.id.includes(text)).map((t) => t.id);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new ApiError(404, 'RECORD_NOT_FOUND', `no task matches "${text}" among the tasks you may read (\`strata task list\`)`);
  throw new UsageError(`"${text}" matches ${matches.length} tasks; give more of the id:\n  ${matches.slice(0, 20).join('\n  ')}`);
}

export async function taskLog(args: ParsedArgs): Promise<number> {
  const text = args.words[2]!;
  const rawLines = args.values['lines'];
  const lines = rawLines === undefined ? 10 : Number(rawLines);
  if (!Number.isInteger(lines) || lines < 0) throw new UsageError(`--lines must be a whole number >= 0, not "${rawLines}"`);
  const follow = args.booleans.has('follow');
  const stream = args.booleans.has('stderr') ? 'stderr' : 'stdout';
  const state = await loggedIn();
  const taskId = await resolveTask(state, text);
  const path = `/v1/tasks/${encodeURIComponent(taskId)}/logs?stream=${stream}&lines=${lines}&follow=${follow}`;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let response: Response;
    try {
      response = await fetch(`${state.url}${path}`, { headers: { authorization: `token=${state.token}` }, signal: follow ? stop.signal : AbortSignal.any([stop.signal, AbortSignal.timeout(60_000)]) });
    } catch (err) {
      if (stop.signal.aborted) return 0;
      const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
      throw new ApiError(0, undefined, `cannot reach ${state.url}: ${cause}`);
    }
    if (!response.ok || !response.body) {
      const e = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
      const hint = response.status === 401 ? ' (log in again: `strata auth login`)' : '';
      throw new ApiError(response.status, e.code, `GET ${path}: ${response.status} ${e.code ?? ''} ${e.message ?? ''}${hint}`.replace(/\s+/g, ' ').trim());
    }
    try {
      for await (const chunk of response.body) {
        if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
    } catch (err) {
      if (!stop.signal.aborted) throw new ApiError(0, undefined, `the log stream of ${taskId} broke off: ${(err as Error).message}`);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `strata ui`: where the web UI is, for the cluster you logged in to. */
import type { ParsedArgs } from './args.ts';
import { loggedIn } from './client.ts';

/**
 * Prints the web UI's URL (the address `strata auth login` used: a master's
 * API or the HTTPS gateway; both serve the UI at `/`) after checking that
 * it answers. Exit 1 when it does not.
 */
export async function showUi(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  const url = `${state.url.replace(/\/+$/, '')}/`;
  let problem: string | undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    if (!res.ok || !(res.headers.get('content-type') ?? '').startsWith('text/html')) problem = `${url} answered ${res.status} ${res.headers.get('content-type') ?? ''}, not the UI`;
  } catch (err) {
    const cause = (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message;
    problem = `cannot reach ${url}: ${cause}`;
  }
  if (args.booleans.has('json')) {
    console.log(JSON.stringify({ url, ok: problem === undefined, ...(problem ? { problem } : {}) }));
    return problem ? 1 : 0;
  }
  if (problem) {
    console.error(`strata ui: ${problem}`);
    return 1;
  }
  console.log(url);
  if (url.startsWith('http://')) console.log('(plain HTTP to a master; through the HTTPS gateway it is https://HOST:8443/)');
  return 0;
}

/**
 * Pieces shared by the multi-host overlay tests (`test/overlay-*.test.ts`):
 * a `strata agent` started inside a test's host namespace, a polling wait
 * that returns the value it waited for, and a tiny authenticated GET run
 * inside a namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Netns } from './netns.ts';
import { STRATA_BIN } from './process.ts';

/** Node script: GET argv[-2] with the token argv[-1], print the body (run with `ns.exec(process.execPath, ['-e', FETCH_SCRIPT, url, token])`). */
export const FETCH_SCRIPT = `
const [url, token] = process.argv.slice(-2);
fetch(url, { headers: { authorization: 'token=' + token } }).then(async (r) => console.log(await r.text()));
`;

/** Poll `read` every 300 ms until it gives a value (errors count as "not yet"); the error names `what` and the last failure. */
export async function untilValue<T>(read: () => Promise<T | undefined>, what: string, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const value = await read().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** `strata agent` inside `ns` with its own UTS namespace and host name, the overlay on (reconcile every second). */
export function startAgentIn(ns: Netns, hostname: string, args: readonly string[], nsDir: string): { child: ChildProcess; output(): string } {
  const child = spawn('ip', ['netns', 'exec', ns.name, 'unshare', '--uts', 'sh', '-c', `hostname ${hostname} && exec "$0" "$@"`, process.execPath, STRATA_BIN, 'agent', ...args], {
    env: { ...process.env, STRATA_DATAPLANE_L4LB: 'off', STRATA_OVERLAY_ENABLED: 'on', STRATA_OVERLAY_RECONCILE_SECONDS: '1', STRATA_OVERLAY_NETNS_DIR: nsDir, STRATA_DNS_UDP_PORT: '0', STRATA_DNS_TCP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  return { child, output: () => text };
}

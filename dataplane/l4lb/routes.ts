/**
 * VIP addresses must be routable from the host itself, or a process on the
 * host gets "network unreachable" before the nat output hook can rewrite
 * the destination (a host without a default route, a namespace). DC/OS put
 * each VIP on its `minuteman` dummy interface; Strata routes the whole VIP
 * range as `local` once at start (one `ip route replace`, not one per VIP
 * or per change; the overlay's netlink codec will take this over). Traffic
 * to a VIP with backends is rewritten before the local delivery; traffic to
 * one without is refused by the host at once.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function ensureLocalRoute(cidr: string, options: { readonly netns?: string } = {}): Promise<void> {
  const args = ['route', 'replace', 'local', cidr, 'dev', 'lo', 'table', 'local'];
  try {
    await run('ip', options.netns === undefined ? args : ['-n', options.netns, ...args]);
  } catch (err) {
    throw new Error(`cannot route the VIP range ${cidr} locally: ${(err as { stderr?: string }).stderr?.trim() ?? String(err)}`);
  }
}

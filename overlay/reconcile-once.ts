/**
 * One reconcile of this host's overlay from a state file, in the network
 * namespace this process runs in: `node overlay/reconcile-once.ts STATE.json`
 * where the file holds `{agentId, leases, networks, vxlanPort?}` (what the
 * agent reads from the master). Prints `{ops, failures, problems, ms}` as
 * JSON and exits 1 if the kernel refused anything. The namespace tests and
 * the benchmark run it under `ip netns exec` (a process opens its netlink
 * socket in its own namespace); operators can use it to debug.
 */
import { readFile } from 'node:fs/promises';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { desiredOverlay } from './desired.ts';
import { OverlayManager } from './manager.ts';
import { NetlinkRtnl } from './rtnl/socket.ts';

export interface OverlayStateFile {
  readonly agentId: string;
  readonly leases: readonly OverlayLease[];
  readonly networks: readonly Network[];
  readonly vxlanPort?: number;
}

export async function reconcileOnce(state: OverlayStateFile): Promise<{ ops: number; failures: { op: string; error: string }[]; problems: string[]; ms: number }> {
  const { desired, problems } = desiredOverlay(state);
  const rtnl = new NetlinkRtnl();
  try {
    const started = performance.now();
    const result = await new OverlayManager({ rtnl }).reconcile(desired);
    return { ops: result.ops.length, failures: result.failures.map((f) => ({ op: f.op.op, error: f.error })), problems, ms: performance.now() - started };
  } finally {
    rtnl.close();
  }
}

if (import.meta.main) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: node overlay/reconcile-once.ts STATE.json\n');
    process.exit(2);
  }
  const result = await reconcileOnce(JSON.parse(await readFile(path, 'utf8')) as OverlayStateFile);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = result.failures.length > 0 ? 1 : 0;
}

/**
 * `strata up` with the overlay on, in a network namespace this test
 * creates: the agent asks the master for its lease and programs its VXLAN
 * device and bridge in its namespace; `strata network leases` shows it; a
 * graceful stop takes the devices out. Skipped without root.
 */
import test from 'ava';
import { netnsSet, netnsUnavailable, type Netns } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';

const skip = netnsUnavailable();

async function until<T>(read: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const links = async (ns: Netns): Promise<{ ifname: string; linkinfo?: { info_kind: string; info_data?: { id?: number; port?: number; learning?: boolean } } }[]> =>
  JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show'])) as never;

(skip ? test.skip : test)('strata up with --overlay-enabled on: the agent leases a VTEP and subnet and programs vtep1024 and m-dcos; a stop removes them', async (t) => {
  const set = netnsSet('sxupo');
  t.teardown(() => set.cleanup());
  const ns = await set.create('n');
  const { up, cli } = await startUpLoggedInNetns(t, 'up-overlay', ns.name, { STRATA_OVERLAY_ENABLED: 'on', STRATA_OVERLAY_RECONCILE_SECONDS: '1' });
  t.regex(up.output(), /overlay: on \(VXLAN dstport 64000/);

  const vx = await until(async () => (await links(ns)).find((l) => l.ifname === 'vtep1024'), 'vtep1024');
  t.like(vx.linkinfo, { info_kind: 'vxlan', info_data: { id: 1024, port: 64000, learning: false } });
  t.truthy((await links(ns)).find((l) => l.ifname === 'm-dcos' && l.linkinfo?.info_kind === 'bridge'));
  t.regex(await ns.exec('ip', ['-4', 'addr', 'show', 'dev', 'm-dcos']), /inet 9\.0\.0\.1\/24/);
  t.regex(await ns.exec('ip', ['-4', 'addr', 'show', 'dev', 'vtep1024']), /inet 44\.128\.0\.1\/32/);
  const leases = await cli(['network', 'leases']);
  t.is(leases.code, 0, leases.output);
  t.regex(leases.output, /44\.128\.0\.1\s+70:b3:d5:80:00:01\s+dcos=9\.0\.0\.0\/24/);

  up.kill('SIGTERM');
  await up.exited();
  const after = (await links(ns)).map((l) => l.ifname);
  t.false(after.includes('vtep1024'), after.join(' '));
  t.false(after.includes('m-dcos'), after.join(' '));
});

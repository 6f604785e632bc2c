/**
 * Policy across the VXLAN overlay, in network namespaces this test creates:
 * two agent "hosts" on an underlay bridge, each overlay programmed by the
 * overlay's own reconcile (`overlay/reconcile-once.ts` inside the host
 * namespace) for two networks (`dcos` and `blue`), containers on the
 * hosts' overlay bridges, and each host's policy table loaded by the
 * policy manager. Skipped without root.
 */
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Network, OverlayLease, Policy } from '../control-plane/model/schemas.ts';
import { DEFAULT_NETWORKS } from '../control-plane/model/schemas.ts';
import { planLease } from '../control-plane/networks/ipam.ts';
import { NftProcess } from '../dataplane/l4lb/nft.ts';
import type { PolicyInputs } from '../dataplane/policy/compile.ts';
import { PolicyManager } from '../dataplane/policy/manager.ts';
import type { OverlayStateFile } from '../overlay/reconcile-once.ts';
import { netnsSet, netnsUnavailable, probeTcp, startEchoServer, type Netns, type NetnsSet } from './harness/netns.ts';

const skip = netnsUnavailable();
const ONCE = fileURLToPath(new URL('../overlay/reconcile-once.ts', import.meta.url));
const logger = pino({ level: 'silent' });

async function attach(set: NetnsSet, host: Netns, container: Netns, bridge: string, hostIf: string, ip: string, gateway: string): Promise<void> {
  await set.ip(['-n', host.name, 'link', 'add', hostIf, 'mtu', '1420', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1420', 'netns', container.name]);
  await set.ip(['-n', host.name, 'link', 'set', hostIf, 'master', bridge, 'up']);
  await set.ip(['-n', container.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await set.ip(['-n', container.name, 'link', 'set', 'eth0', 'up']);
  await set.ip(['-n', container.name, 'route', 'add', 'default', 'via', gateway]);
}

(skip ? test.skip : test)('two overlays across two hosts: a path between them when policy allows it, none when it denies; the same overlay across hosts stays open', async (t) => {
  const set = netnsSet('sxovpol');
  const dir = await mkdtemp(join(tmpdir(), 'strata-overlay-policy-'));
  t.teardown(async () => {
    await set.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  const underlay = await set.create('u');
  const h1 = await set.create('h1');
  const h2 = await set.create('h2');
  const web = await set.create('web');
  const db = await set.create('db');
  const blue = await set.create('blue');
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${n}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.78.${n}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
    await host.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  }
  const networks: Network[] = [DEFAULT_NETWORKS[0]!, { name: 'blue', subnet: '10.200.0.0/16', prefix: 24, prefix6: 80, mtu: 1420, vni: 1030, labels: {} }];
  const claims = new Map<string, Set<string>>();
  const leases: OverlayLease[] = [];
  for (const n of [1, 2]) {
    const plan = planLease({ agentId: `agent-${n}`, underlayIp: `192.168.78.${n}`, networks, claims, now: new Date().toISOString() });
    for (const c of plan.newClaims) claims.set(c.pool, (claims.get(c.pool) ?? new Set()).add(c.cidr));
    leases.push(plan.lease);
  }
  for (const [host, n] of [[h1, 1], [h2, 2]] as const) {
    const file = join(dir, `${host.name}.json`);
    await writeFile(file, JSON.stringify({ agentId: `agent-${n}`, leases, networks } satisfies OverlayStateFile));
    const result = JSON.parse(await host.exec(process.execPath, [ONCE, file])) as { failures: unknown[] };
    t.deepEqual(result.failures, []);
  }
  // dcos: h1 9.0.0.0/24, h2 9.0.1.0/24; blue: h1 10.200.0.0/24, h2 10.200.1.0/24.
  await attach(set, h1, web, 'm-dcos', 'vweb', '9.0.0.2', '9.0.0.1');
  await attach(set, h2, db, 'm-dcos', 'vdb', '9.0.1.2', '9.0.1.1');
  await attach(set, h2, blue, 'm-blue', 'vblue', '10.200.1.2', '10.200.1.1');
  await startEchoServer(db, '9.0.1.2', [7000]);
  await startEchoServer(blue, '10.200.1.2', [7000, 7001]);
  t.is(await probeTcp(web, '10.200.1.2', 7000, 'open'), 'open', 'no policy: the overlays route to each other');

  const endpoints = [
    { appId: '/web', labels: {}, networks: ['dcos'], ips: ['9.0.0.2'] },
    { appId: '/db', labels: {}, networks: ['dcos'], ips: ['9.0.1.2'] },
    { appId: '/blue/api', labels: {}, networks: ['blue'], ips: ['10.200.1.2'] },
  ];
  const isolated: Policy = { name: 'blue-only', to: [{ network: 'blue' }], defaultAction: 'deny', rules: [{ action: 'allow', from: [{ network: 'blue' }], ports: [] }] };
  const managers = [h1, h2].map((h) => new PolicyManager({ nft: new NftProcess({ netns: h.name }), logger }));
  t.teardown(async () => {
    for (const m of managers) await m.close();
  });
  const everywhere = async (inputs: PolicyInputs): Promise<void> => {
    for (const m of managers) await m.sync(inputs);
  };
  await everywhere({ policies: [isolated], endpoints });
  t.is(await probeTcp(web, '10.200.1.2', 7000, 'blocked'), 'blocked', 'dcos → blue denied');
  t.is(await probeTcp(web, '9.0.1.2', 7000, 'open'), 'open', 'dcos → dcos across hosts still open');

  // Allow web into blue on one port: a path on that port only.
  await everywhere({ policies: [{ ...isolated, rules: [...isolated.rules, { action: 'allow', from: [{ appId: '/web' }], ports: [{ protocol: 'tcp', port: 7000 }] }] }], endpoints });
  t.is(await probeTcp(web, '10.200.1.2', 7000, 'open'), 'open', 'dcos → blue:7000 allowed');
  t.is(await probeTcp(web, '10.200.1.2', 7001, 'blocked'), 'blocked', 'other ports still denied');
  t.is(await probeTcp(db, '10.200.1.2', 7000, 'blocked'), 'blocked', 'other dcos tasks still denied');

  // Each host enforces on its own: the source host alone, then the destination host alone.
  await managers[1]!.removeAll();
  t.is(await probeTcp(web, '10.200.1.2', 7001, 'blocked'), 'blocked', 'h1 (the source host) alone drops it');
  await managers[0]!.removeAll();
  t.is(await probeTcp(web, '10.200.1.2', 7001, 'open'), 'open', 'no table anywhere: open');
  t.is(await managers[1]!.sync({ policies: [isolated], endpoints }), 'full');
  t.is(await probeTcp(web, '10.200.1.2', 7001, 'blocked'), 'blocked', 'h2 (the destination host) alone drops it');
});

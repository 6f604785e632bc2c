/**
 * The reconcile loop against the in-repo fake kernel (the same request
 * bytes the real socket sends): first run builds everything, the second
 * sends nothing, hand edits are repaired, only Strata's own entries are
 * ever removed, and a refused request does not stop the rest.
 */
import test from 'ava';
import { Registry } from 'prom-client';
import type { Network, OverlayLease } from '../control-plane/model/schemas.ts';
import { vtepMacOf } from '../control-plane/networks/ipam.ts';
import { desiredOverlay } from './desired.ts';
import { OverlayManager } from './manager.ts';
import { RTPROT_STRATA } from './rtnl/codec.ts';
import { FakeRtnl } from './rtnl/fake.ts';

const NOW = '2026-01-01T00:00:00.000Z';
const dcos: Network = { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24, prefix6: 80, mtu: 1420, vni: 1024, labels: {} };
const blue: Network = { name: 'blue', subnet: '10.9.0.0/16', prefix: 24, prefix6: 80, mtu: 1400, vni: 2000, labels: {} };
const lease = (n: number, networks: OverlayLease['networks']): OverlayLease => ({
  agentId: `a${n}`, underlayIp: `192.168.0.${n}`, vtepIp: `44.128.0.${n}`, vtepMac: vtepMacOf(`44.128.0.${n}`), networks, updatedAt: NOW,
});
const leases = [
  lease(1, { dcos: { subnet: '9.0.0.0/24' }, blue: { subnet: '10.9.0.0/24' } }),
  lease(2, { dcos: { subnet: '9.0.1.0/24' } }),
  lease(3, { dcos: { subnet: '9.0.2.0/24' }, blue: { subnet: '10.9.1.0/24' } }),
];

function setup() {
  const rtnl = new FakeRtnl();
  rtnl.addLink({ name: 'lo', up: true, mtu: 65536 });
  rtnl.addLink({ name: 'eth0', up: true, mtu: 1500, kind: 'veth' });
  // Someone else's route and neighbour: never touched.
  rtnl.state.routes.push({ dst: '10.0.0.0', dstLength: 8, gateway: '192.168.0.254', oif: 2, table: 254, protocol: 4, onlink: false });
  const manager = new OverlayManager({ rtnl, enableForwarding: false });
  return { rtnl, manager };
}

test('desired state: one VXLAN device and bridge per network the agent has a subnet of; peers are the other agents on it', (t) => {
  const { desired, problems } = desiredOverlay({ agentId: 'a1', leases, networks: [dcos, blue] });
  t.deepEqual(problems, []);
  t.deepEqual(desired.networks.map((n) => [n.vxlan.name, n.bridge.name, n.bridge.gateway, n.peers.map((p) => p.agentId)]), [
    ['vtep1024', 'm-dcos', '9.0.0.1', ['a2', 'a3']],
    ['vtep2000', 'm-blue', '10.9.0.1', ['a3']],
  ]);
  t.like(desired.networks[0]!.vxlan, { vni: 1024, local: '192.168.0.1', port: 64000, mtu: 1420, mac: '70:b3:d5:80:00:01', vtepIp: '44.128.0.1' });
  t.is(desiredOverlay({ agentId: 'a1', leases, networks: [dcos], vxlanPort: 4789 }).desired.networks[0]!.vxlan.port, 4789);
  t.deepEqual(desiredOverlay({ agentId: 'zz', leases, networks: [dcos] }).problems, ['agent zz has no overlay lease']);
});

test('reconcile builds the overlay, then sends nothing; a restarted manager sends nothing either', async (t) => {
  const { rtnl, manager } = setup();
  const { desired } = desiredOverlay({ agentId: 'a1', leases, networks: [dcos, blue] });
  const first = await manager.reconcile(desired);
  t.deepEqual(first.failures, []);
  const s = rtnl.state;
  const vx = s.links.find((l) => l.name === 'vtep1024')!;
  t.like(vx, { kind: 'vxlan', up: true, mtu: 1420, mac: '70:b3:d5:80:00:01', vxlan: { vni: 1024, local: '192.168.0.1', port: 64000, learning: false } });
  t.like(s.links.find((l) => l.name === 'm-blue'), { kind: 'bridge', up: true, mtu: 1400 });
  t.deepEqual(s.addresses.filter((a) => a.index === vx.index), [{ index: vx.index, ip: '44.128.0.1', prefixLength: 32 }]);
  t.deepEqual(s.fdb.filter((f) => f.index === vx.index).map((f) => [f.mac, f.dst]).sort(), [['70:b3:d5:80:00:02', '192.168.0.2'], ['70:b3:d5:80:00:03', '192.168.0.3']]);
  t.deepEqual(s.neighbours.filter((n) => n.index === vx.index).map((n) => [n.dst, n.mac]).sort(), [['44.128.0.2', '70:b3:d5:80:00:02'], ['44.128.0.3', '70:b3:d5:80:00:03']]);
  t.deepEqual(s.routes.filter((r) => r.protocol === RTPROT_STRATA).map((r) => `${r.dst}/${r.dstLength} via ${r.gateway} onlink=${r.onlink}`).sort(), [
    '10.9.1.0/24 via 44.128.0.3 onlink=true', '9.0.1.0/24 via 44.128.0.2 onlink=true', '9.0.2.0/24 via 44.128.0.3 onlink=true',
  ]);

  const before = rtnl.sent.length;
  t.deepEqual((await manager.reconcile(desired)).ops, []);
  const restarted = new OverlayManager({ rtnl, enableForwarding: false });
  t.deepEqual((await restarted.reconcile(desired)).ops, []);
  t.is(rtnl.sent.length, before, 'no request at all once the kernel matches');
});

test('hand edits are repaired with exactly the missing pieces; only Strata\'s entries are removed', async (t) => {
  const { rtnl, manager } = setup();
  const { desired } = desiredOverlay({ agentId: 'a1', leases, networks: [dcos, blue] });
  await manager.reconcile(desired);
  const s = rtnl.state;
  const vx = s.links.find((l) => l.name === 'vtep1024')!;
  s.routes = s.routes.filter((r) => r.dst !== '9.0.1.0');
  s.fdb = s.fdb.filter((f) => !(f.index === vx.index && f.mac === '70:b3:d5:80:00:03'));
  s.links = s.links.map((l) => (l.name === 'm-dcos' ? { ...l, up: false } : l));
  const repair = await manager.reconcile(desired);
  t.deepEqual(repair.ops.map((o) => o.op).sort(), ['replaceFdb', 'replaceRoute', 'setLink']);
  t.true(s.routes.some((r) => r.dst === '9.0.1.0' && r.gateway === '44.128.0.2' && r.oif === vx.index));

  // a3 leaves: its FDB, neighbour and routes go; a2's stay; someone else's route stays.
  const without3 = desiredOverlay({ agentId: 'a1', leases: leases.slice(0, 2), networks: [dcos, blue] }).desired;
  const shrink = await manager.reconcile(without3);
  t.deepEqual(shrink.ops.map((o) => o.op).sort(), ['delFdb', 'delFdb', 'delNeighbour', 'delNeighbour', 'delRoute', 'delRoute'], 'a3 was on both networks');
  t.true(s.routes.some((r) => r.dst === '10.0.0.0' && r.protocol === 4));
  // The VXLAN device recreated when its VNI was changed by hand; a network gone takes its devices.
  s.links = s.links.map((l) => (l.name === 'vtep1024' ? { ...l, vxlan: { ...l.vxlan, vni: 7 } } : l));
  const onlyDcos = desiredOverlay({ agentId: 'a1', leases: leases.slice(0, 2), networks: [dcos] }).desired;
  const changed = await manager.reconcile(onlyDcos);
  t.deepEqual(changed.failures, []);
  t.deepEqual(s.links.map((l) => l.name).sort(), ['eth0', 'lo', 'm-dcos', 'vtep1024']);
  t.is(s.links.find((l) => l.name === 'vtep1024')!.vxlan!.vni, 1024);
  t.deepEqual((await manager.reconcile(onlyDcos)).ops, []);
});

test('a refused request is reported with its errno and does not stop the others', async (t) => {
  const { rtnl, manager } = setup();
  const { desired } = desiredOverlay({ agentId: 'a1', leases, networks: [dcos] });
  const request = rtnl.request.bind(rtnl);
  rtnl.request = async (r) => {
    if (r.what.includes('9.0.1.0/24')) throw (await import('./rtnl/socket.ts')).netlinkError(r, 101);
    return request(r);
  };
  const result = await manager.reconcile(desired);
  t.is(result.failures.length, 1);
  t.like(result.failures[0], { errno: 101 });
  t.regex(result.failures[0]!.error, /replace route 9\.0\.1\.0\/24 via 44\.128\.0\.2 dev #\d+ onlink: the kernel refused it: ENETUNREACH/);
  t.true(rtnl.state.routes.some((r) => r.dst === '9.0.2.0'), 'the other peer is programmed');
});

test('IPv6: a dual-stack network puts both gateways on its bridge and routes each peer\'s IPv6 subnet via the link-local address of its VTEP MAC; an IPv6-only network gets only IPv6; link-local addresses are left alone; hand edits repaired', async (t) => {
  const { rtnl } = setup();
  const registry = new Registry();
  const manager = new OverlayManager({ rtnl, enableForwarding: false, metrics: registry });
  const dual: Network = { name: 'dual', subnet: '10.8.0.0/16', subnet6: 'fd01:e::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 1030, labels: {} };
  const dcos6: Network = { name: 'dcos6', subnet6: 'fd01:b::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 1025, labels: {} };
  const v6leases = [
    lease(1, { dual: { subnet: '10.8.0.0/24', subnet6: 'fd01:e::/80' }, dcos6: { subnet6: 'fd01:b::/80' } }),
    lease(2, { dual: { subnet: '10.8.1.0/24', subnet6: 'fd01:e:0:0:1::/80' }, dcos6: { subnet6: 'fd01:b:0:0:1::/80' } }),
    lease(3, { dual: { subnet: '10.8.2.0/24' } }), // no IPv6 subnet of dual (its pool was exhausted): only its IPv4 subnet is routed
  ];
  const { desired } = desiredOverlay({ agentId: 'a1', leases: v6leases, networks: [dual, dcos6] });
  t.deepEqual(desired.networks.map((n) => n.bridge), [
    { name: 'm-dcos6', mtu: 1420, gateway6: 'fd01:b::1', prefixLength6: 80 },
    { name: 'm-dual', mtu: 1420, gateway: '10.8.0.1', prefixLength: 24, gateway6: 'fd01:e::1', prefixLength6: 80 },
  ]);
  t.like(desired.networks[1]!.peers[0], { agentId: 'a2', vtepIp6: 'fe80::72b3:d5ff:fe80:2', subnet: '10.8.1.0/24', subnet6: 'fd01:e:0:0:1::/80' });
  t.deepEqual((await manager.reconcile(desired)).failures, []);
  t.regex(await registry.metrics(), /strata_overlay_peer_subnets\{family="ipv6"\} 2\n/);
  t.regex(await registry.metrics(), /strata_overlay_peer_subnets\{family="ipv4"\} 2\n/);
  const s = rtnl.state;
  const index = (name: string): number => s.links.find((l) => l.name === name)!.index;
  t.deepEqual(s.addresses.filter((a) => a.index === index('m-dual')).map((a) => `${a.ip}/${a.prefixLength}`), ['10.8.0.1/24', 'fd01:e::1/80']);
  t.deepEqual(s.addresses.filter((a) => a.index === index('m-dcos6')).map((a) => `${a.ip}/${a.prefixLength}`), ['fd01:b::1/80']);
  t.deepEqual(s.routes.filter((r) => r.protocol === RTPROT_STRATA).map((r) => `${r.dst}/${r.dstLength} via ${r.gateway} dev #${r.oif}`).sort(), [
    `10.8.1.0/24 via 44.128.0.2 dev #${index('vtep1030')}`,
    `10.8.2.0/24 via 44.128.0.3 dev #${index('vtep1030')}`,
    `fd01:b:0:0:1::/80 via fe80::72b3:d5ff:fe80:2 dev #${index('vtep1025')}`,
    `fd01:e:0:0:1::/80 via fe80::72b3:d5ff:fe80:2 dev #${index('vtep1030')}`,
  ]);
  t.deepEqual(s.neighbours.filter((n) => n.index === index('vtep1030')).map((n) => `${n.dst} ${n.mac}`).sort(), [
    '44.128.0.2 70:b3:d5:80:00:02', '44.128.0.3 70:b3:d5:80:00:03', 'fe80::72b3:d5ff:fe80:2 70:b3:d5:80:00:02',
  ]);

  // The kernel's own link-local address on the bridge is not Strata's to remove; a second run sends nothing.
  s.addresses.push({ index: index('m-dual'), ip: 'fe80::1', prefixLength: 64 });
  t.deepEqual((await manager.reconcile(desired)).ops, []);
  // Removed by hand: the IPv6 gateway, the IPv6 route and the IPv6 neighbour come back, and only they.
  s.addresses = s.addresses.filter((a) => a.ip !== 'fd01:e::1');
  s.routes = s.routes.filter((r) => r.dst !== 'fd01:b:0:0:1::');
  s.neighbours = s.neighbours.filter((n) => !(n.dst === 'fe80::72b3:d5ff:fe80:2' && n.index === index('vtep1030')));
  t.deepEqual((await manager.reconcile(desired)).ops.map((o) => o.op).sort(), ['addAddress', 'replaceNeighbour', 'replaceRoute']);
  // The leases lose dual's IPv6 subnets (its IPv6 pool removed): its IPv6 gateway, route and next-hop neighbour go; IPv4 stays.
  const v4leases = v6leases.map((l) => ({ ...l, networks: { ...l.networks, dual: { subnet: l.networks['dual']!.subnet! } } }));
  const dropped = await manager.reconcile(desiredOverlay({ agentId: 'a1', leases: v4leases, networks: [dual, dcos6] }).desired);
  t.deepEqual(dropped.ops.map((o) => `${o.op} ${'ip' in o ? o.ip : 'dst' in o ? o.dst : ''}`).sort(), ['delAddress fd01:e::1', 'delNeighbour fe80::72b3:d5ff:fe80:2', 'delRoute fd01:e:0:0:1::']);
});

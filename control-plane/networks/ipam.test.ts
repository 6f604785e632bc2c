import test from 'ava';
import fc from 'fast-check';
import { cidrContains, parseCidr } from '../../common/ip.ts';
import type { Network, OverlayAddress, OverlayLease } from '../model/schemas.ts';
import { validateRecord } from '../model/validate.ts';
import {
  addressReusable,
  firstFreeAddress,
  firstFreeSubnet,
  firstFreeVtep,
  gatewayOf,
  pickAddress,
  planLease,
  shouldRelease,
  vtepMacOf,
} from './ipam.ts';

const NOW = '2026-01-01T00:00:00.000Z';
const net = (name: string, subnet: string, prefix: number, vni: number): Network => ({ name, subnet, prefix, prefix6: 80, mtu: 1420, vni, labels: {} });

test('DC/OS\'s VTEP MAC: OUI 70:b3:d5 and the low 24 bits of the VTEP address', (t) => {
  t.is(vtepMacOf('44.128.0.1'), '70:b3:d5:80:00:01');
  t.is(vtepMacOf('44.128.15.254'), '70:b3:d5:80:0f:fe');
  t.is(firstFreeVtep(new Set()), '44.128.0.1');
  t.is(firstFreeVtep(new Set(['44.128.0.1', '44.128.0.3'])), '44.128.0.2');
  const all = new Set(Array.from({ length: 4094 }, (_, i) => `44.128.${(i + 1) >> 8}.${(i + 1) & 255}`));
  t.is(firstFreeVtep(all), undefined, 'a /20 holds 4,094 VTEPs, as DC/OS says');
});

test('subnets and container addresses come first-free; gateway, network and broadcast are never handed out', (t) => {
  t.is(firstFreeSubnet('9.0.0.0/8', 24, new Set()), '9.0.0.0/24');
  t.is(firstFreeSubnet('9.0.0.0/8', 24, new Set(['9.0.0.0/24', '9.0.2.0/24'])), '9.0.1.0/24');
  t.is(firstFreeSubnet('10.1.0.0/23', 24, new Set(['10.1.0.0/24', '10.1.1.0/24'])), undefined);
  t.is(firstFreeSubnet('fd01:b::/64', 80, new Set(['fd01:b::/80'])), 'fd01:b:0:0:1::/80');
  t.is(gatewayOf('9.0.3.0/24'), '9.0.3.1');
  t.is(firstFreeAddress('9.0.3.0/24', new Set()), '9.0.3.2');
  t.is(firstFreeAddress('9.0.3.0/30', new Set()), '9.0.3.2', 'a /30: network, gateway, one host, broadcast');
  t.is(firstFreeAddress('9.0.3.0/30', new Set(['9.0.3.2'])), undefined);
  // IPv6 (dcos6's /80 per agent): gateway ::1, containers from ::2; no broadcast address to skip.
  t.is(gatewayOf('fd01:b:0:0:1::/80'), 'fd01:b::1:0:0:1');
  t.is(firstFreeAddress('fd01:b:0:0:1::/80', new Set()), 'fd01:b::1:0:0:2');
  t.is(firstFreeAddress('fd01:b::/126', new Set(['fd01:b::2'])), 'fd01:b::3', 'a /126: network, gateway, two hosts');
  t.is(firstFreeAddress('fd01:b::/126', new Set(['fd01:b::2', 'fd01:b::3'])), undefined);
});

test('a /29 agent subnet hands out its five host addresses after the gateway', (t) => {
  t.is(firstFreeAddress('9.0.3.0/29', new Set()), '9.0.3.2');
  const held = new Set<string>();
  for (;;) {
    const ip = firstFreeAddress('9.0.3.0/29', held);
    if (ip === undefined) break;
    held.add(ip);
  }
  t.deepEqual([...held], ['9.0.3.2', '9.0.3.3', '9.0.3.4', '9.0.3.5', '9.0.3.6']);
});

test('property: agents registering in any order, racing on the same snapshot, never share a subnet (IPv4 or IPv6) or VTEP (create-only claims)', (t) => {
  // Small pools, so some agents find them exhausted: dcos6 holds 16 /80s, dual's IPv6 pool 4 (its IPv4 pool 4).
  const networks: Network[] = [
    net('dcos', '9.0.0.0/22', 24, 1024),
    net('blue', '10.9.0.0/21', 26, 2000),
    { name: 'dcos6', subnet6: 'fd01:b::/76', prefix: 24, prefix6: 80, mtu: 1420, vni: 1025, labels: {} },
    { name: 'dual', subnet: '10.20.0.0/22', subnet6: 'fd01:e::/78', prefix: 24, prefix6: 80, mtu: 1420, vni: 1030, labels: {} },
  ];
  t.notThrows(() =>
    fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.boolean()), { minLength: 1, maxLength: 60 }),
      (steps) => {
        const claims = new Map<string, Set<string>>();
        const leases = new Map<string, OverlayLease>();
        // A racing planner reads a stale snapshot (taken before the previous commit); the store refuses its claims if any is taken.
        let snapshot = new Map<string, Set<string>>();
        for (const [agent, stale] of steps) {
          const agentId = `agent-${agent}`;
          const view = stale ? snapshot : claims;
          const existing = leases.get(agentId);
          const plan = planLease({ agentId, underlayIp: `192.168.0.${agent + 1}`, ...(existing ? { existing } : {}), networks, claims: view, now: NOW });
          snapshot = new Map([...claims].map(([k, v]) => [k, new Set(v)]));
          const conflict = plan.newClaims.some((c) => claims.get(c.pool)?.has(c.cidr));
          if (conflict) continue; // the transaction is refused; nothing written
          for (const c of plan.newClaims) {
            let set = claims.get(c.pool);
            if (!set) claims.set(c.pool, (set = new Set()));
            set.add(c.cidr);
          }
          if (validateRecord('overlayLease', plan.lease).length > 0) return false;
          leases.set(agentId, plan.lease);
        }
        // Uniqueness, containment, prefix, stability.
        const seen = new Set<string>();
        for (const lease of leases.values()) {
          if (seen.has(`vtep ${lease.vtepIp}`)) return false;
          seen.add(`vtep ${lease.vtepIp}`);
          for (const [name, s] of Object.entries(lease.networks)) {
            const n = networks.find((x) => x.name === name)!;
            for (const [subnet, pool, prefix] of [[s.subnet, n.subnet, n.prefix], [s.subnet6, n.subnet6, n.prefix6]] as const) {
              if (subnet === undefined) continue;
              if (pool === undefined || seen.has(`${name} ${subnet}`)) return false;
              seen.add(`${name} ${subnet}`);
              const c = parseCidr(subnet)!;
              if (c.prefixLength !== prefix || !cidrContains(parseCidr(pool)!, subnet.split('/')[0]!)) return false;
            }
          }
          const again = planLease({ agentId: lease.agentId, underlayIp: lease.underlayIp, existing: lease, networks, claims, now: NOW });
          if (again.changed || again.newClaims.length > 0) return false;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  ),
  );
});

test('an exhausted network is named; the agent keeps the networks that fit', (t) => {
  const networks = [net('dcos', '9.0.0.0/8', 24, 1024), net('tiny', '10.1.0.0/24', 24, 2000)];
  const claims = new Map([['tiny', new Set(['10.1.0.0/24'])]]);
  const plan = planLease({ agentId: 'a2', underlayIp: '192.168.0.2', networks, claims, now: NOW });
  t.deepEqual(Object.keys(plan.lease.networks), ['dcos']);
  t.is(plan.exhausted.length, 1);
  t.regex(plan.exhausted[0]!.message, /network "tiny" has no free \/24 left in 10\.1\.0\.0\/24 for agent a2/);
});

test('a lease keeps its subnets; a removed network\'s subnet is dropped, a changed prefix gets a new one', (t) => {
  const first = planLease({ agentId: 'a1', underlayIp: '192.168.0.1', networks: [net('dcos', '9.0.0.0/8', 24, 1024)], claims: new Map([['dcos', new Set(['9.0.0.0/24'])]]), now: NOW });
  t.is(first.lease.networks['dcos']!.subnet, '9.0.1.0/24');
  const kept = planLease({ agentId: 'a1', underlayIp: '192.168.0.1', existing: first.lease, networks: [net('dcos', '9.0.0.0/8', 24, 1024)], claims: new Map([['dcos', new Set(['9.0.1.0/24'])]]), now: NOW });
  t.false(kept.changed);
  const reprefixed = planLease({ agentId: 'a1', underlayIp: '192.168.0.1', existing: first.lease, networks: [net('dcos', '9.0.0.0/8', 25, 1024)], claims: new Map([['dcos', new Set(['9.0.1.0/24'])]]), now: NOW });
  t.true(reprefixed.changed);
  t.is(reprefixed.lease.networks['dcos']!.subnet, '9.0.0.0/25');
  const removed = planLease({ agentId: 'a1', underlayIp: '192.168.0.1', existing: first.lease, networks: [], claims: new Map(), now: NOW });
  t.deepEqual(removed.lease.networks, {});
  t.true(removed.changed);
});

test('container addresses: released ones stay quarantined, and are not released while the task may still run', (t) => {
  const base: OverlayAddress = { network: 'dcos', ip: '9.0.3.2', agentId: 'a1', taskId: 't1', state: 'assigned', assignedAt: NOW };
  const releasedAt = '2026-01-01T00:10:00.000Z';
  const rel: OverlayAddress = { ...base, state: 'released', releasedAt };
  t.false(addressReusable(base, Date.parse(releasedAt) + 10_000_000));
  t.false(addressReusable(rel, Date.parse(releasedAt) + 299_000));
  t.true(addressReusable(rel, Date.parse(releasedAt) + 300_000));
  const task = (state: 'RUNNING' | 'LOST' | 'UNREACHABLE' | 'FINISHED' | 'KILLED') => ({ state }) as Parameters<typeof shouldRelease>[1];
  t.false(shouldRelease(base, task('RUNNING')));
  t.false(shouldRelease(base, task('LOST')), 'a LOST task may still run on a partitioned agent');
  t.false(shouldRelease(base, task('UNREACHABLE')));
  t.true(shouldRelease(base, task('FINISHED')));
  t.true(shouldRelease(base, task('KILLED')));
  t.true(shouldRelease(base, undefined), 'the task record is gone');
  t.false(shouldRelease({ ...base, taskId: 'cni.abc', holder: 'cni' }, undefined), 'a CNI container\'s address goes with its DEL, not with a task');

  // A full /29: fresh addresses first; then only a quarantine-expired one.
  const subnet = '9.0.3.0/29';
  const records: OverlayAddress[] = ['9.0.3.2', '9.0.3.3', '9.0.3.4', '9.0.3.5', '9.0.3.6'].map((ip, i) => (i === 1 ? { ...rel, ip } : { ...base, ip, taskId: `t${i}` }));
  t.is(pickAddress(subnet, records, Date.parse(releasedAt) + 1000), undefined, 'nothing free while 9.0.3.3 is in quarantine');
  t.is(pickAddress(subnet, records, Date.parse(releasedAt) + 301_000)?.ip, '9.0.3.3');
  t.is(pickAddress(subnet, records.slice(0, 3), Date.parse(releasedAt) + 301_000)?.ip, '9.0.3.5', 'a never-used address before a reused one');
});

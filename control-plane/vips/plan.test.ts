import test from 'ava';
import fc from 'fast-check';
import { cidrContains, parseCidr } from '../../common/ip.ts';
import { withAppDefaults } from '../model/app-defaults.ts';
import { keyOf } from '../model/keys.ts';
import type { App, AppDefinition, Vip } from '../model/schemas.ts';
import { validateRecord } from '../model/validate.ts';
import { allocateAddress } from './address.ts';
import { desiredVips, planVips, vipConflicts, type ExistingVip, type VipRanges } from './plan.ts';

const RANGES: VipRanges = { ipv4: parseCidr('11.0.0.0/8')!, ipv6: parseCidr('fd01:c::/64')! };
const V = '2026-01-01T00:00:00.000Z';

function app(id: string, labels: Record<string, string>[], extra: Partial<AppDefinition> = {}): App {
  return withAppDefaults({ id, cmd: 'sleep 1', portDefinitions: labels.map((l) => ({ port: 0, labels: l })), ...extra } as AppDefinition, { version: V });
}

function existingOf(vips: readonly Vip[]): Map<string, ExistingVip> {
  return new Map(vips.map((v, i) => [`${v.framework}/${v.name}`, { key: keyOf('vip', `${v.framework}/${v.name}`), modifyIndex: i + 1, value: v }]));
}

test('desiredVips gathers named and IP VIPs from port labels, merging apps that share one', (t) => {
  const d = desiredVips([
    app('/a', [{ VIP_0: '/web:80' }, { vip_x: '10.0.0.9:53' }]),
    app('/b', [{ VIP_0: '/web:80', other: 'x' }], { portDefinitions: [{ port: 0, protocol: 'udp,tcp', labels: { VIP_0: '/web:80' } }] } as Partial<AppDefinition>),
    app('/c', [{ NOT_VIP: '/nope:1' }]),
  ]);
  t.deepEqual([...d.keys()], ['marathon//web', 'marathon/10.0.0.9']);
  const web = d.get('marathon//web')!;
  t.is(web.kind, 'named');
  t.deepEqual(web.ports, [{ port: 80, protocol: 'tcp' }, { port: 80, protocol: 'udp' }]);
  t.deepEqual(web.uses.map((u) => u.appId), ['/a', '/b']);
  t.like(d.get('marathon/10.0.0.9'), { kind: 'ip', ports: [{ port: 53, protocol: 'tcp' }] });
});

test('desiredVips reads portMappings off the host network', (t) => {
  const a = withAppDefaults({
    id: '/c', cmd: 'x', networks: [{ mode: 'container', name: 'dcos' }],
    container: { type: 'MESOS', portMappings: [{ containerPort: 8080, labels: { VIP_0: '/cweb:80' } }] },
  } as AppDefinition, { version: V });
  t.deepEqual([...desiredVips([a]).keys()], ['marathon//cweb']);
});

test('vipConflicts refuses names that share a DNS name, IP VIPs in the named range, and a VIP port published twice by one app', (t) => {
  const stored = app('/old', [{ VIP_0: '/foo/bar:80' }]);
  const issues = vipConflicts([stored, app('/new', [{ VIP_0: '/foobar:80' }, { VIP_0: '11.1.1.1:80' }, { VIP_1: 'fd01:c::5:80' }])], new Set(['/new']), RANGES);
  t.is(issues.length, 3);
  t.like(issues[0], { path: '/portDefinitions/0/labels/VIP_0' });
  t.regex(issues[0]!.message, /"\/foobar" and VIP "\/foo\/bar" \(app \/old\) would both be foobar\.marathon\.l4lb\.thisdcos\.directory/);
  t.regex(issues[1]!.message, /11\.1\.1\.1 is inside the range reserved for named VIPs/);
  t.like(issues[2], { path: '/portDefinitions/2/labels/VIP_1' });
  const twice = vipConflicts([app('/d', [{ VIP_0: '/d:80' }, { VIP_0: '/d:80' }])], new Set(['/d']), RANGES);
  t.is(twice.length, 1);
  t.regex(twice[0]!.message, /already published by port 0 of this app/);
  t.deepEqual(vipConflicts([app('/x', [{ VIP_0: '/same:80' }]), app('/y', [{ VIP_0: '/same:80' }])], new Set(['/y']), RANGES), [], 'sharing one VIP is allowed');
  t.deepEqual(vipConflicts([stored, app('/new', [{ VIP_0: '/foobar:80' }])], new Set(['/other']), RANGES), [], 'stored conflicts do not block others');
  t.regex(vipConflicts([app('/e', [{ VIP_0: '/___:80' }])], new Set(['/e']), RANGES)[0]!.message, /no letters or digits/);
});

test('planVips allocates named VIPs in range, keeps addresses stable, deletes what no app publishes, writes nothing when done', (t) => {
  const desired = desiredVips([app('/a', [{ VIP_0: '/web:80' }, { VIP_1: '10.0.0.9:53' }])]);
  const first = planVips(desired, new Map(), RANGES);
  t.is(first.writes.length, 2);
  const vips = first.writes.map((w) => (w.op === 'put' ? w.vip : undefined)).filter((v): v is Vip => v !== undefined);
  for (const v of vips) t.deepEqual(validateRecord('vip', v), [], JSON.stringify(v));
  const web = vips.find((v) => v.name === '/web')!;
  t.true(cidrContains(RANGES.ipv4, web.ipv4!));
  t.true(cidrContains(RANGES.ipv6, web.ipv6!));
  t.like(vips.find((v) => v.name === '10.0.0.9'), { kind: 'ip', ipv4: '10.0.0.9' });
  t.true(first.writes.every((w) => w.op === 'put' && w.casIndex === 0));

  const existing = existingOf(vips);
  t.deepEqual(planVips(desired, existing, RANGES).writes, [], 'idempotent');
  // A port added: the record is updated in place (same addresses, CAS on its index).
  const more = desiredVips([app('/a', [{ VIP_0: '/web:80' }, { VIP_1: '10.0.0.9:53' }, { VIP_2: '/web:443' }])]);
  const update = planVips(more, existing, RANGES).writes;
  t.is(update.length, 1);
  t.like(update[0], { op: 'put', casIndex: existing.get('marathon//web')!.modifyIndex, vip: { ipv4: web.ipv4, ipv6: web.ipv6, ports: [{ port: 80 }, { port: 443 }] } });
  // The app stops publishing: both records go.
  const gone = planVips(desiredVips([app('/a', [{}])]), existing, RANGES).writes;
  t.deepEqual(gone.map((w) => w.op).sort(), ['delete', 'delete']);
});

test('planVips moves an address that left the range or is held twice, and reports a full range', (t) => {
  const desired = desiredVips([app('/a', [{ VIP_0: '/one:80' }, { VIP_1: '/two:80' }])]);
  const existing = existingOf([
    { framework: 'marathon', name: '/one', kind: 'named', ipv4: '11.0.0.7', ipv6: 'fd01:c::7', ports: [{ port: 80, protocol: 'tcp' }] },
    { framework: 'marathon', name: '/two', kind: 'named', ipv4: '11.0.0.7', ipv6: 'fd01:d::7', ports: [{ port: 80, protocol: 'tcp' }] },
  ]);
  const writes = planVips(desired, existing, RANGES).writes;
  t.is(writes.length, 1);
  const two = writes[0]!.op === 'put' ? writes[0]!.vip : undefined;
  t.not(two?.ipv4, '11.0.0.7');
  t.true(cidrContains(RANGES.ipv6, two!.ipv6!));
  const tiny: VipRanges = { ipv4: parseCidr('11.0.0.0/30')!, ipv6: RANGES.ipv6 };
  const three = desiredVips([app('/a', [{ VIP_0: '/a1:80' }, { VIP_0: '/a2:81' }, { VIP_0: '/a3:82' }])]);
  const plan = planVips(three, new Map(), tiny);
  t.is(plan.unallocated.length, 1, 'a /30 has two usable addresses for three VIPs');
  t.is(plan.unallocated[0]!.family, 4);
  t.is(plan.writes.filter((w) => w.op === 'put' && w.vip.ipv4 === undefined).length, 1, 'the third is stored without an IPv4 address');
});

test('allocated addresses are unique and inside the range, whatever the names (property)', (t) => {
  const ranges: VipRanges = { ipv4: parseCidr('11.0.0.0/26')!, ipv6: parseCidr('fd01:c::/120')! };
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^\/[a-z][a-z0-9]{0,8}$/), { minLength: 1, maxLength: 62 }), (names) => {
        const desired = desiredVips([app('/a', names.map((n, i) => ({ [`VIP_${i}`]: `${n}:80` })))]);
        const plan = planVips(desired, new Map(), ranges);
        const v4 = plan.writes.flatMap((w) => (w.op === 'put' && w.vip.ipv4 ? [w.vip.ipv4] : []));
        const v6 = plan.writes.flatMap((w) => (w.op === 'put' && w.vip.ipv6 ? [w.vip.ipv6] : []));
        return new Set(v4).size === v4.length && new Set(v6).size === v6.length && v4.every((ip) => cidrContains(ranges.ipv4, ip)) && v4.length === names.length && plan.unallocated.length === 0;
      }),
    ),
  );
});

test('allocateAddress is deterministic, skips taken addresses, and never returns network or broadcast addresses', (t) => {
  const r = parseCidr('11.0.0.0/30')!;
  const a = allocateAddress('x.marathon', r, new Set());
  t.is(allocateAddress('x.marathon', r, new Set()), a);
  t.true(a === '11.0.0.1' || a === '11.0.0.2');
  const b = allocateAddress('x.marathon', r, new Set([a!]));
  t.true(b !== a && (b === '11.0.0.1' || b === '11.0.0.2'));
  t.is(allocateAddress('x.marathon', r, new Set(['11.0.0.1', '11.0.0.2'])), undefined);
});

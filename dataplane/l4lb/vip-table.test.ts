import test from 'ava';
import fc from 'fast-check';
import { commitPlan, fullRuleset, planChanges, type RulesetState } from './ruleset.ts';
import { VipTable, type FeedVip } from './vip-table.ts';

type Backend = FeedVip['backends'][number];
const be = (ip: string, port: number, extra: Partial<Backend> = {}): Backend => ({ ip, port, protocol: 'tcp', vipPort: 80, weight: 1, agentId: 'agent-2', ...extra });
const vip = (n: number, backends: Backend[], extra: Partial<FeedVip> = {}): FeedVip => ({ id: `marathon//v${n}`, name: `/v${n}`, ipv4: `11.0.0.${n}`, ports: [{ port: 80, protocol: 'tcp' }], backends, ...extra });

function owned(state: RulesetState) {
  return { ...state, services: new Map(state.services), chains: new Set(state.chains) };
}

test('a change to one VIP names only that VIP\'s services; a removed VIP names its keys; hairpin pairs follow the local backends', (t) => {
  const table = new VipTable('agent-1');
  const all = table.replace([vip(1, [be('10.0.0.1', 1)]), vip(2, [be('10.0.0.2', 1, { agentId: 'agent-1' })])]);
  t.is(all.services.length, 2);
  t.deepEqual(all.localBackendIps, ['10.0.0.2']);

  const one = table.apply([vip(1, [be('10.0.0.1', 1), be('10.0.0.3', 2)])], []);
  t.deepEqual(one.upserts.map((s) => [s.vip, s.backends.length]), [['11.0.0.1', 2]]);
  t.deepEqual(one.removals, []);
  t.deepEqual([...one.hairpin], ['10.0.0.2 . 10.0.0.2']);

  // The VIP loses a port: that service's key is a removal; the VIP goes: its keys are.
  const fewer = table.apply([vip(1, [], { ports: [] })], []);
  t.deepEqual(fewer.upserts, []);
  t.deepEqual(fewer.removals, ['11.0.0.1 tcp 80']);
  const gone = table.apply([], ['marathon//v2', 'marathon//never']);
  t.deepEqual(gone.removals, ['11.0.0.2 tcp 80']);
  t.deepEqual([...gone.hairpin], [], 'the local backend went with its VIP');
  t.is(table.size, 1);
});

test('property: applying changes through the table and planChanges leaves the kernel state a whole reload of the same VIPs gives', (t) => {
  const backend = fc.record({ host: fc.integer({ min: 1, max: 6 }), port: fc.integer({ min: 1, max: 3 }), weight: fc.constantFrom(0, 1), local: fc.boolean(), unreachable: fc.boolean() });
  const vipArb = fc.record({ n: fc.integer({ min: 1, max: 8 }), six: fc.boolean(), udp: fc.boolean(), backends: fc.array(backend, { maxLength: 5 }) });
  const step = fc.oneof(fc.record({ put: fc.array(vipArb, { maxLength: 4 }) }), fc.record({ remove: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }) }));
  const toVip = (v: { n: number; six: boolean; udp: boolean; backends: { host: number; port: number; weight: number; local: boolean; unreachable: boolean }[] }): FeedVip => vip(v.n, v.backends.map((b) => ({
    ip: v.six && b.host % 2 === 0 ? `fd00::${b.host}` : `10.0.0.${b.host}`, port: b.port, protocol: v.udp ? 'udp' : 'tcp', vipPort: 80, weight: b.weight,
    agentId: b.local ? 'agent-1' : 'agent-2', ...(b.unreachable ? { agentUnreachable: true } : {}),
  })), { ...(v.six ? { ipv6: `fd01:c::${v.n}` } : {}), ports: [{ port: 80, protocol: v.udp ? 'udp' : 'tcp' }] });
  fc.assert(fc.property(fc.array(vipArb, { maxLength: 6 }), fc.array(step, { maxLength: 8 }), (initial, steps) => {
    const table = new VipTable('agent-1');
    const now = new Map<string, FeedVip>();
    for (const v of initial.map(toVip)) now.set(v.id, v);
    let state = owned(fullRuleset(table.replace([...now.values()])).state);
    for (const s of steps) {
      let changes;
      if ('put' in s) {
        const vips = s.put.map(toVip);
        const last = new Map(vips.map((v) => [v.id, v]));
        for (const v of last.values()) now.set(v.id, v);
        changes = table.apply([...last.values()], []);
      } else {
        const ids = [...new Set(s.remove.map((n) => `marathon//v${n}`))];
        for (const id of ids) now.delete(id);
        changes = table.apply([], ids);
      }
      state = owned(commitPlan(state, planChanges(state, changes)));
    }
    const fresh = new VipTable('agent-1');
    const expected = fullRuleset(fresh.replace([...now.values()])).state;
    t.deepEqual(new Map([...state.services].sort()), new Map([...expected.services].sort()));
    t.deepEqual([...state.hairpin].sort(), [...expected.hairpin].sort());
    t.deepEqual(table.desired(), fresh.desired());
  }), { numRuns: 200 });
});

test('planChanges sends nothing for an unchanged VIP and only slot commands for one backend change', (t) => {
  const table = new VipTable('agent-1');
  const vips = Array.from({ length: 50 }, (_, i) => vip(i + 1, [be(`10.0.1.${i}`, 1), be(`10.0.2.${i}`, 2)]));
  const state = owned(fullRuleset(table.replace(vips)).state);
  t.deepEqual(planChanges(state, table.apply([vips[3]!], [])).commands, []);
  const plan = planChanges(state, table.apply([vip(4, [be('10.0.1.3', 1), be('10.0.9.9', 2)])], []));
  t.deepEqual(plan.commands, [
    'delete element inet strata_l4lb be_tcp { 11.0.0.4 . 80 . 1 }',
    'add element inet strata_l4lb be_tcp { 11.0.0.4 . 80 . 1 : 10.0.9.9 . 2 }',
  ]);
});

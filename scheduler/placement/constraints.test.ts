import test from 'ava';
import { compileConstraint, fieldValue, meetsConstraint } from './constraints.ts';
import { plan } from './plan.ts';
import { agent, app, checkPlan, task, view } from './testing.ts';
import type { ClusterStateView, PlacementAgent } from './types.ts';

// Six agents: two per zone, two regions, a `rack` attribute on some, a scalar attribute.
const AGENTS: PlacementAgent[] = [
  agent('a1', { region: 'east', zone: 'e1', attributes: { rack: 'r1', disk: 'ssd', speed: '0.8' } }),
  agent('a2', { region: 'east', zone: 'e1', attributes: { rack: 'r2', disk: 'hdd' } }),
  agent('a3', { region: 'east', zone: 'e2', attributes: { rack: 'r3', disk: 'ssd' } }),
  agent('a4', { region: 'east', zone: 'e2', attributes: { rack: 'r4' } }),
  agent('a5', { region: 'west', zone: 'w1', attributes: { rack: 'r5', disk: 'ssd', speed: '1.5' } }),
  agent('a6', { region: 'west', zone: 'w1', attributes: { rack: 'r6' } }),
];

const where = (v: ClusterStateView, appId = '/web') => {
  const p = plan(v);
  return { p, agents: p.placements.filter((x) => x.appId === appId).map((x) => x.agentId), problems: checkPlan(v, p) };
};

const cases: { name: string; constraints: string[][]; instances: number; tasks?: ReturnType<typeof task>[]; expect: (agents: string[]) => boolean; unplaced?: number }[] = [
  { name: 'UNIQUE hostname: one per agent, the seventh is refused', constraints: [['hostname', 'UNIQUE']], instances: 7, expect: (a) => new Set(a).size === 6, unplaced: 1 },
  { name: '@hostname is hostname', constraints: [['@hostname', 'UNIQUE']], instances: 3, tasks: [task('/web', 'a1')], expect: (a) => !a.includes('a1') && new Set(a).size === 2 },
  { name: 'UNIQUE @zone: one per zone', constraints: [['@zone', 'UNIQUE']], instances: 4, expect: (a) => a.length === 3, unplaced: 1 },
  { name: 'UNIQUE on an attribute skips agents lacking it', constraints: [['disk', 'UNIQUE']], instances: 3, expect: (a) => a.length === 2 && a.every((x) => ['a1', 'a2', 'a3', 'a5'].includes(x)), unplaced: 1 },
  { name: 'CLUSTER with a value', constraints: [['@region', 'CLUSTER', 'west']], instances: 2, expect: (a) => a.every((x) => x === 'a5' || x === 'a6') && a.length === 2 },
  { name: 'CLUSTER without a value follows the first instance', constraints: [['@zone', 'CLUSTER']], instances: 3, tasks: [task('/web', 'a3')], expect: (a) => a.length === 2 && a.every((x) => x === 'a3' || x === 'a4') },
  { name: 'CLUSTER without a value, first instance anywhere, the rest beside it', constraints: [['rack', 'CLUSTER']], instances: 3, expect: (a) => a.length === 3 && new Set(a).size === 1 },
  { name: 'LIKE matches the whole value', constraints: [['rack', 'LIKE', 'r[12]']], instances: 2, expect: (a) => a.sort().join() === 'a1,a2' },
  { name: 'LIKE is anchored: "r" does not match "r1"', constraints: [['rack', 'LIKE', 'r']], instances: 1, expect: (a) => a.length === 0, unplaced: 1 },
  { name: 'UNLIKE also matches agents lacking the field', constraints: [['disk', 'UNLIKE', 'ssd']], instances: 3, expect: (a) => a.sort().join() === 'a2,a4,a6' },
  { name: 'MAX_PER region 2', constraints: [['@region', 'MAX_PER', '2']], instances: 5, expect: (a) => a.length === 4, unplaced: 1 },
  { name: 'MAX_PER counts existing tasks', constraints: [['@region', 'MAX_PER', '1']], instances: 2, tasks: [task('/web', 'a1')], expect: (a) => a.length === 1 && ['a5', 'a6'].includes(a[0]!) },
  { name: 'IS equality', constraints: [['disk', 'IS', 'hdd']], instances: 1, expect: (a) => a.join() === 'a2' },
  { name: 'IS compares scalars at three decimals', constraints: [['speed', 'IS', '0.8001']], instances: 1, expect: (a) => a.join() === 'a1' },
  { name: 'GROUP_BY zone 3 spreads evenly', constraints: [['@zone', 'GROUP_BY', '3']], instances: 6, expect: (a) => ['e1', 'e2', 'w1'].every((z) => a.filter((x) => AGENTS.find((g) => g.id === x)!.zone === z).length === 2) },
  { name: 'GROUP_BY without a count uses the number of values (never divides by zero)', constraints: [['@region', 'GROUP_BY']], instances: 4, expect: (a) => a.filter((x) => ['a5', 'a6'].includes(x)).length === 2 },
  { name: 'GROUP_BY on a field no agent has places nothing', constraints: [['gpu-model', 'GROUP_BY']], instances: 2, expect: (a) => a.length === 0, unplaced: 2 },
  { name: 'GROUP_BY 2 with three zones opens only two groups', constraints: [['@zone', 'GROUP_BY', '2']], instances: 4, expect: (a) => new Set(a.map((x) => AGENTS.find((g) => g.id === x)!.zone)).size === 2 && a.length === 4 },
  { name: 'constraints combine: LIKE region, UNIQUE hostname', constraints: [['@region', 'LIKE', 'ea.*'], ['hostname', 'UNIQUE']], instances: 5, expect: (a) => a.length === 4 && a.every((x) => !['a5', 'a6'].includes(x)), unplaced: 1 },
];

for (const c of cases) {
  test(`constraint: ${c.name}`, (t) => {
    const v = view({ agents: AGENTS, apps: [app('/web', { instances: c.instances, constraints: c.constraints })], tasks: c.tasks ?? [] });
    const { p, agents, problems } = where(v);
    t.deepEqual(problems, []);
    t.true(c.expect(agents), `placed on ${agents.join(',')}`);
    const u = p.unplaced.find((x) => x.appId === '/web');
    t.is(u?.instances ?? 0, c.unplaced ?? 0);
    if (u) t.is(u.reason.kind, 'constraint');
  });
}

test('the unplaced reason names the constraint that turned agents away', (t) => {
  const v = view({ agents: AGENTS, apps: [app('/web', { instances: 1, constraints: [['@region', 'IS', 'north']] })] });
  t.deepEqual(plan(v).unplaced, [{ appId: '/web', instances: 1, reason: { kind: 'constraint', constraint: ['@region', 'IS', 'north'], agents: 6 } }]);
});

test('an invalid constraint matches no agent instead of throwing', (t) => {
  const v = view({ agents: AGENTS, apps: [app('/web', { constraints: [['rack', 'LIKE', '(']] })] });
  const p = plan(v);
  t.is(p.placements.length, 0);
  t.is(p.unplaced[0]?.reason.kind, 'constraint');
  t.true(compileConstraint(['x', 'MAX_PER', '0']).invalid);
  t.true(compileConstraint(['x', 'NEAR']).invalid);
});

test('fieldValue: hostname, @region, @zone, attributes, missing', (t) => {
  const a = AGENTS[0]!;
  t.is(fieldValue(a, 'hostname'), 'a1.example');
  t.is(fieldValue(a, '@hostname'), 'a1.example');
  t.is(fieldValue(a, '@region'), 'east');
  t.is(fieldValue(a, '@zone'), 'e1');
  t.is(fieldValue(a, 'rack'), 'r1');
  t.is(fieldValue(a, 'toString'), undefined);
  t.is(fieldValue(agent('bare'), '@zone'), undefined);
});

test('meetsConstraint: an agent lacking the field meets only UNLIKE', (t) => {
  const ctx = { counts: new Map<string, number>(), instances: 1, distinctValues: 1 };
  for (const c of [['f', 'UNIQUE'], ['f', 'CLUSTER'], ['f', 'LIKE', '.*'], ['f', 'MAX_PER', '1'], ['f', 'IS', 'x'], ['f', 'GROUP_BY']]) {
    t.false(meetsConstraint(compileConstraint(c), undefined, ctx), c.join(' '));
  }
  t.true(meetsConstraint(compileConstraint(['f', 'UNLIKE', 'x']), undefined, ctx));
});

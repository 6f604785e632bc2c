import test from 'ava';
import fc from 'fast-check';
import { withAppDefaults } from '../../control-plane/model/app-defaults.ts';
import type { App, AppDefinition, Policy, Task } from '../../control-plane/model/schemas.ts';
import { decide, policyEndpoints, resolveEndpoint } from '../../control-plane/policies/evaluate.ts';
import { compilePolicies, ruleCount } from './compile.ts';
import { interpret, type Packet } from './interpret.ts';
import { fullScript, updateCommands } from './ruleset.ts';

const now = '2026-01-01T00:00:00.000Z';
const mkApp = (id: string, labels: Record<string, string>, network?: string): App =>
  withAppDefaults({ id, cmd: 'x', labels, ...(network ? { networks: [{ mode: 'container', name: network }] } : {}) } as AppDefinition, { version: now });
const mkTask = (id: string, appId: string, ips: string[], state: Task['state'] = 'RUNNING'): Task => ({
  id, appId, agentId: 'a1', host: 'h', state, stagedAt: now, stateChangedAt: now, ports: [], servicePorts: [],
  ipAddresses: ips.map((ipAddress) => ({ ipAddress, protocol: ipAddress.includes(':') ? 'IPv6' : 'IPv4' })), healthCheckResults: [], version: now,
  resources: { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 }, role: '*',
} as Task);

const apps = new Map<string, App>([
  ['/shop/web', mkApp('/shop/web', { tier: 'front' }, 'dcos')],
  ['/shop/db', mkApp('/shop/db', { tier: 'data' }, 'dcos')],
  ['/blue/api', mkApp('/blue/api', { tier: 'front' }, 'blue')],
  ['/other', mkApp('/other', {}, 'blue')],
]);
const tasks: Task[] = [
  mkTask('web.1', '/shop/web', ['9.0.1.5']),
  mkTask('web.2', '/shop/web', ['9.0.1.6']),
  mkTask('db.1', '/shop/db', ['9.0.2.7', 'fd01:b::7']),
  mkTask('api.1', '/blue/api', ['10.1.0.3']),
  mkTask('other.1', '/other', ['10.1.0.4']),
  mkTask('old.1', '/other', ['10.1.0.9'], 'KILLED'),
];
const IPS = ['9.0.1.5', '9.0.1.6', '9.0.2.7', '10.1.0.3', '10.1.0.4', '10.1.0.9', '9.0.1.200', '192.168.1.1', 'fd01:b::7', 'fd01:b::99'];

const dbOnlyFromWeb: Policy = {
  name: 'db-ingress',
  to: [{ appLabels: { tier: 'data' } }],
  defaultAction: 'deny',
  rules: [{ action: 'allow', from: [{ appId: '/shop/*' }], ports: [{ protocol: 'tcp', port: 5432 }] }],
};

test('a policy becomes a chain per policy, a source set per from-list and a dispatch element per selected range', (t) => {
  const c = compilePolicies({ policies: [dbOnlyFromWeb], endpoints: policyEndpoints(apps, tasks) });
  t.deepEqual([...c.dispatch[4]], [['9.0.2.7', [...c.comboChains.keys()][0]]]);
  t.deepEqual([...c.dispatch[6]].map(([r]) => r), ['fd01:b::7']);
  t.deepEqual([...c.comboChains.values()], [['p_db_ingress']]);
  // Both /shop apps' tasks (single addresses: a hash set) and the v6 address of db.
  t.deepEqual([...c.sets.values()].map((s) => [s.interval, s.elements]), [[false, ['9.0.1.5', '9.0.1.6', '9.0.2.7']], [false, ['fd01:b::7']]]);
  const script = fullScript(c);
  t.regex(script, /^add table inet strata_policy\ndelete table inet strata_policy\ntable inet strata_policy \{/);
  t.regex(script, /chain p_db_ingress \{ ip saddr @s_[0-9a-f]{12}_4 tcp dport 5432 return; ip6 saddr @s_[0-9a-f]{12}_6 tcp dport 5432 return; counter name "drops" drop; \}/);
  t.regex(script, /ct state established,related accept; ip daddr vmap @dispatch4; ip daddr vmap @dispatch4r; ip6 daddr vmap @dispatch6; ip6 daddr vmap @dispatch6r;/);
  t.regex(script, /add element inet strata_policy dispatch4 \{ 9\.0\.2\.7 : jump d_[0-9a-f]{12} \}/);
  t.is(ruleCount(c), 4 + 3 + 1);
});

test('overlapping destinations of several policies get a combination chain jumping to each; identical from-lists share one set', (t) => {
  const blockRange: Policy = { name: 'block-10', to: [{ cidr: '9.0.0.0/16' }], defaultAction: 'allow', rules: [{ action: 'deny', from: [{ cidr: '10.0.0.0/8' }], ports: [] }] };
  const again: Policy = { name: 'web-too', to: [{ appId: '/shop/web' }], defaultAction: 'allow', rules: [{ action: 'deny', from: [{ cidr: '10.0.0.0/8' }], ports: [] }] };
  const c = compilePolicies({ policies: [dbOnlyFromWeb, blockRange, again], endpoints: policyEndpoints(apps, tasks) });
  const byRange = new Map([...c.dispatch[4]].map(([r, chain]) => [r, c.comboChains.get(chain)]));
  t.deepEqual([...byRange], [
    ['9.0.0.0-9.0.1.4', ['p_block_10']],
    ['9.0.1.5', ['p_block_10', 'p_web_too']],
    ['9.0.1.6', ['p_block_10', 'p_web_too']],
    ['9.0.1.7-9.0.2.6', ['p_block_10']],
    ['9.0.2.7', ['p_block_10', 'p_db_ingress']],
    ['9.0.2.8-9.0.255.255', ['p_block_10']],
  ]);
  t.is([...c.sets.keys()].filter((n) => n.endsWith('_4')).length, 2, 'two distinct from-lists');
  t.deepEqual([...c.sets.values()].map((s) => [s.interval, s.elements]), [[true, ['10.0.0.0/8']], [false, ['9.0.1.5', '9.0.1.6', '9.0.2.7']], [false, ['fd01:b::7']]]);
  const script = fullScript(c);
  t.regex(script, /add element inet strata_policy dispatch4 \{ 9\.0\.1\.5 : jump d_\w+, 9\.0\.1\.6 : jump d_\w+, 9\.0\.2\.7 : jump d_\w+ \}/);
  t.regex(script, /add element inet strata_policy dispatch4r \{ 9\.0\.0\.0-9\.0\.1\.4 : jump d_\w+, 9\.0\.1\.7-9\.0\.2\.6 : jump d_\w+, 9\.0\.2\.8-9\.0\.255\.255 : jump d_\w+ \}/);
});

test('updates: a task coming and going changes set and dispatch elements only; a policy change rewrites its chain; removals come last', (t) => {
  const before = compilePolicies({ policies: [dbOnlyFromWeb], endpoints: policyEndpoints(apps, tasks) });
  t.deepEqual(updateCommands(before, before), []);
  const more = compilePolicies({ policies: [dbOnlyFromWeb], endpoints: policyEndpoints(apps, [...tasks, mkTask('web.3', '/shop/web', ['9.0.1.9'])]) });
  const cmds = updateCommands(before, more);
  t.true(cmds.every((c) => c.startsWith('delete element') || c.startsWith('add element')), cmds.join('\n'));
  t.deepEqual(cmds, [`add element inet strata_policy ${[...more.sets.keys()][0]} { 9.0.1.9 }`]);
  const changed = compilePolicies({ policies: [{ ...dbOnlyFromWeb, rules: [{ ...dbOnlyFromWeb.rules[0]!, ports: [{ protocol: 'tcp', port: 5433 }] }] }], endpoints: policyEndpoints(apps, tasks) });
  const c2 = updateCommands(before, changed);
  t.deepEqual(c2.filter((c) => !c.startsWith('add rule')), ['flush chain inet strata_policy p_db_ingress']);
  t.true(c2.some((c) => c.includes('tcp dport 5433 return')));
  const none = compilePolicies({ policies: [], endpoints: policyEndpoints(apps, tasks) });
  const c3 = updateCommands(before, none);
  const order = (prefix: string): number => c3.findIndex((c) => c.startsWith(prefix));
  t.true(order('delete element inet strata_policy dispatch4') < order('flush chain'));
  t.true(order('flush chain') < order('delete chain'));
  t.true(order('delete chain') < order('delete set'));
});

// The property: for random policies and flows, the compiled table (read by
// the interpreter) and the evaluator agree on every flow.
const peer = fc.oneof(
  fc.constantFrom('dcos', 'blue').map((network) => ({ network })),
  fc.constantFrom('9.0.0.0/8', '9.0.1.0/24', '10.1.0.4/32', '0.0.0.0/0', '192.168.0.0/16', 'fd01:b::/64', '::/0').map((cidr) => ({ cidr })),
  fc.constantFrom('/shop/*', '/shop/web', '/other', '/*', '/nothing').map((appId) => ({ appId })),
  fc.constantFrom({ tier: 'data' }, { tier: 'front' }).map((appLabels) => ({ appLabels })),
);
const ports = fc.oneof(
  fc.constantFrom('tcp' as const, 'udp' as const).chain((protocol) =>
    fc.oneof(fc.constant({ protocol }), fc.integer({ min: 1, max: 100 }).chain((port) => fc.integer({ min: port, max: 110 }).map((endPort) => ({ protocol, port, endPort })))),
  ),
  fc.constantFrom({ protocol: 'icmp' as const }, { protocol: 'any' as const }),
);
const policy = fc.record({
  name: fc.stringMatching(/^[a-z][a-z-]{0,5}[a-z]$/),
  to: fc.array(peer, { minLength: 1, maxLength: 2 }),
  defaultAction: fc.constantFrom('allow' as const, 'deny' as const),
  rules: fc.array(fc.record({ action: fc.constantFrom('allow' as const, 'deny' as const), from: fc.array(peer, { minLength: 1, maxLength: 2 }), ports: fc.array(ports, { maxLength: 2 }) }), { maxLength: 4 }),
});
const packet = fc.record({
  src: fc.constantFrom(...IPS),
  dst: fc.constantFrom(...IPS),
  protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const),
  port: fc.integer({ min: 1, max: 120 }),
}).map((p): Packet => (p.protocol === 'icmp' ? { src: p.src, dst: p.dst, protocol: 'icmp' } : p));

test('the compiled table and the evaluator agree for random policies and flows (property)', (t) => {
  const endpoints = policyEndpoints(apps, tasks);
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uniqueArray(policy, { selector: (p) => p.name, maxLength: 4 }), fc.array(packet, { minLength: 1, maxLength: 8 }), (policies, packets) => {
        const c = compilePolicies({ policies: policies as Policy[], endpoints });
        for (const p of packets) {
          if (p.src.includes(':') !== p.dst.includes(':')) continue;
          const from = resolveEndpoint(p.src, apps, tasks)!;
          const to = resolveEndpoint(p.dst, apps, tasks)!;
          const d = decide(policies as Policy[], { from, to, protocol: p.protocol, ...(p.port === undefined ? {} : { port: p.port }) });
          const k = interpret(c, p);
          if ((d.action === 'allow') !== (k === 'accept')) throw new Error(`${JSON.stringify(p)}: evaluator ${d.summary}; table ${k}`);
        }
      }),
      { numRuns: 1000 },
    ),
  );
});

test('updates never delete what the new table needs and send nothing when nothing changed (property)', (t) => {
  const endpoints = policyEndpoints(apps, tasks);
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uniqueArray(policy, { selector: (p) => p.name, maxLength: 3 }), fc.uniqueArray(policy, { selector: (p) => p.name, maxLength: 3 }), (a, b) => {
        const before = compilePolicies({ policies: a as Policy[], endpoints });
        const after = compilePolicies({ policies: b as Policy[], endpoints });
        const cmds = updateCommands(before, after);
        // Every object the new table needs is created or kept; nothing is referenced after it is deleted.
        const deleted = new Set(cmds.filter((c) => c.startsWith('delete chain') || c.startsWith('delete set')).map((c) => c.split(' ').at(-1)!));
        for (const name of [...after.sets.keys(), ...after.policyChains.keys(), ...after.comboChains.keys()]) if (deleted.has(name)) throw new Error(`${name} deleted but needed`);
        if (JSON.stringify([...before.sets]) === JSON.stringify([...after.sets]) && fullScript(before) === fullScript(after) && cmds.length > 0) throw new Error('commands for no change');
      }),
      { numRuns: 200 },
    ),
  );
});

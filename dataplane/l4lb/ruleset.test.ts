import test from 'ava';
import fc from 'fast-check';
import { MAX_BACKENDS, emptyState, fullRuleset, updateRuleset, type DesiredState, type RulesetState } from './ruleset.ts';
import { servicesFromVips, type L4Service, type VipViewInput } from './services.ts';

const svc = (vip: string, port: number, backends: [string, number][], protocol: 'tcp' | 'udp' = 'tcp'): L4Service => ({ vip, protocol, port, backends: backends.map(([ip, p]) => ({ ip, port: p })) });
const desired = (services: L4Service[], localBackendIps: string[] = []): DesiredState => ({ services, localBackendIps });

test('servicesFromVips keeps VIP ports with weighted-in backends, drops unreachable agents unless all are', (t) => {
  const services = servicesFromVips([
    {
      name: '/web', ipv4: '11.0.0.1', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }],
      backends: [
        { ip: '10.0.0.2', port: 31000, protocol: 'tcp', vipPort: 80, weight: 1 },
        { ip: '10.0.0.1', port: 31000, protocol: 'tcp', vipPort: 80, weight: 1 },
        { ip: '10.0.0.3', port: 31000, protocol: 'tcp', vipPort: 80, weight: 0 },
        { ip: '10.0.0.4', port: 31000, protocol: 'tcp', vipPort: 80, weight: 1, agentUnreachable: true },
        { ip: '10.0.0.5', port: 31001, protocol: 'udp', vipPort: 53, weight: 1, agentUnreachable: true },
      ],
    },
    { name: '/hostname', ipv4: '11.0.0.2', ports: [{ port: 80, protocol: 'tcp' }], backends: [{ ip: 'agent-1.example', port: 1, protocol: 'tcp', vipPort: 80, weight: 1 }] },
  ]);
  t.deepEqual(services, [
    svc('11.0.0.1', 80, [['10.0.0.1', 31000], ['10.0.0.2', 31000]]),
    svc('11.0.0.1', 53, [['10.0.0.5', 31001]], 'udp'),
    svc('11.0.0.2', 80, []),
  ], 'a backend host that is not an address is left out (the VIP refuses at once)');
});

test('servicesFromVips serves each family by its own backends: IPv6 VIP over IPv6 backends, IPv4 over IPv4', (t) => {
  const b = (ip: string, weight = 1): VipViewInput['backends'][number] => ({ ip, port: 8080, protocol: 'tcp', vipPort: 80, weight });
  const ports = [{ port: 80, protocol: 'tcp' }];
  const services = servicesFromVips([
    { name: '/dual', ipv4: '11.0.0.1', ipv6: 'fd01:c::1', ports, backends: [b('10.0.0.1'), b('fd00::1'), b('fd00::2', 0)] },
    { name: '/v4only', ipv4: '11.0.0.2', ipv6: 'fd01:c::2', ports, backends: [b('10.0.0.2')] },
    { name: '/v6only', ipv4: '11.0.0.3', ipv6: 'fd01:c::3', ports, backends: [b('fd00::3')] },
    { name: 'fd01:c::99', ipv6: 'fd01:c::99', ports, backends: [b('fd00::9')] },
  ]);
  t.deepEqual(services, [
    svc('11.0.0.1', 80, [['10.0.0.1', 8080]]),
    svc('11.0.0.2', 80, [['10.0.0.2', 8080]]),
    svc('fd01:c::1', 80, [['fd00::1', 8080]]),
    svc('fd01:c::3', 80, [['fd00::3', 8080]]),
    svc('fd01:c::99', 80, [['fd00::9', 8080]]),
  ]);
});

test('IPv6 services go to the ip6 maps and sets of the inet table', (t) => {
  const v4 = svc('11.0.0.1', 80, [['10.0.0.1', 8080]]);
  const v6 = svc('fd01:c::1', 80, [['fd00::1', 8080], ['fd00::2', 8080]]);
  const { script, state } = fullRuleset(desired([v4, v6, svc('fd01:c::2', 53, [], 'udp')], ['fd00::2']), 't');
  t.regex(script, /map be6_tcp \{ typeof ip6 daddr \. tcp dport \. numgen random mod 1 : ip6 daddr \. tcp dport; \}/);
  t.regex(script, /chain pick6_tcp_2 \{ dnat ip6 to ip6 daddr \. tcp dport \. numgen random mod 2 map @be6_tcp; \}/);
  t.regex(script, /add element inet t be6_tcp \{ fd01:c::1 \. 80 \. 0 : fd00::1 \. 8080, fd01:c::1 \. 80 \. 1 : fd00::2 \. 8080 \}/);
  t.regex(script, /add element inet t vips6 \{ fd01:c::1 \. tcp \. 80 : jump pick6_tcp_2 \}/);
  t.regex(script, /add element inet t dead6 \{ fd01:c::2 \. udp \. 53 \}/);
  t.regex(script, /add element inet t hairpin6 \{ fd00::2 \. fd00::2 \}/);
  t.regex(script, /add element inet t vips \{ 11\.0\.0\.1 \. tcp \. 80 : jump pick_tcp_1 \}/);
  t.deepEqual([...state.chains].sort(), ['pick6_tcp_2', 'pick_tcp_1']);
  const gone = updateRuleset(state, desired([v4, svc('fd01:c::1', 80, [['fd00::1', 8080]])]));
  t.deepEqual(gone.commands, [
    'delete element inet t dead6 { fd01:c::2 . udp . 53 }',
    'delete element inet t be6_tcp { fd01:c::1 . 80 . 1 }',
    'delete element inet t vips6 { fd01:c::1 . tcp . 80 }',
    'delete element inet t hairpin6 { fd00::2 . fd00::2 }',
    'add chain inet t pick6_tcp_1',
    'add rule inet t pick6_tcp_1 dnat ip6 to ip6 daddr . tcp dport . numgen random mod 1 map @be6_tcp',
    'add element inet t vips6 { fd01:c::1 . tcp . 80 : jump pick6_tcp_1 }',
  ]);
});

test('fullRuleset replaces the table in one script: VIP map, one pick chain per backend count, backend slots, dead VIPs, hairpin pairs', (t) => {
  const { script, state } = fullRuleset(desired([
    svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080]]),
    svc('11.0.0.3', 80, [['10.0.0.5', 8080], ['10.0.0.6', 8080]]),
    svc('11.0.0.2', 53, [], 'udp'),
  ], ['10.0.0.2']), 't');
  t.true(script.startsWith('add table ip t\ndelete table ip t\nadd table inet t\ndelete table inet t\ntable inet t {\n'), 'the whole inet table replaced, an IPv4-only table of an earlier version removed, in one transaction');
  t.deepEqual(script.match(/chain pick\S+/g), ['chain pick_tcp_2'], 'two VIPs with two backends share one chain');
  t.regex(script, /chain pick_tcp_2 \{ dnat ip to ip daddr \. tcp dport \. numgen random mod 2 map @be_tcp; \}/);
  t.regex(script, /add element inet t be_tcp \{ 11\.0\.0\.1 \. 80 \. 0 : 10\.0\.0\.1 \. 8080, 11\.0\.0\.1 \. 80 \. 1 : 10\.0\.0\.2 \. 8080, /);
  t.regex(script, /add element inet t vips \{ 11\.0\.0\.1 \. tcp \. 80 : jump pick_tcp_2, 11\.0\.0\.3 \. tcp \. 80 : jump pick_tcp_2 \}/);
  t.regex(script, /add element inet t dead \{ 11\.0\.0\.2 \. udp \. 53 \}/);
  t.regex(script, /add element inet t hairpin \{ 10\.0\.0\.2 \. 10\.0\.0\.2 \}/);
  t.regex(script, /type nat hook output priority -100/);
  t.is(state.services.size, 3);
});

test('updateRuleset sends only what changed, and nothing when nothing changed', (t) => {
  const a = svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080]]);
  const b = svc('11.0.0.2', 80, [['10.0.0.3', 8080]]);
  const { state } = fullRuleset(desired([a, b]), 't');
  t.deepEqual(updateRuleset(state, desired([a, b])).commands, []);
  const shrunk = svc('11.0.0.2', 80, []);
  const u = updateRuleset(state, desired([a, shrunk]));
  t.deepEqual(u.commands, [
    'delete element inet t be_tcp { 11.0.0.2 . 80 . 0 }',
    'delete element inet t vips { 11.0.0.2 . tcp . 80 }',
    'add element inet t dead { 11.0.0.2 . tcp . 80 }',
  ]);
  // Same number of backends, one replaced: only that slot changes; the VIP element stays.
  const swapped = updateRuleset(state, desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.7', 8080]]), b]));
  t.deepEqual(swapped.commands, ['delete element inet t be_tcp { 11.0.0.1 . 80 . 1 }', 'add element inet t be_tcp { 11.0.0.1 . 80 . 1 : 10.0.0.7 . 8080 }']);
  // One more backend: a new slot, and the VIP jumps to the chain for three (created on first use).
  const grown = updateRuleset(state, desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080], ['10.0.0.3', 8080]]), b]));
  t.deepEqual(grown.commands, [
    'delete element inet t vips { 11.0.0.1 . tcp . 80 }',
    'add chain inet t pick_tcp_3',
    'add rule inet t pick_tcp_3 dnat ip to ip daddr . tcp dport . numgen random mod 3 map @be_tcp',
    'add element inet t be_tcp { 11.0.0.1 . 80 . 2 : 10.0.0.3 . 8080 }',
    'add element inet t vips { 11.0.0.1 . tcp . 80 : jump pick_tcp_3 }',
  ]);
  const removed = updateRuleset(u.state, desired([a]));
  t.deepEqual(removed.commands, ['delete element inet t dead { 11.0.0.2 . tcp . 80 }']);
  const added = updateRuleset(removed.state, desired([a, svc('11.0.0.9', 443, [['10.0.0.9', 9443]])]));
  t.deepEqual(added.commands, [
    'add element inet t be_tcp { 11.0.0.9 . 443 . 0 : 10.0.0.9 . 9443 }',
    'add element inet t vips { 11.0.0.9 . tcp . 443 : jump pick_tcp_1 }',
  ], 'the chain for one backend exists already');
});

/** What the kernel would hold after a script, modelled as the state's observable parts. */
function observable(state: RulesetState): string[] {
  return [...state.services.values()].map((s) => `${s.vip}/${s.protocol}/${s.port} -> ${s.backends.map((b) => `${b.ip}:${b.port}`).join(',')}`).sort();
}

test('any sequence of updates ends in the same services as a full load, with every chain it jumps to (property)', (t) => {
  const serviceArb = fc.record({
    vip: fc.integer({ min: 1, max: 6 }).map((n) => (n % 2 === 0 ? `fd01:c::${n}` : `11.0.0.${n}`)),
    protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    port: fc.constantFrom(80, 443),
    backends: fc.uniqueArray(fc.integer({ min: 1, max: 20 }), { maxLength: 6 }).map((ns) => ns.sort((x, y) => x - y).map((n) => ({ ip: `10.0.0.${n}`, port: 8080 }))),
  });
  const stateArb = fc.uniqueArray(serviceArb, { selector: (s) => `${s.vip} ${s.protocol} ${s.port}`, maxLength: 8 });
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(stateArb, { minLength: 1, maxLength: 6 }), (steps) => {
        let state = emptyState('t');
        for (const [i, unsorted] of steps.entries()) {
          // Every other step sorted by key (the fast path servicesFromVips's order takes), the others as generated.
          const services = i % 2 === 0 ? unsorted : [...unsorted].sort((a, b) => (`${a.vip} ${a.protocol} ${a.port}` < `${b.vip} ${b.protocol} ${b.port}` ? -1 : 1));
          state = updateRuleset(state, desired(services)).state;
          const full = fullRuleset(desired(services), 't').state;
          if ([...full.chains].some((c) => !state.chains.has(c))) return false;
          if (observable(state).join('|') !== observable(fullRuleset(desired(services), 't').state).join('|')) return false;
        }
        return true;
      }),
    ),
  );
});

test('a VIP port balances over at most MAX_BACKENDS backends', (t) => {
  const many = Array.from({ length: MAX_BACKENDS + 5 }, (_, i) => [`10.1.${i >> 8}.${i & 255}`, 80] as [string, number]);
  const { state } = fullRuleset(desired([svc('11.0.0.1', 80, many)]), 't');
  t.is([...state.services.values()][0]!.backends.length, MAX_BACKENDS);
});

test('a desired state naming one service twice counts the last one, as a full load does', (t) => {
  const { state } = fullRuleset(desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080]])]), 't');
  const twice = desired([svc('11.0.0.1', 80, [['10.0.0.2', 8080]]), svc('11.0.0.1', 80, [['10.0.0.3', 8080]])]);
  const u = updateRuleset(state, twice);
  t.deepEqual(u.commands, ['delete element inet t be_tcp { 11.0.0.1 . 80 . 0 }', 'add element inet t be_tcp { 11.0.0.1 . 80 . 0 : 10.0.0.3 . 8080 }']);
  t.deepEqual(observable(u.state), observable(fullRuleset(twice, 't').state));
});

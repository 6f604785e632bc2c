import test from 'ava';
import fc from 'fast-check';
import { BLOCK_SIZE, emptyState, fullRuleset, updateRuleset, type DesiredState, type RulesetState } from './ruleset.ts';
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
  t.regex(script, /map be6_tcp \{ typeof meta mark : ip6 daddr \. tcp dport; \}/);
  t.regex(script, /meta nfproto ipv6 meta l4proto tcp meta mark & 0xff000000 == 0x5a000000 dnat ip6 to meta mark map @be6_tcp/);
  t.regex(script, /add element inet t be6_tcp \{ 0x5a000100 : fd00::1 \. 8080, 0x5a000101 : fd00::2 \. 8080 \}/);
  t.regex(script, /add element inet t vips6 \{ fd01:c::1 \. tcp \. 80 : jump svc_1 \}/);
  t.regex(script, /add element inet t dead6 \{ fd01:c::2 \. udp \. 53 \}/);
  t.regex(script, /add element inet t hairpin6 \{ fd00::2 \. fd00::2 \}/);
  t.regex(script, /add element inet t vips \{ 11\.0\.0\.1 \. tcp \. 80 : jump svc_0 \}/);
  const gone = updateRuleset(state, desired([v4, svc('fd01:c::1', 80, [['fd00::1', 8080]])]));
  t.deepEqual(gone.commands, [
    'delete element inet t dead6 { fd01:c::2 . udp . 53 }',
    'flush chain inet t svc_2',
    'delete chain inet t svc_2',
    'delete element inet t be6_tcp { 0x5a000101 }',
    'delete element inet t hairpin6 { fd00::2 . fd00::2 }',
    'flush chain inet t svc_1',
    'add rule inet t svc_1 meta mark set numgen random mod 1 offset 0x5a000100',
  ]);
});

test('fullRuleset replaces the table in one script: VIP map, one chain per VIP port, backend slots, dead VIPs, hairpin pairs', (t) => {
  const { script, state } = fullRuleset(desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080]]), svc('11.0.0.2', 53, [], 'udp')], ['10.0.0.2']), 't');
  t.true(script.startsWith('add table ip t\ndelete table ip t\nadd table inet t\ndelete table inet t\ntable inet t {\n'), 'the whole inet table replaced, an IPv4-only table of an earlier version removed, in one transaction');
  t.regex(script, /chain svc_0 \{ meta mark set numgen random mod 2 offset 0x5a000000; \}/);
  t.regex(script, /add element inet t be_tcp \{ 0x5a000000 : 10\.0\.0\.1 \. 8080, 0x5a000001 : 10\.0\.0\.2 \. 8080 \}/);
  t.regex(script, /add element inet t vips \{ 11\.0\.0\.1 \. tcp \. 80 : jump svc_0 \}/);
  t.regex(script, /add element inet t dead \{ 11\.0\.0\.2 \. udp \. 53 \}/);
  t.regex(script, /add element inet t hairpin \{ 10\.0\.0\.2 \. 10\.0\.0\.2 \}/);
  t.regex(script, /type nat hook output priority -100/);
  t.is(state.services.size, 2);
});

test('updateRuleset sends only what changed, keeps blocks stable, and nothing when nothing changed', (t) => {
  const a = svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080]]);
  const b = svc('11.0.0.2', 80, [['10.0.0.3', 8080]]);
  const { state } = fullRuleset(desired([a, b]), 't');
  t.deepEqual(updateRuleset(state, desired([a, b])).commands, []);
  const shrunk = svc('11.0.0.2', 80, []);
  const u = updateRuleset(state, desired([a, shrunk]));
  t.deepEqual(u.commands, [
    'delete element inet t be_tcp { 0x5a000100 }',
    'delete element inet t vips { 11.0.0.2 . tcp . 80 }',
    'flush chain inet t svc_1',
    'add element inet t dead { 11.0.0.2 . tcp . 80 }',
  ]);
  // Same number of backends, one replaced: only that slot changes; the chain rule and VIP element stay.
  const swapped = updateRuleset(state, desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.7', 8080]]), b]));
  t.deepEqual(swapped.commands, ['delete element inet t be_tcp { 0x5a000001 }', 'add element inet t be_tcp { 0x5a000001 : 10.0.0.7 . 8080 }']);
  // One more backend: a new slot and the rule's modulus.
  const grown = updateRuleset(state, desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080], ['10.0.0.2', 8080], ['10.0.0.3', 8080]]), b]));
  t.deepEqual(grown.commands, [
    'add element inet t be_tcp { 0x5a000002 : 10.0.0.3 . 8080 }',
    'flush chain inet t svc_0',
    'add rule inet t svc_0 meta mark set numgen random mod 3 offset 0x5a000000',
  ]);
  const removed = updateRuleset(u.state, desired([a]));
  t.deepEqual(removed.commands, ['delete element inet t dead { 11.0.0.2 . tcp . 80 }', 'flush chain inet t svc_1', 'delete chain inet t svc_1']);
  const added = updateRuleset(removed.state, desired([a, svc('11.0.0.9', 443, [['10.0.0.9', 9443]])]));
  t.deepEqual(added.commands, [
    'add chain inet t svc_1',
    'add element inet t be_tcp { 0x5a000100 : 10.0.0.9 . 9443 }',
    'add rule inet t svc_1 meta mark set numgen random mod 1 offset 0x5a000100',
    'add element inet t vips { 11.0.0.9 . tcp . 443 : jump svc_1 }',
  ], 'the freed block is reused');
});

/** What the kernel would hold after a script, modelled as the state's observable parts. */
function observable(state: RulesetState): string[] {
  return [...state.services.values()].map((s) => `${s.vip}/${s.protocol}/${s.port} -> ${s.backends.map((b) => `${b.ip}:${b.port}`).join(',')}`).sort();
}

test('any sequence of updates ends in the same services as a full load, with distinct blocks (property)', (t) => {
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
          const blocks = [...state.services.values()].map((s) => s.block);
          if (new Set(blocks).size !== blocks.length) return false;
          if (observable(state).join('|') !== observable(fullRuleset(desired(services), 't').state).join('|')) return false;
        }
        return true;
      }),
    ),
  );
});

test('a VIP port balances over at most one block of backends', (t) => {
  const many = Array.from({ length: BLOCK_SIZE + 5 }, (_, i) => [`10.1.${i >> 8}.${i & 255}`, 80] as [string, number]);
  const { state } = fullRuleset(desired([svc('11.0.0.1', 80, many)]), 't');
  t.is([...state.services.values()][0]!.backends.length, BLOCK_SIZE);
});

test('a desired state naming one service twice counts the last one, as a full load does', (t) => {
  const { state } = fullRuleset(desired([svc('11.0.0.1', 80, [['10.0.0.1', 8080]])]), 't');
  const twice = desired([svc('11.0.0.1', 80, [['10.0.0.2', 8080]]), svc('11.0.0.1', 80, [['10.0.0.3', 8080]])]);
  const u = updateRuleset(state, twice);
  t.deepEqual(u.commands, ['delete element inet t be_tcp { 0x5a000000 }', 'add element inet t be_tcp { 0x5a000000 : 10.0.0.3 . 8080 }']);
  t.deepEqual(observable(u.state), observable(fullRuleset(twice, 't').state));
});

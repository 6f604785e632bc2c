import test from 'ava';
import * as packet from 'dns-packet';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { authorityPlugin } from '../plugins/authority/authority.ts';
import { readyPlugin } from '../plugins/ready/ready.ts';
import { createFakeAuthority, type FakeAuthority } from '../zone-fake/fake-authority.ts';
import type { ResourceRecord } from '../zone/types.ts';
import { compose } from './handler.ts';
import { serverMetrics } from './metrics.ts';
import { buildDnsServer, type DnsServer } from './server.ts';
import { buildQuery, rcodeOf, recordingLogger } from './testing.ts';

const A = (name: string, address: string): ResourceRecord => ({ name, type: 'A', ttlSeconds: 60, address });
const RECORDS: ResourceRecord[] = [
  A('web.marathon.mesos', '10.0.0.7'),
  { name: 'web.marathon.mesos', type: 'AAAA', ttlSeconds: 60, address: 'fd01::7' },
  { name: '_web._tcp.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31007, target: 'web.marathon.mesos' },
  A('two.marathon.mesos', '10.0.0.1'),
  A('two.marathon.mesos', '10.0.0.2'),
  { name: 'big.marathon.mesos', type: 'TXT', ttlSeconds: 60, text: ['x'.repeat(600)] },
  A('leader.mesos', '10.0.255.1'),
];

function build(authority: FakeAuthority, answerCacheMaxEntries: number): { server: DnsServer; registry: Registry } {
  const registry = new Registry();
  const server = buildDnsServer({
    handler: compose([readyPlugin(), authorityPlugin(authority)]),
    metrics: serverMetrics(registry),
    logger: recordingLogger(),
    maxUdpPayloadBytes: 1232,
    recursionAvailable: false,
    answerCacheMaxEntries,
  });
  return { server, registry };
}

const zone = (): FakeAuthority => createFakeAuthority({ zones: ['mesos'], records: RECORDS });

/** Raw query with flags and OPT under the test's control (dns-packet cannot set CD alone or an empty OPT exactly). */
function rawQuery(name: string, options: { id: number; type: number; rd: boolean; cd: boolean; edns?: { size: number; dnssecOk: boolean } }): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const header = Buffer.from([options.id >> 8, options.id & 0xff, options.rd ? 1 : 0, options.cd ? 0x10 : 0, 0, 1, 0, 0, 0, 0, 0, options.edns ? 1 : 0]);
  const question = Buffer.concat([...labels, Buffer.from([0, options.type >> 8, options.type & 0xff, 0, 1])]);
  const opt = options.edns
    ? Buffer.from([0, 0, 41, options.edns.size >> 8, options.edns.size & 0xff, 0, 0, options.edns.dnssecOk ? 0x80 : 0, 0, 0, 0])
    : Buffer.alloc(0);
  return Buffer.concat([header, question, opt]);
}

test('a repeated question is answered from the kept bytes: same reply as the encoder, with the ID, flags and case of each query', async (t) => {
  const authority = zone();
  const { server, registry } = build(authority, 100);
  const first = await server.answer(buildQuery('web.marathon.mesos', { id: 1 }), 'udp');
  const asked = authority.asked.length;
  const second = (await server.answer(buildQuery('wEB.Marathon.MESOS', { id: 0xbeef }), 'udp'))!;
  const third = (await server.answer(buildQuery('WEB.marathon.mesos', { id: 7 }), 'udp'))!;
  t.is(authority.asked.length, asked + 1, 'the first mixed-case question is a miss (it compresses differently), the next is a hit');
  const decoded = packet.decode(third);
  t.is(decoded.id, 7);
  t.like(decoded.answers![0], { name: 'WEB.marathon.mesos', type: 'A', ttl: 60, data: '10.0.0.7' });
  t.is(packet.decode(second).answers![0]!.name, 'wEB.Marathon.MESOS');
  t.is(packet.decode(first!).answers![0]!.name, 'web.marathon.mesos');
  // Byte for byte what a server without the cache sends.
  const plain = build(zone(), 0).server;
  t.deepEqual(third, await plain.answer(buildQuery('WEB.marathon.mesos', { id: 7 }), 'udp'));
  t.regex(await registry.getSingleMetricAsString('strata_dns_answer_cache_hits_total'), /strata_dns_answer_cache_hits_total 1/);
  t.regex(await registry.getSingleMetricAsString('strata_dns_requests_total'), /transport="udp",plugin="authority",rcode="NOERROR"} 3/);
});

test('a change in the zone (version) is answered at once; answers that rotate are never kept', async (t) => {
  const authority = zone();
  const { server } = build(authority, 100);
  const ask = async (name: string): Promise<packet.Packet> => packet.decode((await server.answer(buildQuery(name), 'udp'))!);
  t.like((await ask('web.marathon.mesos')).answers![0], { data: '10.0.0.7' });
  t.like((await ask('web.marathon.mesos')).answers![0], { data: '10.0.0.7' });
  authority.setRecords([A('web.marathon.mesos', '10.0.0.8')]);
  t.like((await ask('web.marathon.mesos')).answers![0], { data: '10.0.0.8' });
  authority.setSynced(false);
  t.is(rcodeOf(await ask('web.marathon.mesos')), 'SERVFAIL');
  authority.setSynced(true);
  authority.setRecords(RECORDS);
  const before = authority.asked.length;
  await ask('two.marathon.mesos');
  await ask('two.marathon.mesos');
  await ask('two.marathon.mesos');
  t.is(authority.asked.length, before + 3, 'two answers: asked every time');
});

test('a kept answer too big for the query goes the slow way: TC over UDP without EDNS, whole over TCP and EDNS', async (t) => {
  const { server } = build(zone(), 100);
  const tcp = packet.decode((await server.answer(buildQuery('big.marathon.mesos', { type: 'TXT' }), 'tcp'))!);
  t.is(tcp.answers!.length, 1);
  const udp = (await server.answer(buildQuery('big.marathon.mesos', { type: 'TXT' }), 'udp'))!;
  t.true((udp[2]! & 0x02) !== 0, 'TC');
  t.is(packet.decode(udp).answers!.length, 0);
  const edns = packet.decode((await server.answer(buildQuery('big.marathon.mesos', { type: 'TXT', udpPayloadSize: 1232 }), 'udp'))!);
  t.is(edns.answers!.length, 1);
});

test('the cache is bounded: the oldest entry goes first', async (t) => {
  const { server, registry } = build(zone(), 2);
  for (const name of ['web.marathon.mesos', 'leader.mesos', 'a.mesos', 'b.mesos']) await server.answer(buildQuery(name), 'udp');
  t.regex(await registry.getSingleMetricAsString('strata_dns_answer_cache_entries'), /strata_dns_answer_cache_entries 2/);
});

test('property: with the cache on, every reply is byte for byte the reply of a server without it', async (t) => {
  const cached = build(zone(), 1000);
  const plain = build(zone(), 0);
  const names = ['web.marathon.mesos', '_web._tcp.marathon.mesos', 'two.marathon.mesos', 'big.marathon.mesos', 'nope.marathon.mesos', 'marathon.mesos', 'mesos', 'ready.spartan', 'x.spartan', 'example.com'];
  const types = [1, 28, 33, 16, 6, 2, 255, 99];
  const caseOf = (name: string, mask: number): string => [...name].map((c, i) => ((mask >> i % 30) & 1 ? c.toUpperCase() : c)).join('');
  await t.notThrowsAsync(fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          name: fc.constantFrom(...names),
          mask: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 30 - 1 })),
          type: fc.constantFrom(...types),
          id: fc.integer({ min: 0, max: 0xffff }),
          rd: fc.boolean(),
          cd: fc.boolean(),
          edns: fc.option(fc.record({ size: fc.constantFrom(0, 512, 700, 1232, 4096), dnssecOk: fc.boolean() }), { nil: undefined }),
          transport: fc.constantFrom('udp' as const, 'tcp' as const),
        }),
        { minLength: 1, maxLength: 30 },
      ),
      async (queries) => {
        for (const q of queries) {
          const bytes = rawQuery(caseOf(q.name, q.mask), q);
          const [a, b] = [await cached.server.answer(bytes, q.transport), await plain.server.answer(bytes, q.transport)];
          if (!a || !b || !a.equals(b)) return false;
        }
        return true;
      },
    ),
    { numRuns: 150 },
  ));
  const hits = /strata_dns_answer_cache_hits_total (\d+)/.exec(await cached.registry.getSingleMetricAsString('strata_dns_answer_cache_hits_total'));
  t.true(Number(hits?.[1]) > 100, 'the fast path was taken');
});

test('fuzz: mutated plain queries get the same reply (or none) with and without the cache', async (t) => {
  const SLOW = process.env.STRATA_SLOW === '1';
  const { server: cached, registry } = build(zone(), 1000);
  const plain = build(zone(), 0).server;
  const seeds = [
    rawQuery('web.marathon.mesos', { id: 1, type: 1, rd: true, cd: false }),
    rawQuery('Web.Marathon.mesos', { id: 2, type: 28, rd: false, cd: true, edns: { size: 1232, dnssecOk: true } }),
    rawQuery('_web._tcp.marathon.mesos', { id: 3, type: 33, rd: true, cd: false, edns: { size: 512, dnssecOk: false } }),
    rawQuery('nope.marathon.mesos', { id: 4, type: 1, rd: true, cd: false }),
    rawQuery('ready.spartan', { id: 5, type: 1, rd: true, cd: false }),
    rawQuery('big.marathon.mesos', { id: 6, type: 16, rd: true, cd: false, edns: { size: 4096, dnssecOk: false } }),
  ];
  let x = 12345;
  const random = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const reply = (server: DnsServer, bytes: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    let out: Buffer | undefined;
    server.respond(bytes, transport, (r) => (out = r));
    return out;
  };
  let differ = 0;
  const cases = SLOW ? 1_000_000 : 20_000;
  for (let i = 0; i < cases; i++) {
    const seed = seeds[i % seeds.length]!;
    const bytes = Buffer.from(seed);
    // Mostly one byte changed (ID, flags, case, counts, OPT fields): many stay plain and hit the cache.
    const edits = random() < 0.7 ? 1 : 2;
    for (let e = 0; e < edits; e++) bytes[Math.floor(random() * bytes.length)] = random() < 0.5 ? Math.floor(random() * 256) : bytes[Math.floor(random() * bytes.length)]! ^ 0x20;
    const cut = random() < 0.1 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
    const transport = random() < 0.8 ? 'udp' : 'tcp';
    const a = reply(cached, cut, transport);
    const b = reply(plain, cut, transport);
    if (a === undefined ? b !== undefined : b === undefined || !a.equals(b)) differ++;
  }
  t.is(differ, 0);
  const hits = /strata_dns_answer_cache_hits_total (\d+)/.exec(await registry.getSingleMetricAsString('strata_dns_answer_cache_hits_total'));
  t.true(Number(hits?.[1]) > cases / 10, 'many mutants took the fast path');
});

import test from 'ava';
import * as packet from 'dns-packet';
import { Registry } from 'prom-client';
import { parseQuery } from '../../codec/query.ts';
import type { DnsReply, DnsRequest, Handler } from '../../server/handler.ts';
import { askUdp, buildQuery, rcodeOf, startTestServer } from '../../server/testing.ts';
import { createFakeAuthority } from '../../zone-fake/fake-authority.ts';
import { answerA, startFakeUpstream } from '../forward/fake-upstream.ts';
import { cachePlugin, cacheableSeconds } from './cache.ts';
import { cacheMetrics } from './metrics.ts';

function request(name: string, options: Parameters<typeof buildQuery>[1] = {}): DnsRequest {
  const bytes = buildQuery(name, options);
  const parsed = parseQuery(bytes);
  if (parsed.kind !== 'query') throw new Error('bad test query');
  return { query: parsed.query, bytes, transport: 'udp', maxReplyBytes: 512 };
}

/** The cache answers hits and a synchronous next plugin synchronously. */
function sync(reply: DnsReply | Promise<DnsReply>): DnsReply {
  if (reply instanceof Promise) throw new Error('expected a synchronous reply');
  return reply;
}

/** An upstream stand-in that answers from dns-packet and counts calls. */
function upstream(build: (q: packet.DecodedPacket) => packet.Packet): Handler & { calls: number } {
  const h = {
    name: 'fake',
    calls: 0,
    serve(r: DnsRequest): DnsReply {
      h.calls++;
      const q = packet.decode(r.bytes);
      return { kind: 'relay', plugin: 'fake', bytes: packet.encode({ ...build(q), id: q.id, type: 'response', questions: q.questions }) };
    },
  };
  return h;
}

test('caches for the smallest TTL, ages TTLs, keeps the client\'s ID and spelling; expires', (t) => {
  let nowMs = 1_000_000;
  const next = upstream((q) => ({
    answers: [
      { name: q.questions![0]!.name, type: 'A', ttl: 300, data: '192.0.2.1' },
      { name: q.questions![0]!.name, type: 'A', ttl: 60, data: '192.0.2.2' },
    ],
  }));
  const handler = cachePlugin({ maxEntries: 10, maxTtlSeconds: 3600, metrics: cacheMetrics(new Registry()), now: () => nowMs })(next);
  sync(handler.serve(request('www.example.com', { id: 1 })));
  nowMs += 10_500;
  const hit = sync(handler.serve(request('WWW.Example.COM', { id: 2 }))) as DnsReply & { kind: 'relay' };
  t.is(next.calls, 1);
  const decoded = packet.decode(hit.bytes);
  t.is(decoded.id, 2);
  t.is(decoded.questions![0]!.name, 'WWW.Example.COM');
  t.deepEqual(decoded.answers!.map((a) => (a as { ttl?: number }).ttl), [290, 50]);
  nowMs += 50_000; // past the 60 s TTL
  sync(handler.serve(request('www.example.com', { id: 3 })));
  t.is(next.calls, 2);
});

test('negative answers live for the SOA minimum; SERVFAIL, REFUSED and TC are never cached; keys split DO and EDNS', (t) => {
  const soa = { name: 'example.com', type: 'SOA', ttl: 900, data: { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 30 } } as const;
  const nx = packet.encode({ type: 'response', id: 1, flags: 3, questions: [{ name: 'x.example.com', type: 'A' }], authorities: [soa] });
  t.is(cacheableSeconds(nx, 3600).seconds, 30);
  const nxNoSoa = packet.encode({ type: 'response', id: 1, flags: 3, questions: [{ name: 'x.example.com', type: 'A' }] });
  t.is(cacheableSeconds(nxNoSoa, 3600).seconds, 0);
  for (const flags of [2, 5, packet.TRUNCATED_RESPONSE]) {
    const bytes = packet.encode({ type: 'response', id: 1, flags, questions: [{ name: 'x.example.com', type: 'A' }], answers: [{ name: 'x.example.com', type: 'A', ttl: 60, data: '192.0.2.1' }] });
    t.is(cacheableSeconds(bytes, 3600).seconds, 0, `flags ${flags}`);
  }
  const capped = packet.encode({ type: 'response', id: 1, questions: [{ name: 'x', type: 'A' }], answers: [{ name: 'x', type: 'A', ttl: 86400 * 7, data: '192.0.2.1' }] });
  t.is(cacheableSeconds(capped, 3600).seconds, 3600);

  const next = upstream((q) => ({ answers: [{ name: q.questions![0]!.name, type: 'A', ttl: 60, data: '192.0.2.1' }] }));
  const handler = cachePlugin({ maxEntries: 10, maxTtlSeconds: 3600, metrics: cacheMetrics(new Registry()) })(next);
  sync(handler.serve(request('a.example.com')));
  sync(handler.serve(request('a.example.com', { udpPayloadSize: 1232 })));
  sync(handler.serve(request('a.example.com', { udpPayloadSize: 1232, dnssecOk: true })));
  sync(handler.serve(request('a.example.com', { type: 'AAAA' })));
  t.is(next.calls, 4, 'four different keys');
  sync(handler.serve(request('a.example.com', { udpPayloadSize: 1232, dnssecOk: true })));
  t.is(next.calls, 4);
});

test('LRU: the least recently used entry goes first', (t) => {
  const next = upstream((q) => ({ answers: [{ name: q.questions![0]!.name, type: 'A', ttl: 60, data: '192.0.2.1' }] }));
  const registry = new Registry();
  const handler = cachePlugin({ maxEntries: 2, maxTtlSeconds: 3600, metrics: cacheMetrics(registry) })(next);
  sync(handler.serve(request('a.example')));
  sync(handler.serve(request('b.example')));
  sync(handler.serve(request('a.example'))); // a is now the most recent
  sync(handler.serve(request('c.example'))); // evicts b
  const calls = next.calls;
  sync(handler.serve(request('a.example')));
  t.is(next.calls, calls);
  sync(handler.serve(request('b.example')));
  t.is(next.calls, calls + 1);
});

test('in the server: forwarded names are cached, internal names never (a new task answers at once)', async (t) => {
  const up = await startFakeUpstream(answerA(7));
  t.teardown(() => up.close());
  const zone = createFakeAuthority({ zones: ['mesos'], records: [] });
  const s = await startTestServer(zone, { upstreams: [up.address] });
  t.teardown(() => s.close());
  t.is(rcodeOf(await askUdp(s.udpPort, 'ext.example.com')), 'NOERROR');
  t.is(rcodeOf(await askUdp(s.udpPort, 'ext.example.com')), 'NOERROR');
  t.is(up.received.length, 1, 'second answer from the cache');
  t.is(rcodeOf(await askUdp(s.udpPort, 'web.marathon.mesos')), 'NXDOMAIN');
  zone.setRecords([{ name: 'web.marathon.mesos', type: 'A', ttlSeconds: 60, address: '10.0.0.5' }]);
  const now = await askUdp(s.udpPort, 'web.marathon.mesos');
  t.like(now.answers![0], { data: '10.0.0.5' });
  t.regex(await s.registry.getSingleMetricAsString('strata_dns_cache_hits_total'), /strata_dns_cache_hits_total 1/);
});

import test from 'ava';
import * as packet from 'dns-packet';
import { askTcp, askUdp, buildQuery, hasFlag, rcodeOf, startTestServer, udpExchange } from '../../server/testing.ts';
import { createFakeAuthority } from '../../zone-fake/fake-authority.ts';
import { answerA, startFakeUpstream, type FakeBehaviour, type FakeUpstream } from './fake-upstream.ts';
import { Registry } from 'prom-client';
import { parseQuery } from '../../codec/query.ts';
import { REFUSE, type DnsReply, type DnsRequest } from '../../server/handler.ts';
import { createUpstreamExchange, type ExchangeResult, type UpstreamExchange } from './exchange.ts';
import { forwardPlugin } from './forward.ts';
import { UpstreamHealth } from './health.ts';
import { forwardMetrics } from './metrics.ts';
import { parse } from './setup.ts';
import { parseUpstream } from './upstream.ts';

const noZones = () => createFakeAuthority({ zones: ['mesos'], records: [{ name: 'leader.mesos', type: 'A', ttlSeconds: 60, address: '10.0.0.1' }] });

async function upstreams(t: { teardown(fn: () => Promise<void>): void }, ...behaviours: FakeBehaviour[]): Promise<FakeUpstream[]> {
  const started = await Promise.all(behaviours.map((b) => startFakeUpstream(b)));
  for (const u of started) t.teardown(() => u.close());
  return started;
}

async function server(t: { teardown(fn: () => Promise<void>): void }, overrides: Record<string, unknown>) {
  const s = await startTestServer(noZones(), { cacheMaxEntries: 0, ...overrides });
  t.teardown(() => s.close());
  return s;
}

test('relays upstream replies byte-for-byte (unknown types, OPT with DO and options, flags); only the ID is the client\'s', async (t) => {
  let sent: Buffer | undefined;
  const exotic: FakeBehaviour = {
    kind: 'answer',
    reply: (q) => {
      const bytes = packet.encode({
        type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | packet.AUTHENTIC_DATA,
        questions: q.questions,
        answers: [
          { name: q.questions![0]!.name, type: 'A', ttl: 123, data: '192.0.2.55' },
          { name: q.questions![0]!.name, type: 'UNKNOWN_65280', ttl: 7, data: Buffer.from('opaque') } as unknown as packet.Answer,
        ],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: packet.DNSSEC_OK, options: [{ code: 15, data: Buffer.from([0, 18, 0x41]) }] } as unknown as packet.Answer],
      });
      sent = bytes;
      return bytes;
    },
  };
  const [up] = await upstreams(t, exotic);
  const s = await server(t, { upstreams: [up!.address] });
  const query = buildQuery('Relay.Example.com', { id: 0xbeef, udpPayloadSize: 1232, dnssecOk: true });
  const reply = (await udpExchange(s.udpPort, query))!;
  t.is(reply.readUInt16BE(0), 0xbeef);
  t.deepEqual(reply.subarray(2), sent!.subarray(2), 'every byte after the ID as the upstream sent it');
  // The upstream got the client's query, only with another ID (EDNS and DO passed on).
  const asked = up!.received[0]!.bytes;
  t.deepEqual(asked.subarray(2), query.subarray(2));
  t.not(asked.readUInt16BE(0), -1);
});

test('TC from upstream is relayed; the client\'s TCP retry is forwarded over TCP', async (t) => {
  const tc: FakeBehaviour = {
    kind: 'answer',
    reply: (q, raw) => {
      // Over UDP: TC with no answers; over TCP (no way to tell here but size of query framing), a full answer.
      const tcp = raw.length > 0 && up!.received.at(-1)!.transport === 'tcp';
      return packet.encode({
        type: 'response', id: q.id, flags: tcp ? 0 : packet.TRUNCATED_RESPONSE, questions: q.questions,
        answers: tcp ? Array.from({ length: 60 }, (_, i) => ({ name: q.questions![0]!.name, type: 'A' as const, ttl: 60, data: `192.0.2.${i}` })) : [],
      });
    },
  };
  const [up] = await upstreams(t, tc);
  const s = await server(t, { upstreams: [up!.address] });
  const udp = await askUdp(s.udpPort, 'big.example.com');
  t.true(hasFlag(udp, packet.TRUNCATED_RESPONSE));
  const tcp = await askTcp(s.tcpPort, 'big.example.com');
  t.is(tcp.answers!.length, 60);
  t.deepEqual(up!.received.map((r) => r.transport), ['udp', 'tcp']);
});

test('an upstream reply bigger than the UDP client allows is cut to TC by the server', async (t) => {
  const oversize: FakeBehaviour = {
    kind: 'answer',
    reply: (q) => packet.encode({
      type: 'response', id: q.id, questions: q.questions,
      answers: Array.from({ length: 60 }, (_, i) => ({ name: q.questions![0]!.name, type: 'A' as const, ttl: 60, data: `192.0.2.${i}` })),
    }),
  };
  const [up] = await upstreams(t, oversize);
  const s = await server(t, { upstreams: [up!.address] });
  const reply = (await udpExchange(s.udpPort, buildQuery('many.example.com')))!;
  t.true(reply.length <= 512);
  const decoded = packet.decode(reply);
  t.true(hasFlag(decoded, packet.TRUNCATED_RESPONSE));
  t.is(decoded.answers!.length, 0);
  t.regex(await s.registry.getSingleMetricAsString('strata_dns_truncated_total'), /transport="udp"} 1/);
});

test('a SERVFAIL or REFUSED is not returned while another upstream may still answer', async (t) => {
  const [bad, slowGood] = await upstreams(t, { kind: 'rcode', rcode: 'SERVFAIL' }, { ...answerA(2), delayMs: 100 } as FakeBehaviour);
  const s = await server(t, { upstreams: [bad!.address, slowGood!.address] });
  const reply = await askUdp(s.udpPort, 'a.example.com');
  t.is(rcodeOf(reply), 'NOERROR');
  t.like(reply.answers![0], { data: '192.0.2.2' });
  bad!.behave({ kind: 'rcode', rcode: 'REFUSED' });
  t.is(rcodeOf(await askUdp(s.udpPort, 'b.example.com')), 'NOERROR');
  // NXDOMAIN is a good answer: relayed at once.
  bad!.behave({ kind: 'rcode', rcode: 'NXDOMAIN' });
  t.is(rcodeOf(await askUdp(s.udpPort, 'c.example.com')), 'NXDOMAIN');
  const failures = await s.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total');
  t.regex(failures, new RegExp(`upstream="${bad!.address}",reason="SERVFAIL"} 1`));
  t.regex(failures, new RegExp(`upstream="${bad!.address}",reason="REFUSED"} 1`));
});

test('when every upstream fails the last bad reply is relayed; when all are silent, SERVFAIL at the timeouts', async (t) => {
  const [refusing] = await upstreams(t, { kind: 'rcode', rcode: 'REFUSED' });
  const s1 = await server(t, { upstreams: [refusing!.address] });
  t.is(rcodeOf(await askUdp(s1.udpPort, 'x.example.com')), 'REFUSED');

  const [dead1, dead2, dead3] = await upstreams(t, { kind: 'dead' }, { kind: 'dead' }, { kind: 'dead' });
  const s2 = await server(t, { upstreams: [dead1!.address, dead2!.address, dead3!.address], upstreamTimeoutMs: 100, forwardTimeoutMs: 8000 });
  const started = Date.now();
  const reply = await askUdp(s2.udpPort, 'y.example.com', { timeoutMs: 9000 });
  const elapsed = Date.now() - started;
  t.is(rcodeOf(reply), 'SERVFAIL');
  t.true(elapsed >= 190 && elapsed < 6000, `two rounds of per-upstream timeouts (${elapsed} ms), well before the 8 s overall timeout`);
  t.is(dead1!.received.length + dead2!.received.length + dead3!.received.length, 3, 'the fallback was tried too');

  const [dead] = await upstreams(t, { kind: 'dead' });
  const s3 = await server(t, { upstreams: [dead!.address], upstreamTimeoutMs: 20000, forwardTimeoutMs: 150 });
  const t0 = Date.now();
  t.is(rcodeOf(await askUdp(s3.udpPort, 'z.example.com', { timeoutMs: 10000 })), 'SERVFAIL');
  t.true(Date.now() - t0 < 8000, 'the overall timeout wins over the 20 s per-upstream one');
  const failures = await s2.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total');
  t.regex(failures, /reason="timeout"} 1/);
});

test('garbage and wrong-ID replies are not relayed; they are counted', async (t) => {
  const [garbage, wrongId] = await upstreams(t, { kind: 'garbage' }, { kind: 'wrong-id' });
  // Long timeouts: the attempt must fail on the garbage itself, not time out.
  const s = await server(t, { upstreams: [garbage!.address], upstreamTimeoutMs: 5000, forwardTimeoutMs: 10000 });
  t.is(rcodeOf(await askUdp(s.udpPort, 'g.example.com')), 'SERVFAIL');
  t.notRegex(await s.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total'), /reason="timeout"/);
  const s2 = await server(t, { upstreams: [wrongId!.address], upstreamTimeoutMs: 200, forwardTimeoutMs: 400 });
  t.is(rcodeOf(await askUdp(s2.udpPort, 'w.example.com')), 'SERVFAIL');
  t.regex(await s.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total'), /reason="garbage"} 1/);
  t.regex(await s2.registry.getSingleMetricAsString('strata_dns_forward_unmatched_replies_total'), /reason="unknown-id"} 1/);
});

test('forwardZones route their names to their servers (longest zone wins); internal zones never leave', async (t) => {
  const [general, corp, deep] = await upstreams(t, answerA(1), answerA(2), answerA(3));
  const s = await server(t, {
    upstreams: [general!.address],
    forwardZones: { 'corp.example': [corp!.address], 'Deep.Corp.Example.': [deep!.address] },
  });
  t.like((await askUdp(s.udpPort, 'www.example.org')).answers![0], { data: '192.0.2.1' });
  t.like((await askUdp(s.udpPort, 'HOST.corp.example')).answers![0], { data: '192.0.2.2' });
  t.like((await askUdp(s.udpPort, 'x.deep.corp.example')).answers![0], { data: '192.0.2.3' });
  t.like((await askUdp(s.udpPort, 'leader.mesos')).answers![0], { data: '10.0.0.1' });
  t.is(rcodeOf(await askUdp(s.udpPort, 'nope.mesos')), 'NXDOMAIN');
  t.deepEqual([general!.received.length, corp!.received.length, deep!.received.length], [1, 1, 1]);
});

test('with no upstreams, names outside the zones are REFUSED', async (t) => {
  const s = await server(t, {});
  t.is(rcodeOf(await askUdp(s.udpPort, 'example.com')), 'REFUSED');
});

test('health: with 3 upstreams, 2 are asked at once and a failing one stops being chosen', async (t) => {
  const [dead, a, b] = await upstreams(t, { kind: 'dead' }, answerA(1), answerA(2));
  const s = await server(t, { upstreams: [dead!.address, a!.address, b!.address], upstreamTimeoutMs: 100 });
  // Until the dead one's first attempt times out (100 ms) it is as good as any.
  while (dead!.received.length === 0) t.is(rcodeOf(await askUdp(s.udpPort, `warm.example.com`)), 'NOERROR');
  const failures = () => s.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total');
  for (let i = 0; i < 100 && !new RegExp(`upstream="${dead!.address}",reason="timeout"`).test(await failures()); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const before = dead!.received.length;
  for (let i = 0; i < 20; i++) t.is(rcodeOf(await askUdp(s.udpPort, `q${i}.example.com`)), 'NOERROR');
  // Each query goes to 2 of 3. Having failed, the dead one ranks below the
  // others until its score decays (30 s half-life): asked 0 times, not ~13.
  t.is(dead!.received.length, before, 'the failed upstream is not chosen');
  t.true(a!.received.length >= 20 && b!.received.length >= 20, 'both healthy upstreams get every query');
});

test('upstream addresses: ip, ip:port, [v6]:port, v6; bad ones name the field', (t) => {
  t.like(parseUpstream('10.0.0.1', 'x'), { host: '10.0.0.1', port: 53, family: 4, key: '10.0.0.1:53' });
  t.like(parseUpstream('10.0.0.1:5353', 'x'), { port: 5353 });
  t.like(parseUpstream('[fd00::1]:54', 'x'), { host: 'fd00::1', port: 54, family: 6, key: '[fd00::1]:54' });
  t.like(parseUpstream('::1', 'x'), { host: '::1', port: 53, family: 6 });
  for (const bad of ['999.1.1.1', '10.0.0.1:0', '10.0.0.1:99999', 'dns.google', '10.0.0.1:x']) {
    const err = t.throws(() => parseUpstream(bad, 'dns.upstreams[0]'));
    t.is((err as { code?: string }).code, 'DNS_UPSTREAM_INVALID');
    t.true(err!.message.includes('dns.upstreams[0]') && err!.message.includes(bad), err!.message);
  }
  const err = t.throws(() => parse({ upstreams: [], forwardZones: { 'bad zone': ['10.0.0.1'] } } as never));
  t.is((err as { code?: string }).code, 'CONFIG_INVALID');
  t.regex(err!.message, /dns\.forwardZones "bad zone"/);
});

/** The exchange port faked in memory: the test decides what each attempt returns, and when. */
function scriptedExchange() {
  const calls: { upstream: string; transport: string; resolve: (r: ExchangeResult) => void }[] = [];
  const exchange: UpstreamExchange = {
    exchange: (upstream, _query, _end, transport) => ({
      result: new Promise<ExchangeResult>((resolve) => calls.push({ upstream: upstream.key, transport, resolve })),
      cancel: () => undefined,
    }),
    close: async () => undefined,
  };
  return { calls, exchange };
}

function requestFor(name: string): DnsRequest {
  const bytes = buildQuery(name, { id: 77 });
  const parsed = parseQuery(bytes);
  if (parsed.kind !== 'query') throw new Error('bad query');
  return { query: parsed.query, bytes, transport: 'udp', maxReplyBytes: 512 };
}

const replyWith = (request: DnsRequest, rcode: number): Buffer => {
  const bytes = Buffer.from(request.bytes);
  bytes[2] = bytes[2]! | 0x80;
  bytes[3] = rcode;
  return bytes;
};

test('dispatch order: 2 at once, each failure starts the next fallback, the first good reply wins; health is recorded', async (t) => {
  const { calls, exchange } = scriptedExchange();
  const health = new UpstreamHealth({ halfLifeMs: 30_000 });
  const ups = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((u, i) => parseUpstream(u, `u${i}`));
  const handler = forwardPlugin({
    upstreams: ups, zones: [], upstreamTimeoutMs: 1000, forwardTimeoutMs: 5000, exchange, health,
    metrics: forwardMetrics(new Registry()), now: () => 0, random: (() => { let i = 0; return () => (i++ % 4) / 4; })(),
  })(REFUSE);
  const request = requestFor('x.example.com');
  const reply = handler.serve(request) as Promise<DnsReply>;
  t.deepEqual(calls.map((c) => c.upstream), ['10.0.0.1:53', '10.0.0.2:53']);
  calls[0]!.resolve({ ok: true, bytes: replyWith(request, 2) }); // SERVFAIL
  await new Promise((r) => setImmediate(r));
  t.deepEqual(calls.map((c) => c.upstream), ['10.0.0.1:53', '10.0.0.2:53', '10.0.0.3:53'], 'first fallback started');
  calls[1]!.resolve({ ok: false, reason: 'timeout' });
  await new Promise((r) => setImmediate(r));
  t.is(calls.length, 4, 'second fallback started');
  calls[3]!.resolve({ ok: true, bytes: replyWith(request, 3) }); // NXDOMAIN: good
  const r = await reply;
  t.is(r.kind, 'relay');
  t.is((r as { bytes: Buffer }).bytes[3], 3);
  t.is(health.score('10.0.0.1:53', 0), 1);
  t.is(health.score('10.0.0.2:53', 0), 1);
  t.is(health.score('10.0.0.4:53', 0), 0);
  // The loser still running completes later and still counts.
  calls[2]!.resolve({ ok: false, reason: 'network' });
  await new Promise((r2) => setImmediate(r2));
  t.is(health.score('10.0.0.3:53', 0), 1);
});

test('at the in-flight limit, new queries get SERVFAIL at once', (t) => {
  const { exchange } = scriptedExchange();
  const registry = new Registry();
  const handler = forwardPlugin({
    upstreams: [parseUpstream('10.0.0.1', 'u')], zones: [], upstreamTimeoutMs: 50, forwardTimeoutMs: 50, exchange,
    health: new UpstreamHealth({ halfLifeMs: 1000 }), metrics: forwardMetrics(registry), maxInFlight: 2,
  })(REFUSE);
  const pending = [handler.serve(requestFor('a.example')), handler.serve(requestFor('b.example'))];
  t.true(pending.every((p) => p instanceof Promise));
  const third = handler.serve(requestFor('c.example'));
  t.false(third instanceof Promise);
  t.like(third, { kind: 'records', rcode: 2 });
  return Promise.all(pending).then((replies) => t.true(replies.every((r) => r.kind === 'records' && r.rcode === 2), 'overall timeout: SERVFAIL'));
});

test('UDP exchange: shared sockets, replaced after N queries (the source port moves), IDs restored', async (t) => {
  const [up] = await upstreams(t, answerA(4));
  const exchange = createUpstreamExchange({ udpSockets: 1, queriesPerSocket: 3 });
  t.teardown(() => exchange.close());
  const upstream = parseUpstream(up!.address, 'u');
  for (let i = 0; i < 9; i++) {
    const request = requestFor(`n${i}.example.com`);
    const result = await exchange.exchange(upstream, request.bytes, request.query.questionEnd, 'udp', 2000).result;
    t.true(result.ok);
    if (result.ok) t.is(result.bytes.readUInt16BE(0), 77, 'the client ID comes back');
  }
  const ports = up!.received.map((r) => r.fromPort);
  t.is(new Set(ports).size, 3, `three sockets of 3 queries each: ${ports.join(',')}`);
  t.is(new Set(up!.received.map((r) => r.bytes.readUInt16BE(0))).size > 1, true, 'upstream sees fresh IDs, not the client\'s');
});

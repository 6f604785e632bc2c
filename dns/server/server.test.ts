import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import test from 'ava';
import * as packet from 'dns-packet';
import { Registry } from 'prom-client';
import { RCODE } from '../codec/constants.ts';
import { answerA, startFakeUpstream } from '../plugins/forward/fake-upstream.ts';
import { createFakeAuthority } from '../zone-fake/fake-authority.ts';
import type { Authority, ResourceRecord } from '../zone/types.ts';
import { compose, emptyReply } from './handler.ts';
import { serverMetrics } from './metrics.ts';
import { buildDnsServer } from './server.ts';
import { askTcp, askUdp, buildQuery, hasFlag, rcodeOf, recordingLogger, startTestServer, tcpExchange, udpExchange } from './testing.ts';

const A = (name: string, address: string): ResourceRecord => ({ name, type: 'A', ttlSeconds: 60, address });
const BIG = Array.from({ length: 100 }, (_, i) => A('app-big.marathon.mesos', `10.1.0.${i}`));
const authority = (): ReturnType<typeof createFakeAuthority> =>
  createFakeAuthority({
    zones: ['mesos'],
    records: [
      A('web.marathon.mesos', '10.0.0.7'),
      { name: '_web._tcp.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31007, target: 'web.marathon.mesos' },
      ...BIG,
    ],
  });

test('authoritative answers over UDP: AA, the question\'s case, NXDOMAIN and NODATA with SOA, SRV glue', async (t) => {
  const zone = authority();
  const server = await startTestServer(zone, { chain: ['ready', 'authority'] });
  t.teardown(() => server.close());
  const a = await askUdp(server.udpPort, 'wEb.MaRaThOn.mesos');
  t.is(rcodeOf(a), 'NOERROR');
  t.true(hasFlag(a, packet.AUTHORITATIVE_ANSWER));
  t.like(a.answers![0], { name: 'wEb.MaRaThOn.mesos', type: 'A', ttl: 60, data: '10.0.0.7' });
  t.is(zone.asked.at(-1)!.name, 'wEb.MaRaThOn.mesos', 'the authority sees the name as received');
  const nx = await askUdp(server.udpPort, 'nope.marathon.mesos');
  t.is(rcodeOf(nx), 'NXDOMAIN');
  t.is(nx.authorities![0]!.type, 'SOA');
  const nodata = await askUdp(server.udpPort, 'web.marathon.mesos', { type: 'AAAA' });
  t.is(rcodeOf(nodata), 'NOERROR');
  t.is(nodata.answers!.length, 0);
  t.is(nodata.authorities![0]!.type, 'SOA');
  const srv = await askUdp(server.udpPort, '_web._tcp.marathon.mesos', { type: 'SRV' });
  t.like(srv.answers![0], { type: 'SRV', data: { port: 31007, target: 'web.marathon.mesos' } });
  t.like(srv.additionals![0], { name: 'web.marathon.mesos', data: '10.0.0.7' });
  // Not ours, no forwarder in this chain: REFUSED.
  t.is(rcodeOf(await askUdp(server.udpPort, 'example.com')), 'REFUSED');
});

test('ready.spartan answers as dcos-net: A 127.0.0.1, TTL 5; other spartan names NXDOMAIN with its SOA', async (t) => {
  const server = await startTestServer(authority(), { chain: ['ready', 'authority'] });
  t.teardown(() => server.close());
  const ready = await askUdp(server.udpPort, 'ready.spartan');
  t.is(rcodeOf(ready), 'NOERROR');
  t.true(hasFlag(ready, packet.AUTHORITATIVE_ANSWER));
  t.like(ready.answers![0], { name: 'ready.spartan', type: 'A', ttl: 5, data: '127.0.0.1' });
  const other = await askUdp(server.udpPort, 'other.spartan');
  t.is(rcodeOf(other), 'NXDOMAIN');
  t.like(other.authorities![0], { type: 'SOA', data: { mname: 'ns.spartan', rname: 'support.mesosphere.com', retry: 180, minimum: 1 } });
});

test('before the first sync the zones answer SERVFAIL, not NXDOMAIN', async (t) => {
  const zone = authority();
  zone.setSynced(false);
  const server = await startTestServer(zone, { chain: ['authority'] });
  t.teardown(() => server.close());
  t.is(rcodeOf(await askUdp(server.udpPort, 'web.marathon.mesos')), 'SERVFAIL');
  zone.setSynced(true);
  t.is(rcodeOf(await askUdp(server.udpPort, 'web.marathon.mesos')), 'NOERROR');
});

test('EDNS sizes: 512 without EDNS, the client size up to 1232, TC on UDP and the full answer over TCP', async (t) => {
  const server = await startTestServer(authority(), { chain: ['authority'] });
  t.teardown(() => server.close());
  // 100 A records compress to ~1.6 kB.
  const classic = await udpExchange(server.udpPort, buildQuery('app-big.marathon.mesos'));
  t.true(classic!.length <= 512);
  const cut = packet.decode(classic!);
  t.true(hasFlag(cut, packet.TRUNCATED_RESPONSE));
  t.is(cut.answers!.length, 0);
  t.is(cut.additionals!.length, 0, 'no OPT without EDNS');
  const edns = await udpExchange(server.udpPort, buildQuery('app-big.marathon.mesos', { udpPayloadSize: 65000 }));
  t.true(edns!.length <= 1232, 'the server caps the client size at 1232');
  t.true(hasFlag(packet.decode(edns!), packet.TRUNCATED_RESPONSE));
  const small = await udpExchange(server.udpPort, buildQuery('web.marathon.mesos', { udpPayloadSize: 4096, dnssecOk: true }));
  const opt = packet.decode(small!).additionals!.find((r) => r.type === 'OPT') as unknown as { udpPayloadSize: number; flags: number };
  t.is(opt.udpPayloadSize, 1232);
  t.is(opt.flags & packet.DNSSEC_OK, packet.DNSSEC_OK, 'DO echoed');
  const full = await askTcp(server.tcpPort, 'app-big.marathon.mesos');
  t.false(hasFlag(full, packet.TRUNCATED_RESPONSE));
  t.is(full.answers!.length, 100);
  // EDNS version 1: BADVERS (extended rcode 16 = OPT high bits 1, header 0).
  const v1 = buildQuery('web.marathon.mesos', { udpPayloadSize: 1232 });
  v1[v1.length - 5] = 1; // OPT: ... ext-rcode, version, flags, rdlength
  const badvers = (await udpExchange(server.udpPort, v1))!;
  t.is(badvers[3]! & 0x0f, 0);
  t.is(badvers[badvers.length - 6], 1, 'extended rcode 1 << 4 = BADVERS');
});

test('malformed input: FORMERR/NOTIMP with the ID, silence for runts and responses; the server keeps answering', async (t) => {
  const server = await startTestServer(authority(), { chain: ['authority'] });
  t.teardown(() => server.close());
  const q = buildQuery('web.marathon.mesos', { id: 0x1234 });
  const qd0 = Buffer.from(q);
  qd0.writeUInt16BE(0, 4);
  const formerr = packet.decode((await udpExchange(server.udpPort, qd0))!);
  t.is(rcodeOf(formerr), 'FORMERR');
  t.is(formerr.id, 0x1234);
  const notify = Buffer.from(q);
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  t.is(rcodeOf(packet.decode((await udpExchange(server.udpPort, notify))!)), 'NOTIMP');
  const response = Buffer.from(q);
  response[2] = response[2]! | 0x80;
  t.is(await udpExchange(server.udpPort, response, 300), undefined);
  t.is(await udpExchange(server.udpPort, q.subarray(0, 5), 300), undefined);
  for (let i = 0; i < 200; i++) await udpExchange(server.udpPort, Buffer.from(Array.from({ length: (i % 60) + 1 }, () => (Math.random() * 256) | 0)), 1);
  t.is(rcodeOf(await askUdp(server.udpPort, 'web.marathon.mesos')), 'NOERROR');
  const metrics = await server.registry.getSingleMetricAsString('strata_dns_malformed_total');
  t.regex(metrics, /reason="qdcount"} [1-9]/);
  t.regex(metrics, /reason="response"} [1-9]/);
});

test('TCP: pipelined queries in one write are answered as each completes, out of order', async (t) => {
  const slow = await startFakeUpstream({ ...answerA(1), delayMs: 150 } as Parameters<typeof startFakeUpstream>[0]);
  t.teardown(() => slow.close());
  const server = await startTestServer(authority(), { upstreams: [slow.address], cacheMaxEntries: 0 });
  t.teardown(() => server.close());
  const replies = await tcpExchange(server.tcpPort, [
    buildQuery('slow.example.com', { id: 1 }),
    buildQuery('web.marathon.mesos', { id: 2 }),
    buildQuery('nope.marathon.mesos', { id: 3 }),
  ]);
  t.deepEqual(replies.map((r) => packet.decode(r).id), [2, 3, 1]);
  t.like(packet.decode(replies[2]!).answers![0], { data: '192.0.2.1' });
  t.is(slow.received[0]!.transport, 'tcp', 'a TCP query is forwarded over TCP');
});

test('TCP: half-closed clients still get their replies; idle connections are closed; the connection cap holds', async (t) => {
  const server = await startTestServer(authority(), { chain: ['authority'], tcpIdleTimeoutMs: 200, tcpMaxConnections: 2 });
  t.teardown(() => server.close());
  // Half-close right after writing.
  const half = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.tcpPort, allowHalfOpen: true });
    const q = buildQuery('web.marathon.mesos', { id: 9 });
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
    socket.end(Buffer.concat([Buffer.from([0, q.length]), q]));
  });
  t.is(packet.decode(half.subarray(2)).id, 9);
  // Idle: the server closes a silent connection after ~200 ms.
  const started = Date.now();
  const idle = connect({ host: '127.0.0.1', port: server.tcpPort });
  idle.on('error', () => undefined);
  await new Promise((resolve) => idle.on('close', resolve));
  t.true(Date.now() - started >= 150, 'not before the idle timeout');
  // Cap: with 2 connections open, a third is closed at once.
  const open = [connect({ host: '127.0.0.1', port: server.tcpPort }), connect({ host: '127.0.0.1', port: server.tcpPort })];
  for (const s of open) s.on('error', () => undefined);
  await Promise.all(open.map((s) => new Promise((resolve) => s.on('connect', resolve))));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const third = await tcpExchange(server.tcpPort, [buildQuery('web.marathon.mesos')], { timeoutMs: 1000 }).catch(() => []);
  t.is(third.length, 0);
  t.regex(await server.registry.getSingleMetricAsString('strata_dns_tcp_refused_total'), /strata_dns_tcp_refused_total [1-9]/);
  for (const s of open) s.destroy();
});

test('a plugin that throws, rejects or yields an unencodable record costs a SERVFAIL, not the server', async (t) => {
  const throwing: Authority = { zones: () => ['mesos'], lookup: () => { throw new Error('boom'); } };
  const server = await startTestServer(throwing, { chain: ['authority'] });
  t.teardown(() => server.close());
  t.is(rcodeOf(await askUdp(server.udpPort, 'web.marathon.mesos')), 'SERVFAIL');
  const bad = await startTestServer(createFakeAuthority({ zones: ['mesos'], records: [A('x.mesos', '10.0.0.999')] }), { chain: ['authority'] });
  t.teardown(() => bad.close());
  t.is(rcodeOf(await askUdp(bad.udpPort, 'x.mesos')), 'SERVFAIL');
  t.true(bad.logger.lines.some((l) => (l.obj as { code?: string }).code === 'DNS_RECORD_INVALID'));
  // Rejected promise, via the socket-less server.
  const registry = new Registry();
  const built = buildDnsServer({
    handler: compose([() => ({ name: 'x', serve: () => Promise.reject(new Error('nope')) })]),
    metrics: serverMetrics(registry),
    logger: recordingLogger(),
    maxUdpPayloadBytes: 1232,
    recursionAvailable: false,
  });
  const reply = await built.answer(buildQuery('a.b'), 'udp');
  t.is(reply![3]! & 0x0f, RCODE.SERVFAIL);
  t.is(await built.answer(Buffer.alloc(3), 'udp'), undefined);
  const ok = buildDnsServer({
    handler: compose([() => ({ name: 'x', serve: () => emptyReply('x', RCODE.NXDOMAIN, true) })]),
    metrics: serverMetrics(registry),
    logger: recordingLogger(),
    maxUdpPayloadBytes: 1232,
    recursionAvailable: true,
  });
  const nx = packet.decode((await ok.answer(buildQuery('a.b'), 'udp'))!);
  t.is(rcodeOf(nx), 'NXDOMAIN');
  t.true(hasFlag(nx, packet.RECURSION_AVAILABLE));
  t.regex(await registry.getSingleMetricAsString('strata_dns_requests_total'), /plugin="x",rcode="NXDOMAIN"} 1/);
});

test('TCP: garbage frames get FORMERR or nothing and the connection keeps serving; a partial frame is closed at the idle timeout', async (t) => {
  const server = await startTestServer(authority(), { chain: ['authority'], tcpIdleTimeoutMs: 300 });
  t.teardown(() => server.close());
  const qd0 = buildQuery('web.marathon.mesos', { id: 5 });
  qd0.writeUInt16BE(0, 4);
  const replies = await tcpExchange(server.tcpPort, [
    Buffer.from([1, 2, 3]), // runt: no reply
    qd0, // FORMERR
    Buffer.alloc(0), // empty frame: no reply
    buildQuery('web.marathon.mesos', { id: 6 }),
  ], { expect: 2 });
  t.deepEqual(replies.map((r) => [packet.decode(r).id, rcodeOf(packet.decode(r))]), [[5, 'FORMERR'], [6, 'NOERROR']]);
  // Slowloris: one byte of a length prefix, then nothing.
  const started = Date.now();
  const slow = connect({ host: '127.0.0.1', port: server.tcpPort });
  slow.on('error', () => undefined);
  slow.write(Buffer.from([0]));
  await new Promise((resolve) => slow.on('close', resolve));
  const elapsed = Date.now() - started;
  t.true(elapsed >= 250 && elapsed < 3000, `closed after ${elapsed} ms`);
  t.is(rcodeOf(await askTcp(server.tcpPort, 'web.marathon.mesos')), 'NOERROR');
});

test('unknown types get NODATA from the zones; non-IN classes inside the zones are REFUSED', async (t) => {
  const zone = authority();
  const server = await startTestServer(zone, { chain: ['ready', 'authority'] });
  t.teardown(() => server.close());
  const unknown = buildQuery('web.marathon.mesos', { type: 'A' });
  unknown.writeUInt16BE(65280, unknown.length - 4);
  const nodata = packet.decode((await udpExchange(server.udpPort, unknown))!);
  t.is(rcodeOf(nodata), 'NOERROR');
  t.is(nodata.answers!.length, 0);
  t.is(zone.asked.at(-1)!.type, 'TYPE65280');
  const chaos = buildQuery('web.marathon.mesos');
  chaos.writeUInt16BE(3, chaos.length - 2); // class CH
  t.is(rcodeOf(packet.decode((await udpExchange(server.udpPort, chaos))!)), 'REFUSED');
});

test('listens on IPv6 too (::1), UDP and TCP', async (t) => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  try {
    server = await startTestServer(authority(), { host: '::1', chain: ['ready'] });
  } catch (err) {
    if ((err as { code?: string }).code === 'DNS_LISTEN_FAILED') return t.pass('skipped: no ::1 on this host');
    throw err;
  }
  t.teardown(() => server.close());
  const reply = await new Promise<Buffer>((resolve) => {
    const socket = createSocket('udp6');
    socket.on('message', (msg) => {
      socket.close();
      resolve(msg);
    });
    socket.send(buildQuery('ready.spartan'), server.udpPort, '::1');
  });
  t.like(packet.decode(reply).answers![0], { data: '127.0.0.1' });
  const tcp = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: '::1', port: server.tcpPort });
    const q = buildQuery('ready.spartan');
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        socket.destroy();
        resolve(got.subarray(2));
      }
    });
    socket.on('error', reject);
    socket.write(Buffer.concat([Buffer.from([0, q.length]), q]));
  });
  t.like(packet.decode(tcp).answers![0], { data: '127.0.0.1' });
});

import { isIPv4 } from 'node:net';
import test from 'ava';
import * as packet from 'dns-packet';
import fc from 'fast-check';
import type { ResourceRecord } from '../zone/types.ts';
import { RCODE, TYPE } from './constants.ts';
import { parseQuery, type Query } from './query.ts';
import { answersQuestion, readReplyHeader, scanTtls, withId } from './relay.ts';
import { encodeHeaderOnly, encodeReply } from './response.ts';

const OPTS = { maxBytes: 65535, serverUdpPayloadBytes: 1232, recursionAvailable: false };

function query(name: string, type: packet.RecordType = 'A', extra: Partial<packet.Packet> = {}): Buffer {
  return packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra });
}

function mustParse(bytes: Uint8Array): Query {
  const result = parseQuery(bytes);
  if (result.kind !== 'query') throw new Error(`expected a query, got ${JSON.stringify(result)}`);
  return result.query;
}

const rcodeOf = (p: packet.Packet): string | undefined => (p as { rcode?: string }).rcode;
const a = (name: string, address: string, ttlSeconds = 60): ResourceRecord => ({ name, type: 'A', ttlSeconds, address });
const SOA: ResourceRecord = {
  name: 'mesos', type: 'SOA', ttlSeconds: 60, mname: 'ns1.mesos', rname: 'root.ns1.mesos',
  serial: 1700000000, refreshSeconds: 60, retrySeconds: 600, expireSeconds: 86400, minimumSeconds: 60,
};

test('parses header, question and EDNS0 (size and DO bit)', (t) => {
  const bytes = query('Web.Marathon.MESOS', 'SRV', {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: packet.DNSSEC_OK } as packet.Answer],
  });
  const q = mustParse(bytes);
  t.like(q, { id: 4242, opcode: 0, rd: true, name: 'Web.Marathon.MESOS', nameLower: 'web.marathon.mesos', type: TYPE.SRV, class: 1 });
  t.deepEqual(q.edns, { udpPayloadBytes: 4096, dnssecOk: true, version: 0 });
  t.is(mustParse(query('x.mesos')).edns, undefined);
});

test('every record type round-trips through dns-packet, with compression and the question\'s case', (t) => {
  const bytes = query('Task-1.Marathon.Mesos', 'ANY' as packet.RecordType);
  const q = mustParse(bytes);
  const records: ResourceRecord[] = [
    a('task-1.marathon.mesos', '10.0.0.1'),
    { name: 'task-1.marathon.mesos', type: 'AAAA', ttlSeconds: 5, address: 'fd01:b::1:2' },
    { name: 'task-1.marathon.mesos', type: 'AAAA', ttlSeconds: 5, address: '::ffff:10.1.2.3' },
    { name: 'task-1.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31000, target: 'task-1-abcde-s1.marathon.mesos' },
    { name: 'task-1.marathon.mesos', type: 'PTR', ttlSeconds: 60, target: 'other.mesos' },
    { name: 'task-1.marathon.mesos', type: 'NS', ttlSeconds: 60, target: 'ns1.mesos' },
    { name: 'task-1.marathon.mesos', type: 'CNAME', ttlSeconds: 60, target: 'web.marathon.mesos' },
    { name: 'task-1.marathon.mesos', type: 'TXT', ttlSeconds: 60, text: ['hello', 'x'.repeat(300)] },
  ];
  const { bytes: out, truncated } = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers: records, authority: [SOA], additionals: [a('ns1.mesos', '10.0.0.9')] }, OPTS);
  t.false(truncated);
  const decoded = packet.decode(out);
  t.is(decoded.id, 4242);
  t.true(((decoded.flags ?? 0) & packet.AUTHORITATIVE_ANSWER) !== 0);
  t.true(((decoded.flags ?? 0) & packet.RECURSION_DESIRED) !== 0);
  t.is(decoded.questions![0]!.name, 'Task-1.Marathon.Mesos');
  t.deepEqual(decoded.answers!.map((r) => r.name), records.map(() => 'Task-1.Marathon.Mesos'), 'owner names take the question spelling');
  const [ra, raaaa, raaaa2, rsrv, rptr, rns, rcname, rtxt] = decoded.answers! as packet.Answer[] as Array<packet.Answer & { data: unknown }>;
  t.is(ra!.data, '10.0.0.1');
  t.is(raaaa!.data, 'fd01:b::1:2');
  t.is(raaaa2!.data, '::ffff:a01:203');
  t.deepEqual(rsrv!.data, { priority: 0, weight: 1, port: 31000, target: 'task-1-abcde-s1.marathon.mesos' });
  t.is(rptr!.data, 'other.mesos');
  t.is(rns!.data, 'ns1.mesos');
  t.is(rcname!.data, 'web.marathon.mesos');
  t.deepEqual((rtxt!.data as Buffer[]).map((b) => b.toString()), ['hello', 'x'.repeat(255), 'x'.repeat(45)]);
  t.like(decoded.authorities![0], { name: 'mesos', type: 'SOA', data: { mname: 'ns1.mesos', rname: 'root.ns1.mesos', serial: 1700000000, refresh: 60, retry: 600, expire: 86400, minimum: 60 } });
  t.like(decoded.additionals![0], { name: 'ns1.mesos', data: '10.0.0.9' });
  // Compression: far smaller than dns-packet's uncompressed encoding of the same message.
  const plain = packet.encode({ ...decoded, type: 'response' });
  t.true(out.length < plain.length - 100, `${out.length} vs ${plain.length}`);
});

test('header bits: RA when forwarding, CD echoed, NXDOMAIN with SOA, OPT echo with DO', (t) => {
  const bytes = packet.encode({
    type: 'query', id: 7, flags: packet.CHECKING_DISABLED, questions: [{ name: 'nope.mesos', type: 'A' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1400, flags: packet.DNSSEC_OK } as packet.Answer],
  });
  const q = mustParse(bytes);
  const out = packet.decode(encodeReply(q, bytes, { rcode: RCODE.NXDOMAIN, authoritative: true, answers: [], authority: [SOA], additionals: [] }, { ...OPTS, recursionAvailable: true }).bytes);
  t.is(rcodeOf(out), 'NXDOMAIN');
  t.true(((out.flags ?? 0) & packet.RECURSION_AVAILABLE) !== 0);
  t.true(((out.flags ?? 0) & packet.CHECKING_DISABLED) !== 0);
  t.false(((out.flags ?? 0) & packet.RECURSION_DESIRED) !== 0);
  const opt = out.additionals!.find((r) => r.type === 'OPT') as packet.Answer & { udpPayloadSize: number; flags: number };
  t.is(opt.udpPayloadSize, 1232);
  t.is(opt.flags & packet.DNSSEC_OK, packet.DNSSEC_OK);
});

test('too big for the limit: additionals dropped first, then TC with the question and OPT only', (t) => {
  const bytes = query('big.marathon.mesos', 'SRV', { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 600 } as packet.Answer] });
  const q = mustParse(bytes);
  const answers = Array.from({ length: 8 }, (_, i): ResourceRecord => ({ name: 'big.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31000 + i, target: `big-${i}-x.marathon.mesos` }));
  const glue = answers.map((r, i) => a((r as { target: string }).target, `10.0.1.${i}`));
  const full = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers, authority: [], additionals: glue }, OPTS);
  t.true(full.bytes.length > 400, String(full.bytes.length));
  const fitted = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers, authority: [], additionals: glue }, { ...OPTS, maxBytes: 400 });
  t.false(fitted.truncated, 'dropping glue is not truncation');
  t.true(fitted.bytes.length <= 400);
  const d1 = packet.decode(fitted.bytes);
  t.is(d1.answers!.length, 8);
  t.true(d1.additionals!.length < 9 && d1.additionals!.some((r) => r.type === 'OPT'));
  const cut = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers, authority: [], additionals: glue }, { ...OPTS, maxBytes: 150 });
  t.true(cut.truncated);
  const d2 = packet.decode(cut.bytes);
  t.true(((d2.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0);
  t.is(d2.answers!.length, 0);
  t.deepEqual(d2.additionals!.map((r) => r.type), ['OPT']);
  t.is(d2.questions![0]!.name, 'big.marathon.mesos');
});

test('records that cannot be encoded throw DNS_RECORD_INVALID, never a malformed packet', (t) => {
  const bytes = query('x.mesos');
  const q = mustParse(bytes);
  const bad: ResourceRecord[] = [
    a('x.mesos', '10.0.0.300'),
    a(`${'l'.repeat(64)}.mesos`, '10.0.0.1'),
    a(Array.from({ length: 60 }, () => 'abcd').join('.'), '10.0.0.1'),
    { name: 'x.mesos', type: 'AAAA', ttlSeconds: 1, address: '10.0.0.1' },
    { name: 'x.mesos', type: 'SRV', ttlSeconds: 1, priority: 0, weight: 0, port: 70000, target: 'y.mesos' },
    a('x.mesos', '10.0.0.1', -1),
    a('x..mesos', '10.0.0.1'),
  ];
  for (const record of bad) {
    const err = t.throws(() => encodeReply(q, bytes, { rcode: 0, authoritative: true, answers: [record], authority: [], additionals: [] }, OPTS));
    t.is((err as { code?: string }).code, 'DNS_RECORD_INVALID', JSON.stringify(record));
  }
});

test('malformed queries: drop, FORMERR or NOTIMP', (t) => {
  const good = query('a.mesos');
  const header = (bytes: Buffer, patch: (b: Buffer) => void): Buffer => {
    const copy = Buffer.from(bytes);
    patch(copy);
    return copy;
  };
  const cases: [string, Uint8Array, 'query' | 'error' | 'drop', number?][] = [
    ['empty', new Uint8Array(0), 'drop'],
    ['runt', good.subarray(0, 11), 'drop'],
    ['response (QR=1)', header(good, (b) => (b[2] = b[2]! | 0x80)), 'drop'],
    ['QDCOUNT 0', header(good, (b) => b.writeUInt16BE(0, 4)), 'error', RCODE.FORMERR],
    ['QDCOUNT 2', header(good, (b) => b.writeUInt16BE(2, 4)), 'error', RCODE.FORMERR],
    ['counts beyond the bytes', header(good, (b) => b.writeUInt16BE(65535, 10)), 'error', RCODE.FORMERR],
    ['truncated question', good.subarray(0, good.length - 2), 'error', RCODE.FORMERR],
    ['truncated name', good.subarray(0, 15), 'error', RCODE.FORMERR],
    ['pointer in question', Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 'error', RCODE.FORMERR],
    ['label type 0x40', Buffer.concat([good.subarray(0, 12), Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1])]), 'error', RCODE.FORMERR],
    ['NOTIFY', header(good, (b) => (b[2] = (b[2]! & 0x87) | (4 << 3))), 'error', RCODE.NOTIMP],
    ['UPDATE', header(good, (b) => (b[2] = (b[2]! & 0x87) | (5 << 3))), 'error', RCODE.NOTIMP],
    ['name over 255', query(Array.from({ length: 70 }, () => 'abc').join('.')), 'error', RCODE.FORMERR],
  ];
  for (const [label, bytes, kind, rcode] of cases) {
    const result = parseQuery(bytes);
    t.is(result.kind, kind, label);
    if (result.kind === 'error') {
      t.is(result.rcode, rcode!, label);
      const reply = packet.decode(encodeHeaderOnly(result, result.rcode));
      t.is(rcodeOf(reply), rcode === RCODE.FORMERR ? 'FORMERR' : 'NOTIMP', label);
      t.is(reply.id, (bytes[0]! << 8) | bytes[1]!, label);
    }
  }
});

test('OPT rules: two OPTs, OPT not at root, OPT option overrun are FORMERR', (t) => {
  const opt = { type: 'OPT', name: '.', udpPayloadSize: 1232 } as packet.Answer;
  t.like(parseQuery(query('a.mesos', 'A', { additionals: [opt, opt] })), { kind: 'error', rcode: RCODE.FORMERR, reason: 'two OPT records' });
  const withOpt = query('a.mesos', 'A', { additionals: [opt] });
  const notRoot = Buffer.concat([withOpt.subarray(0, withOpt.length - 11), Buffer.from([1, 0x78, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])]);
  t.like(parseQuery(notRoot), { kind: 'error', reason: 'OPT owner not root' });
  const withOption = query('a.mesos', 'A', { additionals: [{ ...opt, options: [{ code: 10, data: Buffer.alloc(8) }] } as unknown as packet.Answer] });
  t.is(parseQuery(withOption).kind, 'query');
  const broken = Buffer.from(withOption);
  broken.writeUInt16BE(20, broken.length - 10); // option length beyond RDATA
  t.like(parseQuery(broken), { kind: 'error', reason: 'OPT option overruns' });
});

test('binary and dotted labels are escaped, so names never alias', (t) => {
  const bytes = Buffer.concat([
    query('a.mesos').subarray(0, 12),
    Buffer.from([3, 0x61, 0x2e, 0x62, 5, 0x6d, 0x65, 0x73, 0x6f, 0x73, 2, 0xff, 0x41, 0, 0, 1, 0, 1]),
  ]);
  const q = mustParse(bytes);
  t.is(q.name, 'a\\046b.mesos.\\255A');
  t.is(q.nameLower, 'a\\046b.mesos.\\255a');
  // The echoed question is byte-identical.
  const out = encodeReply(q, bytes, { rcode: 3, authoritative: false, answers: [], authority: [], additionals: [] }, OPTS).bytes;
  t.deepEqual(out.subarray(12, q.questionEnd), bytes.subarray(12, q.questionEnd));
});

test('relay helpers: header, ID rewrite, question match, TTL scan', (t) => {
  const q = query('Web.example.com', 'A');
  const reply = packet.encode({
    type: 'response', id: 4242, flags: packet.RECURSION_DESIRED, questions: [{ name: 'web.EXAMPLE.com', type: 'A' }],
    answers: [{ name: 'web.example.com', type: 'A', ttl: 300, data: '192.0.2.1' }, { name: 'web.example.com', type: 'A', ttl: 30, data: '192.0.2.2' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as packet.Answer],
  });
  t.like(readReplyHeader(reply), { id: 4242, rcode: 0, truncated: false, qdcount: 1, ancount: 2 });
  t.is(readReplyHeader(q), undefined, 'a query is not a reply');
  const moved = withId(reply, 7);
  t.is(moved.readUInt16BE(0), 7);
  t.deepEqual(moved.subarray(2), reply.subarray(2));
  const parsed = mustParse(q);
  t.true(answersQuestion(reply, q, parsed.questionEnd));
  t.false(answersQuestion(packet.encode({ type: 'response', id: 1, questions: [{ name: 'other.example.com', type: 'A' }] }), q, parsed.questionEnd));
  const scan = scanTtls(reply)!;
  t.is(scan.ttlOffsets.length, 2, 'OPT has no TTL');
  t.is(scan.minAnswerTtlSeconds, 30);
  const nx = packet.encode({
    type: 'response', id: 1, questions: [{ name: 'x.example.com', type: 'A' }], rcode: 'NXDOMAIN',
    authorities: [{ name: 'example.com', type: 'SOA', ttl: 900, data: { mname: 'ns.example.com', rname: 'h.example.com', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 120 } }],
  } as packet.Packet);
  t.is(scanTtls(nx)!.negativeTtlSeconds, 120);
  t.is(scanTtls(nx.subarray(0, nx.length - 3)), undefined);
});

test('A addresses: the encoder accepts exactly what net.isIPv4 accepts', (t) => {
  const bytes = query('x.mesos');
  const q = mustParse(bytes);
  const accepts = (address: string): boolean => {
    try {
      const out = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers: [a('x.mesos', address)], authority: [], additionals: [] }, OPTS).bytes;
      return (packet.decode(out).answers![0] as { data: string }).data === address;
    } catch (err) {
      if ((err as { code?: string }).code !== 'DNS_RECORD_INVALID') throw err;
      return false;
    }
  };
  for (const good of ['0.0.0.0', '1.2.3.4', '255.255.255.255', '10.0.39.15']) t.true(accepts(good), good);
  for (const bad of ['', '1.2.3', '1.2.3.4.', '01.2.3.4', '1.2.3.04', '256.1.1.1', '1..2.3', '1.2.3.4 ', 'a.b.c.d', '1.2.3.4.5']) t.false(accepts(bad), bad);
  fc.assert(fc.property(fc.stringMatching(/^[0-9.]{0,16}$/), (s) => accepts(s) === isIPv4(s)), { numRuns: 3000 });
});

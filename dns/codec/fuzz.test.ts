// Fuzz of the query parser and the reply encoder. Default: a few thousand
// cases per property (seconds). STRATA_SLOW=1: 1,000,000 mutated packets.
import test from 'ava';
import * as packet from 'dns-packet';
import fc from 'fast-check';
import type { ResourceRecord } from '../zone/types.ts';
import { parseQuery } from './query.ts';
import { encodeHeaderOnly, encodeReply } from './response.ts';

const SLOW = process.env.STRATA_SLOW === '1';
const MUTATED = SLOW ? 1_000_000 : 20_000;
const RUNS = SLOW ? 100_000 : 2_000;

const SEEDS: Buffer[] = [
  packet.encode({ type: 'query', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ name: 'task-1.marathon.mesos', type: 'A' }] }),
  packet.encode({
    type: 'query', id: 2, questions: [{ name: '_web._tcp.marathon.mesos', type: 'SRV' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: packet.DNSSEC_OK, options: [{ code: 10, data: Buffer.alloc(8, 1) }] } as unknown as packet.Answer],
  }),
  packet.encode({
    type: 'response', id: 3, questions: [{ name: 'x.example.com', type: 'A' }],
    answers: [{ name: 'x.example.com', type: 'A', ttl: 1, data: '192.0.2.1' }],
  }),
];

const RECORDS: ResourceRecord[] = [
  { name: 'task-1.marathon.mesos', type: 'A', ttlSeconds: 60, address: '10.0.0.1' },
  { name: 'task-1.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31000, target: 'task-1-x.marathon.mesos' },
];
const SOA: ResourceRecord = {
  name: 'mesos', type: 'SOA', ttlSeconds: 60, mname: 'ns1.mesos', rname: 'root.ns1.mesos',
  serial: 1, refreshSeconds: 60, retrySeconds: 600, expireSeconds: 86400, minimumSeconds: 60,
};

/** xorshift32: a cheap seeded stream for the million-packet run. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function mutate(seed: Buffer, random: () => number): Buffer {
  const out = Buffer.from(seed);
  const edits = 1 + Math.floor(random() * 4);
  let bytes: Buffer = out;
  for (let e = 0; e < edits; e++) {
    const op = random();
    const at = Math.floor(random() * bytes.length);
    if (op < 0.5) bytes[at] = Math.floor(random() * 256);
    else if (op < 0.7) bytes[at] = bytes[at]! ^ (1 << Math.floor(random() * 8));
    else if (op < 0.85) bytes = bytes.subarray(0, at);
    else bytes = Buffer.concat([bytes, Buffer.from([Math.floor(random() * 256), 0xc0, Math.floor(random() * 256)])]);
  }
  return bytes;
}

/** Checks one input end to end: parse, answer, and the answer must decode. */
function check(bytes: Buffer): string | undefined {
  const result = parseQuery(bytes);
  if (result.kind === 'drop') return undefined;
  if (result.kind === 'error') {
    const reply = encodeHeaderOnly(result, result.rcode);
    return reply.length === 12 ? undefined : 'header-only reply is not 12 bytes';
  }
  const q = result.query;
  const maxBytes = q.edns ? Math.max(512, Math.min(q.edns.udpPayloadBytes, 1232)) : 512;
  const { bytes: out } = encodeReply(q, bytes, { rcode: 0, authoritative: true, answers: RECORDS, authority: [SOA], additionals: [] }, {
    maxBytes, serverUdpPayloadBytes: 1232, recursionAvailable: false,
  });
  if (out.length > maxBytes) return `reply ${out.length} > ${maxBytes}`;
  if (!out.subarray(12, q.questionEnd).equals(bytes.subarray(12, q.questionEnd))) return 'question not echoed byte-for-byte';
  // The oracle: our reply must be a well-formed message. dns-packet decodes
  // labels as UTF-8, so only compare structure, not binary names.
  let decoded: packet.Packet;
  try {
    decoded = packet.decode(out);
  } catch (err) {
    return `dns-packet cannot decode our reply: ${(err as Error).message}`;
  }
  if (decoded.answers?.length !== 2 || decoded.questions?.length !== 1) return 'wrong counts';
  return undefined;
}

test(`parser and encoder survive ${MUTATED.toLocaleString('en')} mutated packets; every reply decodes`, (t) => {
  const random = rng(0x5eed);
  const kinds = { query: 0, error: 0, drop: 0 };
  for (let i = 0; i < MUTATED; i++) {
    const input = mutate(SEEDS[i % SEEDS.length]!, random);
    const problem = check(input);
    if (problem) t.fail(`${problem}: ${input.toString('hex')}`);
    kinds[parseQuery(input).kind]++;
  }
  // The corpus must reach every outcome, or it tests nothing.
  t.true(kinds.query > MUTATED / 20 && kinds.error > MUTATED / 20 && kinds.drop > MUTATED / 100, JSON.stringify(kinds));
});

test('random bytes: never throws, never answers a runt or a response', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (raw) => {
      const bytes = Buffer.from(raw);
      const result = parseQuery(bytes);
      if (bytes.length < 12 || (bytes[2]! & 0x80) !== 0) return result.kind === 'drop';
      return check(bytes) === undefined;
    }),
    { numRuns: RUNS },
  );
  t.pass('property held');
});

const label = fc.stringMatching(/^[a-zA-Z0-9-]{1,20}$/);
test('any well-formed question parses back to its name, type and EDNS size', (t) => {
  fc.assert(
    fc.property(
      fc.array(label, { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 65535 }),
      fc.option(fc.integer({ min: 1, max: 65535 })), // dns-packet writes 0 as 4096
      (labels, type, udp) => {
        const name = labels.join('.');
        const bytes = Buffer.from(packet.encode({
          type: 'query', id: 9, questions: [{ name, type: 'A' }],
          ...(udp === null ? {} : { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: udp } as packet.Answer] }),
        }));
        bytes.writeUInt16BE(type, 12 + name.length + 2);
        const result = parseQuery(bytes);
        return result.kind === 'query' && result.query.name === name && result.query.nameLower === name.toLowerCase()
          && result.query.type === type && (udp === null ? result.query.edns === undefined : result.query.edns?.udpPayloadBytes === udp)
          && check(bytes) === undefined;
      },
    ),
    { numRuns: RUNS },
  );
  t.pass('property held');
});

test('a header claiming 65535 records in every section costs nothing (count pre-check)', (t) => {
  const bytes = Buffer.from(SEEDS[0]!);
  bytes.writeUInt16BE(65535, 6);
  bytes.writeUInt16BE(65535, 8);
  bytes.writeUInt16BE(65535, 10);
  t.like(parseQuery(bytes), { kind: 'error', reason: 'counts' });
});

import test from 'ava';
import fc from 'fast-check';
import type { ResourceRecord } from './types.ts';
import { ZoneIndex, rdataKey } from './zone-index.ts';

const a = (name: string, address: string, ttlSeconds = 60): ResourceRecord => ({ name, type: 'A', ttlSeconds, address });
const srv = (name: string, target: string, port: number): ResourceRecord => ({ name, type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port, target });

test('records read back as given, every type, field for field', (t) => {
  const index = new ZoneIndex();
  const records: ResourceRecord[] = [
    a('web.marathon.mesos', '10.0.0.1'),
    a('web.marathon.mesos', '0.0.0.0'),
    a('web.marathon.mesos', '255.255.255.255'),
    a('odd.mesos', '010.0.0.1'),
    { name: 'web.marathon.mesos', type: 'AAAA', ttlSeconds: 5, address: 'fd01:c::1' },
    { name: '_web._tcp.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 65535, weight: 7, port: 65535, target: 'web.marathon.mesos' },
    { name: '1.0.0.10.in-addr.arpa', type: 'PTR', ttlSeconds: 60, target: 'web.marathon.mesos' },
    { name: 'mesos', type: 'NS', ttlSeconds: 60, target: 'ns1.mesos' },
    { name: 'alias.mesos', type: 'CNAME', ttlSeconds: 60, target: 'web.marathon.mesos' },
    { name: 'txt.mesos', type: 'TXT', ttlSeconds: 60, text: ['a', 'b c'] },
    { name: 'zone.test', type: 'SOA', ttlSeconds: 60, mname: 'ns1.zone.test', rname: 'root.ns1.zone.test', serial: 7, refreshSeconds: 60, retrySeconds: 600, expireSeconds: 86400, minimumSeconds: 1 },
  ];
  index.set('s', records);
  t.deepEqual(index.recordsOf('s'), records);
  t.deepEqual(index.get('web.marathon.mesos', 'A').map((r) => (r.type === 'A' ? r.address : '')), ['10.0.0.1', '0.0.0.0', '255.255.255.255']);
  t.deepEqual(index.get('web.marathon.mesos', 'AAAA'), [records[4]]);
  t.deepEqual(index.get('web.marathon.mesos').length, 4);
  t.deepEqual(index.get('web.marathon.mesos', 'TYPE65'), []);
  t.is(index.names, 8);
  t.is(index.records, records.length);
});

test('equal records from several sources are held once, in arrival order, until the last source lets go', (t) => {
  const index = new ZoneIndex();
  index.set('t1', [a('web.slave.mesos', '10.0.0.1'), a('t1.mesos', '9.0.0.1')]);
  index.set('t2', [a('web.slave.mesos', '10.0.0.2'), a('web.slave.mesos', '10.0.0.1', 5)]);
  t.deepEqual(index.get('web.slave.mesos'), [a('web.slave.mesos', '10.0.0.1'), a('web.slave.mesos', '10.0.0.2')], 'de-duplicated; the first TTL kept');
  t.is(index.records, 4);
  index.set('t1', undefined);
  t.deepEqual(index.get('web.slave.mesos'), [a('web.slave.mesos', '10.0.0.1'), a('web.slave.mesos', '10.0.0.2')], 't2 still holds 10.0.0.1');
  t.false(index.exists('t1.mesos'));
  index.set('t2', [a('web.slave.mesos', '10.0.0.2')]);
  t.deepEqual(index.get('web.slave.mesos'), [a('web.slave.mesos', '10.0.0.2')]);
  // A source replaced by the same records keeps their place.
  index.set('t3', [a('web.slave.mesos', '10.0.0.3')]);
  index.set('t2', [a('web.slave.mesos', '10.0.0.2')]);
  t.deepEqual(index.get('web.slave.mesos').map((r) => (r.type === 'A' ? r.address : '')), ['10.0.0.2', '10.0.0.3']);
});

test('empty non-terminals exist while a name below them does; names nothing uses are forgotten', (t) => {
  const index = new ZoneIndex();
  index.set('t', [srv('_http._web._tcp.marathon.mesos', 'web-x.marathon.mesos', 80)]);
  for (const name of ['_web._tcp.marathon.mesos', '_tcp.marathon.mesos', 'marathon.mesos', 'mesos']) t.true(index.exists(name), name);
  t.false(index.exists('web-x.marathon.mesos'), 'a target alone does not exist');
  t.deepEqual(index.get('_web._tcp.marathon.mesos'), []);
  index.set('u', [a('web-x.marathon.mesos', '9.0.0.1')]);
  index.set('t', undefined);
  t.false(index.exists('_tcp.marathon.mesos'));
  t.true(index.exists('marathon.mesos'));
  index.set('u', []);
  t.false(index.exists('mesos'));
  t.is(index.names, 0);
  t.is(index.records, 0);
  t.deepEqual([...index.allRecords()], []);
});

test('any sequence of sets leaves the same reads as building the final sources afresh', (t) => {
  const name = fc.constantFrom('a.mesos', 'b.a.mesos', 'c.b.a.mesos', '_x._tcp.a.mesos', 'mesos');
  const record = fc.oneof(
    fc.record({ name, ip: fc.constantFrom('10.0.0.1', '10.0.0.2', '255.255.255.255') }).map((r) => a(r.name, r.ip)),
    fc.record({ name, target: name, port: fc.constantFrom(80, 443) }).map((r) => srv(r.name, r.target, r.port)),
  );
  const step = fc.record({ source: fc.constantFrom('s1', 's2', 's3'), records: fc.array(record, { maxLength: 4 }) });
  const view = (index: ZoneIndex): string[] => {
    const names = ['a.mesos', 'b.a.mesos', 'c.b.a.mesos', '_x._tcp.a.mesos', '_tcp.a.mesos', 'mesos'];
    return names.map((n) => `${n} ${index.exists(n)} ${index.get(n).map(rdataKey).sort().join(',')}`);
  };
  fc.assert(
    fc.property(fc.array(step, { maxLength: 20 }), (steps) => {
      const index = new ZoneIndex();
      const last = new Map<string, ResourceRecord[]>();
      for (const s of steps) {
        index.set(s.source, s.records);
        last.set(s.source, s.records);
      }
      const fresh = new ZoneIndex();
      for (const [source, records] of last) fresh.set(source, records);
      t.deepEqual(view(index), view(fresh));
      t.is(index.names, fresh.names);
      t.is(index.records, fresh.records);
    }),
  );
});

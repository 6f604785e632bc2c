import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import { buildFromConfig } from '../dns/start.ts';
import { calibrationRecords, createFakeAuthority } from '../dns/zone-fake/fake-authority.ts';
const mb = (x: number) => (x / 1048576).toFixed(1);
const q = (name: string, id: number) => Buffer.concat([Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, 0, 1, 0, 1])]);
for (const entries of [0, 50000]) {
  const config = loadConfig({ env: {}, overrides: { 'dns.cacheMaxEntries': 0, 'dns.answerCacheMaxEntries': entries } });
  const authority = createFakeAuthority({ zones: ['mesos'], records: calibrationRecords(50000), record: false });
  const silent = { warn: () => undefined, error: () => undefined, info: () => undefined, debug: () => undefined };
  const { server } = buildFromConfig({ config: config.dns, authority, logger: silent, metrics: new Registry() });
  const queries = Array.from({ length: 50000 }, (_, i) => q(`task-${i}.marathon.mesos`, i));
  globalThis.gc!(); const before = process.memoryUsage().heapUsed;
  let n = 0;
  for (const b of queries) server.respond(b, 'udp', (r) => void (n += r.length));
  globalThis.gc!(); const after = process.memoryUsage().heapUsed;
  // timing: 5 rounds of 200k
  const t: number[] = [];
  for (let r = 0; r < 5; r++) { const s = performance.now(); for (let i = 0; i < 200000; i++) server.respond(queries[i % 50000]!, 'udp', (x) => void (n += x.length)); t.push((performance.now() - s) * 1000 / 200000); }
  console.log(`answerCacheMaxEntries=${entries}: heap growth ${mb(after - before)} MB for 50k answers, us/query ${t.map((x) => x.toFixed(3)).join(' ')}`, n > 0);
}

import { readFileSync, writeFileSync } from 'node:fs';
import { ZoneAuthority } from '../dns/zone/authority.ts';
import { JsonSnapshotFeed, cluster, serializedState, tasksForNames } from './dns-cluster.ts';
const mb = (x: number) => Math.round(x / 2 ** 20);
const show = (label: string) => { const m = process.memoryUsage(); console.log(label, JSON.stringify({ rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), ab: mb(m.arrayBuffers) })); };
const file = '/tmp/dzr/state-100k.json';
if (process.argv[2] === 'make') { writeFileSync(file, serializedState(cluster(tasksForNames(100_000)))); process.exit(0); }
show('start');
const z = new ZoneAuthority(new JsonSnapshotFeed(readFileSync(file, 'utf8')));
await z.start();
show('built');
(globalThis as any).gc?.();
await new Promise((r) => setTimeout(r, 500));
(globalThis as any).gc?.();
show('after gc');
console.log('names', z.names, 'records', (z as any).records);
await new Promise((r) => setTimeout(r, 5000));
show('after 5s idle');

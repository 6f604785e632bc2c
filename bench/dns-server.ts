// Child process of `npm run bench -- dns`: one Strata DNS server, pinned by
// the parent with taskset. argv[2] is JSON: {names?, stateFile?, upstreamPort?,
// port?, reusePort?}. `names`: the fake authority's calibration zone of that
// many names. `stateFile`: the real zones (`dns/zone`'s ZoneAuthority) built
// from the cluster state in that file, in the JSON an agent gets from
// `GET /v1/dns/cluster-state` (bench/dns-cluster.ts), held as a DNS-serving
// `strata agent` holds them. Prints `READY <udpPort> <names>` once
// listening; exits on SIGTERM.
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import { startDnsServer } from '../dns/start.ts';
import { ZoneAuthority } from '../dns/zone/authority.ts';
import type { Authority } from '../dns/zone/types.ts';
import { calibrationRecords, createFakeAuthority } from '../dns/zone-fake/fake-authority.ts';
import { JsonSnapshotFeed } from './dns-cluster.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as { names?: number; stateFile?: string; upstreamPort?: number; port?: number; reusePort?: boolean };
const forwarding = options.upstreamPort !== undefined;
const config = loadConfig({
  env: {},
  overrides: {
    'dns.host': '127.0.0.1',
    'dns.udpPort': options.port ?? 0,
    'dns.tcpPort': options.port ?? 0,
    'dns.reusePort': options.reusePort ?? false,
    // Forwarding is measured without the cache, and with an authority that
    // does not serve the queried zone: the full dispatcher path on every query.
    'dns.cacheMaxEntries': 0,
    'dns.upstreams': forwarding ? [`127.0.0.1:${options.upstreamPort}`] : [],
  },
});
let authority: Authority;
let names = 0;
if (forwarding) {
  authority = createFakeAuthority({ zones: ['internal'], records: [], record: false });
} else if (options.stateFile !== undefined) {
  const zones = new ZoneAuthority(new JsonSnapshotFeed(readFileSync(options.stateFile, 'utf8')));
  await zones.start();
  authority = zones;
  names = zones.names;
} else {
  names = options.names ?? 10_000;
  authority = createFakeAuthority({ zones: ['mesos'], records: calibrationRecords(names), record: false });
}
const silent = { warn: () => undefined, error: () => undefined, info: () => undefined, debug: () => undefined };
const server = await startDnsServer({ config: config.dns, authority, logger: silent, metrics: new Registry() });
console.log(`READY ${server.udpPort} ${names}`);
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});

// Child process of `npm run bench -- dns`: one Strata DNS server, pinned by
// the parent with taskset. argv[2] is JSON: {names?, upstreamPort?, port?,
// reusePort?}. Prints `READY <udpPort>` once listening; exits on SIGTERM.
import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import { startDnsServer } from '../dns/start.ts';
import { calibrationRecords, createFakeAuthority } from '../dns/zone-fake/fake-authority.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as { names?: number; upstreamPort?: number; port?: number; reusePort?: boolean };
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
const authority = forwarding
  ? createFakeAuthority({ zones: ['internal'], records: [], record: false })
  : createFakeAuthority({ zones: ['mesos'], records: calibrationRecords(options.names ?? 10_000), record: false });
const silent = { warn: () => undefined, error: () => undefined, info: () => undefined, debug: () => undefined };
const server = await startDnsServer({ config: config.dns, authority, logger: silent, metrics: new Registry() });
console.log(`READY ${server.udpPort}`);
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});

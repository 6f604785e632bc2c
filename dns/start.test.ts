import { createSocket } from 'node:dgram';
import test from 'ava';
import { Registry } from 'prom-client';
import { loadConfig } from '../control-plane/config/load.ts';
import { freePort } from '../test/harness/dns-peers.ts';
import { pluginSetup, PLUGINS, DEFAULT_CHAIN } from './plugins/registry.ts';
import { askUdp, rcodeOf, recordingLogger } from './server/testing.ts';
import { startDnsServer } from './start.ts';
import { createFakeAuthority } from './zone-fake/fake-authority.ts';

const messageOf = (fn: () => unknown): [string | undefined, string] => {
  try {
    fn();
    return [undefined, ''];
  } catch (err) {
    return [(err as { code?: string }).code, (err as Error).message];
  }
};

test('dns config: defaults safe on one machine (no :53, no upstream traffic), bad values name the field', (t) => {
  const { dns } = loadConfig({ env: {} });
  t.like(dns, { enabled: true, host: '127.0.0.1', udpPort: 61053, tcpPort: 61053, upstreams: [], maxUdpPayloadBytes: 1232 });
  t.deepEqual(dns.chain, [...DEFAULT_CHAIN]);
  const cases: [Parameters<typeof loadConfig>[0], RegExp][] = [
    [{ flags: { 'dns-upstreams': '10.0.0.1,dns.google' } }, /^config: dns\.upstreams\.1 \(from --dns-upstreams\) must match pattern/],
    [{ env: { STRATA_DNS_FORWARD_ZONES: '{"corp": []}' } }, /dns\.forwardZones\.corp \(from STRATA_DNS_FORWARD_ZONES\) must NOT have fewer than 1 items/],
    [{ env: { STRATA_DNS_FORWARD_ZONES: 'corp=1.2.3.4' } }, /dns\.forwardZones \(from STRATA_DNS_FORWARD_ZONES\) must be a JSON object/],
    [{ flags: { 'dns-udp-port': '70000' } }, /dns\.udpPort \(from --dns-udp-port\) must be <= 65535/],
    [{ flags: { 'dns-max-udp-payload-bytes': '100' } }, /dns\.maxUdpPayloadBytes .* must be >= 512/],
    [{ flags: { 'dns-chain': 'ready,bogus' } }, /dns\.chain\.1 \(from --dns-chain\)/],
  ];
  for (const [inputs, expected] of cases) {
    const [code, message] = messageOf(() => loadConfig({ env: {}, ...inputs }));
    t.is(code, 'CONFIG_INVALID', message);
    t.regex(message, expected);
  }
  const zones = loadConfig({ env: { STRATA_DNS_FORWARD_ZONES: '{"corp.example": ["10.0.0.5:53"]}' } }).dns.forwardZones;
  t.deepEqual(zones, { 'corp.example': ['10.0.0.5:53'] });
});

test('startDnsServer: bad upstreams fail before any socket opens; a busy port is DNS_LISTEN_FAILED; close is idempotent', async (t) => {
  const authority = createFakeAuthority({ zones: ['mesos'], records: [] });
  const base = loadConfig({ env: {}, overrides: { 'dns.udpPort': 0, 'dns.tcpPort': 0 } }).dns;
  const start = (dns: object) => startDnsServer({ config: { ...base, ...dns }, authority, logger: recordingLogger(), metrics: new Registry() });
  const bad = await t.throwsAsync(start({ upstreams: ['10.0.0.1:99999'] }));
  t.is((bad as { code?: string }).code, 'DNS_UPSTREAM_INVALID');
  t.regex(bad!.message, /dns\.upstreams\[0\] "10\.0\.0\.1:99999"/);

  const squatter = createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(0, '127.0.0.1', () => resolve()));
  t.teardown(() => squatter.close());
  const busy = await t.throwsAsync(start({ udpPort: squatter.address().port }));
  t.is((busy as { code?: string }).code, 'DNS_LISTEN_FAILED');

  const s = await start({});
  t.is(s.udpPort, s.tcpPort, 'port 0 for both: one number for UDP and TCP when free');
  t.is(rcodeOf(await askUdp(s.udpPort, 'ready.spartan')), 'NOERROR');
  await Promise.all([s.close(), s.close()]);
  await t.notThrowsAsync(s.close());
});

test('plugins are registered by name; an unknown name is DNS_PLUGIN_UNKNOWN', (t) => {
  t.deepEqual(Object.keys(PLUGINS).sort(), ['authority', 'cache', 'forward', 'ready']);
  const [code, message] = messageOf(() => pluginSetup('rewrite'));
  t.is(code, 'DNS_PLUGIN_UNKNOWN');
  t.regex(message, /no plugin named "rewrite"/);
  t.is(messageOf(() => pluginSetup('toString'))[0], 'DNS_PLUGIN_UNKNOWN');
});

test('dns.reusePort: two servers share one port (the kernel spreads queries); without it the second is refused', async (t) => {
  const authority = createFakeAuthority({ zones: ['mesos'], records: [] });
  const port = await freePort();
  const config = loadConfig({ env: {}, overrides: { 'dns.udpPort': port, 'dns.tcpPort': port, 'dns.reusePort': true } }).dns;
  const start = (dns: object) => startDnsServer({ config: { ...config, ...dns }, authority, logger: recordingLogger(), metrics: new Registry() });
  const a = await start({});
  t.teardown(() => a.close());
  const b = await start({});
  t.teardown(() => b.close());
  t.is(a.udpPort, port);
  t.is(b.udpPort, port);
  for (let i = 0; i < 5; i++) t.is(rcodeOf(await askUdp(port, 'ready.spartan')), 'NOERROR');
  const refused = await t.throwsAsync(start({ reusePort: false }));
  t.is((refused as { code?: string }).code, 'DNS_LISTEN_FAILED');
});

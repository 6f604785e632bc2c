// `strata dns lookup` as a user runs it: a real process against a DNS server
// started in the test (127.0.0.1, port 0).
import test from 'ava';
import { startTestServer } from '../dns/server/testing.ts';
import { createFakeAuthority } from '../dns/zone-fake/fake-authority.ts';
import { runStrata } from '../test/harness/process.ts';

test('strata dns lookup NAME [TYPE]: answers, SRV, NXDOMAIN exit 1, NODATA exit 0, bad TYPE is a usage error', async (t) => {
  const zone = createFakeAuthority({
    zones: ['mesos'],
    records: [
      { name: 'web.marathon.mesos', type: 'A', ttlSeconds: 60, address: '10.0.0.7' },
      { name: '_web._tcp.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31007, target: 'web.marathon.mesos' },
    ],
  });
  const s = await startTestServer(zone, { chain: ['ready', 'authority'] });
  t.teardown(() => s.close());
  const env = { STRATA_DNS_UDP_PORT: String(s.udpPort) };
  const a = await runStrata(['dns', 'lookup', 'web.marathon.mesos'], { env });
  t.is(a.code, 0, a.output);
  t.regex(a.output, /^web\.marathon\.mesos\tA\t10\.0\.0\.7$/m);
  const srv = await runStrata(['dns', 'lookup', '_web._tcp.marathon.mesos', 'srv', '--server', `127.0.0.1:${s.udpPort}`]);
  t.regex(srv.output, /SRV\t0 1 31007 web\.marathon\.mesos/);
  const nx = await runStrata(['dns', 'lookup', 'nope.marathon.mesos'], { env });
  t.is(nx.code, 1);
  t.regex(nx.output, /NXDOMAIN/);
  const nodata = await runStrata(['dns', 'lookup', 'web.marathon.mesos', 'AAAA'], { env });
  t.is(nodata.code, 0);
  t.regex(nodata.output, /NODATA/);
  const ready = await runStrata(['dns', 'lookup', 'ready.spartan', '--json'], { env });
  t.deepEqual(JSON.parse(ready.output), ['127.0.0.1']);
  const bad = await runStrata(['dns', 'lookup', 'x.mesos', 'MX'], { env });
  t.is(bad.code, 2);
  t.regex(bad.output, /TYPE must be one of/);
});

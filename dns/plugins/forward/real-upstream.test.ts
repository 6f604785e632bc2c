// The dispatcher in front of real resolvers: unbound and dnsmasq started by
// the test on 127.0.0.1 (ports picked here, configs in temp dirs, killed at
// the end even on failure), queried through Strata with dig.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { available, startDnsmasq, startUnbound, type LocalRecord } from '../../../test/harness/dns-peers.ts';
import { askTcp, askUdp, rcodeOf, startTestServer } from '../../server/testing.ts';
import { createFakeAuthority } from '../../zone-fake/fake-authority.ts';

const run = promisify(execFile);
const RECORDS: LocalRecord[] = [{ name: 'www.example.test', address: '192.0.2.10', ttlSeconds: 300 }];
const zone = () => createFakeAuthority({ zones: ['mesos'], records: [{ name: 'leader.mesos', type: 'A', ttlSeconds: 60, address: '10.0.0.1' }] });

const missing = ['unbound', 'dnsmasq'].filter((b) => !available(b as 'unbound'));
if (missing.length > 0) {
  test.skip(`forwarding to real resolvers (needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')})`, () => {});
} else {
  test('through unbound and dnsmasq: answers, NXDOMAIN, TCP, internal names kept, and failover when one dies', async (t) => {
    const unbound = await startUnbound({ zone: 'example.test', records: RECORDS });
    t.teardown(() => unbound.stop());
    const dnsmasq = await startDnsmasq({ zone: 'example.test', records: RECORDS });
    t.teardown(() => dnsmasq.stop());
    const s = await startTestServer(zone(), { upstreams: [`127.0.0.1:${unbound.port}`, `127.0.0.1:${dnsmasq.port}`], upstreamTimeoutMs: 300, cacheMaxEntries: 0 });
    t.teardown(() => s.close());

    const a = await askUdp(s.udpPort, 'www.example.test');
    t.is(rcodeOf(a), 'NOERROR');
    t.like(a.answers![0], { name: 'www.example.test', data: '192.0.2.10' });
    t.is(rcodeOf(await askUdp(s.udpPort, 'nope.example.test')), 'NXDOMAIN');
    t.like((await askTcp(s.tcpPort, 'www.example.test')).answers![0], { data: '192.0.2.10' });
    t.like((await askUdp(s.udpPort, 'leader.mesos')).answers![0], { data: '10.0.0.1' });
    const dig = available('dig');
    if (dig) {
      const out = (await run(dig, ['@127.0.0.1', '-p', String(s.udpPort), '+time=2', '+tries=1', 'www.example.test'])).stdout;
      // TTL 300 from unbound or 0 from dnsmasq (addn-hosts), whichever answered first.
      t.regex(out, /www\.example\.test\.\s+(300|0)\s+IN\s+A\s+192\.0\.2\.10/);
      t.regex(out, /flags: qr aa rd ra;|flags: qr rd ra;|flags: qr aa rd;/);
    }

    await unbound.stop();
    for (let i = 0; i < 5; i++) t.is(rcodeOf(await askUdp(s.udpPort, `www.example.test`)), 'NOERROR', 'dnsmasq still answers');
    await dnsmasq.stop();
    t.is(rcodeOf(await askUdp(s.udpPort, 'www.example.test')), 'SERVFAIL', 'nobody left');
    const failures = await s.registry.getSingleMetricAsString('strata_dns_forward_upstream_failures_total');
    t.regex(failures, new RegExp(`upstream="127.0.0.1:${unbound.port}",reason="timeout"}`));
  });
}

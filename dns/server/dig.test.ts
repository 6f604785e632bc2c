// The server as real clients see it: BIND's dig against it on 127.0.0.1.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import test from 'ava';
import { available } from '../../test/harness/dns-peers.ts';
import { createFakeAuthority } from '../zone-fake/fake-authority.ts';
import type { ResourceRecord } from '../zone/types.ts';
import { startTestServer } from './testing.ts';

const run = promisify(execFile);
const DIG = available('dig');

const A = (name: string, address: string): ResourceRecord => ({ name, type: 'A', ttlSeconds: 60, address });
const zone = () =>
  createFakeAuthority({
    zones: ['mesos'],
    records: [
      A('web.marathon.mesos', '10.0.0.7'),
      { name: '_web._tcp.marathon.mesos', type: 'SRV', ttlSeconds: 60, priority: 0, weight: 1, port: 31007, target: 'web.marathon.mesos' },
      ...Array.from({ length: 100 }, (_, i) => A('app-big.marathon.mesos', `10.1.0.${i}`)),
    ],
  });

const dig = async (port: number, ...args: string[]): Promise<string> =>
  (await run(DIG!, ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 10_000 })).stdout;

if (!DIG) {
  test.skip('dig against the server (needs dig: apt-get install bind9-dnsutils)', () => {});
} else {
  test('dig: A with the question\'s case, AA, NXDOMAIN with SOA, SRV with glue, ready.spartan', async (t) => {
    const s = await startTestServer(zone(), { chain: ['ready', 'authority'] });
    t.teardown(() => s.close());
    const a = await dig(s.udpPort, 'WeB.Marathon.mesos', 'A');
    t.regex(a, /status: NOERROR/);
    t.regex(a, /flags: qr aa rd;/);
    t.regex(a, /^WeB\.Marathon\.mesos\.\s+60\s+IN\s+A\s+10\.0\.0\.7$/m);
    t.regex(a, /udp: 1232/, 'our OPT answers dig\'s');
    const nx = await dig(s.udpPort, 'nope.marathon.mesos');
    t.regex(nx, /status: NXDOMAIN/);
    t.regex(nx, /AUTHORITY SECTION:\nmesos\.\s+60\s+IN\s+SOA\s+ns1\.mesos\. root\.ns1\.mesos\. 1 60 600 86400 60/);
    const srv = await dig(s.udpPort, '_web._tcp.marathon.mesos', 'SRV');
    t.regex(srv, /IN\s+SRV\s+0 1 31007 web\.marathon\.mesos\./);
    t.regex(srv, /ADDITIONAL SECTION:\nweb\.marathon\.mesos\.\s+60\s+IN\s+A\s+10\.0\.0\.7/);
    t.is((await dig(s.udpPort, '+short', 'ready.spartan')).trim(), '127.0.0.1');
  });

  test('dig: a 100-record answer without EDNS is truncated and dig retries over TCP; +tcp works directly', async (t) => {
    const s = await startTestServer(zone(), { chain: ['authority'] });
    t.teardown(() => s.close());
    const out = await dig(s.udpPort, '+noedns', 'app-big.marathon.mesos');
    t.regex(out, /Truncated, retrying in TCP mode/);
    t.regex(out, /ANSWER: 100,/);
    const tcp = await dig(s.tcpPort, '+tcp', 'app-big.marathon.mesos');
    t.regex(tcp, /ANSWER: 100,/);
    t.regex(tcp, /\(TCP\)/);
  });
}

import test from 'ava';
import { Registry } from 'prom-client';
import { readFileSync } from 'node:fs';
import { createFakeAuthority } from '../zone-fake/fake-authority.ts';
import { authorityPlugin } from '../plugins/authority/authority.ts';
import { compose } from './handler.ts';
import { serverMetrics } from './metrics.ts';
import { buildDnsServer } from './server.ts';
import { buildQuery, recordingLogger, udpExchange } from './testing.ts';
import { UDP_RECV_BUFFER_BYTES, listenUdp } from './udp.ts';

test('the UDP listener asks for a large receive buffer (capped by net.core.rmem_max) and answers through it', async (t) => {
  const server = buildDnsServer({
    handler: compose([authorityPlugin(createFakeAuthority({ zones: ['mesos'], records: [{ name: 'a.mesos', type: 'A', ttlSeconds: 5, address: '10.0.0.1' }] }))]),
    metrics: serverMetrics(new Registry()),
    logger: recordingLogger(),
    maxUdpPayloadBytes: 1232,
    recursionAvailable: false,
    answerCacheMaxEntries: 16,
  });
  const listener = await listenUdp(server, { host: '127.0.0.1', port: 0 }, recordingLogger());
  t.teardown(() => listener.close());
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  // Linux reports twice the size it accounts (its bookkeeping overhead).
  t.is(listener.recvBufferBytes, 2 * Math.min(UDP_RECV_BUFFER_BYTES, rmemMax));
  for (const id of [1, 2]) {
    const reply = await udpExchange(listener.port, buildQuery('a.mesos', { id }));
    t.is(reply?.readUInt16BE(0), id, 'answered, the second time from the answer cache, each with its own ID');
  }
});

/**
 * The agent's overlay loop against a test master and the in-repo fake
 * kernel: each agent gets its lease from the API, programs its peers, and
 * follows a network added later; closing with removeDevices takes its
 * devices out.
 */
import test from 'ava';
import type { Agent } from '../control-plane/model/schemas.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { startOverlayAgent } from './agent.ts';
import { RTPROT_STRATA } from './rtnl/codec.ts';
import { FakeRtnl } from './rtnl/fake.ts';
import { MasterUrls } from '../scheduler/agent/masters.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

async function eventually(check: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('two agents get leases from the master, program each other, and follow a network added later', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const now = new Date().toISOString();
  const agent = (id: string, ip: string): Agent => ({
    id, hostname: `${id}.example`, address: { ip, port: 5051 }, attributes: {},
    resources: { cpus: 1, memMb: 1024, diskMb: 1024, gpus: 0, ports: [] }, reservations: [],
    health: { status: 'healthy', lastSeenAt: now }, maintenance: 'none', registeredAt: now,
  });
  await h.master.records.put('agent', agent('a1', '10.0.0.1'));
  await h.master.records.put('agent', agent('a2', '10.0.0.2'));
  const kernels = [new FakeRtnl(), new FakeRtnl()];
  const agents = ['a1', 'a2'].map((agentId, i) => startOverlayAgent({ masters: new MasterUrls(h.master.apiUrl), token: async () => token, agentId, rtnl: kernels[i]!, logger: quiet, reconcileSeconds: 1, enableForwarding: false }));
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  await Promise.all(agents.map((a) => a.ready));
  // Both leased; each programs the other once both leases exist (the second round at the latest).
  const route = (k: FakeRtnl, dst: string): boolean => k.state.routes.some((r) => r.protocol === RTPROT_STRATA && r.dst === dst);
  const [l1, l2] = [agents[0]!.lease()!, agents[1]!.lease()!];
  await eventually(() => route(kernels[0]!, l2.networks['dcos']!.subnet!.split('/')[0]!) && route(kernels[1]!, l1.networks['dcos']!.subnet!.split('/')[0]!));
  t.true(kernels[0]!.state.fdb.some((f) => f.mac === l2.vtepMac && f.dst === '10.0.0.2'));

  const add = await h.master.app.inject({ method: 'POST', url: '/networking/api/v1/networks', headers: { authorization: `token=${token}` }, payload: { name: 'blue', subnet: '10.200.0.0/16', vni: 2000 } });
  t.is(add.statusCode, 201, add.body);
  await eventually(() => kernels.every((k) => k.state.links.some((l) => l.name === 'vtep2000')) && kernels[0]!.state.routes.some((r) => r.dst.startsWith('10.200.')));
  t.truthy(agents[0]!.lease()!.networks['blue']);

  await agents[0]!.close({ removeDevices: true });
  t.deepEqual(kernels[0]!.state.links.map((l) => l.name), [], 'its VXLAN devices and bridges are gone, and with them its routes');
  t.deepEqual(kernels[0]!.state.routes, []);
});

test('with several masters, the overlay asks the next one when the first is down', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const now = new Date().toISOString();
  await h.master.records.put('agent', {
    id: 'a1', hostname: 'a1.example', address: { ip: '10.0.0.1', port: 5051 }, attributes: {},
    resources: { cpus: 1, memMb: 1024, diskMb: 1024, gpus: 0, ports: [] }, reservations: [],
    health: { status: 'healthy', lastSeenAt: now }, maintenance: 'none', registeredAt: now,
  });
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const downUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((r) => gone.close(r));
  const masters = new MasterUrls([downUrl, h.master.apiUrl]);
  const kernel = new FakeRtnl();
  // Rounds every second: the first fails on the down master, a later one asks the next.
  const overlay = startOverlayAgent({ masters, token: async () => token, agentId: 'a1', rtnl: kernel, logger: quiet, reconcileSeconds: 1, enableForwarding: false });
  t.teardown(() => overlay.close());
  await overlay.ready;
  t.is(masters.current, h.master.apiUrl);
  t.truthy(overlay.lease()?.networks['dcos']?.subnet);
  t.true(kernel.state.links.some((l) => l.name === 'vtep1024'));
});

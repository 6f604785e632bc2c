import test from 'ava';
import { cidrContains, parseCidr } from '../../common/ip.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { keyOf } from '../model/keys.ts';
import type { Task } from '../model/schemas.ts';
import { vipAllocator } from './allocator.ts';
import { vipRangesOf } from './plan.ts';

/** Poll `read` until it gives a value (the allocator runs on its own). */
async function eventually<T>(read: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting for the VIP allocator');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const RANGES = vipRangesOf({ vips: { ipv4Range: '11.0.0.0/8', ipv6Range: 'fd01:c::/64' } });

test('the allocator publishes a named VIP once an app labels a port, the API lists it with its backends, and it is released with the app', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [vipAllocator({ ranges: RANGES, debounceMs: 5 })] });
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  const created = await h.master.app.inject({
    method: 'POST', url: '/v2/apps', headers: auth,
    payload: { id: '/shop/web', cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 0, portDefinitions: [{ port: 0, name: 'http', labels: { VIP_0: '/shop/web:80' } }] },
  });
  t.is(created.statusCode, 201, created.body);
  const vip = await eventually(async () => (await h.master.records.get('vip', 'marathon//shop/web'))?.value);
  t.true(cidrContains(parseCidr('11.0.0.0/8')!, vip.ipv4!), vip.ipv4);
  t.true(cidrContains(parseCidr('fd01:c::/64')!, vip.ipv6!), vip.ipv6);
  t.deepEqual(vip.ports, [{ port: 80, protocol: 'tcp' }]);

  // A running task of the app is a backend (weight 1: no health checks); a KILLING one drains at weight 0.
  const app = (await h.master.records.get('app', '/shop/web'))!.value;
  const now = new Date().toISOString();
  const task = (id: string, state: Task['state'], port: number): Task => ({
    id, appId: app.id, agentId: 'agent-1', host: '127.0.0.1', state, stagedAt: now, startedAt: now, stateChangedAt: now,
    ports: [port], servicePorts: [], ipAddresses: [], healthCheckResults: [], version: app.version,
    resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  await h.master.records.put('task', task('shop_web.1', 'RUNNING', 31001));
  await h.master.records.put('task', task('shop_web.2', 'KILLING', 31002));
  const list = await h.master.app.inject({ method: 'GET', url: '/networking/api/v1/vips', headers: auth });
  t.is(list.statusCode, 200, list.body);
  const [view] = (list.json() as { vips: Record<string, unknown>[] }).vips;
  t.like(view, { name: '/shop/web', kind: 'named', dnsName: 'shopweb.marathon.l4lb.thisdcos.directory', ipv4: vip.ipv4, allocated: true, apps: ['/shop/web'] });
  t.deepEqual((view!['backends'] as { ip: string; port: number; weight: number }[]).map((b) => [b.ip, b.port, b.weight]), [['127.0.0.1', 31001, 1], ['127.0.0.1', 31002, 0]]);
  for (const name of ['shopweb', encodeURIComponent('/shop/web'), vip.ipv4!]) {
    const one = await h.master.app.inject({ method: 'GET', url: `/networking/api/v1/vips/${name}`, headers: auth });
    t.is(one.statusCode, 200, `${name}: ${one.body}`);
  }
  const missing = await h.master.app.inject({ method: 'GET', url: '/networking/api/v1/vips/nope', headers: auth });
  t.is(missing.statusCode, 404);
  t.regex((missing.json() as { message: string }).message, /no VIP "nope"/);

  // Relabel, then remove the label: the record follows, keeping its addresses while it lives.
  const put = await h.master.app.inject({
    method: 'PUT', url: '/v2/apps/shop/web?force=true', headers: auth,
    payload: { cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 0, portDefinitions: [{ port: 0, labels: { VIP_0: '/shop/web:80' } }, { port: 0, protocol: 'udp', labels: { VIP_1: '/shop/web:53' } }] },
  });
  t.true(put.statusCode < 300, put.body);
  const grown = await eventually(async () => {
    const v = (await h.master.records.get('vip', 'marathon//shop/web'))?.value;
    return v && v.ports.length === 2 ? v : undefined;
  });
  t.is(grown.ipv4, vip.ipv4);
  const cleared = await h.master.app.inject({ method: 'PUT', url: '/v2/apps/shop/web?force=true', headers: auth, payload: { cmd: 'sleep 1000', cpus: 0.1, mem: 32, instances: 0, portDefinitions: [{ port: 0 }] } });
  t.true(cleared.statusCode < 300, cleared.body);
  t.true(await eventually(async () => ((await h.store.get(keyOf('vip', 'marathon//shop/web'))) === undefined ? true : undefined)));
});

test('an app whose VIP label conflicts with another app\'s is refused with Marathon\'s 422 naming the label', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  const first = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id: '/a', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: '/foo/bar:80' } }] } });
  t.is(first.statusCode, 201, first.body);
  const second = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id: '/b', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: '/foobar:80' } }, { labels: { VIP_0: '11.0.0.5:80' } }] } });
  t.is(second.statusCode, 422, second.body);
  const body = second.json() as { message: string; details: { path: string; errors: string[] }[] };
  t.is(body.message, 'Object is not valid');
  t.deepEqual(body.details.map((d) => d.path), ['/portDefinitions/0/labels/VIP_0', '/portDefinitions/1/labels/VIP_0']);
  t.regex(body.details[0]!.errors[0]!, /foobar\.marathon\.l4lb\.thisdcos\.directory/);
  t.is((await h.master.records.get('app', '/b')), undefined, 'nothing stored');
  const bad = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id: '/c', cmd: 'x', instances: 0, portDefinitions: [{ labels: { VIP_0: 'no-port' } }] } });
  t.is(bad.statusCode, 422, bad.body);
  t.regex(bad.body, /labels\/VIP_0/);
});

import test from 'ava';
import { isStrataError } from '../../common/errors.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { keys } from '../model/keys.ts';
import type { Agent, Task } from '../model/schemas.ts';
import { overlayAddressReaper } from './address-reaper.ts';
import { OverlayIpam } from './ipam-store.ts';

const NOW = new Date().toISOString();
const agent = (id: string, ip: string): Agent => ({
  id, hostname: `${id}.example`, address: { ip, port: 5051 }, attributes: {},
  resources: { cpus: 1, memMb: 1024, diskMb: 1024, gpus: 0, ports: [] }, reservations: [],
  health: { status: 'healthy', lastSeenAt: NOW }, maintenance: 'none', registeredAt: NOW,
});

test('agents registering at once, through two allocators, get distinct VTEPs and subnets; asking again changes nothing', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.records.put('network', { name: 'blue', subnet: '10.50.0.0/16', prefix: 26, prefix6: 80, mtu: 1420, vni: 2000, labels: {} });
  const masters = [new OverlayIpam(h.store, h.master.records), new OverlayIpam(h.store, h.master.records)];
  const ids = Array.from({ length: 40 }, (_, i) => `agent-${i}`);
  const results = await Promise.all(ids.map((id, i) => masters[i % 2]!.ensureLease(id, `192.168.1.${i + 1}`)));
  const vteps = new Set(results.map((r) => r.lease.vtepIp));
  const dcos = new Set(results.map((r) => r.lease.networks['dcos']!.subnet));
  const dcos6 = new Set(results.map((r) => r.lease.networks['dcos6']!.subnet6));
  const blue = new Set(results.map((r) => r.lease.networks['blue']!.subnet));
  t.is(vteps.size, 40);
  t.is(dcos.size, 40);
  t.is(dcos6.size, 40);
  t.is(blue.size, 40);
  for (const r of results) t.deepEqual(r.exhausted, []);
  // First-free packs the pools: 40 agents hold exactly the first 40 of each.
  t.deepEqual([...vteps].sort(), Array.from({ length: 40 }, (_, i) => `44.128.0.${i + 1}`).sort());
  t.deepEqual([...dcos].sort(), Array.from({ length: 40 }, (_, i) => `9.0.${i}.0/24`).sort());
  // Every claim is in the store, and the stored lease is the returned one.
  const claims = await h.store.list(keys.prefix('overlayClaim'));
  t.is(claims.entries.length, 40 * 4);
  const again = await Promise.all(ids.map((id, i) => masters[(i + 1) % 2]!.ensureLease(id, `192.168.1.${i + 1}`)));
  t.deepEqual(again.map((r) => r.lease), results.map((r) => r.lease));
  t.deepEqual((await masters[0]!.leases()).length, 40);
});

test('dual-stack and IPv6-only networks: each task gets one address per family, unique under concurrency through two allocators, the same when asked again', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.records.put('network', { name: 'dual', subnet: '10.61.0.0/16', subnet6: 'fd01:e::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 2002, labels: {} });
  const masters = [new OverlayIpam(h.store, h.master.records), new OverlayIpam(h.store, h.master.records)];
  const { lease } = await masters[0]!.ensureLease('a1', '192.168.1.1');
  t.deepEqual(lease.networks['dual'], { subnet: '10.61.0.0/24', subnet6: 'fd01:e::/80' });
  t.deepEqual(lease.networks['dcos6'], { subnet6: 'fd01:b::/80' });
  const tasks = Array.from({ length: 12 }, (_, i) => `web.${i}`);
  const dual = await Promise.all(tasks.map((task, i) => masters[i % 2]!.assignAddresses('a1', 'dual', task)));
  for (const a of dual) t.deepEqual(a.map((x) => (x.ip.includes(':') ? 6 : 4)), [4, 6], 'IPv4 then IPv6');
  t.is(new Set(dual.map((a) => a[0]!.ip)).size, 12);
  t.is(new Set(dual.map((a) => a[1]!.ip)).size, 12);
  t.deepEqual(dual.map((a) => a[1]!.ip).sort(), Array.from({ length: 12 }, (_, i) => `fd01:e::${(i + 2).toString(16)}`).sort());
  const only6 = await Promise.all(tasks.map((task, i) => masters[i % 2]!.assignAddresses('a1', 'dcos6', task)));
  t.true(only6.every((a) => a.length === 1 && a[0]!.ip.startsWith('fd01:b::')));
  t.is(new Set(only6.map((a) => a[0]!.ip)).size, 12);
  t.deepEqual(await masters[1]!.assignAddresses('a1', 'dual', 'web.3'), dual[3], 'asking again gives the same two');
});

test('container IPs: unique under concurrency, idempotent per task, released when the task ends, reused only after the quarantine', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.records.put('network', { name: 'small', subnet: '10.60.0.0/24', prefix: 29, prefix6: 80, mtu: 1420, vni: 2001, labels: {} });
  let now = Date.parse('2026-01-01T00:00:00.000Z');
  const ipam = new OverlayIpam(h.store, h.master.records, { now: () => new Date(now), quarantineSeconds: 60 });
  const { lease } = await ipam.ensureLease('a1', '192.168.1.1');
  t.is(lease.networks['small']!.subnet, '10.60.0.0/29');

  const noLease = await ipam.assignAddresses('a2', 'small', 't0').catch((e: unknown) => e);
  t.true(isStrataError(noLease, 'OVERLAY_NO_LEASE'));

  const got = await Promise.all(['t1', 't2', 't3', 't4', 't5'].map((task) => ipam.assignAddresses('a1', 'small', task)));
  t.deepEqual(got.map((a) => a[0]!.ip).sort(), ['10.60.0.2', '10.60.0.3', '10.60.0.4', '10.60.0.5', '10.60.0.6']);
  t.is((await ipam.assignAddresses('a1', 'small', 't3'))[0]!.ip, got[2]![0]!.ip, 'the same task asking again gets the same address');

  const full = await ipam.assignAddresses('a1', 'small', 't6').catch((e: unknown) => e);
  t.true(isStrataError(full, 'OVERLAY_EXHAUSTED'));
  t.regex((full as Error).message, /network "small": agent a1's subnet 10\.60\.0\.0\/29 has no free container IP \(5 assigned, 0 released/);

  // t2 ends; t3 is LOST (it may still run on a partitioned agent): only t2's address is released.
  const task = (id: string, state: Task['state']): Task => ({
    id, appId: '/web', agentId: 'a1', host: 'a1', state, stagedAt: NOW, stateChangedAt: NOW, ports: [], servicePorts: [], ipAddresses: [],
    healthCheckResults: [], version: NOW, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  const tasks = new Map(['t1', 't4', 't5'].map((id) => [id, task(id, 'RUNNING')]));
  tasks.set('t2', task('t2', 'FINISHED'));
  tasks.set('t3', task('t3', 'LOST'));
  t.is(await ipam.releaseEnded(tasks), 1);
  const stillFull = await ipam.assignAddresses('a1', 'small', 't6').catch((e: unknown) => e);
  t.regex((stillFull as Error).message, /4 assigned, 1 released and still in their 60 s quarantine/, 'no reuse during the quarantine');
  now += 61_000;
  const reused = await ipam.assignAddresses('a1', 'small', 't6');
  t.is(reused[0]!.ip, got[1]![0]!.ip, 't2\'s address, after its quarantine');

  const unknown = await ipam.assignAddresses('a1', 'nope', 't7').catch((e: unknown) => e);
  t.true(isStrataError(unknown, 'RECORD_NOT_FOUND'));
});

test('the lease API: an agent allocates its lease, reads it and everyone\'s, and gets a task address; an exhausted network is named', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  await h.master.records.put('agent', agent('a1', '10.0.0.1'));
  await h.master.records.put('agent', agent('a2', '10.0.0.2'));
  await h.master.records.put('network', { name: 'one', subnet: '10.70.0.0/24', prefix: 24, prefix6: 80, mtu: 1420, vni: 2002, labels: {} });
  const call = (method: 'GET' | 'PUT' | 'POST', url: string, payload?: object) => h.master.app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });

  const missing = await call('GET', '/networking/api/v1/agents/a1/overlay');
  t.is(missing.statusCode, 404, missing.body);
  const first = await call('PUT', '/networking/api/v1/agents/a1/overlay', {});
  t.is(first.statusCode, 200, first.body);
  t.like(first.json(), { lease: { agentId: 'a1', underlayIp: '10.0.0.1', vtepIp: '44.128.0.1', vtepMac: '70:b3:d5:80:00:01', networks: { dcos: { subnet: '9.0.0.0/24' }, one: { subnet: '10.70.0.0/24' } } }, exhausted: [] });
  const second = await call('PUT', '/networking/api/v1/agents/a2/overlay', {});
  t.is(second.statusCode, 200, second.body);
  const body = second.json() as { lease: { networks: Record<string, unknown> }; exhausted: { network: string; message: string }[] };
  t.is(body.exhausted[0]?.network, 'one');
  t.regex(body.exhausted[0]!.message, /network "one" has no free \/24 left in 10\.70\.0\.0\/24 for agent a2/);
  t.false('one' in body.lease.networks);
  const ghost = await call('PUT', '/networking/api/v1/agents/ghost/overlay', {});
  t.is(ghost.statusCode, 404, ghost.body);

  const read = await call('GET', '/networking/api/v1/agents/a1/overlay');
  t.is(read.statusCode, 200);
  const all = await call('GET', '/networking/api/v1/overlay/leases');
  t.is((all.json() as { leases: unknown[] }).leases.length, 2);

  const addr = await call('POST', '/networking/api/v1/agents/a2/overlay/addresses', { network: 'dcos', taskId: 'web.1' });
  t.is(addr.statusCode, 200, addr.body);
  t.like((addr.json() as { addresses: object[] }).addresses[0], { network: 'dcos', ip: '9.0.1.2', agentId: 'a2', taskId: 'web.1', state: 'assigned' });
  const none = await call('POST', '/networking/api/v1/agents/a2/overlay/addresses', { network: 'one', taskId: 'web.2' });
  t.is(none.statusCode, 409, none.body);
  t.like(none.json(), { code: 'OVERLAY_EXHAUSTED' });
  t.regex((none.json() as { message: string }).message, /agent a2 has no subnet of network "one"/);
});

test('the leader releases a task\'s container IP when the task ends, not while it is LOST', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [overlayAddressReaper({ debounceMs: 5 })] });
  t.teardown(() => h.close());
  const ipam = new OverlayIpam(h.store, h.master.records);
  await ipam.ensureLease('a1', '192.168.1.1');
  const task = (id: string, state: Task['state']): Task => ({
    id, appId: '/web', agentId: 'a1', host: 'a1', state, stagedAt: NOW, stateChangedAt: NOW, ports: [], servicePorts: [], ipAddresses: [],
    healthCheckResults: [], version: NOW, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  await h.master.records.put('task', task('web.1', 'RUNNING'));
  await h.master.records.put('task', task('web.2', 'RUNNING'));
  const [one] = await ipam.assignAddresses('a1', 'dcos', 'web.1');
  const [two] = await ipam.assignAddresses('a1', 'dcos', 'web.2');
  const state = async (ip: string) => (await h.master.records.get('overlayAddress', `dcos/${ip}`))!.value.state;
  await h.master.records.put('task', task('web.1', 'FINISHED'), {});
  await h.master.records.put('task', task('web.2', 'LOST'), {});
  const until = Date.now() + 10_000;
  while ((await state(one!.ip)) !== 'released' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.is(await state(one!.ip), 'released');
  t.truthy((await h.master.records.get('overlayAddress', `dcos/${one!.ip}`))!.value.releasedAt);
  t.is(await state(two!.ip), 'assigned', 'a LOST task may still hold its address');
  await h.master.records.delete('task', 'web.2');
  while ((await state(two!.ip)) !== 'released' && Date.now() < until + 5000) await new Promise((r) => setTimeout(r, 20));
  t.is(await state(two!.ip), 'released', 'its record gone, the address is released');
});

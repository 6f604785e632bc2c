/**
 * The store-backed authority on the embedded store: records written
 * through `Records` reach the zones by watch (no polling), the leader
 * record published by a campaign is read, and unusable records are
 * reported and left out.
 */
import test from 'ava';
import { Records } from '../../control-plane/model/records.ts';
import { keys } from '../../control-plane/model/keys.ts';
import { openEmbeddedStore } from '../../control-plane/store/embedded/embedded-store.ts';
import { StoreAuthority } from './store-feed.ts';
import { mkAgent, mkApp, mkLeader, mkTask, mkVip } from './testing.ts';
import type { ZoneAnswer } from './types.ts';

async function setup(t: { teardown(fn: () => Promise<void> | void): void }): Promise<{ records: Records; authority: StoreAuthority; invalid: string[] }> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const records = new Records(store);
  const invalid: string[] = [];
  const authority = new StoreAuthority(records, { onInvalid: (i) => invalid.push(i.key) });
  t.teardown(async () => {
    authority.close();
    await store.close();
  });
  return { records, authority, invalid };
}

const addresses = (a: ZoneAnswer | undefined): string[] => (a?.answers ?? []).flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [r.address] : [])).sort();

test('before start: SERVFAIL; after: the stored state answers', async (t) => {
  const { records, authority } = await setup(t);
  await records.put('agent', mkAgent('ag-S0', { ip: '10.1.0.1' }));
  await records.put('app', mkApp('/web'));
  await records.put('task', mkTask('web.instance-1._app.1', '/web', 'ag-S0'));
  t.is(authority.lookup({ name: 'web.marathon.mesos', type: 'A' })?.rcode, 'SERVFAIL');
  await authority.start();
  t.deepEqual(addresses(authority.lookup({ name: 'web.marathon.mesos', type: 'A' })), ['10.1.0.1']);
});

test('task put → name resolves; task state change and delete → NXDOMAIN (pushed by watch)', async (t) => {
  const { records, authority } = await setup(t);
  await records.put('agent', mkAgent('ag-S0', { ip: '10.1.0.1' }));
  await records.put('app', mkApp('/shop/cart', { portDefinitions: [{ port: 0, name: 'http' }] }));
  await authority.start();
  t.is(authority.lookup({ name: 'cart-shop.marathon.mesos', type: 'A' })?.rcode, 'NXDOMAIN');

  const task = mkTask('shop_cart.instance-1._app.1', '/shop/cart', 'ag-S0', { ports: [31500] });
  const put = await records.put('task', task);
  t.true(put.ok);
  await authority.waitFor(put.ok ? put.index : 0);
  t.deepEqual(addresses(authority.lookup({ name: 'cart-shop.marathon.mesos', type: 'A' })), ['10.1.0.1']);
  t.is(authority.lookup({ name: '_http._cart-shop._tcp.marathon.mesos', type: 'SRV' })?.answers.length, 1);
  t.deepEqual(addresses(authority.lookup({ name: 'cart-shop.marathon.autoip.dcos.thisdcos.directory', type: 'A' })), ['10.1.0.1']);

  const killed = await records.put('task', { ...task, state: 'KILLED' });
  await authority.waitFor(killed.ok ? killed.index : 0);
  t.is(authority.lookup({ name: 'cart-shop.marathon.mesos', type: 'A' })?.rcode, 'NXDOMAIN');

  const back = await records.put('task', task);
  await authority.waitFor(back.ok ? back.index : 0);
  t.is(authority.lookup({ name: 'cart-shop.marathon.mesos', type: 'A' })?.rcode, 'NOERROR');
  const deleted = await records.delete('task', task.id);
  await authority.waitFor(deleted.ok ? deleted.index : 0);
  t.is(authority.lookup({ name: 'cart-shop.marathon.mesos', type: 'A' })?.rcode, 'NXDOMAIN');
  t.is(authority.serial, deleted.ok ? deleted.index : -1, 'the SOA serial is the store index');
});

test('leader record, VIPs and agents come from their own watches', async (t) => {
  const { records, authority } = await setup(t);
  await authority.start();
  const leader = await records.put('leader', mkLeader('http://10.1.0.9:8080'));
  await authority.waitFor(leader.ok ? leader.index : 0);
  t.deepEqual(addresses(authority.lookup({ name: 'leader.mesos', type: 'A' })), ['10.1.0.9']);
  const vip = await records.put('vip', mkVip('/mygroup/myapp', { ipv4: '11.0.0.3' }));
  await authority.waitFor(vip.ok ? vip.index : 0);
  t.deepEqual(addresses(authority.lookup({ name: 'mygroupmyapp.marathon.l4lb.thisdcos.directory', type: 'A' })), ['11.0.0.3']);
  const agent = await records.put('agent', mkAgent('ag-S7', { ip: '10.1.0.7' }));
  await authority.waitFor(agent.ok ? agent.index : 0);
  t.deepEqual(addresses(authority.lookup({ name: 'slave.mesos', type: 'A' })), ['10.1.0.7']);
});

test('an unusable task record is reported and gets no records', async (t) => {
  const { records, authority, invalid } = await setup(t);
  await records.put('agent', mkAgent('ag-S0'));
  await authority.start();
  const bad = await records.store.put(keys.task('broken-1'), '{"id":"broken-1"}');
  await authority.waitFor(bad.ok ? bad.index : 0);
  t.deepEqual(invalid, [keys.task('broken-1')]);
  t.is(authority.lookup({ name: 'slave.mesos', type: 'A' })?.rcode, 'NOERROR');
});

test('close stops following the store; the last state keeps answering', async (t) => {
  const { records, authority } = await setup(t);
  await records.put('agent', mkAgent('ag-S0', { ip: '10.1.0.1' }));
  await authority.start();
  authority.close();
  await authority.ended;
  await records.put('agent', mkAgent('ag-S1', { ip: '10.1.0.2' }));
  t.deepEqual(addresses(authority.lookup({ name: 'slave.mesos', type: 'A' })), ['10.1.0.1']);
});

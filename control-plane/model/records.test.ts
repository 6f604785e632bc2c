import test from 'ava';
import { isStrataError, type StrataError } from '../../common/errors.ts';
import { openEmbeddedStore, type EmbeddedStateStore } from '../store/embedded/embedded-store.ts';
import type { StateStore } from '../store/port.ts';
import { withAppDefaults } from './app-defaults.ts';
import { keys } from './keys.ts';
import { Records, openView, type InvalidRecord, type RecordBatch, type ViewUpdate } from './records.ts';
import type { App, Network } from './schemas.ts';
import type { Issue } from './validate.ts';

const VERSION = '2026-01-01T00:00:00.000Z';
const app = (id: string, extra: Partial<App> = {}): App => ({ ...withAppDefaults({ id, cmd: 'sleep 100' }, { version: VERSION }), ...extra });
const network = (name: string, mtu = 1420): Network => ({ name, subnet: '10.1.0.0/16', prefix: 24, prefix6: 80, mtu, vni: 4096, labels: {} });

async function open(t: { teardown(fn: () => Promise<void>): void }): Promise<{ store: EmbeddedStateStore; records: Records }> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  return { store, records: new Records(store) };
}

/** Wait (bounded) until `check` holds. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('put then get returns the record, frozen, with its indexes', async (t) => {
  const { records } = await open(t);
  const put = await records.put('app', app('/prod/web'));
  t.true(put.ok);
  if (!put.ok) return;
  t.is(put.key, 'strata/apps/prod/web');
  const got = await records.get('app', '/prod/web');
  t.truthy(got);
  t.deepEqual(got!.value, app('/prod/web'));
  t.is(got!.id, '/prod/web');
  t.is(got!.modifyIndex, put.index);
  t.is(got!.createIndex, put.index);
  t.true(Object.isFrozen(got!.value) && Object.isFrozen(got!.value.portDefinitions[0]));
  t.is(await records.get('app', '/prod/none'), undefined);
});

test('an invalid record is refused listing every wrong field, and nothing is written', async (t) => {
  const { records, store } = await open(t);
  const bad = { ...app('/a'), cpus: -1, mem: 'lots', surprise: 1 } as unknown as App;
  const err = await t.throwsAsync(records.put('app', bad));
  t.true(isStrataError(err, 'RECORD_INVALID'));
  t.deepEqual(((err as StrataError).details as Issue[]).map((i) => i.path).sort(), ['/cpus', '/mem', '/surprise']);
  t.is((await store.list('strata/')).entries.length, 0);
});

test('check-and-set: create-only and update-what-you-read', async (t) => {
  const { records } = await open(t);
  t.true((await records.put('network', network('blue'), { casIndex: 0 })).ok);
  t.deepEqual(await records.put('network', network('blue'), { casIndex: 0 }), { ok: false, reason: 'cas' });
  const read = (await records.get('network', 'blue'))!;
  t.true((await records.put('network', network('blue', 1400), { casIndex: read.modifyIndex })).ok);
  t.deepEqual(await records.put('network', network('blue', 1300), { casIndex: read.modifyIndex }), { ok: false, reason: 'cas' });
  t.is((await records.get('network', 'blue'))!.value.mtu, 1400);
  const current = (await records.get('network', 'blue'))!;
  t.deepEqual(await records.delete('network', 'blue', { casIndex: read.modifyIndex }), { ok: false, reason: 'cas' });
  t.true((await records.delete('network', 'blue', { casIndex: current.modifyIndex })).ok);
  t.is(await records.get('network', 'blue'), undefined);
  t.true((await records.delete('network', 'blue')).ok, 'deleting an absent record is ok');
});

test('malformed ids are refused before the store is touched', async (t) => {
  const { records } = await open(t);
  t.true(isStrataError(await t.throwsAsync(records.get('app', 'relative')), 'RECORD_ID_INVALID'));
  t.true(isStrataError(await t.throwsAsync(records.delete('role', 'a//b')), 'RECORD_ID_INVALID'));
});

/** Entries a buggy writer or another version could leave under the app prefix. */
async function writeGarbage(store: StateStore): Promise<void> {
  await store.put('strata/apps/broken/json', '{not json');
  await store.put('strata/apps/broken/schema', JSON.stringify({ ...app('/broken/schema'), cpus: -5 }));
  await store.put('strata/apps/broken/moved', JSON.stringify(app('/elsewhere')));
  await store.put('strata/apps/Stray_Key', JSON.stringify(app('/stray')));
}

test('list sets unusable entries apart; get of one throws RECORD_UNDECODABLE', async (t) => {
  const { records, store } = await open(t);
  await records.put('app', app('/ok'));
  await writeGarbage(store);
  const listed = await records.list('app');
  t.deepEqual(listed.records.map((r) => r.id), ['/ok']);
  t.deepEqual(listed.invalid.map((i) => [i.key, i.id]), [
    ['strata/apps/Stray_Key', undefined],
    ['strata/apps/broken/json', '/broken/json'],
    ['strata/apps/broken/moved', '/broken/moved'],
    ['strata/apps/broken/schema', '/broken/schema'],
  ]);
  for (const i of listed.invalid) t.true(isStrataError(i.error, 'RECORD_UNDECODABLE'));
  const schemaIssue = listed.invalid.find((i) => i.id === '/broken/schema')!;
  t.deepEqual((schemaIssue.error.details as Issue[]).map((i) => i.path), ['/cpus']);
  const err = await t.throwsAsync(records.get('app', '/broken/moved'));
  t.true(isStrataError(err, 'RECORD_UNDECODABLE'));
  t.regex((err as Error).message, /names id "\/elsewhere"/);
});

test('list reuses the records it decoded before for entries that did not change, and decodes changed ones anew', async (t) => {
  const { store, records } = await open(t);
  await records.put('app', app('/a'));
  await records.put('app', app('/b'));
  await records.put('app', app('/c'));
  const first = await records.list('app');
  const byId = (l: typeof first, id: string) => l.records.find((r) => r.id === id);
  await records.put('app', app('/b', { instances: 5 }));
  await records.delete('app', '/c');
  // The same value written again is a new write: decoded again, at its new index.
  await records.put('app', app('/a'));
  await store.put(keys.app('/d'), '{"not": "an app"}');
  const second = await records.list('app');
  t.deepEqual(second.records.map((r) => r.id), ['/a', '/b']);
  t.not(byId(second, '/a'), byId(first, '/a'));
  t.true(byId(second, '/a')!.modifyIndex > byId(first, '/a')!.modifyIndex);
  t.is(byId(second, '/b')!.value.instances, 5);
  t.is(second.invalid.length, 1, 'an unusable entry is still reported');
  const third = await records.list('app');
  t.is(byId(third, '/a'), byId(second, '/a'), 'unchanged: the same decoded (frozen) record');
  t.is(byId(third, '/b'), byId(second, '/b'));
  t.is(third.invalid.length, 1, 'unusable entries are decoded (and reported) every time');
  t.true(Object.isFrozen(byId(third, '/b')!.value));
});

test('watch yields typed batches, reporting unusable entries instead of throwing', async (t) => {
  const { records, store } = await open(t);
  const { index } = await records.list('app');
  const watch = records.watch('app', { fromIndex: index });
  const batches: RecordBatch<App>[] = [];
  const done = (async () => {
    for await (const b of watch) {
      batches.push(b);
      if (batches.length === 4) break;
    }
  })();
  await records.put('app', app('/a'));
  await store.put('strata/apps/b', 'garbage');
  await records.delete('app', '/a');
  await store.delete('strata/apps/b');
  await done;
  t.true(batches.every((b) => b.kind === 'changes'));
  const [put, invalid, del, cleared] = batches as Extract<RecordBatch<App>, { kind: 'changes' }>[];
  t.is(put!.events[0]?.type, 'put');
  t.is(put!.events[0]?.type === 'put' ? put!.events[0].record.value.id : undefined, '/a');
  t.deepEqual(invalid!.events, []);
  t.is(invalid!.invalid[0]?.key, 'strata/apps/b');
  t.deepEqual(del!.events.map((e) => (e.type === 'delete' ? e.id : '')), ['/a']);
  t.deepEqual(cleared!.events.map((e) => (e.type === 'delete' ? e.id : '')), ['/b']);
});

test('a watch from a compacted index resyncs with decoded records', async (t) => {
  const { records, store } = await open(t);
  await records.put('app', app('/a'));
  await store.put('strata/apps/bad', '[]');
  await store.compact();
  const watch = records.watch('app', { fromIndex: 1 });
  for await (const batch of watch) {
    t.is(batch.kind, 'resync');
    if (batch.kind === 'resync') {
      t.deepEqual(batch.records.map((r) => r.id), ['/a']);
      t.deepEqual(batch.invalid.map((i) => i.key), ['strata/apps/bad']);
    }
    break;
  }
});

test('a view follows puts and deletes and tells its subscribers', async (t) => {
  const { records } = await open(t);
  await records.put('app', app('/a'));
  const view = await openView(records, 'app');
  t.teardown(() => view.close());
  t.deepEqual([...view.records.keys()], ['/a']);
  const updates: ViewUpdate<App>[] = [];
  view.subscribe((u) => updates.push(u));
  const b = await records.put('app', app('/g/b'));
  await view.waitFor(b.ok ? b.index : Infinity);
  t.is(view.get('/g/b')?.instances, 1);
  const scaled = await records.put('app', app('/g/b', { instances: 5 }));
  const gone = await records.delete('app', '/a');
  await view.waitFor(gone.ok ? gone.index : Infinity);
  t.is(view.get('/g/b')?.instances, 5);
  t.false(view.records.has('/a'));
  t.is(view.index, gone.ok ? gone.index : -1);
  t.deepEqual(
    updates.map((u) => [u.upserted.map((r) => r.id), u.removed, u.resync]),
    [
      [['/g/b'], [], false],
      [['/g/b'], [], false],
      [[], ['/a'], false],
    ],
  );
  t.true(scaled.ok);
});

test('a view drops a record that becomes unusable, reports it, and takes it back when fixed', async (t) => {
  const { records, store } = await open(t);
  await records.put('app', app('/a'));
  await store.put('strata/apps/junk', 'nope');
  const reported: InvalidRecord[] = [];
  const view = await openView(records, 'app', { onInvalid: (i) => reported.push(i) });
  t.teardown(() => view.close());
  t.deepEqual([...view.invalid.keys()], ['strata/apps/junk']);
  const broken = await store.put(keys.app('/a'), JSON.stringify({ ...app('/a'), instances: -1 }));
  await view.waitFor(broken.ok ? broken.index : Infinity);
  t.false(view.records.has('/a'), 'no stale value is served');
  t.true(view.invalid.has('strata/apps/a'));
  t.deepEqual(reported.map((i) => i.key), ['strata/apps/junk', 'strata/apps/a']);
  const fixed = await records.put('app', app('/a', { instances: 2 }));
  await view.waitFor(fixed.ok ? fixed.index : Infinity);
  t.is(view.get('/a')?.instances, 2);
  t.false(view.invalid.has('strata/apps/a'));
  const cleared = await store.delete('strata/apps/junk');
  await view.waitFor(cleared.ok ? cleared.index : Infinity);
  t.is(view.invalid.size, 0);
});

test('a view applies a resync: the whole kind is replaced', async (t) => {
  const { records, store } = await open(t);
  await records.put('network', network('keep'));
  await records.put('network', network('drop'));
  const stale = await store.list('strata/networks/');
  await records.put('network', network('keep', 1300));
  await records.delete('network', 'drop');
  await records.put('network', network('new'));
  await store.compact();
  // A store whose listing is old and whose history is gone: the watch must resync.
  const lagging: StateStore = Object.assign(Object.create(store) as StateStore, {
    list: async () => stale,
    watch: (prefix: string, options: { fromIndex: number; signal?: AbortSignal }) => store.watch(prefix, { ...options, fromIndex: 1 }),
  });
  const view = await openView(new Records(lagging), 'network');
  t.teardown(() => view.close());
  const updates: ViewUpdate<Network>[] = [];
  view.subscribe((u) => updates.push(u));
  await eventually(() => updates.length > 0, 'the resync');
  t.true(updates[0]!.resync);
  t.deepEqual(updates[0]!.removed, ['drop']);
  t.deepEqual([...view.records.keys()].sort(), ['keep', 'new']);
  t.is(view.get('keep')?.mtu, 1300);
});

test('closing a view ends it and fails waiters', async (t) => {
  const { records } = await open(t);
  const view = await openView(records, 'role');
  const waiting = view.waitFor(1_000_000);
  view.close();
  await view.ended;
  t.true(isStrataError(await t.throwsAsync(waiting), 'STORE_CLOSED'));
  const controller = new AbortController();
  const aborted = await openView(records, 'role', { signal: controller.signal });
  controller.abort();
  await t.notThrowsAsync(aborted.ended, 'aborting the signal ends the view cleanly');
});

test('a throwing subscriber does not stop the view', async (t) => {
  const { records } = await open(t);
  const errors: unknown[] = [];
  const view = await openView(records, 'role', { onError: (e) => errors.push(e) });
  t.teardown(() => view.close());
  view.subscribe(() => {
    throw new Error('listener bug');
  });
  await records.put('role', { name: 'a', weight: 1 });
  const second = await records.put('role', { name: 'b', weight: 2 });
  await view.waitFor(second.ok ? second.index : Infinity);
  t.is(view.records.size, 2);
  t.is(errors.length, 2);
});

/**
 * The vault on a real (embedded, in-memory) store: create/update/delete
 * with their conflicts, listing, the space rule, and rotation: a new KEK
 * version re-wraps every data key in the background while reads and writes
 * go on, every read answering the right value at every moment.
 */
import { setImmediate } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { isStrataError } from '../../common/errors.ts';
import { Records } from '../../control-plane/model/records.ts';
import { openEmbeddedStore } from '../../control-plane/store/embedded/embedded-store.ts';
import { Keyring, memoryKekStore } from './keyring.ts';
import { secretMetrics } from './metrics.ts';
import { SecretVault, normalizeSecretPath, secretListRid, secretRid, secretSpaceProblem } from './vault.ts';

const SLOW = process.env.STRATA_SLOW === '1';

async function setup(t: ExecutionContext) {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const records = new Records(store);
  const kek = memoryKekStore();
  const keyring = await Keyring.open(kek, { create: true, where: 'memory' });
  const registry = new Registry();
  const vault = new SecretVault(records, keyring, { metrics: secretMetrics(registry) });
  t.teardown(() => vault.rotationSettled());
  return { store, records, kek, keyring, registry, vault };
}

const metric = async (registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> => {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
};

test('create, read, update, list, delete; conflicts and absent secrets have their codes', async (t) => {
  const { vault, records, registry } = await setup(t);
  await vault.create('dev/db/password', { value: Buffer.from('one'), description: 'db', author: 'alice' });
  await vault.create('dev/api-key', { value: Buffer.from('two') });
  await vault.create('prod/db/password', { value: Buffer.from('three') });
  t.is((await vault.read('dev/db/password')).toString(), 'one');
  const e = await t.throwsAsync(vault.create('dev/api-key', { value: Buffer.from('x') }));
  t.true(isStrataError(e, 'SECRET_EXISTS'));
  await vault.update('dev/db/password', { value: Buffer.from('one-b') });
  t.is((await vault.read('dev/db/password')).toString(), 'one-b');
  t.like(await vault.describe('dev/db/password'), { description: 'db', kekVersion: 1 });
  t.deepEqual(await vault.list('dev'), ['api-key', 'db/password']);
  t.deepEqual(await vault.list(''), ['dev/api-key', 'dev/db/password', 'prod/db/password']);
  t.deepEqual(await vault.list('de'), [], 'a prefix of a name is not a path');
  await vault.delete('dev/api-key');
  t.true(isStrataError(await t.throwsAsync(vault.read('dev/api-key')), 'SECRET_NOT_FOUND'));
  t.true(isStrataError(await t.throwsAsync(vault.update('nope', { value: Buffer.from('x') })), 'SECRET_NOT_FOUND'));
  t.true(isStrataError(await t.throwsAsync(vault.delete('nope')), 'SECRET_NOT_FOUND'));
  // The record holds ciphertext only.
  const stored = JSON.stringify((await records.get('secret', 'dev/db/password'))!.value);
  t.false(stored.includes('one-b'));
  t.is(await metric(registry, 'strata_secrets_writes_total', { op: 'create' }), 3);
  t.is(await metric(registry, 'strata_secrets_reads_total', { result: 'ok' }), 2);
  t.is(await metric(registry, 'strata_secrets_reads_total', { result: 'not-found' }), 1);
});

test('a tampered record fails to read with SECRET_DECRYPT_FAILED and is counted', async (t) => {
  const { vault, records, registry } = await setup(t);
  await vault.create('a/b', { value: Buffer.from('value') });
  const { value: r } = (await records.get('secret', 'a/b'))!;
  const raw = Buffer.from(r.value, 'base64');
  raw[raw.length - 3]! ^= 0x80;
  await records.put('secret', { ...r, value: raw.toString('base64') });
  t.true(isStrataError(await t.throwsAsync(vault.read('a/b')), 'SECRET_DECRYPT_FAILED'));
  t.is(await metric(registry, 'strata_secrets_decrypt_failures_total'), 1);
});

test('rotation re-wraps every data key in the background while reads and writes go on, all answering the right value', async (t) => {
  const { vault, records, keyring, registry } = await setup(t);
  const count = SLOW ? 400 : 60;
  const expected = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const path = `svc${i % 7}/key-${i}`;
    expected.set(path, `value-${i}`);
    await vault.create(path, { value: Buffer.from(`value-${i}`) });
  }
  const updating = new Map<string, string>();
  let stop = false;
  let reads = 0;
  let readsDuringRewrap = 0;
  const readers = Array.from({ length: 3 }, async (_, r) => {
    const paths = [...expected.keys()];
    for (let i = r; !stop; i = (i + 7) % paths.length) {
      const path = paths[i]!;
      const before = expected.get(path);
      const got = (await vault.read(path)).toString();
      // A value being updated may read as the old or the new one; nothing else.
      if (got !== before && got !== expected.get(path) && got !== updating.get(path)) throw new Error(`read ${path} = ${got}, expected ${expected.get(path)}`);
      reads++;
      if (vault.status().running) readsDuringRewrap++;
      await setImmediate(); // let the store's commits (timers) run between reads, as network requests would
    }
  });
  const status = await vault.rotate({ generate: true });
  t.is(status.kekVersion, 2);
  t.deepEqual(status.kekVersions, [1, 2]);
  // Writes during the re-wrap: new values are wrapped by version 2 at once.
  for (let i = 0; i < count; i += 5) {
    const path = `svc${i % 7}/key-${i}`;
    updating.set(path, `updated-${i}`);
    await vault.update(path, { value: Buffer.from(`updated-${i}`) });
    expected.set(path, `updated-${i}`);
    updating.delete(path);
  }
  await vault.rotationSettled();
  stop = true;
  await Promise.all(readers);
  t.true(readsDuringRewrap > 0, `reads ran while the re-wrap did (${readsDuringRewrap} of ${reads})`);
  const after = vault.status();
  t.like(after, { running: false, pending: 0, failed: 0, total: count });
  const { records: stored } = await records.list('secret');
  t.true(stored.every((r) => r.value.kekVersion === 2), 'every data key is wrapped by version 2');
  t.is(await metric(registry, 'strata_secrets_rotation_pending'), 0);
  t.is(await metric(registry, 'strata_secrets_kek_version'), 2);
  // Version 1 is no longer needed: a keyring with only version 2 reads everything.
  const only2 = { currentVersion: 2, key: (v: number) => (v === 2 ? keyring.key(2) : undefined) };
  const { openSecret } = await import('./crypto.ts');
  for (const r of stored) t.is(openSecret(r.value.path, r.value, only2).toString(), expected.get(r.value.path)!);
});

test('another master adopts a version an operator put in the KEK file (rotate without generate), and reloads for an unknown version on read', async (t) => {
  const { vault, kek, records } = await setup(t);
  await vault.create('x', { value: Buffer.from('v') });
  // A second master on the same store and KEK file rotates.
  const other = new SecretVault(records, await Keyring.open(kek, { create: false, where: 'memory' }));
  await other.rotate({ generate: true });
  await other.rotationSettled();
  // This master has not seen version 2 yet: the read reloads the keyring.
  t.is((await vault.read('x')).toString(), 'v');
  const adopted = await vault.rotate({ generate: false });
  t.is(adopted.kekVersion, 2);
  await vault.rotationSettled();
  t.is(kek.current()!.current, 2);
});

test('paths, resource ids and the space rule', (t) => {
  t.is(normalizeSecretPath('/dev/db/'), 'dev/db');
  for (const bad of ['', '/', 'a/../b', '.hidden', 'a//b', 'a b', '-x', 'a/'.repeat(20) + 'b']) {
    t.true(isStrataError(t.throws(() => normalizeSecretPath(bad)), 'API_BAD_REQUEST'), bad);
  }
  t.is(secretRid('dev/db/password'), 'dcos:secrets:default:/dev/db/password');
  t.is(secretListRid(''), 'dcos:secrets:list:default:/');
  t.is(secretSpaceProblem('/dev/db/web', 'dev/db/web/key'), undefined);
  t.is(secretSpaceProblem('/dev/db/web', 'dev/db/pass'), undefined);
  t.is(secretSpaceProblem('/dev/db/web', 'pass'), undefined);
  t.regex(secretSpaceProblem('/dev/db/web', 'prod/pass')!, /outside the space of app \/dev\/db\/web/);
  t.truthy(secretSpaceProblem('/dev/db/web', 'dev/other/pass'));
  t.truthy(secretSpaceProblem('/web', 'web/x/y'));
});

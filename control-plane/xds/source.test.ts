import test from 'ava';
import { TYPE } from './protos.ts';
import { eventually, startMeshFixture, task, vipApp } from './testing.ts';

async function builds(mesh: { registry: { getSingleMetricAsString(name: string): Promise<string> } }): Promise<number> {
  const text = await mesh.registry.getSingleMetricAsString('strata_xds_snapshot_build_seconds');
  return Number(/strata_xds_snapshot_build_seconds_count (\d+)/.exec(text)?.[1] ?? 0);
}

test('debounce: a burst of changes is coalesced into at most one rebuild per window, and the last change is served', async (t) => {
  const debounceMs = 300;
  const mesh = await startMeshFixture({ debounceMs });
  t.teardown(() => mesh.close());
  await mesh.records.put('app', vipApp('/web'));
  await eventually(() => mesh.server.snapshot?.resources.get(TYPE.cluster)?.has('web:80') === true, 10_000, 'the app');
  const before = await builds(mesh);
  const start = performance.now();
  for (let i = 0; i < 60; i++) await mesh.records.put('task', task(`web.${i}`, '/web', 31000 + i));
  await eventually(() => {
    const cla = mesh.server.snapshot?.resources.get(TYPE.endpoint)?.get('web:80');
    return cla !== undefined && mesh.source.state().tasksByApp.get('/web')?.length === 60 && cla.bytes > 60 * 20;
  }, 10_000, 'the last task in the snapshot');
  const elapsedMs = performance.now() - start;
  const rebuilds = (await builds(mesh)) - before;
  t.true(rebuilds >= 1);
  t.true(rebuilds <= Math.ceil(elapsedMs / debounceMs) + 1, `${rebuilds} rebuilds in ${Math.round(elapsedMs)} ms`);
  t.true(rebuilds < 60, 'not one rebuild per change');
});

import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';

const S = 'dcos:service:marathon:marathon:services:';

test('a permission on a group path lets a user create, see and change the apps under it, and nothing else', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = { authorization: `token=${await h.superuserToken()}` };
  const other = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: su, payload: { id: '/production/api', cmd: 'x', instances: 0 } });
  t.is(other.statusCode, 201, other.body);
  const token = await h.tokenFor('dev', [
    { rid: 'dcos:adminrouter:service:marathon', actions: ['full'] },
    { rid: `${S}/prod`, actions: ['full'] },
  ]);
  const dev = { authorization: `token=${token}` };
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: dev, payload: { id: '/prod/shop/web', cmd: 'x', instances: 0 } });
  t.is(created.statusCode, 201, created.body);
  const listed = await h.master.app.inject({ method: 'GET', url: '/v2/apps', headers: dev });
  t.deepEqual((listed.json() as { apps: { id: string }[] }).apps.map((a) => a.id), ['/prod/shop/web'], '/production is beside /prod, not under it');
  const denied = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: dev, payload: { id: '/production/web', cmd: 'x', instances: 0 } });
  t.is(denied.statusCode, 403, denied.body);
  const scaled = await h.master.app.inject({ method: 'PATCH', url: '/v2/apps/prod/shop/web?force=true', headers: dev, payload: { instances: 0, cmd: 'y' } });
  t.true(scaled.statusCode < 300, scaled.body);
});

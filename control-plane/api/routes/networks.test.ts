import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';

test('a new cluster has DC/OS\'s networks; networks are added, refused when they overlap or reuse a VNI, and kept while apps use them', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => h.master.app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });

  const listed = await call('GET', '/networking/api/v1/networks');
  t.is(listed.statusCode, 200, listed.body);
  t.like((listed.json() as { networks: object[] }).networks[0], { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24, mtu: 1420, vni: 1024 });

  const added = await call('POST', '/networking/api/v1/networks', { name: 'blue', subnet: '10.200.0.0/16', vni: 2000 });
  t.is(added.statusCode, 201, added.body);
  t.like(added.json(), { name: 'blue', prefix: 24, mtu: 1420, vni: 2000 });

  const overlap = await call('POST', '/networking/api/v1/networks', { name: 'green', subnet: '10.200.128.0/17', vni: 2001 });
  t.is(overlap.statusCode, 409, overlap.body);
  t.like(overlap.json(), { code: 'NETWORK_CONFLICT' });
  t.regex((overlap.json() as { message: string }).message, /overlaps network "blue" \(10\.200\.0\.0\/16\)/);
  const vni = await call('POST', '/networking/api/v1/networks', { name: 'green', subnet: '10.201.0.0/16', vni: 1024 });
  t.is(vni.statusCode, 409, vni.body);
  t.regex((vni.json() as { message: string }).message, /VNI 1024 is used by network "dcos"/);
  const vtep = await call('POST', '/networking/api/v1/networks', { name: 'green', subnet: '44.128.0.0/24', vni: 2002 });
  t.regex((vtep.json() as { message: string }).message, /VTEP range/);
  const longName = await call('POST', '/networking/api/v1/networks', { name: 'a-name-over-13', subnet: '10.202.0.0/16', vni: 2003 });
  t.is(longName.statusCode, 400, longName.body);
  t.regex(longName.body, /name/);
  const badPrefix = await call('POST', '/networking/api/v1/networks', { name: 'green', subnet: '10.202.0.0/16', prefix: 8, vni: 2003 });
  t.true(badPrefix.statusCode === 422 || badPrefix.statusCode === 400, badPrefix.body);
  t.regex(badPrefix.body, /prefix/);
  t.is((await call('POST', '/networking/api/v1/networks', { name: 'blue', subnet: '10.250.0.0/16', vni: 2500 })).statusCode, 409, 'exists');

  // An app asks for it: no removal, and no re-addressing once a task runs.
  const app = await call('POST', '/v2/apps', { id: '/on-blue', cmd: 'x', instances: 0, networks: [{ mode: 'container', name: 'blue' }] });
  t.is(app.statusCode, 201, app.body);
  const busy = await call('DELETE', '/networking/api/v1/networks/blue');
  t.is(busy.statusCode, 409, busy.body);
  t.regex((busy.json() as { message: string }).message, /app\(s\) \/on-blue ask for it/);
  const mtu = await call('PUT', '/networking/api/v1/networks/blue', { subnet: '10.200.0.0/16', vni: 2000, mtu: 1400 });
  t.is(mtu.statusCode, 200, `no task runs yet: ${mtu.body}`);
  await call('DELETE', '/v2/apps/on-blue?force=true');
  const removed = await call('DELETE', '/networking/api/v1/networks/blue');
  t.is(removed.statusCode, 204, removed.body);
  t.is((await call('GET', '/networking/api/v1/networks/blue')).statusCode, 404);
});

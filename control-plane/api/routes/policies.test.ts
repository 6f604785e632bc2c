import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';

test('policies are stored with versions, replaced only at the version read, and explain names the deciding rule', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => h.master.app.inject({ method, url, headers: auth, ...(payload ? { payload } : {}) });
  for (const [id, tier] of [['/shop/web', 'front'], ['/shop/db', 'data']] as const) {
    const r = await call('POST', '/v2/apps', { id, cmd: 'x', instances: 0, labels: { tier } });
    t.is(r.statusCode, 201, r.body);
  }
  const policy = { name: 'db-ingress', to: [{ appLabels: { tier: 'data' } }], rules: [{ action: 'allow', from: [{ appId: '/shop/web' }], ports: [{ protocol: 'tcp', port: 5432 }] }] };
  const created = await call('POST', '/networking/api/v1/policies', policy);
  t.is(created.statusCode, 201, created.body);
  const { version } = created.json() as { version: number };
  t.like(created.json(), { name: 'db-ingress', defaultAction: 'deny' });
  t.is((await call('POST', '/networking/api/v1/policies', policy)).statusCode, 409, 'exists');

  const explain = await call('POST', '/networking/api/v1/policies/explain', { from: '/shop/web', to: '/shop/db', port: 5432 });
  t.is(explain.statusCode, 200, explain.body);
  t.like(explain.json(), { action: 'allow', verdicts: [{ policy: 'db-ingress', decidedBy: 0 }] });
  const other = await call('POST', '/networking/api/v1/policies/explain', { from: '10.1.2.3', to: '/shop/db', port: 5432 });
  t.like(other.json(), { action: 'deny', verdicts: [{ decidedBy: 'default' }] });
  const bad = await call('POST', '/networking/api/v1/policies/explain', { from: '/nope', to: '/shop/db', port: 5432 });
  t.is(bad.statusCode, 400, bad.body);
  t.regex((bad.json() as { message: string }).message, /from: "\/nope" is no app id/);
  const noPort = await call('POST', '/networking/api/v1/policies/explain', { from: '/shop/web', to: '/shop/db' });
  t.is(noPort.statusCode, 400, noPort.body);

  const invalid = await call('POST', '/networking/api/v1/policies', { name: 'x', to: [{ network: 'dcos', cidr: '10.0.0.0/8' }] });
  t.true(invalid.statusCode === 422 || invalid.statusCode === 400, invalid.body);
  t.regex(invalid.body, /exactly one of network, cidr, appId, appLabels/);

  const stale = await call('PUT', `/networking/api/v1/policies/db-ingress?version=${version - 1}`, { to: policy.to, rules: [], defaultAction: 'allow' });
  t.is(stale.statusCode, 409, stale.body);
  const replaced = await call('PUT', `/networking/api/v1/policies/db-ingress?version=${version}`, { to: policy.to, rules: [], defaultAction: 'allow' });
  t.is(replaced.statusCode, 200, replaced.body);
  t.true((replaced.json() as { version: number }).version > version);
  t.is((await call('DELETE', '/networking/api/v1/policies/db-ingress')).statusCode, 204);
  t.is((await call('GET', '/networking/api/v1/policies/db-ingress')).statusCode, 404);
});

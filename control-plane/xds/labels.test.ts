import test from 'ava';
import { startTestMaster } from '../../test/harness/master.ts';
import { MESH_LABELS, meshConfig } from './labels.ts';
import { vipApp } from './testing.ts';

test('mesh labels parse into routes; each bad one is an issue naming the label', (t) => {
  const ok = meshConfig(vipApp('/web', { labels: { [MESH_LABELS.protocol]: 'GRPC', [MESH_LABELS.routes]: '[{"prefix":"/a","headers":[{"name":"X-A","suffix":"z"}]}]', [MESH_LABELS.retryOn]: 'unavailable' } }), '/web');
  t.deepEqual(ok.issues, []);
  t.is(ok.config.protocol, 'grpc');
  t.deepEqual(ok.config.routes, [{ prefix: '/a', headers: [{ name: 'x-a', suffix: 'z' }], weights: [{ vip: '/web', weight: 1 }] }]);
  const bad = meshConfig(vipApp('/web', { labels: { [MESH_LABELS.timeoutMs]: '-1', [MESH_LABELS.retryOn]: 'bad value!', [MESH_LABELS.routes]: '[{"to":"/a","weights":{"/b":1}},{"weights":{"/b":0}},{"path":"/x","bogus":1}]' } }), '/web');
  t.deepEqual(bad.issues.map((i) => i.label).sort(), [MESH_LABELS.retryOn, MESH_LABELS.routes, MESH_LABELS.routes, MESH_LABELS.routes, MESH_LABELS.timeoutMs].sort());
  t.regex(bad.issues.map((i) => i.message).join('\n'), /give "to" or "weights", not both[\s\S]*needs at least one weight above 0[\s\S]*unknown field "bogus"/);
});

test('POST /v2/apps with a mesh label that does not parse: Marathon\'s 422 naming the label', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const res = await h.master.app.inject({
    method: 'POST', url: '/v2/apps', headers: { authorization: `token=${await h.superuserToken()}` },
    payload: { id: '/web', cmd: 'sleep 100', instances: 0, labels: { STRATA_MESH_ROUTES: '[{"prefix":5}]', STRATA_MESH_PROTOCOL: 'smtp' } },
  });
  t.is(res.statusCode, 422, res.body);
  const body = res.json() as { message: string; details: { path: string; errors: string[] }[] };
  t.is(body.message, 'Object is not valid');
  t.deepEqual(body.details.map((d) => d.path).sort(), ['/labels/STRATA_MESH_PROTOCOL', '/labels/STRATA_MESH_ROUTES']);
  t.regex(body.details.find((d) => d.path === '/labels/STRATA_MESH_ROUTES')!.errors[0]!, /\/0\/prefix: must be a string/);
});

import test from 'ava';
import { pino } from 'pino';
import { startTestMaster } from '../../test/harness/master.ts';
import { loadConfig } from '../config/load.ts';
import { TYPE } from './protos.ts';
import { startXds } from './start.ts';
import { adsClient, openAds, vipApp } from './testing.ts';

test('a master\'s xDS server serves the app state through watches, without leadership, with metrics in the master registry', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const xds = await startXds({ config: loadConfig({ env: {}, overrides: { 'xds.port': 0, 'xds.debounceMs': 5 } }), records: h.master.records, tokens: h.master.tokens, iam: h.master.iam, registry: h.master.metrics, logger: pino({ level: 'silent' }) });
  t.teardown(() => xds.close());
  t.regex(xds.address, /^127\.0\.0\.1:\d+$/);
  await h.master.records.put('app', vipApp('/web'));
  const client = adsClient(xds.port!);
  t.teardown(() => client.close());
  const s = openAds(client, { token: await h.superuserToken() });
  s.send({ node: { id: 'n', user_agent_name: 'gRPC Node Pure JS' }, type_url: TYPE.listener, resource_names: ['web'] });
  let r = await s.next();
  while (r.resources.length === 0) {
    s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: ['web'] });
    r = await s.next();
  }
  t.is((r.resources[0] as { name: string }).name, 'web');
  const metrics = await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${await h.superuserToken()}` } });
  t.regex(metrics.body, /strata_xds_connected_streams\{variant="sotw"\} 1/);
  s.close();
});

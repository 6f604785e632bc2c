import test from 'ava';
import { loadConfig } from '../../control-plane/config/load.ts';
import { ZoneAuthority } from './authority.ts';
import { FakeClusterFeed } from './fake-feed.ts';
import { zoneOptionsFromConfig } from './options.ts';
import { mkAgent, mkApp, mkLeader, mkTask } from './testing.ts';

test('the zones take their domain, TTL and task rules from the configuration (--dns-domain, --dns-ttl-seconds, ...)', async (t) => {
  const config = loadConfig({ env: {}, flags: { 'dns-domain': 'Corp.Example', 'dns-ttl-seconds': '5', 'dns-include-starting-tasks': 'true' } });
  const feed = new FakeClusterFeed({
    agents: [mkAgent('a1', { ip: '10.0.0.7' })],
    apps: [mkApp('/web')],
    tasks: [mkTask('web.1', '/web', 'a1', { state: 'STARTING' })],
    leader: mkLeader('http://10.0.0.100:8080'),
  });
  const authority = new ZoneAuthority(feed, { zone: zoneOptionsFromConfig(config.dns) });
  t.teardown(() => authority.close());
  await authority.start();
  t.like(authority.lookup({ name: 'leader.corp.example', type: 'A' }), { rcode: 'NOERROR', answers: [{ address: '10.0.0.100', ttlSeconds: 5 }] });
  t.like(authority.lookup({ name: 'web.marathon.corp.example', type: 'A' }), { rcode: 'NOERROR', answers: [{ address: '10.0.0.7' }] }, 'a STARTING task has its name');
  t.is(authority.lookup({ name: 'leader.mesos', type: 'A' }), undefined, 'the default domain is not served');
  t.throws(() => loadConfig({ env: {}, flags: { 'dns-domain': 'bad domain!' } }), { message: /dns\.domain/ });
});

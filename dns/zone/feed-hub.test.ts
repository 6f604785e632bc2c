import test from 'ava';
import { ClusterFeedHub, deserializeState } from './feed-hub.ts';
import { FakeClusterFeed } from './fake-feed.ts';
import { mkAgent, mkApp, mkTask } from './testing.ts';

test('the hub gives a new follower the whole state, then only the changes after its index, waiting for them', async (t) => {
  const feed = new FakeClusterFeed({ apps: [mkApp('/web')], agents: [mkAgent('a1')] });
  const hub = new ClusterFeedHub(feed);
  t.teardown(() => hub.close());
  const first = await hub.read(undefined, 0, 0);
  t.is(first.type, 'snapshot');
  if (first.type !== 'snapshot') return;
  t.deepEqual([...deserializeState(first.state).apps.keys()], ['/web']);

  const waiting = hub.read(first.epoch, first.index, 10_000);
  feed.put({ kind: 'task', value: mkTask('web.1', '/web', 'a1') });
  const next = await waiting;
  t.is(next.type, 'changes');
  if (next.type !== 'changes') return;
  t.deepEqual(next.changes.map((c) => [c.kind, c.id]), [['task', 'web.1']]);
  t.true(next.index > first.index);

  const idle = await hub.read(next.epoch, next.index, 20);
  t.like(idle, { type: 'changes', changes: [] }, 'nothing new within the wait');
  t.is((await hub.read('another-epoch', next.index, 0)).type, 'snapshot', 'another master or a restart: the whole state');

  // A resync of the source: every follower starts over.
  feed.sync();
  t.is((await hub.read(next.epoch, next.index, 0)).type, 'snapshot');
});

test('a follower further behind than the change log gets the whole state', async (t) => {
  const feed = new FakeClusterFeed({ apps: [mkApp('/web')], agents: [mkAgent('a1')] });
  const hub = new ClusterFeedHub(feed, { maxLoggedChanges: 2 });
  t.teardown(() => hub.close());
  const first = await hub.read(undefined, 0, 0);
  for (let i = 0; i < 5; i++) feed.put({ kind: 'task', value: mkTask(`web.${i}`, '/web', 'a1') });
  const behind = await hub.read(first.epoch, first.index, 0);
  t.is(behind.type, 'snapshot');
  if (behind.type === 'snapshot') t.is(behind.state.tasks.length, 5);
});

test('followers get tasks and apps cut to what the zones read, and build the same zones from them', async (t) => {
  const { ZoneAuthority } = await import('./authority.ts');
  const app = mkApp('/web', { portDefinitions: [{ port: 0, name: 'http' }], healthChecks: [{ protocol: 'TCP', portIndex: 0 }] });
  const task = mkTask('web.1', '/web', 'a1', { ports: [31000], ipAddresses: [{ ipAddress: '9.0.0.2', protocol: 'IPv4' }], healthCheckResults: [] });
  const feed = new FakeClusterFeed({ apps: [app], agents: [mkAgent('a1')], tasks: [task] });
  const hub = new ClusterFeedHub(feed);
  t.teardown(() => hub.close());
  const first = await hub.read(undefined, 0, 0);
  if (first.type !== 'snapshot') return t.fail('a snapshot first');
  t.deepEqual(first.state.tasks, [{ id: 'web.1', appId: '/web', agentId: 'a1', state: 'RUNNING', ports: [31000], ipAddresses: [{ ipAddress: '9.0.0.2' }], healthCheckResults: [] }]);
  t.deepEqual(first.state.apps, [{ id: '/web', networks: [{ mode: 'host' }], portDefinitions: [{ protocol: 'tcp', name: 'http' }], healthChecks: [{}] }]);
  const waiting = hub.read(first.epoch, first.index, 10_000);
  feed.put({ kind: 'task', value: { ...task, state: 'KILLED' } });
  const next = await waiting;
  if (next.type !== 'changes') return t.fail('changes next');
  t.deepEqual(Object.keys(next.changes[0]!.value!).sort(), ['agentId', 'appId', 'healthCheckResults', 'id', 'ipAddresses', 'ports', 'state']);
  // The zones from the cut state answer as the zones from the whole records.
  const direct = new ZoneAuthority(new FakeClusterFeed({ apps: [app], agents: [mkAgent('a1')], tasks: [task] }));
  await direct.start();
  const followed = new ZoneAuthority(new FakeClusterFeed({ apps: [...deserializeState(first.state).apps.values()] as never, agents: [mkAgent('a1')], tasks: [...deserializeState(first.state).tasks.values()] as never }));
  await followed.start();
  t.deepEqual(followed.allRecords(), direct.allRecords());
  t.true(direct.allRecords().length > 0);
});

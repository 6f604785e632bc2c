import test from 'ava';
import { startTestMaster } from '../../test/harness/master.ts';
import { ZoneAuthority } from './authority.ts';
import { HttpClusterFeed } from './http-feed.ts';
import { mkAgent, mkApp, mkTask } from './testing.ts';

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('an agent node\'s zones follow the master over HTTP: names appear and go with the tasks', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.records.put('agent', mkAgent('a1', { ip: '10.0.0.7' }));
  await h.master.records.put('app', mkApp('/web'));
  await h.master.records.put('task', mkTask('web.1', '/web', 'a1'));
  const token = await h.superuserToken();
  const errors: unknown[] = [];
  const authority = new ZoneAuthority(new HttpClusterFeed({ masterUrl: () => h.master.apiUrl, token: async () => token, waitSeconds: 5, onError: (err) => errors.push(err) }));
  t.teardown(() => authority.close());
  await authority.start();
  t.like(authority.lookup({ name: 'web.marathon.mesos', type: 'A' }), { rcode: 'NOERROR', answers: [{ address: '10.0.0.7' }] });

  await h.master.records.put('agent', mkAgent('a2', { ip: '10.0.0.8' }));
  await h.master.records.put('task', mkTask('web.2', '/web', 'a2'));
  await until(() => (authority.lookup({ name: 'web.marathon.mesos', type: 'A' })?.answers.length ?? 0) === 2, 'the second task\'s address');
  await h.master.records.delete('task', 'web.1');
  await h.master.records.delete('task', 'web.2');
  await until(() => authority.lookup({ name: 'web.marathon.mesos', type: 'A' })?.rcode === 'NXDOMAIN', 'NXDOMAIN once no task runs');
  t.deepEqual(errors, []);
});

test('without the agent permission the feed is refused, and the zones answer SERVFAIL until a state arrives', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.tokenFor('nobody', []);
  const errors: unknown[] = [];
  const stop = new AbortController();
  const authority = new ZoneAuthority(new HttpClusterFeed({ masterUrl: () => h.master.apiUrl, token: async () => token, onError: (err) => errors.push(err), signal: stop.signal }));
  t.teardown(() => {
    stop.abort();
    authority.close();
  });
  void authority.start();
  await until(() => errors.length > 0, 'the first refusal');
  t.regex(String(errors[0]), /answered 403/);
  t.is(authority.lookup({ name: 'leader.mesos', type: 'A' })?.rcode, 'SERVFAIL');
});

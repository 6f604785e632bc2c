/**
 * Two `strata master` processes on one 3-member etcd cluster: one leads, the
 * other waits as standby; after the leader's SIGKILL the standby takes over
 * within 5 seconds, and both serve the API throughout.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startEtcdCluster, type EtcdCluster } from './harness/etcd-cluster.ts';
import { startStrata, type StrataProcess } from './harness/process.ts';

let cluster: EtcdCluster;
test.before(async () => {
  cluster = await startEtcdCluster({ members: 3, fastElection: true });
});
test.after.always(async () => {
  await cluster?.stop();
});

async function role(apiUrl: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { role?: string }).role;
  } catch {
    return undefined;
  }
}

async function startMasterProcess(dir: string, name: string, prefix: string): Promise<{ p: StrataProcess; apiUrl: string }> {
  const p = startStrata([
    'master',
    '--data-dir', join(dir, name),
    '--api-port', '0',
    '--xds-port', '0',
    '--store-backend', 'etcd',
    '--store-etcd-endpoints', cluster.endpoints.join(','),
    '--store-prefix', prefix,
    '--master-leader-ttl-seconds', '2',
    '--log-level', 'warn',
  ]);
  const [, apiUrl] = await p.waitFor(/serving the API at (http:\/\/\S+)/, 60_000);
  return { p, apiUrl: apiUrl! };
}

test.serial('a standby master takes over within 5 s of the leader\'s SIGKILL', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-takeover-'));
  const prefix = `takeover-${process.pid}/`;
  const first = await startMasterProcess(dir, 'm1', prefix);
  t.teardown(() => first.p.kill('SIGKILL'));
  const deadline = Date.now() + 20_000;
  while ((await role(first.apiUrl)) !== 'leader' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.is(await role(first.apiUrl), 'leader');
  const second = await startMasterProcess(dir, 'm2', prefix);
  t.teardown(async () => {
    second.p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  t.is(await role(second.apiUrl), 'standby', 'the second master waits as standby');
  t.truthy(first.p.output().match(/bootstrap superuser credentials written/), 'the first master bootstrapped the cluster');
  t.falsy(second.p.output().match(/bootstrap superuser credentials written/), 'the second found it done');

  first.p.kill('SIGKILL');
  const killedAt = Date.now();
  await first.p.exited();
  while ((await role(second.apiUrl)) !== 'leader' && Date.now() - killedAt < 15_000) await new Promise((r) => setTimeout(r, 50));
  const tookMs = Date.now() - killedAt;
  t.log(`standby became leader ${tookMs} ms after the SIGKILL`);
  t.is(await role(second.apiUrl), 'leader');
  t.true(tookMs < 5000, `took over in ${tookMs} ms`);

  second.p.kill('SIGTERM');
  t.is(await second.p.exited(), 0, 'graceful stop on SIGTERM');
});

test.serial('etcd down: the master stays up, /health says degraded, calls fail with 503; when etcd returns, it works again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-etcd-down-'));
  const prefix = `down-${process.pid}/`;
  const m = await startMasterProcess(dir, 'm', prefix);
  t.teardown(async () => {
    m.p.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const credentials = JSON.parse(await (await import('node:fs/promises')).readFile(join(dir, 'm', 'bootstrap-credentials.json'), 'utf8')) as { uid: string; password: string };
  const login = async (): Promise<Response> =>
    fetch(`${m.apiUrl}/acs/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
      signal: AbortSignal.timeout(20_000),
    });
  t.is((await login()).status, 200);

  for (let i = 0; i < 3; i++) await cluster.kill(i, 'SIGKILL');
  const down = await login();
  t.is(down.status, 503, 'a call that needs the store fails cleanly');
  t.is(((await down.json()) as { code: string }).code, 'STORE_UNAVAILABLE');
  let health: { status?: string } = {};
  for (let i = 0; i < 50 && health.status !== 'degraded'; i++) {
    const res = await fetch(`${m.apiUrl}/health`);
    health = (await res.json()) as { status?: string };
    if (health.status !== 'degraded') await new Promise((r) => setTimeout(r, 200));
  }
  t.is(health.status, 'degraded');
  t.is(m.p.child.exitCode, null, 'the master did not crash');

  for (let i = 0; i < 3; i++) await cluster.restart(i, { waitHealthy: false });
  for (let i = 0; i < 3; i++) await cluster.waitHealthy(i);
  let back = 0;
  for (let i = 0; i < 60 && back !== 200; i++) {
    back = (await login()).status;
    if (back !== 200) await new Promise((r) => setTimeout(r, 250));
  }
  t.is(back, 200, 'logins work again once etcd is back');
  t.is(((await (await fetch(`${m.apiUrl}/health`)).json()) as { status: string }).status, 'ok');
});

/**
 * A user's network policy, end to end: `strata up` (inside a network
 * namespace this test creates, with policy enforcement on), "containers"
 * routed through that namespace, a policy added and removed with the CLI,
 * and the kernel dropping or passing their connections accordingly.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { netnsSet, netnsUnavailable, probeTcp, routedVeth, startEchoServer } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';

const skip = netnsUnavailable();

async function until(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

(skip ? test.skip : test)('strata up: a policy added with the CLI is enforced by the kernel at once, and removing it opens the path again', async (t) => {
  const set = netnsSet('sxuppol');
  t.teardown(() => set.cleanup());
  const ns = await set.create('n');
  const client = await set.create('c');
  const stranger = await set.create('s');
  const server = await set.create('d');
  await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await routedVeth(set, ns, client, 'vc', '10.98.1');
  await routedVeth(set, ns, stranger, 'vs', '10.97.1');
  await routedVeth(set, ns, server, 'vd', '10.99.1');
  await startEchoServer(server, '10.99.1.2', [80, 8080]);

  const { up, dir, cli, apiUrl } = await startUpLoggedInNetns(t, 'up-policy', ns.name, { STRATA_DATAPLANE_POLICY: 'on', STRATA_DATAPLANE_L4LB: 'off', STRATA_OVERLAY_ENABLED: 'off' });
  t.regex(up.output(), /policy: +enforced in nftables \(table strata_policy\)/);
  t.is(await probeTcp(stranger, '10.99.1.2', 80, 'open'), 'open', 'no policy yet');

  await writeFile(join(dir, 'policy.json'), JSON.stringify({
    name: 'backend-ingress',
    to: [{ cidr: '10.99.0.0/16' }],
    defaultAction: 'deny',
    rules: [{ action: 'allow', from: [{ cidr: '10.98.0.0/16' }], ports: [{ protocol: 'tcp', port: 80 }] }],
  }));
  const added = await cli(['policy', 'add', join(dir, 'policy.json')]);
  t.is(added.code, 0, added.output);
  await until(async () => (await probeTcp(stranger, '10.99.1.2', 80, 'blocked')) === 'blocked', 'the stranger blocked');
  t.is(await probeTcp(client, '10.99.1.2', 80, 'open'), 'open', 'allowed source and port');
  t.is(await probeTcp(client, '10.99.1.2', 8080, 'blocked'), 'blocked', 'allowed source, other port');

  const ruleset = await cli(['policy', 'ruleset']);
  t.is(ruleset.code, 0, ruleset.output);
  t.regex(ruleset.output, /p_backend_ingress: destinations 10\.99\.0\.0\/16/);
  // The API listens on 127.0.0.1 inside the namespace.
  const { token } = JSON.parse(await readFile(join(dir, 'cli.json'), 'utf8')) as { token: string };
  const metrics = await ns.exec(process.execPath, ['-e', 'fetch(process.argv[1], { headers: { authorization: process.argv[2] } }).then((r) => r.text()).then((b) => process.stdout.write(b))', `${apiUrl}/metrics`, `token=${token}`]);
  t.regex(metrics, /strata_policy_applies_total\{mode="(full|incremental)"\} [1-9]/);

  const removed = await cli(['policy', 'remove', 'backend-ingress']);
  t.is(removed.code, 0, removed.output);
  await until(async () => (await probeTcp(stranger, '10.99.1.2', 80, 'open')) === 'open', 'the path open again');
});

/**
 * The CNI plugin, called the way a runtime calls it: `bin/strata-cni`
 * spawned in the agent host's namespace with CNI_COMMAND, CNI_CONTAINERID,
 * CNI_NETNS, CNI_IFNAME and the network configuration on stdin, against
 * container namespaces this test creates, with `strata up` (overlay on) as
 * the control plane. ADD attaches and answers the 1.0 result; the
 * container is reachable at its IP; a second container gets another IP;
 * CHECK passes, then finds a removed address; DEL removes the veth and is
 * idempotent; VERSION and bad input answer the spec's JSON; on `dcos6` ADD
 * gives an IPv6 address and route, reached over IPv6. Skipped
 * without root or the strata_netns addon.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsSet, netnsUnavailable, type Netns } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';
import { netnsAddonMissing } from '../overlay/netns.ts';

const skip = netnsUnavailable() ?? netnsAddonMissing();
const PLUGIN = fileURLToPath(new URL('../bin/strata-cni', import.meta.url));

const FETCH = `
const [url, token] = process.argv.slice(-2);
fetch(url, { headers: { authorization: 'token=' + token } }).then(async (r) => console.log(await r.text()));
`;
const SERVER = `require('node:net').createServer((s) => s.end('hello from ' + s.localAddress)).listen(7000, '0.0.0.0', () => console.log('up'));`;
const CLIENT = `const s = require('node:net').connect({ host: process.argv.at(-1), port: 7000, timeout: 5000 }); let b = ''; s.on('data', (d) => { b += d; }); s.on('end', () => console.log(b)); s.on('error', (e) => console.log(e.code)); s.on('timeout', () => { console.log('timeout'); s.destroy(); });`;

/** Run the plugin as a runtime does: inside the host namespace, env and stdin. */
async function plugin(host: Netns, env: Record<string, string>, stdin: string): Promise<{ code: number; out: unknown }> {
  const child = spawn('ip', ['netns', 'exec', host.name, PLUGIN], { env: { PATH: process.env.PATH!, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(stdin);
  const [code] = (await once(child, 'exit')) as [number];
  let parsed: unknown;
  try {
    parsed = out.trim() === '' ? undefined : JSON.parse(out);
  } catch {
    throw new Error(`the plugin printed no JSON: ${out} ${err}`);
  }
  return { code, out: parsed };
}

async function until<T>(read: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface Result { cniVersion: string; interfaces: { name: string; mac?: string; sandbox?: string }[]; ips: { address: string; gateway: string; interface: number }[]; routes: { dst: string; gw: string }[] }

(skip ? test.skip : test)('strata-cni ADD/CHECK/DEL/VERSION as a runtime calls it attaches container namespaces to the dcos overlay', async (t) => {
  const set = netnsSet('sxcni');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const { dir, apiUrl } = await startUpLoggedInNetns(t, 'cni', host.name, { STRATA_OVERLAY_ENABLED: 'on', STRATA_OVERLAY_RECONCILE_SECONDS: '1' });
  const { token } = JSON.parse(await readFile(join(dir, 'cli.json'), 'utf8')) as { token: string };
  const tokenFile = join(dir, 'agent.token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const agentId = await until(async () => {
    const { agents } = JSON.parse(await host.exec(process.execPath, ['-e', FETCH, `${apiUrl}/v1/agents`, token])) as { agents: { id: string }[] };
    return agents[0]?.id;
  }, 'the agent');
  await until(async () => (/inet 9\.0\.0\.1\/24/.test(await host.exec('ip', ['-4', 'addr', 'show', 'dev', 'm-dcos'])) ? true : undefined), 'the m-dcos bridge');

  const config = (extra: object = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', type: 'strata-cni', masterUrl: apiUrl, agentId, tokenFile, ...extra });
  const c1 = await set.create('c1');
  const c2 = await set.create('c2');
  const env = (command: string, c: Netns, id: string): Record<string, string> => ({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${c.name}`, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' });

  const version = await plugin(host, { CNI_COMMAND: 'VERSION' }, '');
  t.deepEqual(version, { code: 0, out: { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] } });

  const add1 = await plugin(host, env('ADD', c1, 'ctr-one'), config());
  t.is(add1.code, 0, JSON.stringify(add1.out));
  const r1 = add1.out as Result;
  t.is(r1.cniVersion, '1.0.0');
  t.regex(r1.ips[0]!.address, /^9\.0\.0\.\d+\/24$/);
  t.is(r1.ips[0]!.gateway, '9.0.0.1');
  t.is(r1.ips[0]!.interface, 1);
  t.deepEqual(r1.routes, [{ dst: '0.0.0.0/0', gw: '9.0.0.1' }]);
  t.is(r1.interfaces[1]!.name, 'eth0');
  t.is(r1.interfaces[1]!.sandbox, `/run/netns/${c1.name}`);
  t.regex(r1.interfaces[1]!.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  t.regex(await c1.exec('ip', ['-4', 'addr', 'show', 'eth0']), new RegExp(`inet ${r1.ips[0]!.address.replace(/\./g, '\\.')} .*\\n[^]*`));
  t.regex(await c1.exec('ip', ['link', 'show', 'eth0']), /mtu 1420/);

  const add2 = await plugin(host, env('ADD', c2, 'ctr-two'), config());
  t.is(add2.code, 0, JSON.stringify(add2.out));
  const ip2 = (add2.out as Result).ips[0]!.address.split('/')[0]!;
  t.not(ip2, r1.ips[0]!.address.split('/')[0]);

  // Container to container over the bridge, and from the host.
  const server = c2.spawn(process.execPath, ['-e', SERVER]);
  server.stdout!.setEncoding('utf8');
  await once(server.stdout!, 'data');
  t.is((await c1.exec(process.execPath, ['-e', CLIENT, ip2])).trim(), `hello from ${ip2}`);
  t.is((await host.exec(process.execPath, ['-e', CLIENT, ip2])).trim(), `hello from ${ip2}`);

  const check = await plugin(host, env('CHECK', c1, 'ctr-one'), config({ prevResult: r1 }));
  t.deepEqual(check, { code: 0, out: undefined });
  await c1.exec('ip', ['addr', 'flush', 'dev', 'eth0']);
  const broken = await plugin(host, env('CHECK', c1, 'ctr-one'), config({ prevResult: r1 }));
  t.is(broken.code, 1);
  t.like(broken.out, { cniVersion: '1.0.0', code: 101 });
  t.regex((broken.out as { msg: string }).msg, /eth0 lacks 9\.0\.0\.\d+\/24/);

  const del = await plugin(host, env('DEL', c1, 'ctr-one'), config());
  t.deepEqual(del, { code: 0, out: undefined });
  t.false((await c1.exec('ip', ['-o', 'link'])).includes('eth0'), 'the container end went with the host end');
  t.deepEqual(await plugin(host, env('DEL', c1, 'ctr-one'), config()), { code: 0, out: undefined }, 'DEL again: nothing to do, success');
  // A new container after the DEL does not get the quarantined address.
  const add3 = await plugin(host, env('ADD', c1, 'ctr-three'), config());
  t.is(add3.code, 0, JSON.stringify(add3.out));
  t.notDeepEqual((add3.out as Result).ips[0]!.address, r1.ips[0]!.address);

  // Bad input: the spec's error objects.
  t.like((await plugin(host, { ...env('ADD', c1, 'x'), CNI_NETNS: '' }, config())).out, { code: 4 });
  t.like((await plugin(host, env('ADD', c1, 'x'), '{"cniVersion":')).out, { code: 6 });
  t.like((await plugin(host, env('ADD', c1, 'x'), config({ cniVersion: '0.1.0' }))).out, { code: 1 });
  const unknown = await plugin(host, env('ADD', c1, 'x'), config({ network: 'nosuch' }));
  t.is(unknown.code, 1);
  t.like(unknown.out, { code: 100 });
  t.regex((unknown.out as { msg: string }).msg, /nosuch/);
  const noNetns = await plugin(host, { ...env('ADD', c1, 'y'), CNI_NETNS: '/run/netns/sxcni-none' }, config());
  t.like(noNetns.out, { code: 100 });

  // dcos6 (IPv6 only): ADD gives an IPv6 address and an IPv6 default route; the container is reached over IPv6; CHECK and DEL as for IPv4.
  await until(async () => (/inet6 fd01:b::1\/80/.test(await host.exec('ip', ['-6', 'addr', 'show', 'dev', 'm-dcos6'])) ? true : undefined), 'the m-dcos6 bridge');
  const c3 = await set.create('c3');
  const config6 = config({ name: 'dcos6' });
  const add6 = await plugin(host, env('ADD', c3, 'ctr-six'), config6);
  t.is(add6.code, 0, JSON.stringify(add6.out));
  const r6 = add6.out as Result;
  t.is(r6.ips.length, 1);
  t.regex(r6.ips[0]!.address, /^fd01:b::[0-9a-f]+\/80$/);
  t.is(r6.ips[0]!.gateway, 'fd01:b::1');
  t.deepEqual(r6.routes, [{ dst: '::/0', gw: 'fd01:b::1' }]);
  t.regex(await c3.exec('ip', ['-6', 'route', 'show', 'default']), /default via fd01:b::1 dev eth0/);
  const ip6 = r6.ips[0]!.address.split('/')[0]!;
  const server6 = c3.spawn(process.execPath, ['-e', SERVER.replace("'0.0.0.0'", "'::'")]);
  server6.stdout!.setEncoding('utf8');
  await once(server6.stdout!, 'data');
  t.is((await host.exec(process.execPath, ['-e', CLIENT, ip6])).trim(), `hello from ${ip6}`);
  t.deepEqual(await plugin(host, env('CHECK', c3, 'ctr-six'), config({ name: 'dcos6', prevResult: r6 })), { code: 0, out: undefined });
  await c3.exec('ip', ['-6', 'route', 'del', 'default']);
  const broken6 = await plugin(host, env('CHECK', c3, 'ctr-six'), config({ name: 'dcos6', prevResult: r6 }));
  t.like(broken6.out, { code: 101, msg: 'the container\'s network differs from what ADD set up: no default route via fd01:b::1' });
  t.deepEqual(await plugin(host, env('DEL', c3, 'ctr-six'), config6), { code: 0, out: undefined });
  t.false((await c3.exec('ip', ['-o', 'link'])).includes('eth0'));
});

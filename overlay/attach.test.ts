/**
 * Root: task namespaces through the strata_netns addon against the kernel.
 * A "host" namespace with a bridge (as the overlay programs it); a task's
 * namespace created and attached (veth into the bridge, IP, MTU, default
 * route), reachable from the host, a process spawned inside it sees only
 * its interfaces, CHECK finds a removed address, detach leaves nothing.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { netnsSet, netnsUnavailable } from '../test/harness/netns.ts';
import { ContainerNetworks } from './attach.ts';
import { nativeNetns, netnsAddonMissing } from './netns.ts';
import { NetlinkRtnl } from './rtnl/socket.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const skip = netnsUnavailable() ?? netnsAddonMissing();

/** `ip` inside a namespace given by path (setup and assertions only). */
const ipIn = async (path: string, args: readonly string[]): Promise<string> => (await promisify(execFile)('nsenter', [`--net=${path}`, 'ip', ...args])).stdout;

const SERVER = `require('node:net').createServer((s) => s.end('hello from ' + s.localAddress)).listen(7000, '0.0.0.0', () => console.log('up'));`;
const CLIENT = `const s = require('node:net').connect({ host: process.argv.at(-1), port: 7000, timeout: 5000 }); let b = ''; s.on('data', (d) => { b += d; }); s.on('end', () => console.log(b)); s.on('timeout', () => { console.log('timeout'); s.destroy(); });`;

(skip ? test.skip : test)('a task namespace attached to the bridge: reachable, MTU and route set, spawned process inside, CHECK, detach removes veth and namespace', async (t) => {
  const set = netnsSet('sxatt');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  await host.exec('ip', ['link', 'add', 'm-dcos', 'mtu', '1420', 'type', 'bridge']);
  await host.exec('ip', ['addr', 'add', '9.0.7.1/24', 'dev', 'm-dcos']);
  await host.exec('ip', ['link', 'set', 'm-dcos', 'up']);

  const netns = nativeNetns();
  const hostRtnl = netns.within(`/run/netns/${host.name}`, () => new NetlinkRtnl());
  t.teardown(() => hostRtnl.close());
  const dir = mkdtempSync(join(tmpdir(), 'sxatt-'));
  const networks = new ContainerNetworks({ host: hostRtnl, netns, netnsDir: dir });
  const taskId = `web.instance-${process.pid}._app.1`;
  t.teardown(() => networks.detachTask(taskId).catch(() => undefined));
  const link = { bridge: 'm-dcos', addresses: [{ ip: '9.0.7.2', prefixLength: 24, gateway: '9.0.7.1' }], mtu: 1420 };
  const attached = await networks.attachTask(taskId, link);
  t.true(existsSync(attached.netnsPath));
  t.regex(attached.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

  const inside = JSON.parse(await ipIn(attached.netnsPath, ['-j', '-d', '-4', 'addr', 'show', 'eth0'])) as { mtu: number; addr_info: { local: string; prefixlen: number }[]; operstate: string }[];
  t.is(inside[0]!.mtu, 1420);
  t.deepEqual(inside[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`), ['9.0.7.2/24']);
  t.regex(await ipIn(attached.netnsPath, ['route', 'show', 'default']), /default via 9\.0\.7\.1 dev eth0/);
  const port = JSON.parse(await host.exec('ip', ['-j', 'link', 'show', attached.hostIf])) as { master?: string }[];
  t.is(port[0]!.master, 'm-dcos');

  // A process spawned inside: in the task's namespace, serving on 7000 (free there whatever the host holds), reached from the host by the container IP.
  const child = netns.within(attached.netnsPath, () => spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] }));
  t.teardown(() => child.kill('SIGKILL'));
  child.stdout!.setEncoding('utf8');
  await once(child.stdout!, 'data');
  const nsOfChild = readlinkSync(`/proc/${child.pid}/ns/net`);
  t.not(nsOfChild, readlinkSync('/proc/self/ns/net'));
  t.is(nsOfChild, netns.within(attached.netnsPath, () => readlinkSync('/proc/thread-self/ns/net')));
  t.is(readlinkSync('/proc/thread-self/ns/net'), readlinkSync('/proc/self/ns/net'), 'the main thread came back');
  t.is((await host.exec(process.execPath, ['-e', CLIENT, '9.0.7.2'])).trim(), 'hello from 9.0.7.2');
  child.kill('SIGKILL');
  await once(child, 'exit');

  t.deepEqual(await networks.check(attached.netnsPath, { ...link, hostIf: attached.hostIf, ifName: 'eth0' }), []);
  await ipIn(attached.netnsPath, ['addr', 'del', '9.0.7.2/24', 'dev', 'eth0']);
  t.deepEqual(await networks.check(attached.netnsPath, { ...link, hostIf: attached.hostIf, ifName: 'eth0' }), ['eth0 lacks 9.0.7.2/24', 'no default route via 9.0.7.1']);

  await networks.detachTask(taskId);
  t.false(existsSync(attached.netnsPath));
  await t.throwsAsync(host.exec('ip', ['link', 'show', attached.hostIf]));
  await networks.detachTask(taskId); // idempotent
  t.throws(() => netns.within(attached.netnsPath, () => 1), { code: 'OVERLAY_NETNS' });

  // The bridge re-created (a new ifindex) since the last attach: the remembered index is looked up again.
  await host.exec('ip', ['link', 'del', 'm-dcos']);
  await host.exec('ip', ['link', 'add', 'm-dcos', 'mtu', '1420', 'type', 'bridge']);
  const again = await networks.attachTask(`${taskId}-2`, link);
  t.teardown(() => networks.detachTask(`${taskId}-2`).catch(() => undefined));
  t.is((JSON.parse(await host.exec('ip', ['-j', 'link', 'show', again.hostIf])) as { master?: string }[])[0]!.master, 'm-dcos');
  await networks.detachTask(`${taskId}-2`);
  t.throws(() => netns.within(`/run/netns/${host.name}`, async () => 1), { code: 'OVERLAY_NETNS', message: /synchronous/ });
});

(skip ? test.skip : test)('attach to a network whose bridge is missing fails with OVERLAY_ATTACH and leaves no namespace', async (t) => {
  const set = netnsSet('sxatt');
  t.teardown(() => set.cleanup());
  const host = await set.create('h');
  const netns = nativeNetns();
  const hostRtnl = netns.within(`/run/netns/${host.name}`, () => new NetlinkRtnl());
  t.teardown(() => hostRtnl.close());
  const networks = new ContainerNetworks({ host: hostRtnl, netns, netnsDir: mkdtempSync(join(tmpdir(), 'sxatt-')) });
  await t.throwsAsync(networks.attachTask('web.x', { bridge: 'm-none', addresses: [{ ip: '9.0.7.2', prefixLength: 24, gateway: '9.0.7.1' }], mtu: 1420 }), { code: 'OVERLAY_ATTACH', message: /no bridge m-none/ });
  t.false(existsSync(networks.names('web.x').netnsPath));
});

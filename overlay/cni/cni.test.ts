/**
 * The CNI command logic against a fake control plane and kernel: what ADD
 * asks for and answers, DEL's release, CHECK's verdicts, and the spec's
 * error codes for bad environment and configuration.
 */
import test from 'ava';
import type { Network, OverlayAddress, OverlayLease } from '../../control-plane/model/schemas.ts';
import type { ContainerLink } from '../attach.ts';
import { cniHolderId, cniHostIf, runCni, type CniKernel, type CniMaster } from './cni.ts';

const lease: OverlayLease = { agentId: 'a1', underlayIp: '10.0.0.1', vtepIp: '44.128.0.1', vtepMac: '70:b3:d5:80:00:01', networks: { dcos: { subnet: '9.0.3.0/24' }, both: { subnet: '9.8.3.0/24', subnet6: 'fd01:e::/80' } }, updatedAt: '2026-01-01T00:00:00.000Z' };
const dcos: Network = { name: 'dcos', subnet: '9.0.0.0/8', prefix: 24, prefix6: 80, mtu: 1420, vni: 1024, labels: {} };
const both: Network = { name: 'both', subnet: '9.8.0.0/16', subnet6: 'fd01:e::/64', prefix: 24, prefix6: 80, mtu: 1420, vni: 1030, labels: {} };

function fakes(): { master: CniMaster; kernel: CniKernel; calls: string[]; held: Map<string, string> } {
  const calls: string[] = [];
  const held = new Map<string, string>();
  const master: CniMaster = {
    lease: async () => lease,
    network: async (name) => {
      if (name === 'both') return both;
      if (name !== 'dcos') throw new Error(`no network "${name}"`);
      return dcos;
    },
    assign: async (agentId, network, id) => {
      calls.push(`assign ${agentId} ${network} ${id}`);
      if (!held.has(id)) held.set(id, `${held.size + 2}`);
      const record = (ip: string): OverlayAddress => ({ network, ip, agentId, taskId: id, state: 'assigned', assignedAt: lease.updatedAt, holder: 'cni' });
      return network === 'both' ? [record(`9.8.3.${held.get(id)!}`), record(`fd01:e::${held.get(id)!}`)] : [record(`9.0.3.${held.get(id)!}`)];
    },
    release: async (agentId, network, id) => {
      calls.push(`release ${agentId} ${network} ${id}`);
      return held.delete(id) ? 1 : 0;
    },
  };
  const links = new Map<string, ContainerLink>();
  const kernel: CniKernel = {
    attachNetns: async (path, link) => {
      calls.push(`attach ${path} ${JSON.stringify(link)}`);
      links.set(link.hostIf, link);
      return { hostIf: link.hostIf, ifName: link.ifName, mac: '0a:58:09:00:03:02', bridgeIndex: 3 };
    },
    check: async (_path, link) => link.addresses.filter((a) => !links.get(link.hostIf)?.addresses.some((x) => x.ip === a.ip)).map((a) => `${link.ifName} lacks ${a.ip}/${a.prefixLength}`),
    detachLink: async (hostIf) => {
      calls.push(`detach ${hostIf}`);
      return links.delete(hostIf);
    },
  };
  return { master, kernel, calls, held };
}

const env = (command: string): Record<string, string> => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'abc123', CNI_NETNS: '/run/netns/c1', CNI_IFNAME: 'eth0' });
const config = (extra: object = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'dcos', type: 'strata-cni', masterUrl: 'http://m:8080', agentId: 'a1', tokenFile: '/t', ...extra });

test('ADD takes an IP as a CNI holder, attaches with the network\'s bridge, gateway and MTU, and answers the 1.0 result; DEL detaches and releases', async (t) => {
  const f = fakes();
  const run = (command: string, stdin = config()) => runCni({ env: env(command), stdin, master: () => f.master, kernel: () => f.kernel });
  const add = await run('ADD');
  t.is(add.exitCode, 0);
  t.deepEqual(add.output, {
    cniVersion: '1.0.0',
    interfaces: [{ name: cniHostIf('abc123', 'eth0') }, { name: 'eth0', mac: '0a:58:09:00:03:02', sandbox: '/run/netns/c1' }],
    ips: [{ address: '9.0.3.2/24', gateway: '9.0.3.1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '9.0.3.1' }],
    dns: {},
  });
  t.is(f.calls[0], `assign a1 dcos ${cniHolderId('abc123')}`);
  t.like(JSON.parse(f.calls[1]!.slice(f.calls[1]!.indexOf('{'))), { bridge: 'm-dcos', ifName: 'eth0', addresses: [{ ip: '9.0.3.2', prefixLength: 24, gateway: '9.0.3.1' }], mtu: 1420 });

  t.deepEqual(await run('CHECK', config({ prevResult: add.output })), { exitCode: 0 });
  const wrong = await run('CHECK', config({ prevResult: { ...(add.output as object), ips: [{ address: '9.0.3.9/24', gateway: '9.0.3.1', interface: 1 }] } }));
  t.like(wrong, { exitCode: 1, output: { code: 101, msg: 'the container\'s network differs from what ADD set up: eth0 lacks 9.0.3.9/24' } });
  t.like(await run('CHECK'), { exitCode: 1, output: { code: 7 } });

  t.deepEqual(await run('DEL'), { exitCode: 0 });
  t.deepEqual(f.calls.slice(-2), [`detach ${cniHostIf('abc123', 'eth0')}`, `release a1 dcos ${cniHolderId('abc123')}`]);
  t.is(f.held.size, 0);
});

test('ADD on a network with an IPv6 pool attaches and answers both addresses, each with its default route; CHECK checks both', async (t) => {
  const f = fakes();
  const run = (command: string, stdin = config({ name: 'both' })) => runCni({ env: env(command), stdin, master: () => f.master, kernel: () => f.kernel });
  const add = await run('ADD');
  t.is(add.exitCode, 0);
  t.like(add.output, {
    ips: [{ address: '9.8.3.2/24', gateway: '9.8.3.1', interface: 1 }, { address: 'fd01:e::2/80', gateway: 'fd01:e::1', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '9.8.3.1' }, { dst: '::/0', gw: 'fd01:e::1' }],
  });
  t.like(JSON.parse(f.calls[1]!.slice(f.calls[1]!.indexOf('{'))), { bridge: 'm-both', addresses: [{ ip: '9.8.3.2', prefixLength: 24, gateway: '9.8.3.1' }, { ip: 'fd01:e::2', prefixLength: 80, gateway: 'fd01:e::1' }] });
  t.deepEqual(await run('CHECK', config({ name: 'both', prevResult: add.output })), { exitCode: 0 });
  const wrong = await run('CHECK', config({ name: 'both', prevResult: { ...(add.output as object), ips: [{ address: '9.8.3.2/24', gateway: '9.8.3.1', interface: 1 }, { address: 'fd01:e::9/80', gateway: 'fd01:e::1', interface: 1 }] } }));
  t.like(wrong, { exitCode: 1, output: { code: 101, msg: 'the container\'s network differs from what ADD set up: eth0 lacks fd01:e::9/80' } });
});

test('a failed attach releases the IP it took; errors are the spec\'s objects with codes', async (t) => {
  const f = fakes();
  const kernel: CniKernel = { ...f.kernel, attachNetns: async () => Promise.reject(new Error('open /run/netns/c1: ENOENT')) };
  const out = await runCni({ env: env('ADD'), stdin: config(), master: () => f.master, kernel: () => kernel });
  t.like(out, { exitCode: 1, output: { cniVersion: '1.0.0', code: 100, msg: 'open /run/netns/c1: ENOENT' } });
  t.is(f.held.size, 0, 'released');

  const cases: [string, Record<string, string>, string, number][] = [
    ['no command', { ...env('ADD'), CNI_COMMAND: '' }, config(), 4],
    ['unknown command', { ...env('ADD'), CNI_COMMAND: 'GC' }, config(), 4],
    ['bad container id', { ...env('ADD'), CNI_CONTAINERID: '../x' }, config(), 4],
    ['relative netns', { ...env('ADD'), CNI_NETNS: 'c1' }, config(), 4],
    ['long ifname', { ...env('ADD'), CNI_IFNAME: 'a-very-long-ifname' }, config(), 4],
    ['not JSON', env('ADD'), '{', 6],
    ['an array', env('ADD'), '[]', 6],
    ['old version', env('ADD'), config({ cniVersion: '0.3.1' }), 1],
    ['no masterUrl', env('ADD'), config({ masterUrl: '' }), 7],
    ['bad network name', env('ADD'), config({ network: 'Not_A_Name' }), 7],
  ];
  for (const [name, e, stdin, code] of cases) {
    const r = await runCni({ env: e, stdin, master: () => f.master, kernel: () => f.kernel });
    t.is(r.exitCode, 1, name);
    t.is((r.output as { code: number }).code, code, name);
  }
  // DEL needs no netns (the container may be gone).
  t.deepEqual(await runCni({ env: { ...env('DEL'), CNI_NETNS: '' }, stdin: config(), master: () => f.master, kernel: () => f.kernel }), { exitCode: 0 });
  t.deepEqual((await runCni({ env: { CNI_COMMAND: 'VERSION' }, stdin: '', master: () => f.master, kernel: () => f.kernel })).output, { cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] });
});

/**
 * IPv6 overlays end to end on two agent hosts (the layout of
 * `overlay-two-agents.test.ts`): host A runs `strata up`, host B a
 * `strata agent` registered over an IPv4 underlay, both with the overlay
 * on. An app on DC/OS's IPv6-only `dcos6` with one task per host, and one
 * on a dual-stack network added with `strata network add`: the dcos6 tasks
 * carry only an IPv6 address (status `ipAddresses`, protocol IPv6), the
 * dual-stack task both; they reach each other over IPv6 (TCP and ICMPv6
 * echo) across VXLAN; the Mesos-DNS containerip names answer AAAA (and A
 * for the dual-stack task); host B's agent restarted keeps IPv6 working;
 * an IPv6 route removed by hand on host A is put back by its overlay loop.
 * Skipped without root or the strata_netns addon.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsSet, netnsUnavailable } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';
import { FETCH_SCRIPT, startAgentIn, untilValue } from './harness/overlay-hosts.ts';
import { netnsAddonMissing } from '../overlay/netns.ts';

const skip = netnsUnavailable() ?? netnsAddonMissing();

/** The task: TCP on 7000 (both families), answering "<its id> <line>". */
const SERVER = `
require('node:net').createServer((s) => s.on('data', (d) => s.end(process.env.MESOS_TASK_ID + ' ' + d))).listen(7000, '::');
`;
const CLIENT = `const s = require('node:net').connect({ host: process.argv.at(-1), port: 7000, timeout: 5000 }, () => s.write('hi')); let b = ''; s.on('data', (d) => { b += d; }); s.on('end', () => console.log(b)); s.on('error', (e) => console.log(e.code)); s.on('timeout', () => { console.log('timeout'); s.destroy(); });`;
/** ping6: one ICMPv6 echo over a raw socket (no ping binary needed). */
const PING6 = `
import json, os, socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(3)
ident = os.getpid() & 0xffff
s.sendto(struct.pack('!BBHHH', 128, 0, 0, ident, 1) + b'strata', (sys.argv[1], 0))
deadline = time.time() + 3
ok = False
try:
    while time.time() < deadline and not ok:
        data, addr = s.recvfrom(2048)
        ok = data[0] == 129 and struct.unpack('!H', data[4:6])[0] == ident
except OSError:
    pass
print(json.dumps({"ok": ok}))
`;
interface ApiTask { id: string; host: string; state: string; ipAddresses: { ipAddress: string; protocol: string }[] }

(skip ? test.skip : test)('IPv6 overlays on two agent hosts: dcos6 tasks get an IPv6 address each, a dual-stack task both; TCP and ping6 across VXLAN; AAAA names; an agent restart and a removed IPv6 route leave IPv6 working', async (t) => {
  const set = netnsSet('sx6a');
  t.teardown(() => set.cleanup());
  const underlay = await set.create('u');
  const ha = await set.create('a');
  const hb = await set.create('b');
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  for (const [host, n] of [[ha, 1], [hb, 2]] as const) {
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${n}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.80.${n}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
  }

  const nsDir = await mkdtemp(join(tmpdir(), 'strata-test-netns-'));
  t.teardown(() => rm(nsDir, { recursive: true, force: true }));
  const { dir, apiUrl, cli, up } = await startUpLoggedInNetns(t, 'overlay-ipv6', ha.name, {
    STRATA_OVERLAY_ENABLED: 'on', STRATA_OVERLAY_RECONCILE_SECONDS: '1', STRATA_API_HOST: '0.0.0.0', STRATA_AGENT_HOST: '0.0.0.0', STRATA_OVERLAY_NETNS_DIR: nsDir,
  });
  const port = new URL(apiUrl).port;
  const { token } = JSON.parse(await readFile(join(dir, 'cli.json'), 'utf8')) as { token: string };
  const tokenFile = join(dir, 'agent.token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  // A dual-stack network next to DC/OS's dcos and dcos6.
  const added = await cli(['network', 'add', 'duo', '--subnet', '10.88.0.0/16', '--subnet6', 'fd01:d::/64', '--vni', '1031']);
  t.is(added.code, 0, added.output);
  const agentArgs = ['--agent-master-url', `http://192.168.80.1:${port}`, '--agent-token-file', tokenFile, '--data-dir', join(dir, 'agent-b'), '--agent-host', '0.0.0.0', '--agent-port', '0'];
  let agentB = startAgentIn(hb, 'strata-host-b', agentArgs, nsDir);
  t.teardown(() => {
    agentB.child.kill('SIGKILL');
  });
  const api = async <T>(path: string): Promise<T> => JSON.parse(await ha.exec(process.execPath, ['-e', FETCH_SCRIPT, `${apiUrl}${path}`, token])) as T;
  await untilValue(async () => ((await api<{ agents: unknown[] }>('/v1/agents')).agents.length === 2 ? true : undefined), `host B's agent registering\n${agentB.output()}`);

  const serverFile = join(dir, 'server.js');
  await writeFile(serverFile, SERVER);
  const app = (id: string, network: string, instances: number, constraints: string[][]): object => ({
    id, cmd: `${process.execPath} ${serverFile}`, instances, cpus: 0.1, mem: 64, constraints,
    networks: [{ mode: 'container', name: network }], container: { type: 'MESOS', portMappings: [{ containerPort: 7000, name: 'echo' }] },
  });
  await writeFile(join(dir, 'pair6.json'), JSON.stringify(app('/pair6', 'dcos6', 2, [['hostname', 'UNIQUE']])));
  await writeFile(join(dir, 'duo.json'), JSON.stringify(app('/duo', 'duo', 1, [['hostname', 'LIKE', 'strata-host-b']])));
  for (const f of ['pair6.json', 'duo.json']) {
    const r = await cli(['app', 'add', join(dir, f)]);
    t.is(r.code, 0, r.output);
  }
  const running = (appId: string, n: number, families: number) => untilValue(async () => {
    const { tasks } = await api<{ tasks: ApiTask[] }>(`/v2/apps/${appId}/tasks`);
    return tasks.length === n && tasks.every((x) => x.state === 'TASK_RUNNING' && x.ipAddresses.length === families) ? tasks : undefined;
  }, `${n} RUNNING ${appId} tasks with ${families} container IPs\n${agentB.output()}\n${up.output().slice(-3000)}`);
  const pair = await running('pair6', 2, 1);
  const [duo] = await running('duo', 1, 2);
  t.not(pair[0]!.host, pair[1]!.host, 'one task per host');
  for (const x of pair) t.like(x.ipAddresses, [{ protocol: 'IPv6' }]);
  t.regex(pair.map((x) => x.ipAddresses[0]!.ipAddress).join(' '), /^fd01:b:/);
  t.deepEqual(duo!.ipAddresses.map((a) => a.protocol), ['IPv4', 'IPv6']);
  t.regex(duo!.ipAddresses[0]!.ipAddress, /^10\.88\./);
  t.regex(duo!.ipAddresses[1]!.ipAddress, /^fd01:d:/);
  const onA = pair.find((x) => x.host !== 'strata-host-b')!;
  const onB = pair.find((x) => x.host === 'strata-host-b')!;
  const ipB = onB.ipAddresses[0]!.ipAddress;
  const duo6 = duo!.ipAddresses[1]!.ipAddress;
  const shown = await cli(['task', 'show', duo!.id]);
  t.regex(shown.output, new RegExp(`CONTAINER IP +${duo!.ipAddresses[0]!.ipAddress.replace(/\./g, '\\.')} \\(IPv4\\), ${duo6} \\(IPv6\\)`));

  // Clients inside task A's own namespace (through its process).
  const pidOf = async (dataDir: string, taskId: string): Promise<number> => (JSON.parse(await readFile(join(dataDir, 'sandboxes', taskId, 'task.json'), 'utf8')) as { pid: number }).pid;
  const pidA = await pidOf(join(dir, 'data'), onA.id);
  const others = [await pidOf(join(dir, 'agent-b'), onB.id), await pidOf(join(dir, 'agent-b'), duo!.id)];
  t.teardown(() => {
    for (const pid of [pidA, ...others]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const inTaskA = async (cmd: string, args: readonly string[]): Promise<string> => ha.exec('nsenter', [`--net=/proc/${pidA}/ns/net`, cmd, ...args]);
  const reach = async (ip: string, id: string): Promise<string> => untilValue(async () => {
    const answer = (await inTaskA(process.execPath, ['-e', CLIENT, ip])).trim();
    return answer.startsWith(id) ? answer : undefined;
  }, `task A reaching ${ip} over IPv6`);
  t.is(await reach(ipB, onB.id), `${onB.id} hi`);
  t.is(await reach(duo6, duo!.id), `${duo!.id} hi`, 'the dual-stack task on another network, over IPv6');
  t.deepEqual(JSON.parse(await inTaskA('python3', ['-c', PING6, ipB])), { ok: true });

  // Mesos-DNS names: containerip answers AAAA for the dcos6 tasks, A and AAAA for the dual-stack one.
  const dnsPort = /DNS: +127\.0\.0\.1 UDP (\d+)/.exec(up.output())?.[1];
  t.truthy(dnsPort, up.output());
  const lookup = async (name: string, type: string, pattern: RegExp, count: number): Promise<string[]> => untilValue(async () => {
    const r = await cli(['dns', 'lookup', name, type, '--dns-udp-port', dnsPort!]);
    const got = [...new Set([...r.output.matchAll(pattern)].map((m) => m[1]!))].sort();
    return got.length === count ? got : undefined;
  }, `${name} ${type}`);
  t.deepEqual(await lookup('pair6.marathon.containerip.dcos.thisdcos.directory', 'AAAA', /(fd01:b:[0-9a-f:]+)/g, 2), pair.map((x) => x.ipAddresses[0]!.ipAddress).sort());
  t.deepEqual(await lookup('duo.marathon.containerip.dcos.thisdcos.directory', 'AAAA', /(fd01:d:[0-9a-f:]+)/g, 1), [duo6]);
  t.deepEqual(await lookup('duo.marathon.containerip.dcos.thisdcos.directory', 'A', /(10\.88\.\d+\.\d+)/g, 1), [duo!.ipAddresses[0]!.ipAddress]);

  // Host B's agent restarts: its tasks keep running and stay reachable over IPv6.
  agentB.child.kill('SIGTERM');
  await new Promise((r) => agentB.child.once('exit', r));
  agentB = startAgentIn(hb, 'strata-host-b', agentArgs, nsDir);
  await untilValue(async () => (/registered with/.test(agentB.output()) ? true : undefined), `host B's agent back\n${agentB.output()}`);
  t.is((await inTaskA(process.execPath, ['-e', CLIENT, ipB])).trim(), `${onB.id} hi`);
  const { tasks: after } = await api<{ tasks: ApiTask[] }>('/v2/apps/pair6/tasks');
  t.deepEqual(after.map((x) => x.id).sort(), pair.map((x) => x.id).sort(), 'the same two tasks');

  // Host A's IPv6 route to host B's dcos6 subnet removed by hand: its overlay loop (every second here) puts it back.
  const subnetB = (JSON.parse(await ha.exec('ip', ['-6', '-j', 'route', 'show', 'proto', '83', 'dev', 'vtep1025'])) as { dst: string }[]).map((r) => r.dst);
  t.is(subnetB.length, 1, 'one peer subnet routed on dcos6');
  await ha.exec('ip', ['-6', 'route', 'del', subnetB[0]!]);
  t.is(await reach(ipB, onB.id), `${onB.id} hi`, 'reachable again once the route is repaired');
  t.regex(await ha.exec('ip', ['-6', 'route', 'show', subnetB[0]!]), /via fe80::[0-9a-f:]+ dev vtep1025 proto 83/);
});

/**
 * Two agent hosts, end to end: namespaces joined by an underlay bridge;
 * host A runs `strata up` (master and agent), host B a `strata agent` (its
 * own host name) registered with A's master over the underlay; both with
 * the overlay on. An app on the `dcos` network with one task per host
 * (`hostname UNIQUE`): each task in its own namespace on its host's subnet,
 * reaching the other across VXLAN over TCP and with 1420-byte DF packets
 * (1421 refused at the sender); host B's agent restarted: its running
 * task's veth and namespace are untouched and still reachable. Skipped
 * without root or the strata_netns addon.
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

/** The task: TCP echo on 7000 (answers "<its id> <line>") and UDP echo on 7001. */
const SERVER = `
const net = require('node:net'); const dgram = require('node:dgram');
net.createServer((s) => s.on('data', (d) => s.end(process.env.MESOS_TASK_ID + ' ' + d))).listen(7000, '0.0.0.0');
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(7001, '0.0.0.0');
`;
const CLIENT = `const s = require('node:net').connect({ host: process.argv.at(-1), port: 7000, timeout: 5000 }, () => s.write('hi')); let b = ''; s.on('data', (d) => { b += d; }); s.on('end', () => console.log(b)); s.on('error', (e) => console.log(e.code)); s.on('timeout', () => { console.log('timeout'); s.destroy(); });`;
const DF = `
import json, socket, sys
host, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
s.settimeout(3)
try:
    s.sendto(b'x' * (size - 28), (host, 7001))
    data, _ = s.recvfrom(65535)
    print(json.dumps({"ok": len(data) == size - 28}))
except OSError as e:
    print(json.dumps({"ok": False, "error": e.strerror}))
`;
interface ApiTask { id: string; host: string; state: string; ipAddresses: { ipAddress: string }[] }

(skip ? test.skip : test)('two agent hosts: tasks on the dcos overlay reach each other across VXLAN (TCP, 1420-byte DF packets); an agent restart leaves a running task\'s networking alone', async (t) => {
  const set = netnsSet('sx2a');
  t.teardown(() => set.cleanup());
  const underlay = await set.create('u');
  const ha = await set.create('a');
  const hb = await set.create('b');
  await set.ip(['-n', underlay.name, 'link', 'add', 'br0', 'type', 'bridge']);
  await set.ip(['-n', underlay.name, 'link', 'set', 'br0', 'up']);
  for (const [host, n] of [[ha, 1], [hb, 2]] as const) {
    await set.ip(['-n', underlay.name, 'link', 'add', `uh${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.name]);
    await set.ip(['-n', underlay.name, 'link', 'set', `uh${n}`, 'master', 'br0', 'up']);
    await set.ip(['-n', host.name, 'addr', 'add', `192.168.79.${n}/24`, 'dev', 'eth0']);
    await set.ip(['-n', host.name, 'link', 'set', 'eth0', 'up']);
  }

  // Task namespaces in a directory of the test's own (left behind only there if the test dies).
  const nsDir = await mkdtemp(join(tmpdir(), 'strata-test-netns-'));
  t.teardown(() => rm(nsDir, { recursive: true, force: true }));
  const { dir, apiUrl, cli } = await startUpLoggedInNetns(t, 'two-agents', ha.name, {
    STRATA_OVERLAY_ENABLED: 'on', STRATA_OVERLAY_RECONCILE_SECONDS: '1', STRATA_API_HOST: '0.0.0.0', STRATA_AGENT_HOST: '0.0.0.0', STRATA_OVERLAY_NETNS_DIR: nsDir,
  });
  const port = new URL(apiUrl).port;
  const { token } = JSON.parse(await readFile(join(dir, 'cli.json'), 'utf8')) as { token: string };
  const tokenFile = join(dir, 'agent.token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  const agentArgs = ['--agent-master-url', `http://192.168.79.1:${port}`, '--agent-token-file', tokenFile, '--data-dir', join(dir, 'agent-b'), '--agent-host', '0.0.0.0', '--agent-port', '0'];
  let agentB = startAgentIn(hb, 'strata-host-b', agentArgs, nsDir);
  t.teardown(() => {
    agentB.child.kill('SIGKILL');
  });
  const api = async <T>(path: string): Promise<T> => JSON.parse(await ha.exec(process.execPath, ['-e', FETCH_SCRIPT, `${apiUrl}${path}`, token])) as T;
  await untilValue(async () => ((await api<{ agents: unknown[] }>('/v1/agents')).agents.length === 2 ? true : undefined), `host B's agent registering\n${agentB.output()}`);

  const serverFile = join(dir, 'server.js');
  await writeFile(serverFile, SERVER);
  await writeFile(join(dir, 'pair.json'), JSON.stringify({
    id: '/pair', cmd: `${process.execPath} ${serverFile}`, instances: 2, cpus: 0.1, mem: 64, constraints: [['hostname', 'UNIQUE']],
    networks: [{ mode: 'container', name: 'dcos' }], container: { type: 'MESOS', portMappings: [{ containerPort: 7000, name: 'echo' }] },
  }));
  const added = await cli(['app', 'add', join(dir, 'pair.json')]);
  t.is(added.code, 0, added.output);
  const tasks = await untilValue(async () => {
    const { tasks } = await api<{ tasks: ApiTask[] }>('/v2/apps/pair/tasks');
    return tasks.length === 2 && tasks.every((x) => x.state === 'TASK_RUNNING' && x.ipAddresses.length === 1) ? tasks : undefined;
  }, `two RUNNING tasks with container IPs\n${agentB.output()}`);
  t.not(tasks[0]!.host, tasks[1]!.host, 'one task per host');
  const onB = tasks.find((x) => x.host === 'strata-host-b')!;
  const onA = tasks.find((x) => x.host !== 'strata-host-b')!;
  const ipA = onA.ipAddresses[0]!.ipAddress;
  const ipB = onB.ipAddresses[0]!.ipAddress;
  t.not(ipA.split('.').slice(0, 3).join('.'), ipB.split('.').slice(0, 3).join('.'), 'each host has its own /24');

  // Run clients inside each task's own namespace (found through its process: the sandbox's task.json has the pid).
  const pidOf = async (dataDir: string, taskId: string): Promise<number> => (JSON.parse(await readFile(join(dataDir, 'sandboxes', taskId, 'task.json'), 'utf8')) as { pid: number }).pid;
  const pidA = await pidOf(join(dir, 'data'), onA.id);
  const pidB = await pidOf(join(dir, 'agent-b'), onB.id);
  // Agents leave their tasks running when they stop (by design): end both tasks' process groups here.
  t.teardown(() => {
    for (const pid of [pidA, pidB]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const inTask = async (pid: number, cmd: string, args: readonly string[]): Promise<string> => ha.exec('nsenter', [`--net=/proc/${pid}/ns/net`, cmd, ...args]);
  const fromA = await untilValue(async () => {
    const answer = (await inTask(pidA, process.execPath, ['-e', CLIENT, ipB])).trim();
    return answer.startsWith(onB.id) ? answer : undefined;
  }, 'task A reaching task B across VXLAN');
  t.is(fromA, `${onB.id} hi`);
  t.deepEqual(JSON.parse(await inTask(pidA, 'python3', ['-c', DF, ipB, '1420'])), { ok: true });
  t.like(JSON.parse(await inTask(pidA, 'python3', ['-c', DF, ipB, '1421'])), { ok: false, error: 'Message too long' });

  // Host B's agent restarts: its task keeps running, its veth is the same link, and it is still reachable.
  const vethsB = async (): Promise<string[]> => (JSON.parse(await hb.exec('ip', ['-j', 'link', 'show', 'master', 'm-dcos'])) as { ifname: string; ifindex: number }[]).filter((l) => l.ifname.startsWith('sv')).map((l) => `${l.ifname}#${l.ifindex}`);
  const before = await vethsB();
  t.is(before.length, 1);
  agentB.child.kill('SIGTERM');
  await new Promise((r) => agentB.child.once('exit', r));
  agentB = startAgentIn(hb, 'strata-host-b', agentArgs, nsDir);
  await untilValue(async () => (/registered with/.test(agentB.output()) ? true : undefined), `host B's agent back\n${agentB.output()}`);
  t.deepEqual(await vethsB(), before, 'the running task\'s veth was not touched');
  t.is((await inTask(pidA, process.execPath, ['-e', CLIENT, ipB])).trim(), `${onB.id} hi`);
  const { tasks: after } = await api<{ tasks: ApiTask[] }>('/v2/apps/pair/tasks');
  t.deepEqual(after.map((x) => x.id).sort(), tasks.map((x) => x.id).sort(), 'the same two tasks');
});

/**
 * Tasks on the `dcos` overlay, end to end: `strata up` as root inside a
 * namespace this test creates (overlay and VIP load balancer on), an app
 * with `networks: [{mode: "container", name: "dcos"}]` whose tasks start in
 * their own network namespaces: the container IP is in the task's status
 * (its HTTP health and readiness checks probe it there),
 * the task answers on it (its port is its own: two tasks bind the same
 * port), and through its VIP from another namespace; a network whose
 * subnet is exhausted fails the extra task with a clear reason the
 * deployment shows; stopping Strata removes the tasks' veths. Skipped
 * without root or the strata_netns addon.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsSet, netnsUnavailable, routedVeth, type Netns } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';
import { netnsAddonMissing } from '../overlay/netns.ts';

const skip = netnsUnavailable() ?? netnsAddonMissing();

const GET = `
const http = require('node:http');
const req = http.get(process.argv.at(-1), { agent: false, timeout: 3000 }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => console.log(b)); });
req.on('timeout', () => { req.destroy(); console.log(''); });
req.on('error', () => console.log(''));
`;

const FETCH = `
const [method, url, token] = process.argv.slice(-3);
fetch(url, { method, headers: { authorization: 'token=' + token } }).then(async (r) => { const b = await r.text(); if (!r.ok) { console.error(r.status + ' ' + b); process.exit(1); } console.log(b); });
`;

async function until<T>(read: () => Promise<T | undefined>, what: string, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const value = await read().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface ApiTask { id: string; state: string; ipAddresses: { ipAddress: string; protocol: string }[]; healthCheckResults?: { alive: boolean }[]; readinessCheckResults?: { ready: boolean }[] }

(skip ? test.skip : test)('strata up as root: a task on the dcos overlay gets its own namespace and container IP, reachable by that IP and by VIP; an exhausted subnet fails a task with the reason', async (t) => {
  const set = netnsSet('sxupt');
  t.teardown(() => set.cleanup());
  const ns = await set.create('n');
  // Task namespaces in a directory of the test's own (left behind only there if the test dies).
  const nsDir = await mkdtemp(join(tmpdir(), 'strata-test-netns-'));
  t.teardown(() => rm(nsDir, { recursive: true, force: true }));
  const { up, dir, cli, apiUrl } = await startUpLoggedInNetns(t, 'up-overlay-tasks', ns.name, {
    STRATA_OVERLAY_ENABLED: 'on',
    STRATA_OVERLAY_RECONCILE_SECONDS: '1',
    STRATA_DATAPLANE_L4LB: 'on',
    STRATA_DATAPLANE_RECONCILE_SECONDS: '0',
    STRATA_OVERLAY_NETNS_DIR: nsDir,
  });
  const { token } = JSON.parse(await readFile(join(dir, 'cli.json'), 'utf8')) as { token: string };
  // The API listens inside the namespace: ask from there.
  const api = async <T>(method: string, path: string): Promise<T> => JSON.parse(await ns.exec(process.execPath, ['-e', FETCH, method, `${apiUrl}${path}`, token])) as T;

  // Both tasks listen on 8080: each in its own namespace.
  const server = `${process.execPath} -e "require('http').createServer((q, s) => s.end(process.env.MESOS_TASK_ID)).listen(Number(process.env.PORT0), '0.0.0.0')"`;
  await writeFile(join(dir, 'web.json'), JSON.stringify({
    id: '/web', cmd: server, instances: 2, cpus: 0.1, mem: 64,
    networks: [{ mode: 'container', name: 'dcos' }],
    container: { type: 'MESOS', portMappings: [{ containerPort: 8080, name: 'http', labels: { VIP_0: '/web:80' } }] },
    // Probed by the agent at the container IP and port (the VIP takes a backend only once it is healthy).
    healthChecks: [{ protocol: 'HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 30, intervalSeconds: 1, timeoutSeconds: 2 }],
    readinessChecks: [{ name: 'ready', protocol: 'HTTP', path: '/', portName: 'http', intervalSeconds: 2, timeoutSeconds: 1 }],
  }));
  const added = await cli(['app', 'add', join(dir, 'web.json')]);
  t.is(added.code, 0, added.output);

  const tasks = await until(async () => {
    const { tasks } = await api<{ tasks: ApiTask[] }>('GET', '/v2/apps/web/tasks');
    return tasks.length === 2 && tasks.every((x) => x.state === 'TASK_RUNNING' && x.ipAddresses.length === 1 && x.healthCheckResults?.[0]?.alive === true && x.readinessCheckResults?.[0]?.ready === true) ? tasks : undefined;
  }, 'two RUNNING, healthy and ready tasks with container IPs');
  const ips = tasks.map((x) => x.ipAddresses[0]!.ipAddress).sort();
  for (const ip of ips) t.regex(ip, /^9\.0\.0\.\d+$/);
  t.not(ips[0], ips[1]);
  t.deepEqual(tasks.map((x) => x.ipAddresses[0]!.protocol), ['IPv4', 'IPv4']);

  // By container IP, from the agent's host namespace.
  for (const task of tasks) {
    const answer = await until(async () => (await ns.exec(process.execPath, ['-e', GET, `http://${task.ipAddresses[0]!.ipAddress}:8080/`])).trim() || undefined, `task ${task.id} at its container IP`);
    t.is(answer, task.id);
  }
  // Each task's veth is a port of the bridge, with the network's MTU.
  const ports = JSON.parse(await ns.exec('ip', ['-j', 'link', 'show', 'master', 'm-dcos'])) as { ifname: string; mtu: number }[];
  t.is(ports.filter((p) => p.ifname.startsWith('sv')).length, 2);
  for (const p of ports.filter((x) => x.ifname.startsWith('sv'))) t.is(p.mtu, 1420);

  // Mesos-DNS-style names: containerip and autoip (no host ports: the container IPs) answer the container IPs.
  const dnsPort = /DNS: +127\.0\.0\.1 UDP (\d+)/.exec(up.output())?.[1];
  t.truthy(dnsPort, up.output());
  for (const name of ['web.marathon.containerip.dcos.thisdcos.directory', 'web.marathon.autoip.dcos.thisdcos.directory']) {
    const found = await until(async () => {
      const r = await cli(['dns', 'lookup', name, 'A', '--dns-udp-port', dnsPort!]);
      const got = [...r.output.matchAll(/(9\.0\.0\.\d+)/g)].map((m) => m[1]!).sort();
      return got.length === 2 ? got : undefined;
    }, `${name} answering both container IPs`);
    t.deepEqual(found, ips, name);
  }
  // The CLI shows a task's container IP.
  const shown = await cli(['task', 'show', tasks[0]!.id]);
  t.regex(shown.output, new RegExp(`CONTAINER IP +${tasks[0]!.ipAddresses[0]!.ipAddress.replace(/\./g, '\\.')} \\(IPv4\\)`));

  // By VIP, from another namespace routed through the agent host.
  const client: Netns = await set.create('c');
  await routedVeth(set, ns, client, 'sxc0', '10.77.0');
  const vip = await until(async () => {
    const shown = await cli(['vip', 'show', '/web', '--json']);
    if (shown.code !== 0) return undefined;
    const v = JSON.parse(shown.output) as { ipv4?: string; backends: { ip: string; port: number; weight: number }[] };
    return v.ipv4 !== undefined && v.backends.filter((b) => b.weight === 1).length === 2 ? v : undefined;
  }, 'the VIP with two backends');
  t.deepEqual(vip.backends.map((b) => `${b.ip}:${b.port}`).sort(), ips.map((ip) => `${ip}:8080`));
  const seen = new Set<string>();
  await until(async () => {
    const answer = (await client.exec(process.execPath, ['-e', GET, `http://${vip.ipv4}:80/`])).trim();
    if (answer) seen.add(answer);
    return seen.size === 2 ? true : undefined;
  }, 'both tasks answering through the VIP');
  t.deepEqual([...seen].sort(), tasks.map((x) => x.id).sort());

  // A network with room for one container on this agent: the second task fails, and the deployment says why. (Until
  // the agent's next lease renewal takes a subnet of the new network, the failure says that instead: wait past it.)
  const tiny = await cli(['network', 'add', 'tiny', '--subnet', '10.250.0.0/29', '--prefix', '30', '--vni', '4242']);
  t.is(tiny.code, 0, tiny.output);
  await writeFile(join(dir, 'two.json'), JSON.stringify({ id: '/two', cmd: 'sleep 1000', instances: 2, cpus: 0.1, mem: 32, networks: [{ mode: 'container', name: 'tiny' }] }));
  t.is((await cli(['app', 'add', join(dir, 'two.json')])).code, 0);
  const why = await until(async () => {
    const { deployments } = { deployments: await api<{ affectedApps: string[]; waitReasons?: { reason: string; message: string }[] }[]>('GET', '/v2/deployments') };
    const reason = deployments.find((d) => d.affectedApps.includes('/two'))?.waitReasons?.find((r) => r.reason === 'backoff' && /last failure: .*has no free container IP/.test(r.message));
    return reason?.message;
  }, 'the deployment of /two waiting with the failure');
  t.regex(why, /last failure: ERROR: Cannot join network "tiny": .*has no free container IP/);

  up.kill('SIGTERM');
  await up.exited();
  const after = JSON.parse(await ns.exec('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
  t.deepEqual(after.filter((l) => l.ifname.startsWith('sv')).map((l) => l.ifname), [], 'the tasks\' veths are gone');
});

/**
 * A user's VIP, end to end: `strata up` (inside a network namespace this
 * test creates, with the kernel load balancer on), an app whose port is
 * labelled `VIP_0: "/web:80"`, and connections to the VIP address reaching
 * every running task; scaling down takes the gone task out.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { netnsSet, netnsUnavailable } from './harness/netns.ts';
import { startUpLoggedInNetns } from './harness/process.ts';

const skip = netnsUnavailable();

const CLIENT = `
const http = require('node:http');
const [url, n] = process.argv.slice(-2);
const seen = {};
let failures = 0;
(async () => {
  for (let i = 0; i < Number(n); i++) {
    const body = await new Promise((resolve) => {
      const req = http.get(url, { agent: false, timeout: 3000 }, (res) => { let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(b)); });
      req.on('timeout', () => { req.destroy(); resolve(''); });
      req.on('error', () => resolve(''));
    });
    if (body) seen[body] = (seen[body] ?? 0) + 1; else failures++;
  }
  console.log(JSON.stringify({ seen, failures }));
})();
`;

async function until<T>(read: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

(skip ? test.skip : test)('strata up: an app port labelled VIP_0 is reachable at its VIP, balanced over the running tasks', async (t) => {
  const set = netnsSet('sxup');
  t.teardown(() => set.cleanup());
  const ns = await set.create('n');
  const { up, dir, cli } = await startUpLoggedInNetns(t, 'up-vip', ns.name, { STRATA_DATAPLANE_L4LB: 'on', STRATA_DATAPLANE_RECONCILE_SECONDS: '0' });
  t.regex(up.output(), /VIPs: +kernel load balancer on/);

  const server = `${process.execPath} -e "require('http').createServer((q, s) => s.end(process.env.MESOS_TASK_ID)).listen(Number(process.env.PORT0), '127.0.0.1')"`;
  await writeFile(join(dir, 'web.json'), JSON.stringify({ id: '/web', cmd: server, instances: 2, cpus: 0.1, mem: 64, portDefinitions: [{ port: 0, name: 'http', labels: { VIP_0: '/web:80' } }] }));
  const added = await cli(['app', 'add', join(dir, 'web.json')]);
  t.is(added.code, 0, added.output);

  const vip = await until(async () => {
    const shown = await cli(['vip', 'show', '/web', '--json']);
    if (shown.code !== 0) return undefined;
    const v = JSON.parse(shown.output) as { ipv4?: string; backends: { weight: number }[] };
    return v.ipv4 !== undefined && v.backends.filter((b) => b.weight === 1).length === 2 ? v : undefined;
  }, 'the VIP with two running backends');
  t.regex(vip.ipv4!, /^11\./);

  const call = async (n: number): Promise<{ seen: Record<string, number>; failures: number }> =>
    JSON.parse(await ns.exec(process.execPath, ['-e', CLIENT, `http://${vip.ipv4}:80/`, String(n)])) as { seen: Record<string, number>; failures: number };
  const both = await until(async () => {
    const r = await call(60);
    return r.failures === 0 && Object.keys(r.seen).length === 2 ? r : undefined;
  }, 'both tasks answering through the VIP');
  t.is(both.failures, 0);

  const scaled = await cli(['app', 'scale', '/web', '1', '--wait']);
  t.is(scaled.code, 0, scaled.output);
  const one = await until(async () => {
    const r = await call(40);
    return r.failures === 0 && Object.keys(r.seen).length === 1 ? r : undefined;
  }, 'only the remaining task answering');
  t.is(Object.values(one.seen)[0], 40);
});

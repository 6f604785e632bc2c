/**
 * DNS inside `strata up`: the dispatcher answers `ready.spartan` through the
 * CLI on the port it printed; a DNS port already taken is reported and the
 * rest of `strata up` runs on.
 */
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runStrata, startStrata } from './harness/process.ts';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-up-dns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('strata up serves DNS on the printed port: ready.spartan via strata dns lookup', async (t) => {
  const dir = await tempDir(t);
  const up = startStrata(['up', '--data-dir', join(dir, 'data'), '--api-port', '0', '--agent-port', '0', '--dns-udp-port', '0', '--dns-tcp-port', '0']);
  t.teardown(async () => {
    up.kill('SIGKILL');
    await up.exited();
  });
  const [, port] = await up.waitFor(/DNS: +127\.0\.0\.1 UDP (\d+), TCP \d+; zones mesos and thisdcos\.directory; no upstreams/);
  const lookup = await runStrata(['dns', 'lookup', 'ready.spartan', '--dns-udp-port', port!]);
  t.is(lookup.code, 0, lookup.output);
  t.regex(lookup.output, /^ready\.spartan\tA\t127\.0\.0\.1$/m);
  const refused = await runStrata(['dns', 'lookup', 'example.com', '--dns-udp-port', port!]);
  t.is(refused.code, 1);
  t.regex(refused.output, /REFUSED/);

  // The zones: leader.mesos, and an app's tasks by name the moment they run.
  const leader = await runStrata(['dns', 'lookup', 'leader.mesos', '--dns-udp-port', port!]);
  t.is(leader.code, 0, leader.output);
  t.regex(leader.output, /^leader\.mesos\tA\t127\.0\.0\.1$/m);
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const [, apiUrl] = await up.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/);
  const login = await runStrata(['auth', 'login', '--url', apiUrl!, '--password-file', join(dir, 'data', 'bootstrap-credentials.json')], { env });
  t.is(login.code, 0, login.output);
  await writeFile(join(dir, 'web.json'), JSON.stringify({ id: '/shop/web', cmd: 'sleep 1000', instances: 2, cpus: 0.01, mem: 16 }));
  const added = await runStrata(['app', 'add', join(dir, 'web.json'), '--wait'], { env });
  t.is(added.code, 0, added.output);
  // Both tasks run on this host: one A record (an RRset holds no duplicates) and one SRV per task.
  let srv = '';
  for (let i = 0; i < 40 && (srv.match(/\tSRV\t/g) ?? []).length < 2; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 250));
    srv = (await runStrata(['dns', 'lookup', '_web-shop._tcp.marathon.mesos', 'SRV', '--dns-udp-port', port!])).output;
  }
  t.is((srv.match(/\tSRV\t/g) ?? []).length, 2, srv);
  const a = await runStrata(['dns', 'lookup', 'web-shop.marathon.mesos', '--dns-udp-port', port!]);
  t.regex(a.output, /^web-shop\.marathon\.mesos\tA\t127\.0\.0\.1$/m, 'the group path in Mesos-DNS\'s web-shop form');
  up.kill('SIGTERM');
  t.is(await up.exited(), 0, 'graceful exit closes the DNS server too');
});

test('strata up with its DNS port taken says so and keeps running', async (t) => {
  const dir = await tempDir(t);
  const squatter = createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(0, '127.0.0.1', () => resolve()));
  t.teardown(() => squatter.close());
  const taken = squatter.address().port;
  const up = startStrata(['up', '--data-dir', join(dir, 'data'), '--api-port', '0', '--agent-port', '0', '--dns-udp-port', String(taken)]);
  t.teardown(async () => {
    up.kill('SIGKILL');
    await up.exited();
  });
  const [line] = await up.waitFor(/DNS: +not started: .*/);
  t.regex(line!, new RegExp(`cannot bind UDP 127\\.0\\.0\\.1:${taken}`));
  const [, apiUrl] = await up.waitFor(/API .*: (http:\/\/127\.0\.0\.1:\d+)/);
  t.is((await fetch(`${apiUrl}/health`)).status, 200);
});

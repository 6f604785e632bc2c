/**
 * DNS inside `strata up`: the dispatcher answers `ready.spartan` through the
 * CLI on the port it printed; a DNS port already taken is reported and the
 * rest of `strata up` runs on.
 */
import { createSocket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
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
  const [, port] = await up.waitFor(/DNS: +127\.0\.0\.1 UDP (\d+), TCP \d+; ready\.spartan; no upstreams/);
  const lookup = await runStrata(['dns', 'lookup', 'ready.spartan', '--dns-udp-port', port!]);
  t.is(lookup.code, 0, lookup.output);
  t.regex(lookup.output, /^ready\.spartan\tA\t127\.0\.0\.1$/m);
  const refused = await runStrata(['dns', 'lookup', 'example.com', '--dns-udp-port', port!]);
  t.is(refused.code, 1);
  t.regex(refused.output, /REFUSED/);
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

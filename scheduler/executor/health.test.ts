/**
 * Health checks: the counting with a fake clock, and probes against real
 * sockets on 127.0.0.1 and a real /bin/sh.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { HealthCheck, HealthCheckResult } from '../../control-plane/model/schemas.ts';
import { checkPort, exceeded, HealthChecker, initialResult, probe, recordOutcome, significantChange } from './health.ts';
import { tempDir, waitFor } from './test-helpers.ts';

const check = (over: Partial<HealthCheck> = {}): HealthCheck => ({
  protocol: 'MESOS_HTTP',
  path: '/',
  portIndex: 0,
  gracePeriodSeconds: 10,
  intervalSeconds: 1,
  timeoutSeconds: 1,
  maxConsecutiveFailures: 3,
  delaySeconds: 0,
  ignoreHttp1xx: false,
  ...over,
});
const FAIL = { ok: false, cause: 'boom' } as const;
const OK = { ok: true } as const;

test('failures within the grace period do not count until the first success', (t) => {
  const c = check({ gracePeriodSeconds: 10 });
  const start = 1_000_000;
  let r = initialResult();
  r = recordOutcome(c, r, FAIL, start + 1000, start);
  r = recordOutcome(c, r, FAIL, start + 9000, start);
  t.is(r.consecutiveFailures, 0);
  t.false(r.alive);
  t.is(r.lastFailureCause, 'boom');
  t.is(r.lastFailure, new Date(start + 9000).toISOString());
  r = recordOutcome(c, r, FAIL, start + 10_000, start);
  t.is(r.consecutiveFailures, 1, 'after the grace, failures count');
  r = recordOutcome(c, r, OK, start + 11_000, start);
  t.true(r.alive);
  t.is(r.consecutiveFailures, 0);
  t.is(r.firstSuccess, new Date(start + 11_000).toISOString());
  t.is(r.lastSuccess, r.firstSuccess);
  // Once healthy, a failure counts even inside the grace window.
  const c2 = check({ gracePeriodSeconds: 300 });
  let r2 = recordOutcome(c2, initialResult(), OK, start + 1000, start);
  r2 = recordOutcome(c2, r2, FAIL, start + 2000, start);
  t.is(r2.consecutiveFailures, 1);
  t.false(r2.alive);
  t.is(r2.firstSuccess, new Date(start + 1000).toISOString());
  t.is(r2.lastSuccess, new Date(start + 1000).toISOString());
});

test('maxConsecutiveFailures: reached kills, 0 never does', (t) => {
  let r: HealthCheckResult = initialResult();
  const c = check({ gracePeriodSeconds: 0, maxConsecutiveFailures: 3 });
  for (let i = 1; i <= 3; i++) {
    r = recordOutcome(c, r, FAIL, 1000 * i, 0);
    t.is(exceeded(c, r), i >= 3);
  }
  t.false(exceeded(check({ maxConsecutiveFailures: 0 }), { alive: false, consecutiveFailures: 1000 }));
});

test('significantChange ignores a steady healthy task', (t) => {
  const a = recordOutcome(check(), initialResult(), OK, 1000, 0);
  const b = recordOutcome(check(), a, OK, 2000, 0);
  t.false(significantChange([a], [b]));
  t.true(significantChange([initialResult()], [a]));
  t.true(significantChange([b], [recordOutcome(check({ gracePeriodSeconds: 0 }), b, FAIL, 3000, 0)]));
  t.is(checkPort({ portIndex: 1 }, [1, 2]), 2);
  t.is(checkPort({ port: 99, portIndex: 1 }, [1, 2]), 99);
});

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

test('HTTP probes (both protocol names): 200-399 healthy, others and closed ports not', async (t) => {
  const server = createHttpServer((req, res) => {
    const code = Number(req.url?.slice(1)) || 200;
    res.writeHead(code, code >= 300 && code < 400 ? { location: '/' } : {}).end('x');
  });
  const port = await listen(server);
  t.teardown(() => server.close());
  const ctx = { ports: [port], sandbox: '/tmp', env: {} };
  t.deepEqual(await probe(check({ protocol: 'HTTP', path: '/200' }), ctx), { ok: true });
  t.deepEqual(await probe(check({ protocol: 'MESOS_HTTP', path: '/302' }), ctx), { ok: true });
  const bad = await probe(check({ protocol: 'MESOS_HTTP', path: '/503' }), ctx);
  t.false(bad.ok);
  t.regex((bad as { cause: string }).cause, /HTTP 503/);
  const closed = createTcpServer();
  const closedPort = await listen(closed);
  await new Promise((r) => closed.close(r));
  t.false((await probe(check({ protocol: 'HTTP', port: closedPort }), ctx)).ok);
  t.false((await probe(check({ protocol: 'HTTP', portIndex: 3 }), ctx)).ok, 'no such port');
});

test('HTTP probe times out on a server that never answers', async (t) => {
  const server = createHttpServer(() => {});
  const port = await listen(server);
  t.teardown(() => server.closeAllConnections());
  t.teardown(() => server.close());
  const started = Date.now();
  const r = await probe(check({ protocol: 'HTTP', timeoutSeconds: 1 }), { ports: [port], sandbox: '/tmp', env: {} });
  t.false(r.ok);
  t.true(Date.now() - started < 3000);
});

test('TCP probes connect', async (t) => {
  const server = createTcpServer((s) => s.end());
  const port = await listen(server);
  const ctx = { ports: [port], sandbox: '/tmp', env: {} };
  t.deepEqual(await probe(check({ protocol: 'TCP' }), ctx), { ok: true });
  t.deepEqual(await probe(check({ protocol: 'MESOS_TCP' }), ctx), { ok: true });
  await new Promise((r) => server.close(r));
  t.false((await probe(check({ protocol: 'MESOS_TCP' }), ctx)).ok);
});

test('COMMAND probes run /bin/sh -c in the sandbox with the task env', async (t) => {
  const dir = await tempDir(t);
  writeFileSync(join(dir, 'marker'), 'ok');
  const ctx = { ports: [], sandbox: dir, env: { PATH: '/usr/bin:/bin', WANT: 'yes' } };
  const cmd = (value: string, timeoutSeconds = 2): HealthCheck => check({ protocol: 'COMMAND', command: { value }, timeoutSeconds });
  t.deepEqual(await probe(cmd('test -f marker && test "$WANT" = yes'), ctx), { ok: true });
  const r = await probe(cmd('echo nope >&2; exit 3'), ctx);
  t.false(r.ok);
  t.regex((r as { cause: string }).cause, /status 3: nope/);
  const slow = await probe(cmd('sleep 30', 1), ctx);
  t.regex((slow as { cause: string }).cause, /timed out/);
});

test('HealthChecker probes every interval and reports exceeded checks', async (t) => {
  let healthy = true;
  const server = createHttpServer((_req, res) => res.writeHead(healthy ? 200 : 500).end());
  const port = await listen(server);
  t.teardown(() => server.close());
  const seen: { changed: boolean; exceeded: number | undefined; alive: boolean }[] = [];
  const checker = new HealthChecker({
    checks: [check({ protocol: 'MESOS_HTTP', gracePeriodSeconds: 0, intervalSeconds: 1, maxConsecutiveFailures: 2 })],
    ports: [port],
    sandbox: '/tmp',
    env: {},
    startedAt: Date.now(),
    onResult: (results, changed, bad) => seen.push({ changed, exceeded: bad, alive: results[0]!.alive }),
  });
  t.teardown(() => checker.stop());
  await waitFor('first success', () => seen.length >= 1);
  t.deepEqual(seen[0], { changed: true, exceeded: undefined, alive: true });
  healthy = false;
  await waitFor('exceeded', () => seen.some((s) => s.exceeded === 0), 8000);
  t.true(checker.results[0]!.consecutiveFailures >= 2);
  checker.stop();
});

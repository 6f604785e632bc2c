/**
 * Readiness checks: the pure verdict and port lookup, then the checker
 * against a real HTTP server on 127.0.0.1 (port 0) that becomes ready.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { withAppDefaults } from '../../control-plane/model/app-defaults.ts';
import type { ReadinessCheck, ReadinessCheckResult } from '../../control-plane/model/schemas.ts';
import { MAX_PRESERVED_BODY, ReadinessChecker, readinessPort, readinessResult } from './readiness.ts';
import { waitFor } from './test-helpers.ts';

const CHECK: ReadinessCheck = { name: 'ready', protocol: 'HTTP', path: '/ready', portName: 'http', intervalSeconds: 1, timeoutSeconds: 1, httpStatusCodesForReady: [200, 204], preserveLastResponse: true };

test('readinessResult: ready on a listed status; the last response kept only when asked, bounded', (t) => {
  t.deepEqual(readinessResult(CHECK, 't1', { status: 204, contentType: '', body: '' }), { taskId: 't1', name: 'ready', ready: true, lastResponse: { status: 204, contentType: '', body: '' } });
  t.like(readinessResult(CHECK, 't1', { status: 503, contentType: 'text/plain', body: 'warming up' }), { ready: false, lastResponse: { status: 503, body: 'warming up' } });
  t.deepEqual(readinessResult({ ...CHECK, preserveLastResponse: false }, 't1', { status: 200, contentType: 'text/plain', body: 'ok' }), { taskId: 't1', name: 'ready', ready: true });
  t.deepEqual(readinessResult(CHECK, 't1', { error: 'connection refused' }), { taskId: 't1', name: 'ready', ready: false });
  t.is(readinessResult(CHECK, 't1', { status: 200, contentType: 'x', body: 'a'.repeat(MAX_PRESERVED_BODY + 10) }).lastResponse!.body.length, MAX_PRESERVED_BODY);
});

test('readinessPort: the task port at the index of the port named portName', (t) => {
  const app = withAppDefaults({ id: '/a', cmd: 'x', portDefinitions: [{ port: 0, name: 'admin' }, { port: 0, name: 'http' }] }, { version: '2026-01-01T00:00:00.000Z' });
  t.is(readinessPort(CHECK, app, [31000, 31001]), 31001);
  t.is(readinessPort({ portName: 'nope' }, app, [31000, 31001]), undefined);
  // A container network: the mapping's container port (the task has its own namespace); a mapping without one takes its host port.
  const onOverlay = withAppDefaults({ id: '/b', cmd: 'x', networks: [{ mode: 'container', name: 'dcos' }], container: { type: 'MESOS', portMappings: [{ containerPort: 9000, name: 'admin' }, { containerPort: 8080, name: 'http' }, { containerPort: 0, hostPort: 0, name: 'dyn' }] } }, { version: '2026-01-01T00:00:00.000Z' });
  t.is(readinessPort(CHECK, onOverlay, [31005], { containerNetwork: true }), 8080);
  t.is(readinessPort({ portName: 'dyn' }, onOverlay, [31005], { containerNetwork: true }), 31005);
});

test('ReadinessChecker probes until ready, reports each change, then stops probing', async (t) => {
  let ready = false;
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok' : 'warming up');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const app = withAppDefaults({ id: '/a', cmd: 'x', portDefinitions: [{ port: 0, name: 'http' }], readinessChecks: [CHECK] }, { version: '2026-01-01T00:00:00.000Z' });
  const seen: ReadinessCheckResult[][] = [];
  const checker = new ReadinessChecker({ taskId: 't1', app, ports: [port], onResult: (r) => seen.push([...r]) });
  t.teardown(() => checker.stop());
  await waitFor('first verdict', () => seen.length === 1);
  t.like(seen[0]![0], { ready: false, lastResponse: { status: 503, body: 'warming up', contentType: 'text/plain' } });
  ready = true;
  await waitFor('ready', () => seen.some((r) => r[0]!.ready), 5000);
  const after = hits;
  await new Promise((r) => setTimeout(r, 1500));
  t.is(hits, after, 'no probe once ready');
  t.deepEqual(checker.results.map((r) => r.ready), [true]);
});

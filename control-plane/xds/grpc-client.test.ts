/**
 * A real proxyless gRPC client (@grpc/grpc-js-xds) calling `xds:///web`
 * through our server, against real gRPC backends on 127.0.0.1. The
 * bootstrap goes in the channel option grpc-js-xds reads per channel, so
 * this file needs no environment variable. One serial test: the client's
 * require costs 1-2 s and the steps build on each other.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import * as xds from '@grpc/grpc-js-xds';
import { grpcBootstrap } from './bootstrap.ts';
import { MESH_LABELS } from './labels.ts';
import { eventually, startBackend, startMeshFixture, task, vipApp, who, WhoClient, type Backend } from './testing.ts';

xds.register();

async function sample(client: grpc.Client, n: number, metadata?: grpc.Metadata): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const name = await who(client, metadata);
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  return seen;
}

/** Wait until `n` consecutive calls hit exactly the backends in `expected`, each at least once. */
async function settlesOn(client: grpc.Client, expected: readonly string[], n = 30, metadata?: grpc.Metadata): Promise<Map<string, number>> {
  let last = new Map<string, number>();
  try {
    await eventually(async () => {
      try {
        last = await sample(client, n, metadata);
      } catch (err) {
        // A state passing through on the way (e.g. every endpoint unhealthy for a moment while an
        // app and its tasks are written one after the other) fails calls: sample again.
        last = new Map([[`error: ${(err as Error).message}`, 1]]);
        return false;
      }
      return [...last.keys()].sort().join() === [...expected].sort().join();
    }, 20_000, `calls to settle on ${expected.join(', ')}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the last ${n} calls went to ${JSON.stringify([...last])}`);
  }
  return last;
}

test('a real grpc-js-xds client balances over the tasks of /web and follows scale, health, canary weights and a control-plane restart', async (t) => {
  const mesh = await startMeshFixture();
  const backends: Backend[] = [];
  t.teardown(async () => {
    await mesh.close();
    await Promise.all(backends.map((b) => b.close()));
  });
  for (const name of ['web-1', 'web-2', 'web-3', 'web-4', 'canary-1']) backends.push(await startBackend(name));
  const port = (name: string): number => backends.find((b) => b.name === name)!.port;

  await mesh.records.put('app', vipApp('/web'));
  for (const n of ['web-1', 'web-2', 'web-3']) await mesh.records.put('task', task(`web.${n}`, '/web', port(n)));

  const token = await mesh.token('sidecar-web', [{ rid: 'dcos:service:marathon:marathon:services:/web', actions: ['read'] }, { rid: 'dcos:service:marathon:marathon:services:/web-canary', actions: ['read'] }]);
  const bootstrap = grpcBootstrap({ nodeId: 'client-1', host: '127.0.0.1', port: mesh.port, token });
  const client = new WhoClient('xds:///web', grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
  });
  t.teardown(() => client.close());

  // Balanced: round robin over the three tasks.
  const first = await settlesOn(client, ['web-1', 'web-2', 'web-3'], 60);
  for (const n of first.values()) t.true(n >= 10, JSON.stringify([...first]));

  // Scale up, then down.
  await mesh.records.put('task', task('web.web-4', '/web', port('web-4')));
  await settlesOn(client, ['web-1', 'web-2', 'web-3', 'web-4'], 40);
  await mesh.records.delete('task', 'web.web-1');
  await settlesOn(client, ['web-2', 'web-3', 'web-4']);

  // Draining (KILLING) and unhealthy tasks stop getting calls.
  await mesh.records.put('task', task('web.web-2', '/web', port('web-2'), { state: 'KILLING' }));
  await settlesOn(client, ['web-3', 'web-4']);
  const withCheck = vipApp('/web');
  await mesh.records.put('app', { ...withCheck, healthChecks: [{ protocol: 'TCP', portIndex: 0, gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15, ignoreHttp1xx: false }] } as typeof withCheck);
  await mesh.records.put('task', task('web.web-3', '/web', port('web-3'), { healthy: [true] }));
  await mesh.records.put('task', task('web.web-4', '/web', port('web-4'), { healthy: [false] }));
  await settlesOn(client, ['web-3']);
  await mesh.records.put('task', task('web.web-4', '/web', port('web-4'), { healthy: [true] }));
  await settlesOn(client, ['web-3', 'web-4']);

  // Canary: a second app with its own VIP, weights set on /web.
  await mesh.records.put('app', vipApp('/web-canary'));
  await mesh.records.put('task', task('canary.1', '/web-canary', port('canary-1')));
  const labelled = (routes: unknown): typeof withCheck => ({ ...(mesh.source.state().apps.get('/web')!), labels: { [MESH_LABELS.routes]: JSON.stringify(routes) } });
  await mesh.records.put('app', labelled([{ prefix: '/', weights: { '/web': 1, '/web-canary': 1 } }]));
  await settlesOn(client, ['web-3', 'web-4', 'canary-1'], 60);
  await mesh.records.put('app', labelled([{ prefix: '/', weights: { '/web': 0, '/web-canary': 100 } }]));
  await settlesOn(client, ['canary-1']);
  // Header match: only calls carrying x-canary: 1 go to the canary.
  await mesh.records.put('app', labelled([{ headers: [{ name: 'x-canary', exact: '1' }], to: '/web-canary' }]));
  const canaryMd = new grpc.Metadata();
  canaryMd.set('x-canary', '1');
  await settlesOn(client, ['web-3', 'web-4']);
  await settlesOn(client, ['canary-1'], 10, canaryMd);

  // Control-plane restart: the client keeps its config, reconnects, and follows the next change.
  await mesh.restart();
  await mesh.records.put('task', task('web.web-1', '/web', port('web-1'), { healthy: [true] }));
  const afterRestart = await settlesOn(client, ['web-1', 'web-3', 'web-4'], 40);
  t.deepEqual([...afterRestart.keys()].sort(), ['web-1', 'web-3', 'web-4'], 'after the restart the client follows the new task');
});

test('a node whose principal may not read the app gets no listener for it (calls fail, nothing leaks)', async (t) => {
  const mesh = await startMeshFixture();
  const backend = await startBackend('secret-1');
  t.teardown(async () => {
    await mesh.close();
    await backend.close();
  });
  await mesh.records.put('app', vipApp('/secret'));
  await mesh.records.put('task', task('secret.1', '/secret', backend.port));
  const token = await mesh.token('other-team', [{ rid: 'dcos:service:marathon:marathon:services:/other', actions: ['read'] }]);
  const client = new WhoClient('xds:///secret', grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(grpcBootstrap({ nodeId: 'n2', host: '127.0.0.1', port: mesh.port, token })),
  });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(who(client, undefined, 3000));
  t.true([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes((err as grpc.ServiceError).code), String(err));
  t.is(mesh.server.streams()[0]?.uid, 'other-team');
});

// grpc-js-xds keeps one XdsClient per bootstrap for the life of the process; once the test's xDS server
// is gone it retries the ADS stream on timers that hold the event loop, so this worker would never exit
// ("Failed to exit" in ava). Every assertion is done by now: leave once ava has the results.
test.after.always(() => {
  setTimeout(() => process.exit(0), 1000);
});

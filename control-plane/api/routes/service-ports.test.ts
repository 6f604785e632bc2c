/**
 * Marathon service ports through /v2/apps: assigned from 10000, unique
 * across apps (also under concurrent POSTs through two API instances on one
 * store), stable across updates, user-given ones honoured or refused with
 * 409, released on delete, and shown on the apps and their tasks.
 */
import test from 'ava';
import { Registry } from 'prom-client';
import { loadConfig } from '../../config/load.ts';
import { assignServicePorts } from '../../model/service-ports.ts';
import { withAppDefaults } from '../../model/app-defaults.ts';
import type { App, Task } from '../../model/schemas.ts';
import { eventually, startControlledCluster } from '../../../test/harness/fake-agent.ts';
import { startTestMaster } from '../../../test/harness/master.ts';
import { buildApi } from '../app.ts';

const def = (id: string, extra: object = {}): object => ({ id, cmd: 'sleep 1000', cpus: 0.01, mem: 8, instances: 0, ...extra });

async function master(t: { teardown(fn: () => Promise<void>): void }) {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const api = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: object) =>
    h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  const ports = async (id: string): Promise<number[]> => ((await api('GET', `/v2/apps${id}`)).json().app as App).portDefinitions.map((p) => p.port);
  return { h, api, ports, token };
}

test('port 0 gets the lowest free port from 10000; user-given ports are honoured when free and refused (409) when taken', async (t) => {
  const { api, ports } = await master(t);
  t.is((await api('POST', '/v2/apps', def('/a'))).statusCode, 201);
  t.is((await api('POST', '/v2/apps', def('/b', { portDefinitions: [{ port: 0, name: 'http' }, { port: 0, name: 'admin' }] }))).statusCode, 201);
  t.is((await api('POST', '/v2/apps', def('/c', { portDefinitions: [{ port: 12345 }, { port: 0 }] }))).statusCode, 201);
  t.deepEqual(await ports('/a'), [10000]);
  t.deepEqual(await ports('/b'), [10001, 10002]);
  t.deepEqual(await ports('/c'), [12345, 10003]);
  const listed = (await api('GET', '/v2/apps')).json().apps as App[];
  t.deepEqual(listed.map((a) => [a.id, a.portDefinitions.map((p) => p.port)]).sort(), [['/a', [10000]], ['/b', [10001, 10002]], ['/c', [12345, 10003]]]);

  const taken = await api('POST', '/v2/apps', def('/d', { portDefinitions: [{ port: 10001 }] }));
  t.is(taken.statusCode, 409, taken.body);
  t.is(taken.json().code, 'APP_SERVICE_PORT_TAKEN');
  t.deepEqual(taken.json().details, { path: '/portDefinitions/0/port', port: 10001, appId: '/b' });
  t.is((await api('GET', '/v2/apps/d')).statusCode, 404, 'nothing was written');
  const bridge = await api('POST', '/v2/apps', def('/e', { networks: [{ mode: 'container/bridge' }], container: { type: 'DOCKER', docker: { image: 'x' }, portMappings: [{ containerPort: 80, hostPort: 0, servicePort: 0 }] } }));
  t.is(bridge.statusCode, 201, bridge.body);
  t.deepEqual(((await api('GET', '/v2/apps/e')).json().app as App).container?.portMappings?.map((m) => m.servicePort), [10004], 'portMappings get service ports too');
});

test('service ports are stable across updates, released when an app drops them or is deleted', async (t) => {
  const { h, api, ports } = await master(t);
  await api('POST', '/v2/apps', def('/a', { portDefinitions: [{ port: 0 }, { port: 0 }] }));
  await api('POST', '/v2/apps', def('/b'));
  t.deepEqual(await ports('/a'), [10000, 10001]);
  t.is((await api('PUT', '/v2/apps/a?force=true', { cmd: 'sleep 2000' })).statusCode, 200);
  t.deepEqual(await ports('/a'), [10000, 10001], 'a partial update keeps them');
  t.is((await api('PUT', '/v2/apps/a?force=true', { portDefinitions: [{ port: 0 }, { port: 0 }, { port: 0 }] })).statusCode, 200);
  t.deepEqual(await ports('/a'), [10000, 10001, 10003], 'new port definitions with 0 keep the ports at their index');
  t.is((await api('PUT', '/v2/apps/a?force=true', { portDefinitions: [{ port: 0 }] })).statusCode, 200);
  t.deepEqual(await ports('/a'), [10000]);
  const held = async () => (await h.master.records.list('servicePort')).records.map((r) => `${r.value.port} ${r.value.appId}`).sort();
  t.deepEqual(await held(), ['10000 /a', '10002 /b'], 'dropped ports are released');
  t.is((await api('DELETE', '/v2/apps/a?force=true')).statusCode, 200);
  t.deepEqual(await held(), ['10002 /b'], 'deleting releases');
  await api('POST', '/v2/apps', def('/c', { portDefinitions: [{ port: 0 }, { port: 0 }] }));
  t.deepEqual(await ports('/c'), [10000, 10001], 'released ports are given again');
});

test('concurrent POSTs through two API instances on one store never share a port', async (t) => {
  const { h, api, token } = await master(t);
  const other = await buildApi({
    config: loadConfig({ env: {} }),
    store: h.store,
    records: h.master.records,
    tokens: h.master.tokens,
    iam: h.master.iam,
    metrics: { registry: new Registry() },
    role: () => 'leader',
    leader: async () => ({ id: 'x', apiUrl: 'http://x', fencingToken: 1, electedAt: new Date().toISOString() }),
  });
  t.teardown(() => other.close());
  const viaOther = (url: string, body: object) => other.inject({ method: 'POST', url, headers: { authorization: `token=${token}` }, payload: body });
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? api('POST', '/v2/apps', def(`/c${i}`, { portDefinitions: [{ port: 0 }, { port: 0 }] })) : viaOther('/v2/apps', def(`/c${i}`, { portDefinitions: [{ port: 0 }, { port: 0 }] })))));
  t.deepEqual(results.map((r) => r.statusCode), Array(16).fill(201), results.map((r) => r.body).join('\n'));
  const apps = (await api('GET', '/v2/apps')).json().apps as App[];
  const all = apps.flatMap((a) => a.portDefinitions.map((p) => p.port));
  t.is(all.length, 32);
  t.is(new Set(all).size, 32, 'every port once');
  t.true(all.every((p) => p >= 10000 && p <= 20000));
  t.is((await h.master.records.list('servicePort')).records.length, 32, 'one record per held port');
  t.regex((await api('GET', '/metrics')).body, /strata_marathon_service_ports_claimed_total 16/, 'this instance claimed its 8 apps\' ports');
});

test('tasks carry their app\'s service ports', async (t) => {
  const { h, api } = await startControlledCluster(t);
  t.is((await api('POST', '/v2/apps', { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 16, instances: 2, portDefinitions: [{ port: 0 }, { port: 11000 }] })).statusCode, 201);
  let tasks: Task[] = [];
  await eventually(async () => (tasks = (await h.master.records.list('task')).records.map((r) => r.value)).filter((x) => x.state === 'RUNNING').length === 2, '2 running');
  for (const task of tasks) t.deepEqual(task.servicePorts, [10000, 11000]);
  const listed = (await api('GET', '/v2/apps/web/tasks')).json().tasks as { servicePorts: number[] }[];
  t.deepEqual(listed.map((x) => x.servicePorts), [[10000, 11000], [10000, 11000]]);
});

test('assignServicePorts: pure rules (exhausted range, reuse only of own ports)', (t) => {
  const app = (ports: number[]) => {
    const { version: _v, ...rest } = withAppDefaults({ id: '/x', cmd: 'x', portDefinitions: ports.map((port) => ({ port })) } as never, { version: '2020-01-01T00:00:00.000Z' });
    return rest;
  };
  const held = new Map([[10, '/y'], [11, '/x'], [12, '/x']]);
  const r = assignServicePorts(app([0, 0]), app([11, 10]), held, { min: 10, max: 14 });
  t.deepEqual(r.app.portDefinitions.map((p) => p.port), [11, 13], 'its own 11 kept; 10 (now /y\'s) not reused');
  t.deepEqual(r.claim, [13]);
  t.deepEqual(r.release, [12]);
  t.throws(() => assignServicePorts(app([0, 0, 0]), undefined, held, { min: 10, max: 12 }), { message: /no free service port/ });
});

/**
 * The Marathon API through `app.inject`: Marathon app JSON accepted
 * unchanged, status codes and shapes, locks and force, concurrent writers,
 * versions, rollback, and permissions per app path.
 */
import test from 'ava';
import type { LightMyRequestResponse } from 'fastify';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Deployment } from '../../model/schemas.ts';
import { parseAppPath } from './marathon-apps.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Api {
  readonly h: TestMaster;
  call(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown, token?: string): Promise<LightMyRequestResponse>;
}

async function api(t: { teardown(fn: () => Promise<void>): void }): Promise<Api> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const superuser = await h.superuserToken();
  return {
    h,
    call: (method, url, body, token = superuser) =>
      h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, ...(body === undefined ? {} : { payload: body as object }) }),
  };
}

/** App definitions as Marathon's documentation writes them (docs/docs/*.md), sent unchanged. */
const MARATHON_EXAMPLES: Record<string, Json> = {
  basic: { id: 'basic-0', cmd: 'while [ true ] ; do echo "Hello Marathon" ; sleep 5 ; done', cpus: 0.1, mem: 10.0, instances: 1 },
  labels: { id: 'my-app', cmd: 'sleep 1000', cpus: 0.1, mem: 16, instances: 2, labels: { environment: 'staging', owner: 'zeus' } },
  bridge: {
    id: 'bridged-webapp',
    cmd: 'python3 -m http.server 8080',
    cpus: 0.5,
    mem: 64.0,
    instances: 2,
    networks: [{ mode: 'container/bridge' }],
    container: { type: 'DOCKER', docker: { image: 'python:3' }, portMappings: [{ containerPort: 8080, hostPort: 0, servicePort: 9000, protocol: 'tcp' }, { containerPort: 161, hostPort: 0, protocol: 'udp' }] },
    healthChecks: [{ protocol: 'HTTP', portIndex: 0, path: '/', gracePeriodSeconds: 5, intervalSeconds: 20, maxConsecutiveFailures: 3 }],
  },
  vip: { id: '/acme/web', cmd: './run', portDefinitions: [{ port: 0, protocol: 'tcp', name: 'http', labels: { VIP_0: '/acme:10000' } }] },
  constraints: { id: '/sleep-unique', cmd: 'sleep 60', instances: 3, constraints: [['hostname', 'UNIQUE'], ['rack_id', 'GROUP_BY', '3'], ['rack_id', 'MAX_PER', '2']] },
  secrets: { id: '/with-secret', cmd: 'env', env: { DATABASE_PW: { secret: 'secret0' }, PLAIN: 'value' }, secrets: { secret0: { source: '/mysql/password' } } },
  tuned: {
    id: '/tuned',
    cmd: 'x',
    upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.2 },
    killSelection: 'OLDEST_FIRST',
    unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 },
    taskKillGracePeriodSeconds: 30,
    dependencies: ['/product/db'],
    acceptedResourceRoles: ['*', 'slave_public'],
    fetch: [{ uri: 'https://example.com/app/cool-script.sh', executable: true }],
  },
};

const deploymentsOf = async (a: Api): Promise<Deployment[]> => (await a.call('GET', '/v2/deployments')).json();

test('parseAppPath tells apps, versions and one version apart', (t) => {
  t.deepEqual(parseAppPath('group/web'), { appId: '/group/web' });
  t.deepEqual(parseAppPath('group/web/versions'), { appId: '/group/web', sub: 'versions' });
  t.deepEqual(parseAppPath('group/web/tasks'), { appId: '/group/web', sub: 'tasks' });
  t.deepEqual(parseAppPath('web/versions/2015-09-25T15:13:48.343Z'), { appId: '/web', sub: 'versions', version: '2015-09-25T15:13:48.343Z' });
  t.deepEqual(parseAppPath('a/versions/b'), { appId: '/a/versions/b' }, 'an element that could be an app id is one');
  t.deepEqual(parseAppPath('group/web/restart'), { appId: '/group/web', sub: 'restart' });
  t.deepEqual(parseAppPath('group/web/tasks/group_web.instance-1._app.1'), { appId: '/group/web', sub: 'tasks', taskId: 'group_web.instance-1._app.1' });
  t.deepEqual(parseAppPath('a/tasks/b'), { appId: '/a/tasks/b' });
});

test('Marathon example apps are accepted unchanged: 201, Location, deployment id, defaults applied', async (t) => {
  const a = await api(t);
  for (const [name, def] of Object.entries(MARATHON_EXAMPLES)) {
    const res = await a.call('POST', '/v2/apps', def);
    t.is(res.statusCode, 201, `${name}: ${res.body}`);
    const id = def.id.startsWith('/') ? def.id : `/${def.id}`;
    t.is(res.headers.location, `/v2/apps${id}`, name);
    const body = res.json();
    t.is(body.id, id);
    t.deepEqual(body.deployments, [{ id: res.headers['marathon-deployment-id'] }], name);
    t.is(body.tasksRunning, 0);
    t.regex(body.version, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  const basic = (await a.call('GET', '/v2/apps/basic-0')).json().app;
  // port 0 asked for a service port: the first app gets 10000 (Marathon's local_port_min).
  t.like(basic, { id: '/basic-0', instances: 1, cpus: 0.1, mem: 10, disk: 0, backoffFactor: 1.15, portDefinitions: [{ port: 10000, protocol: 'tcp', name: 'default', labels: {} }], tasks: [] });
  const list = (await a.call('GET', '/v2/apps?embed=apps.tasks&embed=apps.counts')).json().apps as Json[];
  t.deepEqual(list.map((x) => x.id).sort(), ['/acme/web', '/basic-0', '/bridged-webapp', '/my-app', '/sleep-unique', '/tuned', '/with-secret']);
  t.true(list.every((x) => Array.isArray(x.tasks) && x.deployments.length === 1));
  t.deepEqual((await a.call('GET', '/v2/apps?id=web')).json().apps.map((x: Json) => x.id).sort(), ['/acme/web', '/bridged-webapp']);
  t.deepEqual((await a.call('GET', '/v2/apps?label=owner==zeus')).json().apps.map((x: Json) => x.id), ['/my-app']);
  t.is((await a.call('GET', '/v2/apps')).json().apps[0].tasks, undefined, 'tasks only when embedded');

  const again = await a.call('POST', '/v2/apps', MARATHON_EXAMPLES.basic);
  t.is(again.statusCode, 409);
  t.is(again.json().code, 'APP_EXISTS');
  t.is((await a.call('GET', '/v2/apps/nothing/here')).statusCode, 404);
});

test('invalid app JSON answers Marathon\'s 422 listing every problem, schema and cross-field rules alike', async (t) => {
  const a = await api(t);
  const bad = await a.call('POST', '/v2/apps', { id: '/a', cmd: 'x', cpus: -1, mem: 'lots', surprise: true });
  t.is(bad.statusCode, 422);
  t.is(bad.json().code, 'API_BAD_REQUEST');
  t.is(bad.json().message, 'Object is not valid');
  t.deepEqual(bad.json().details.map((d: Json) => d.path).sort(), ['/cpus', '/mem', '/surprise']);
  t.true(bad.json().details.every((d: Json) => Array.isArray(d.errors) && d.errors.length > 0));
  const both = await a.call('POST', '/v2/apps', { id: '/a', cmd: 'x', args: ['y'], mem: -5 });
  t.is(both.statusCode, 422);
  t.deepEqual(both.json().details.map((d: Json) => d.path).sort(), ['/args', '/mem'], 'a schema error and a cross-field rule in one answer');
  const put = await a.call('PUT', '/v2/apps/a', { instances: 'many' });
  t.is(put.statusCode, 422);
  t.deepEqual(put.json().details.map((d: Json) => d.path), ['/instances']);
  const badQuery = await a.call('POST', '/v2/apps?force=maybe', { id: '/a', cmd: 'x' });
  t.is(badQuery.statusCode, 400, 'a bad query string is no invalid app');
  const rules = await a.call('POST', '/v2/apps', { id: '/a', cmd: 'x', args: ['y'], healthChecks: [{ protocol: 'COMMAND' }] });
  t.is(rules.statusCode, 422);
  t.is(rules.json().code, 'RECORD_INVALID');
  t.is(rules.json().message, 'Object is not valid');
  t.deepEqual(rules.json().details.sort((x: Json, y: Json) => (x.path < y.path ? -1 : 1)), [
    { path: '/args', errors: ['must not be set together with cmd'] },
    { path: '/healthChecks/0/command', errors: ['is required for a COMMAND check'] },
  ], 'Marathon\'s {path, errors} shape');
  const reserved = await a.call('POST', '/v2/apps', { id: '/a/versions', cmd: 'x' });
  t.is(reserved.statusCode, 400);
  t.is(reserved.json().code, 'RECORD_ID_INVALID');
  for (const url of ['/v2/apps/Bad_Id', '/v2/apps/a/.hidden', '/v2/apps/']) {
    const res = await a.call('PUT', url, { cmd: 'x' });
    t.is(res.statusCode, 400, url);
    t.is(res.json().code, 'RECORD_ID_INVALID', url);
  }
  const mismatch = await a.call('PUT', '/v2/apps/a', { id: '/b', cmd: 'x' });
  t.is(mismatch.statusCode, 422);
  t.deepEqual(mismatch.json().details, [{ path: '/id', errors: ['must match the app id in the path'] }]);
  t.is((await a.call('GET', '/v2/apps')).json().apps.length, 0, 'nothing was written');
});

test('a running deployment locks its app: 409 with the deployment ids, unless ?force=true', async (t) => {
  const a = await api(t);
  const created = await a.call('POST', '/v2/apps', { id: '/web', cmd: 'sleep 100', instances: 2 });
  const first = created.headers['marathon-deployment-id'] as string;
  const [listed] = await deploymentsOf(a);
  t.like(listed, { id: first, affectedApps: ['/web'], currentStep: 0, totalSteps: 2, state: 'pending', currentActions: [] });
  t.deepEqual(listed!.steps, [{ actions: [{ action: 'StartApplication', app: '/web' }] }, { actions: [{ action: 'ScaleApplication', app: '/web' }] }]);

  const locked = await a.call('PUT', '/v2/apps/web', { instances: 3 });
  t.is(locked.statusCode, 409);
  t.is(locked.json().code, 'APP_LOCKED');
  t.regex(locked.json().message, /App is locked by one or more deployments\. Override with the option '\?force=true'/);
  t.deepEqual(locked.json().deployments, [{ id: first }]);
  t.is((await a.call('DELETE', '/v2/apps/web')).statusCode, 409);

  const forced = await a.call('PUT', '/v2/apps/web?force=true', { instances: 3 });
  t.is(forced.statusCode, 200, forced.body);
  const { deploymentId, version } = forced.json();
  t.is(forced.headers['marathon-deployment-id'], deploymentId);
  const after = await deploymentsOf(a);
  t.deepEqual(after.map((d) => d.id), [deploymentId], 'the overridden deployment is gone');
  t.deepEqual(after[0]!.steps, [{ actions: [{ action: 'ScaleApplication', app: '/web' }] }]);
  t.deepEqual(after[0]!.previous, [{ app: '/web', version: created.json().version }]);
  const web = (await a.call('GET', '/v2/apps/web')).json().app;
  t.like(web, { instances: 3, cmd: 'sleep 100', version, deployments: [{ id: deploymentId }] });
});

test('PUT merges by default (partialUpdate), replaces with partialUpdate=false, creates with 201; PATCH merges', async (t) => {
  const a = await api(t);
  const created = await a.call('PUT', '/v2/apps/dev/api', { cmd: 'serve', mem: 256, labels: { team: 'a' } });
  t.is(created.statusCode, 201, created.body);
  t.is(created.headers.location, '/v2/apps/dev/api');
  t.truthy(created.json().deploymentId);
  t.is((await a.call('PATCH', '/v2/apps/dev/api?force=true', { cpus: 0.25 })).statusCode, 200);
  t.like((await a.call('GET', '/v2/apps/dev/api')).json().app, { cmd: 'serve', mem: 256, cpus: 0.25, labels: { team: 'a' } });
  t.is((await a.call('PUT', '/v2/apps/dev/api?force=true&partialUpdate=false', { cmd: 'serve2' })).statusCode, 200);
  t.like((await a.call('GET', '/v2/apps/dev/api')).json().app, { cmd: 'serve2', mem: 128, cpus: 1, labels: {} });
});

test('concurrent writers lose no update: forced PATCHes of different fields all land; unforced PUTs: one wins, the rest get 409', async (t) => {
  const a = await api(t);
  const created = await a.call('POST', '/v2/apps', { id: '/c', cmd: 'sleep 1' });
  const patches: Json[] = [{ cpus: 0.5 }, { mem: 64 }, { disk: 10 }, { instances: 4 }, { env: { A: '1' } }, { labels: { l: 'v' } }, { backoffSeconds: 2 }, { maxLaunchDelaySeconds: 60 }];
  const results = await Promise.all(patches.map((p) => a.call('PATCH', '/v2/apps/c?force=true', p)));
  t.deepEqual(results.map((r) => r.statusCode), patches.map(() => 200), results.map((r) => r.body).join('\n'));
  t.like((await a.call('GET', '/v2/apps/c')).json().app, { cpus: 0.5, mem: 64, disk: 10, instances: 4, env: { A: '1' }, labels: { l: 'v' }, backoffSeconds: 2, maxLaunchDelaySeconds: 60 });
  const versions = (await a.call('GET', '/v2/apps/c/versions')).json().versions as string[];
  t.is(versions.length, 1 + patches.length, 'one stored version per write');
  t.is(new Set(versions).size, versions.length);
  t.is(versions.at(-1), created.json().version, 'newest first');
  const deployments = await deploymentsOf(a);
  t.is(deployments.length, 1, 'each forced write overrode the one before');

  t.is((await a.call('DELETE', `/v2/deployments/${deployments[0]!.id}?force=true`)).statusCode, 202);
  const puts = await Promise.all([1, 2, 3, 4, 5].map((n) => a.call('PUT', '/v2/apps/c', { instances: n })));
  const codes = puts.map((r) => r.statusCode).sort();
  t.deepEqual(codes, [200, 409, 409, 409, 409], puts.map((r) => r.body).join('\n'));
  const winner = puts.find((r) => r.statusCode === 200)!;
  for (const loser of puts.filter((r) => r.statusCode === 409)) t.deepEqual(loser.json().deployments, [{ id: winner.json().deploymentId }]);
});

test('two masters on one store: check-and-set keeps every update and lets one unforced writer win', async (t) => {
  const a = await api(t);
  const { buildApi } = await import('../app.ts');
  const { loadConfig } = await import('../../config/load.ts');
  const { Registry } = await import('prom-client');
  const m = a.h.master;
  const second = await buildApi({
    config: loadConfig({ env: {} }),
    store: a.h.store,
    records: m.records,
    tokens: m.tokens,
    iam: m.iam,
    metrics: { registry: new Registry() },
    role: () => 'standby',
    leader: async () => ({ id: 'x', apiUrl: 'http://127.0.0.1:1', electedAt: new Date().toISOString() }),
  });
  t.teardown(() => second.close());
  const token = await a.h.superuserToken();
  const other = (method: 'PATCH' | 'PUT', url: string, body: unknown) => second.inject({ method, url, headers: { authorization: `token=${token}` }, payload: body as object });
  await a.call('POST', '/v2/apps', { id: '/two', cmd: 'x' });
  const patches: Json[] = [{ cpus: 0.5 }, { mem: 64 }, { disk: 10 }, { instances: 4 }, { env: { A: '1' } }, { labels: { l: 'v' } }];
  const results = await Promise.all(patches.map((p, i) => (i % 2 ? other('PATCH', '/v2/apps/two?force=true', p) : a.call('PATCH', '/v2/apps/two?force=true', p))));
  t.deepEqual(results.map((r) => r.statusCode), patches.map(() => 200), results.map((r) => r.body).join('\n'));
  t.like((await a.call('GET', '/v2/apps/two')).json().app, { cpus: 0.5, mem: 64, disk: 10, instances: 4, env: { A: '1' }, labels: { l: 'v' } });
  t.is((await deploymentsOf(a)).length, 1);
  for (const d of await deploymentsOf(a)) await a.call('DELETE', `/v2/deployments/${d.id}?force=true`);
  const puts = await Promise.all([1, 2, 3, 4].map((n) => (n % 2 ? other('PUT', '/v2/apps/two', { instances: n }) : a.call('PUT', '/v2/apps/two', { instances: n }))));
  t.deepEqual(puts.map((r) => r.statusCode).sort(), [200, 409, 409, 409], puts.map((r) => r.body).join('\n'));
});

test('versions: listed newest first, each readable, and PUT {version} goes back to one', async (t) => {
  const a = await api(t);
  const v1 = (await a.call('POST', '/v2/apps', { id: '/v', cmd: 'one' })).json().version as string;
  const v2 = (await a.call('PUT', '/v2/apps/v?force=true', { cmd: 'two' })).json().version as string;
  t.deepEqual((await a.call('GET', '/v2/apps/v/versions')).json(), { versions: [v2, v1] });
  const old = await a.call('GET', `/v2/apps/v/versions/${v1}`);
  t.is(old.statusCode, 200);
  t.like(old.json(), { id: '/v', cmd: 'one', version: v1 });
  t.is((await a.call('GET', `/v2/apps/v/versions/${encodeURIComponent(v1)}`)).json().cmd, 'one', 'an encoded version works too');
  t.is((await a.call('GET', '/v2/apps/v/versions/2000-01-01T00:00:00.000Z')).statusCode, 404);
  const back = await a.call('PUT', '/v2/apps/v?force=true', { version: v1 });
  t.is(back.statusCode, 200, back.body);
  const now = (await a.call('GET', '/v2/apps/v')).json().app;
  t.like(now, { cmd: 'one', version: back.json().version });
  t.not(back.json().version, v1, 'going back is a new version');
  t.is((await a.call('PUT', '/v2/apps/v?force=true', { version: v1, cmd: 'x' })).statusCode, 422);
  t.is((await a.call('GET', '/v2/apps/none/versions')).statusCode, 404);
});

test('DELETE /v2/deployments/<id> rolls back (200, a new deployment); ?force=true only removes it (202)', async (t) => {
  const a = await api(t);
  await a.call('POST', '/v2/apps', { id: '/db', cmd: 'db' });
  await a.call('POST', '/v2/apps', { id: '/web', cmd: 'web-1', dependencies: ['/db'] });
  for (const d of await deploymentsOf(a)) await a.call('DELETE', `/v2/deployments/${d.id}?force=true`);
  t.deepEqual(await deploymentsOf(a), []);

  const change = (await a.call('PUT', '/v2/apps/web', { cmd: 'web-2', instances: 2 })).json();
  const rollback = await a.call('DELETE', `/v2/deployments/${change.deploymentId}`);
  t.is(rollback.statusCode, 200, rollback.body);
  t.like((await a.call('GET', '/v2/apps/web')).json().app, { cmd: 'web-1', instances: 1, version: rollback.json().version });
  const [revert] = await deploymentsOf(a);
  t.is(revert!.id, rollback.json().deploymentId);
  t.deepEqual(revert!.steps, [{ actions: [{ action: 'RestartApplication', app: '/web' }] }]);

  // Rolling back a deployment that created an app removes the app.
  const created = await a.call('POST', '/v2/apps?force=true', { id: '/new', cmd: 'x' });
  const undo = await a.call('DELETE', `/v2/deployments/${created.headers['marathon-deployment-id']}`);
  t.is(undo.statusCode, 200, undo.body);
  t.is((await a.call('GET', '/v2/apps/new')).statusCode, 404);
  t.true((await deploymentsOf(a)).some((d) => d.steps.some((s) => s.actions.some((x) => x.action === 'StopApplication' && x.app === '/new'))));

  // Force: only removed, the apps stay as they are.
  const cancel = await a.call('DELETE', `/v2/deployments/${rollback.json().deploymentId}?force=true`);
  t.is(cancel.statusCode, 202);
  t.is((await a.call('GET', '/v2/apps/web')).json().app.cmd, 'web-1');
  t.is((await a.call('DELETE', '/v2/deployments/nope')).statusCode, 404);
});

test('DELETE /v2/apps/<id> stores a stop deployment and removes the app', async (t) => {
  const a = await api(t);
  await a.call('POST', '/v2/apps', { id: '/gone', cmd: 'x' });
  const res = await a.call('DELETE', '/v2/apps/gone?force=true');
  t.is(res.statusCode, 200, res.body);
  t.is((await a.call('GET', '/v2/apps/gone')).statusCode, 404);
  const [d] = await deploymentsOf(a);
  t.deepEqual(d!.steps, [{ actions: [{ action: 'StopApplication', app: '/gone' }] }]);
  t.is((await a.call('DELETE', '/v2/apps/gone')).statusCode, 404);
});

test('a dependency cycle is refused with 422 naming the apps', async (t) => {
  const a = await api(t);
  t.is((await a.call('POST', '/v2/apps', { id: '/a', cmd: 'x', dependencies: ['/b'] })).statusCode, 201);
  const res = await a.call('POST', '/v2/apps', { id: '/b', cmd: 'x', dependencies: ['/a'] });
  t.is(res.statusCode, 422);
  t.is(res.json().code, 'DEPLOYMENT_DEPENDENCY_CYCLE');
  t.regex(res.json().message, /\/a -> \/b -> \/a/);
  t.is((await a.call('GET', '/v2/apps/b')).statusCode, 404);
});

test('permissions follow the app path', async (t) => {
  const a = await api(t);
  for (const id of ['/dev/web', '/prod/db']) await a.call('POST', '/v2/apps', { id, cmd: 'x' });
  const gate = { rid: 'dcos:adminrouter:service:marathon', actions: ['full' as const] };
  const dev = await a.h.tokenFor('dev', [gate, { rid: 'dcos:service:marathon:marathon:services:/dev/web', actions: ['read'] }, { rid: 'dcos:service:marathon:marathon:services:/dev/new', actions: ['create'] }]);
  t.deepEqual((await a.call('GET', '/v2/apps', undefined, dev)).json().apps.map((x: Json) => x.id), ['/dev/web'], 'the list shows what the caller may read');
  t.deepEqual((await a.call('GET', '/v2/deployments', undefined, dev)).json().map((d: Json) => d.affectedApps), [['/dev/web']]);
  t.is((await a.call('GET', '/v2/apps/dev/web', undefined, dev)).statusCode, 200);
  t.is((await a.call('GET', '/v2/apps/prod/db', undefined, dev)).statusCode, 403);
  t.is((await a.call('GET', '/v2/apps/dev/web/versions', undefined, dev)).statusCode, 200);
  t.is((await a.call('PUT', '/v2/apps/dev/web?force=true', { cmd: 'y' }, dev)).statusCode, 403, 'read is not update');
  t.is((await a.call('POST', '/v2/apps', { id: '/dev/new', cmd: 'x' }, dev)).statusCode, 201, 'create on the app in the body');
  const other = await a.call('POST', '/v2/apps', { id: '/prod/other', cmd: 'x' }, dev);
  t.is(other.statusCode, 403);
  t.is(other.json().code, 'API_FORBIDDEN');
  const [web] = (await deploymentsOf(a)).filter((d) => d.affectedApps.includes('/dev/web'));
  t.is((await a.call('DELETE', `/v2/deployments/${web!.id}`, undefined, dev)).statusCode, 403, 'rollback needs update on the apps');

  const updater = await a.h.tokenFor('updater', [{ rid: 'dcos:service:marathon:marathon:services:/fresh', actions: ['update'] }]);
  t.is((await a.call('PUT', '/v2/apps/fresh', { cmd: 'x' }, updater)).statusCode, 403, 'creating through PUT needs create');
  const noGate = await a.h.tokenFor('nogate', [{ rid: 'dcos:service:marathon:marathon:services:/x', actions: ['full'] }]);
  t.is((await a.call('POST', '/v2/apps', { id: '/x', cmd: 'x' }, noGate)).statusCode, 403, 'POST needs the Marathon gate');
  t.is((await a.call('PUT', '/v2/apps/x', { cmd: 'x' }, noGate)).statusCode, 201);
});

test('/v2/info and /ping', async (t) => {
  const a = await api(t);
  await a.h.master.whenLeader();
  const info = await a.call('GET', '/v2/info');
  t.is(info.statusCode, 200);
  t.like(info.json(), { name: 'marathon', version: '1.11.0', elected: true, leader: new URL(a.h.master.apiUrl).host });
  const ping = await a.call('GET', '/ping');
  t.is(ping.body, 'pong');
  t.regex(String(ping.headers['content-type']), /^text\/plain/);
});

/**
 * `/v2/groups` through `app.inject`: Marathon's group JSON and embeds,
 * create/update/scale/rollback/delete as deployments in dependency order,
 * locks and force, cycles, bad bodies and permissions.
 */
import test from 'ava';
import type { LightMyRequestResponse } from 'fastify';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Deployment } from '../../model/schemas.ts';
import { flattenGroup, groupUpdateChanges, parseGroupPath, scaleChanges } from './marathon-groups.ts';
import { mkApp } from '../../../scheduler/controller/testing.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Api {
  readonly h: TestMaster;
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, token?: string): Promise<LightMyRequestResponse>;
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

/** Marathon's documented group example (docs/docs/application-groups.md): a database group the service group depends on. */
const PRODUCT = {
  id: '/product',
  groups: [
    { id: '/product/database', apps: [{ id: '/product/database/mongo', cmd: 'mongod', cpus: 0.1, mem: 32 }, { id: '/product/database/mysql', cmd: 'mysqld', cpus: 0.1, mem: 32 }] },
    { id: '/product/service', dependencies: ['/product/database'], apps: [{ id: 'rails-app', cmd: 'rails s', cpus: 0.1, mem: 32, instances: 2 }, { id: '/product/service/play-app', cmd: 'play', cpus: 0.1, mem: 32 }] },
  ],
};

const deploymentsOf = async (a: Api): Promise<Deployment[]> => (await a.call('GET', '/v2/deployments')).json();

test('POST /v2/groups creates nested groups as one deployment whose steps follow the dependencies', async (t) => {
  const a = await api(t);
  const res = await a.call('POST', '/v2/groups', PRODUCT);
  t.is(res.statusCode, 201, res.body);
  t.is(res.headers['location'], '/v2/groups/product');
  const { deploymentId, version } = res.json() as Json;
  t.is(res.headers['marathon-deployment-id'], deploymentId);
  const [d] = await deploymentsOf(a);
  t.is(d!.id, deploymentId);
  t.is(d!.version, version);
  t.is(d!.groupId, '/product', 'group events (group_change_success) name it');
  t.deepEqual(d!.steps.map((s) => s.actions.map((x) => `${x.action} ${x.app}`)), [
    ['StartApplication /product/database/mongo', 'StartApplication /product/database/mysql', 'StartApplication /product/service/play-app', 'StartApplication /product/service/rails-app'],
    ['ScaleApplication /product/database/mongo', 'ScaleApplication /product/database/mysql'],
    ['ScaleApplication /product/service/play-app', 'ScaleApplication /product/service/rails-app'],
  ]);
  // The group's dependencies are on every app under it; relative app ids are resolved against the group.
  const rails = (await a.call('GET', '/v2/apps/product/service/rails-app')).json().app as Json;
  t.deepEqual(rails['dependencies'], ['/product/database']);
  t.is(rails['instances'], 2);

  const again = await a.call('POST', '/v2/groups?force=true', { id: 'product', apps: [{ id: 'x', cmd: 'x' }] });
  t.is(again.statusCode, 409);
  t.is(again.json().code, 'GROUP_EXISTS');
  t.regex(again.json().message, /Group \/product is already created\. Use PUT/);
});

test('GET /v2/groups shows the tree in Marathon\'s shape, with embeds', async (t) => {
  const a = await api(t);
  t.is((await a.call('POST', '/v2/groups', PRODUCT)).statusCode, 201);
  t.is((await a.call('POST', '/v2/apps', { id: '/frontend', cmd: 'x', cpus: 0.1, mem: 16 })).statusCode, 201);
  const root = (await a.call('GET', '/v2/groups')).json() as Json;
  t.is(root['id'], '/');
  t.deepEqual(root['apps'].map((x: Json) => x['id']), ['/frontend']);
  t.deepEqual(root['groups'].map((g: Json) => g['id']), ['/product']);
  t.deepEqual(root['pods'], []);
  const product = root['groups'][0] as Json;
  t.deepEqual(product['groups'].map((g: Json) => [g['id'], g['dependencies'], g['apps'].map((x: Json) => x['id'])]), [
    ['/product/database', [], ['/product/database/mongo', '/product/database/mysql']],
    ['/product/service', ['/product/database'], ['/product/service/play-app', '/product/service/rails-app']],
  ]);
  t.false('tasksRunning' in product['groups'][0]['apps'][0], 'counts only with group.apps.counts');

  const service = (await a.call('GET', '/v2/groups/product/service?embed=group.apps.counts&embed=group.apps.deployments')).json() as Json;
  t.is(service['id'], '/product/service');
  t.false('groups' in service, 'group.groups not asked for');
  t.is(service['apps'][0]['tasksRunning'], 0);
  t.is(service['apps'][0]['deployments'].length, 1);
  t.is(typeof service['version'], 'string');

  const versions = (await a.call('GET', '/v2/groups/product/versions')).json() as string[];
  t.is(versions.length, 1);
  t.is((await a.call('GET', '/v2/groups/nothing')).statusCode, 404);
  t.is((await a.call('GET', '/v2/groups/Bad_Id')).statusCode, 400);
});

test('PUT /v2/groups: replace a level\'s apps, scaleBy, roll back to a version, 409 while locked unless forced; DELETE removes the group', async (t) => {
  const a = await api(t);
  const created = (await a.call('POST', '/v2/groups', { id: '/shop', apps: [{ id: 'web', cmd: 'web-1', cpus: 0.1, mem: 16, instances: 2 }, { id: 'db', cmd: 'db', cpus: 0.1, mem: 16 }] })).json() as Json;
  const v1 = created['version'] as string;

  const dry = await a.call('PUT', '/v2/groups/shop?dryRun=true', { scaleBy: 2 });
  t.is(dry.statusCode, 200, dry.body);
  t.deepEqual(dry.json(), { steps: [{ actions: [{ action: 'ScaleApplication', app: '/shop/db' }, { action: 'ScaleApplication', app: '/shop/web' }] }] }, 'dryRun: the steps, nothing written (and no lock check)');
  t.is((await a.call('GET', '/v2/apps/shop/web')).json().app.instances, 2);

  const locked = await a.call('PUT', '/v2/groups/shop', { scaleBy: 2 });
  t.is(locked.statusCode, 409, 'the create deployment still locks the apps');
  t.is(locked.json().code, 'APP_LOCKED');
  t.deepEqual(locked.json().deployments, [{ id: created['deploymentId'] }]);

  const scaled = await a.call('PUT', '/v2/groups/shop?force=true', { scaleBy: 1.5 });
  t.is(scaled.statusCode, 200, scaled.body);
  const apps = (await a.call('GET', '/v2/groups/shop')).json().apps as Json[];
  t.deepEqual(apps.map((x) => [x['id'], x['instances']]), [['/shop/db', 2], ['/shop/web', 3]], 'ceil(instances × 1.5)');

  // The apps list replaces the group's apps: /shop/db goes, /shop/web changes, /shop/cache is new.
  const replaced = await a.call('PUT', '/v2/groups/shop?force=true', { apps: [{ id: 'web', cmd: 'web-2', cpus: 0.1, mem: 16 }, { id: 'cache', cmd: 'c', cpus: 0.1, mem: 16 }] });
  t.is(replaced.statusCode, 200, replaced.body);
  const d = (await deploymentsOf(a)).find((x) => x.id === replaced.json().deploymentId)!;
  t.deepEqual(d.steps.map((s) => s.actions.map((x) => `${x.action} ${x.app}`)), [
    ['StopApplication /shop/db'],
    ['StartApplication /shop/cache'],
    ['ScaleApplication /shop/cache', 'RestartApplication /shop/web'],
  ]);

  const rolled = await a.call('PUT', '/v2/groups/shop?force=true', { version: v1 });
  t.is(rolled.statusCode, 200, rolled.body);
  const after = (await a.call('GET', '/v2/groups/shop')).json().apps as Json[];
  t.deepEqual(after.map((x) => [x['id'], x['cmd'], x['instances']]), [['/shop/web', 'web-1', 2]], 'web back at v1; cache did not exist then; db was deleted since (not restored)');
  t.is((await a.call('PUT', '/v2/groups/shop?force=true', { version: '2001-01-01T00:00:00.000Z' })).statusCode, 404);

  // Marathon's PUT /v2/groups with the group named in the body (curl scripts upload a whole group this way).
  const viaRoot = await a.call('PUT', '/v2/groups?force=true', { id: '/shop', apps: [{ id: 'web', cmd: 'web-3', cpus: 0.1, mem: 16 }] });
  t.is(viaRoot.statusCode, 200, viaRoot.body);
  t.is((await a.call('GET', '/v2/apps/shop/web')).json().app.cmd, 'web-3');
  const outside = await a.call('PUT', '/v2/groups/shop?force=true', { id: '/elsewhere', apps: [] });
  t.is(outside.statusCode, 422);
  t.regex(outside.body, /must name \/shop or a group under it/);

  const removed = await a.call('DELETE', '/v2/groups/shop?force=true');
  t.is(removed.statusCode, 200, removed.body);
  t.is((await a.call('GET', '/v2/groups/shop')).statusCode, 404);
  t.is((await a.call('DELETE', '/v2/groups/shop')).statusCode, 404);
});

test('group dependencies may be relative, apps may depend on groups, and a cycle is refused', async (t) => {
  const a = await api(t);
  const res = await a.call('POST', '/v2/groups', {
    id: 'p',
    groups: [
      { id: 'db', apps: [{ id: 'pg', cmd: 'x', cpus: 0.1, mem: 16 }] },
      { id: 'api', apps: [{ id: 'srv', cmd: 'x', cpus: 0.1, mem: 16, dependencies: ['../db'] }] },
    ],
  });
  t.is(res.statusCode, 201, res.body);
  t.deepEqual((await a.call('GET', '/v2/apps/p/api/srv')).json().app.dependencies, ['/p/db']);
  const [d] = await deploymentsOf(a);
  t.deepEqual(d!.steps.slice(1).map((s) => s.actions.map((x) => x.app)), [['/p/db/pg'], ['/p/api/srv']], 'an app depending on a group waits for every app in it');

  const cycle = await a.call('PUT', '/v2/groups/p/db?force=true', { dependencies: ['/p/api'] });
  t.is(cycle.statusCode, 422, cycle.body);
  t.is(cycle.json().code, 'DEPLOYMENT_DEPENDENCY_CYCLE');
  t.regex(cycle.json().message, /\/p\/(api\/srv|db\/pg) -> .* form a cycle/);
});

test('bad group bodies answer 422 with every problem by path', async (t) => {
  const a = await api(t);
  const res = await a.call('POST', '/v2/groups', { id: '/g', apps: [{ id: '/elsewhere/x', cmd: 'x' }, { id: 'ok', cmd: 'x', cpus: -1 }], groups: [{ apps: [] }] });
  t.is(res.statusCode, 422, res.body);
  const details = res.json().details as { path: string; errors: string[] }[];
  t.true(details.some((d) => d.path === '/apps/1/cpus'), JSON.stringify(details));
  const flat = flattenGroup({ id: '/g', apps: [{ id: '/elsewhere/x', cmd: 'x' }, { id: 'a', args: ['x'], cmd: 'y' }], groups: [{ apps: [] }] }, '/g');
  t.deepEqual(flat.issues.map((i) => i.path).sort(), ['/apps/0/id', '/apps/1/args', '/groups/0/id']);
  t.true(flat.issues.some((i) => i.path === '/apps/0/id' && /not in the group \/g/.test(i.errors[0]!)));
  t.true(flat.issues.some((i) => i.path === '/groups/0/id'));
  const both = await a.call('POST', '/v2/groups', { id: '/app-and-group', apps: [{ id: '/app-and-group/a', cmd: 'x' }, { id: '/app-and-group/a/b', cmd: 'x' }] });
  t.is(both.statusCode, 422, both.body);
  t.regex(both.body, /cannot be an app and a group at once/);
  const unknownField = await a.call('POST', '/v2/groups', { id: '/g2', bogus: 1 });
  t.is(unknownField.statusCode, 422);
  const scaleNew = await a.call('POST', '/v2/groups', { id: '/g3', scaleBy: 2 });
  t.is(scaleNew.statusCode, 422);
  t.deepEqual(scaleNew.json().details, [{ path: '/scaleBy', errors: ['only with PUT'] }]);
});

test('group routes check the caller\'s permission on the group path (or above it)', async (t) => {
  const a = await api(t);
  t.is((await a.call('POST', '/v2/groups', { id: '/team-a', apps: [{ id: 'x', cmd: 'x', cpus: 0.1, mem: 16 }] })).statusCode, 201);
  t.is((await a.call('POST', '/v2/groups', { id: '/team-b', apps: [{ id: 'y', cmd: 'y', cpus: 0.1, mem: 16 }] })).statusCode, 201);
  const gate = { rid: 'dcos:adminrouter:service:marathon', actions: ['full' as const] };
  const alice = await a.h.tokenFor('alice', [gate, { rid: 'dcos:service:marathon:marathon:services:/team-a', actions: ['read', 'update'] }]);
  const root = (await a.call('GET', '/v2/groups', undefined, alice)).json() as Json;
  t.deepEqual(root['groups'].map((g: Json) => g['id']), ['/team-a'], 'only what alice may read');
  t.is((await a.call('GET', '/v2/groups/team-b', undefined, alice)).statusCode, 404);
  t.is((await a.call('PUT', '/v2/groups/team-b?force=true', { scaleBy: 2 }, alice)).statusCode, 403);
  t.is((await a.call('PUT', '/v2/groups/team-a?force=true', { scaleBy: 2 }, alice)).statusCode, 200);
  t.is((await a.call('DELETE', '/v2/groups/team-a?force=true', undefined, alice)).statusCode, 403);
  t.is((await a.call('POST', '/v2/groups', { id: '/team-c', apps: [] }, alice)).statusCode, 403);
});

test('pure: group updates keep what a body leaves out and replace what it lists', (t) => {
  const current = [mkApp('/g/a', { dependencies: ['/db'] }), mkApp('/g/sub/b', { dependencies: ['/db'] }), mkApp('/db'), mkApp('/db2')];
  // Only dependencies: the group's derived dependency /db is replaced by /db2 on every app under it.
  const deps = groupUpdateChanges(current, '/g', { dependencies: ['/db2'] });
  t.deepEqual(deps.map((c) => [c.id, c.next?.dependencies]).sort(), [['/g/a', ['/db2']], ['/g/sub/b', ['/db2']]]);
  // groups: [] removes the sub-groups, the direct app stays.
  t.deepEqual(groupUpdateChanges(current, '/g', { groups: [] }).map((c) => [c.id, c.next === undefined]), [['/g/sub/b', true]]);
  // Apps the body leaves as they are are not written (no new version, no lock taken).
  t.deepEqual(groupUpdateChanges(current, '/g', { apps: [{ id: 'a', cmd: 'sleep 1000', cpus: 0.5, mem: 64, portDefinitions: [], dependencies: ['/db'] }] }), []);
  t.deepEqual(scaleChanges(current, '/g', 1), []);
  t.deepEqual(scaleChanges(current, '/g', 2.5).map((c) => [c.id, c.next?.instances]), [['/g/a', 3], ['/g/sub/b', 3]]);
  t.deepEqual(parseGroupPath('a/b/versions'), { id: '/a/b', versions: true });
  t.deepEqual(parseGroupPath(''), { id: '/', versions: false });
});

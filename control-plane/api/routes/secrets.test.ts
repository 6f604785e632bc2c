/**
 * `/secrets/v1` through `app.inject`: DC/OS's shapes and status codes, the
 * authorisation matrix on secret paths (anonymous, no permission, exact
 * path, parent path, list-only, superuser), KEK rotation through the API
 * with reads going on, the agent's task-secrets route (only the launching
 * task's agent, only secrets in the app's space), and the metrics.
 */
import test from 'ava';
import type { LightMyRequestResponse } from 'fastify';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import type { Task } from '../../model/schemas.ts';
import { AGENT_RID } from './agents.ts';

type Method = 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';
type Call = (method: Method, url: string, token?: string, body?: object) => Promise<LightMyRequestResponse>;

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<{ h: TestMaster; call: Call; su: string }> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const su = await h.superuserToken();
  const call: Call = (method, url, token, body) =>
    h.master.app.inject({ method, url, headers: token === undefined ? {} : { authorization: `token=${token}` }, ...(body ? { payload: body } : {}) });
  return { h, call, su };
}

test('DC/OS shapes: PUT 201, GET {value}, PATCH 204, ?list=true {array}, DELETE 204; 404, 409, unknown store, bad path and body named', async (t) => {
  const { call, su } = await setup(t);
  const url = '/secrets/v1/secret/default/mysql/password';
  t.is((await call('PUT', url, su, { value: 'hunter2', description: 'db' })).statusCode, 201);
  const got = await call('GET', url, su);
  t.is(got.statusCode, 200);
  t.like(got.json(), { value: 'hunter2', description: 'db', author: 'admin' });
  t.is(got.headers['cache-control'], 'no-store');
  t.is((await call('PUT', url, su, { value: 'again' })).json().code, 'SECRET_EXISTS');
  t.is((await call('PATCH', url, su, { value: 'hunter3' })).statusCode, 204);
  t.is((await call('GET', url, su)).json().value, 'hunter3');
  await call('PUT', '/secrets/v1/secret/default/mysql/root', su, { value: 'r' });
  await call('PUT', '/secrets/v1/secret/default/other', su, { value: 'o' });
  t.deepEqual((await call('GET', '/secrets/v1/secret/default/mysql?list=true', su)).json(), { array: ['password', 'root'] });
  t.deepEqual((await call('GET', '/secrets/v1/secret/default/?list=true', su)).json(), { array: ['mysql/password', 'mysql/root', 'other'] });
  t.is((await call('DELETE', url, su)).statusCode, 204);
  const gone = await call('GET', url, su);
  t.is(gone.statusCode, 404);
  t.is(gone.json().code, 'SECRET_NOT_FOUND');
  t.is((await call('PATCH', url, su, { value: 'x' })).statusCode, 404);
  t.is((await call('DELETE', url, su)).statusCode, 404);
  const store = await call('GET', '/secrets/v1/secret/vault/x', su);
  t.is(store.statusCode, 404);
  t.is(store.json().code, 'SECRET_STORE_NOT_FOUND');
  const badPath = await call('PUT', '/secrets/v1/secret/default/a/.hidden', su, { value: 'x' });
  t.is(badPath.statusCode, 400);
  const badBody = await call('PUT', '/secrets/v1/secret/default/a', su, { value: 5, colour: 'red' });
  t.is(badBody.statusCode, 400);
  const paths = (badBody.json().details as { path: string }[]).map((d) => d.path).sort();
  t.deepEqual(paths, ['/colour', '/value']);
  t.is((await call('PUT', '/secrets/v1/secret/default/a', su, {})).statusCode, 400);
});

test('authorisation matrix on secret paths', async (t) => {
  const { h, call, su } = await setup(t);
  await call('PUT', '/secrets/v1/secret/default/dev/db/pass', su, { value: 'dev-pass' });
  await call('PUT', '/secrets/v1/secret/default/prod/db/pass', su, { value: 'prod-pass' });
  const tokens: Record<string, string | undefined> = {
    anonymous: undefined,
    nobody: await h.tokenFor('nobody', []),
    reader: await h.tokenFor('reader', [{ rid: 'dcos:secrets:default:/dev/db/pass', actions: ['read'] }]),
    devOwner: await h.tokenFor('dev-owner', [{ rid: 'dcos:secrets:default:/dev', actions: ['full'] }]),
    lister: await h.tokenFor('lister', [{ rid: 'dcos:secrets:list:default:/dev', actions: ['read'] }]),
    superuser: su,
  };
  const ops: [string, Method, string, object | undefined][] = [
    ['read dev', 'GET', '/secrets/v1/secret/default/dev/db/pass', undefined],
    ['read prod', 'GET', '/secrets/v1/secret/default/prod/db/pass', undefined],
    ['create dev', 'PUT', '/secrets/v1/secret/default/dev/new', { value: 'n' }],
    ['update dev', 'PATCH', '/secrets/v1/secret/default/dev/db/pass', { value: 'dev-pass' }],
    ['list dev', 'GET', '/secrets/v1/secret/default/dev?list=true', undefined],
    ['list all', 'GET', '/secrets/v1/secret/default/?list=true', undefined],
    ['rotate', 'GET', '/secrets/v1/rotate-key', undefined],
  ];
  const expected: Record<string, Record<string, number>> = {
    anonymous: { 'read dev': 401, 'read prod': 401, 'create dev': 401, 'update dev': 401, 'list dev': 401, 'list all': 401, rotate: 401 },
    nobody: { 'read dev': 403, 'read prod': 403, 'create dev': 403, 'update dev': 403, 'list dev': 403, 'list all': 403, rotate: 403 },
    reader: { 'read dev': 200, 'read prod': 403, 'create dev': 403, 'update dev': 403, 'list dev': 403, 'list all': 403, rotate: 403 },
    devOwner: { 'read dev': 200, 'read prod': 403, 'create dev': 201, 'update dev': 204, 'list dev': 403, 'list all': 403, rotate: 403 },
    lister: { 'read dev': 403, 'read prod': 403, 'create dev': 403, 'update dev': 403, 'list dev': 200, 'list all': 403, rotate: 403 },
    superuser: { 'read dev': 200, 'read prod': 200, 'create dev': 201, 'update dev': 204, 'list dev': 200, 'list all': 200, rotate: 200 },
  };
  for (const [who, token] of Object.entries(tokens)) {
    for (const [op, method, url, body] of ops) {
      const res = await call(method, url, token, body);
      t.is(res.statusCode, expected[who]![op]!, `${who} ${op}: ${res.body}`);
      if (res.statusCode >= 400) t.false(/dev-pass|prod-pass/.test(res.body), 'a refusal carries no value');
      if (op === 'create dev' && res.statusCode === 201) await call('DELETE', url, su);
    }
  }
  // Deleting follows the same rid: dev's owner may, the reader may not.
  t.is((await call('DELETE', '/secrets/v1/secret/default/dev/db/pass', tokens.reader)).statusCode, 403);
  t.is((await call('DELETE', '/secrets/v1/secret/default/dev/db/pass', tokens.devOwner)).statusCode, 204);
  // The IAM's decision endpoint agrees with what the route enforced.
  const decision = await call('GET', `/acs/api/v1/acls/${encodeURIComponent(encodeURIComponent('dcos:secrets:default:/dev/x'))}/users/dev-owner/read`, su);
  if (decision.statusCode === 200) t.true(decision.json().allowed);
});

test('rotate-key through the API: a new version, re-wrap in the background, reads answering throughout; progress and metrics', async (t) => {
  const { h, call, su } = await setup(t);
  const n = process.env.STRATA_SLOW === '1' ? 200 : 30;
  for (let i = 0; i < n; i++) t.is((await call('PUT', `/secrets/v1/secret/default/app/k${i}`, su, { value: `v${i}` })).statusCode, 201);
  const started = await call('POST', '/secrets/v1/rotate-key', su, {});
  t.is(started.statusCode, 202);
  t.like(started.json(), { kekVersion: 2, kekVersions: [1, 2] });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < n; i += 3) {
      const res = await call('GET', `/secrets/v1/secret/default/app/k${i}`, su);
      t.is(res.statusCode, 200);
      t.is(res.json().value, `v${i}`);
    }
  }
  await h.master.secrets.rotationSettled();
  t.like((await call('GET', '/secrets/v1/rotate-key', su)).json(), { kekVersion: 2, running: false, pending: 0, failed: 0, total: n });
  const { records } = await h.master.records.list('secret');
  t.true(records.every((r) => r.value.kekVersion === 2));
  const metrics = (await call('GET', '/metrics', su)).body;
  for (const name of ['strata_secrets_reads_total', 'strata_secrets_writes_total', 'strata_secrets_decrypt_failures_total', 'strata_secrets_rotation_pending', 'strata_secrets_rewrapped_total', 'strata_secrets_kek_version']) t.true(metrics.includes(name), name);
  t.regex(metrics, /strata_secrets_kek_version 2/);
  t.regex(metrics, new RegExp(`strata_secrets_rewrapped_total ${n}`));
  t.false(/v1\d?"/.test(metrics), 'no values in the metrics');
  // Only the superuser rotates.
  const other = await h.tokenFor('ops', [{ rid: 'dcos:secrets:default:/', actions: ['full'] }]);
  t.is((await call('POST', '/secrets/v1/rotate-key', other, {})).statusCode, 403);
});

function mkTask(id: string, agentId: string, appId: string, version: string, state: Task['state']): Task {
  return {
    id, appId, agentId, host: `${agentId}.example`, state, stagedAt: version, stateChangedAt: version,
    ports: [], servicePorts: [], ipAddresses: [], healthCheckResults: [], version,
    resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 }, role: '*',
  };
}

test('the agent route hands a launching task its app\'s secrets: its own agent only, launching only, inside the app\'s space; /v2/apps never shows a value', async (t) => {
  const { h, call, su } = await setup(t);
  await call('PUT', '/secrets/v1/secret/default/shop/db/pass', su, { value: 'db-value-123' });
  await call('PUT', '/secrets/v1/secret/default/shop/tls', su, { value: 'tls-value-456' });
  await call('PUT', '/secrets/v1/secret/default/other/pass', su, { value: 'other-value' });
  const app = {
    id: '/shop/db/api', cmd: 'sleep 100', instances: 0,
    env: { DB_PASS: { secret: 's1' } }, secrets: { s1: { source: 'shop/db/pass' }, s2: { source: '/shop/tls' } },
    container: { type: 'MESOS', volumes: [{ containerPath: 'tls/key.pem', secret: 's2' }] },
  };
  const created = await call('POST', '/v2/apps', su, app);
  t.is(created.statusCode, 201, created.body);
  const version = created.json().version as string;
  const bad = await call('POST', '/v2/apps', su, { ...app, id: '/shop/x', container: { type: 'MESOS', volumes: [{ containerPath: 'f', secret: 'nope' }] } });
  t.is(bad.statusCode, 422);
  t.true(JSON.stringify(bad.json()).includes('/container/volumes/0/secret'));

  const agent = await h.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }]);
  const reader = await h.tokenFor('agent-reader', [{ rid: AGENT_RID, actions: ['read'] }]);
  await h.master.records.put('task', mkTask('shop_db_api.1', 'a1', '/shop/db/api', version, 'STAGING'));
  const url = '/v1/agents/a1/tasks/shop_db_api.1/secrets';
  const ok = await call('GET', url, agent);
  t.is(ok.statusCode, 200, ok.body);
  t.deepEqual(ok.json(), { secrets: { s1: 'db-value-123', s2: 'tls-value-456' } });
  t.is(ok.headers['cache-control'], 'no-store');
  t.is((await call('GET', url, reader)).statusCode, 403, 'reading agents\' tasks is not enough');
  t.is((await call('GET', '/v1/agents/a2/tasks/shop_db_api.1/secrets', agent)).statusCode, 404, 'another agent');
  await h.master.records.put('task', mkTask('shop_db_api.1', 'a1', '/shop/db/api', version, 'RUNNING'));
  const running = await call('GET', url, agent);
  t.is(running.statusCode, 403);
  t.is(running.json().code, 'SECRET_NOT_ALLOWED');

  // An app pointing outside its space gets nothing.
  const thief = await call('POST', '/v2/apps', su, { id: '/shop/thief', cmd: 'sleep 1', instances: 0, env: { X: { secret: 's' } }, secrets: { s: { source: 'other/pass' } } });
  t.is(thief.statusCode, 201);
  await h.master.records.put('task', mkTask('shop_thief.1', 'a1', '/shop/thief', thief.json().version as string, 'STAGING'));
  const refused = await call('GET', '/v1/agents/a1/tasks/shop_thief.1/secrets', agent);
  t.is(refused.statusCode, 403);
  t.regex(refused.json().message, /outside the space of app \/shop\/thief/);
  t.false(refused.body.includes('other-value'));

  for (const path of ['/v2/apps', '/v2/apps/shop/db/api', `/v2/apps/shop/db/api/versions/${version}`, '/v2/groups/shop?embed=group.apps', '/v1/agents/a1/tasks/shop_db_api.1/app', '/v2/tasks']) {
    const res = await call('GET', path, su);
    for (const value of ['db-value-123', 'tls-value-456', 'other-value']) t.false(res.body.includes(value), `${path} shows ${value}`);
  }
  t.is((await call('GET', '/v2/apps/shop/db/api', su)).json().app.secrets.s1.source, 'shop/db/pass');
});

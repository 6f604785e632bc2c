/**
 * The Mesos-DNS HTTP API through fastify inject: on a test master at
 * `/mesos_dns/v1/...` (its zones fed by the master's store), and mounted
 * at `/v1/...` on a bare fastify app over a fake-fed authority, as a
 * standalone DNS HTTP listener would.
 */
import test from 'ava';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ApiInstance } from '../../control-plane/api/context.ts';
import { PUBLIC } from '../../control-plane/api/permissions.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { ZoneAuthority } from './authority.ts';
import { FakeClusterFeed } from './fake-feed.ts';
import { MESOS_DNS_RID, registerMesosDnsApi } from './http-api.ts';
import { taskIdHash } from '../../common/dns-labels.ts';
import { mkAgent, mkApp, mkLeader, mkTask } from './testing.ts';

const AGENT = mkAgent('ag-S0', { ip: '10.2.0.1' });
const AGENT6 = mkAgent('ag-S6', { ip: '10.2.0.6', ipv6: 'fd00::6' });
const APP = mkApp('/web', { portDefinitions: [{ port: 0, name: 'http' }] });
const TASK = mkTask('web.instance-1._app.1', '/web', AGENT.id, { ports: [31000] });
const CANONICAL = `web-${taskIdHash(TASK.id)}-s0.marathon.mesos`;

async function standalone(feed: FakeClusterFeed, zone = {}): Promise<{ app: ApiInstance; authority: ZoneAuthority; started: Promise<void> }> {
  const authority = new ZoneAuthority(feed, { zone });
  const started = authority.start();
  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>() as unknown as ApiInstance;
  registerMesosDnsApi(app, { prefix: '', reader: () => authority, permission: PUBLIC });
  await app.ready();
  return { app, authority, started };
}

test('standalone /v1: hosts, services, ports, enumerate, axfr, version, config in Mesos-DNS shapes', async (t) => {
  const { app, started } = await standalone(new FakeClusterFeed({ agents: [AGENT, AGENT6], apps: [APP], tasks: [TASK], leader: mkLeader('http://10.2.0.100:8080') }));
  t.teardown(() => app.close());
  await started;
  const get = async (url: string): Promise<unknown> => {
    const res = await app.inject({ method: 'GET', url });
    t.is(res.statusCode, 200, `${url}: ${res.body}`);
    return res.json();
  };
  t.deepEqual(await get('/v1/hosts/web.marathon.mesos'), [{ host: 'web.marathon.mesos.', ip: '10.2.0.1' }]);
  t.deepEqual(await get('/v1/hosts/WEB.marathon.mesos.'), [{ host: 'web.marathon.mesos.', ip: '10.2.0.1' }], 'case and trailing dot');
  t.deepEqual(await get('/v1/hosts/agent.mesos'), [
    { host: 'agent.mesos.', ip: '10.2.0.1' },
    { host: 'agent.mesos.', ip: '10.2.0.6' },
    { host: 'agent.mesos.', ip: 'fd00::6' },
  ]);
  t.deepEqual(await get('/v1/hosts/nope.mesos'), [{ host: '', ip: '' }]);
  t.deepEqual(await get('/v1/services/_web._tcp.marathon.mesos'), [{ service: '_web._tcp.marathon.mesos', host: `${CANONICAL}.`, ip: '10.2.0.1', port: '31000' }]);
  t.deepEqual(await get('/v1/services/_nope._tcp.marathon.mesos'), [{ service: '', host: '', ip: '', port: '' }]);
  const ports = (await get(`/v1/hosts/${CANONICAL}/ports`)) as { service: string; port: string }[];
  t.deepEqual(ports.map((p) => p.service).sort(), ['_http._web._tcp.marathon.mesos.', '_web._tcp.marathon.mesos.']);
  t.true(ports.every((p) => p.port === '31000'));

  const enumerate = (await get('/v1/enumerate')) as { frameworks: { name: string; tasks: { id: string; name: string; records: { name: string; host: string; rtype: string }[] }[] }[] };
  t.is(enumerate.frameworks[0]!.name, 'marathon');
  t.is(enumerate.frameworks[0]!.tasks[0]!.id, TASK.id);
  t.true(enumerate.frameworks[0]!.tasks[0]!.records.some((r) => r.name === 'web.marathon.mesos.' && r.host === '10.2.0.1' && r.rtype === 'A'));

  const axfr = (await get('/v1/axfr')) as { Domain: string; Mname: string; Rname: string; TTL: number; RefreshSeconds: number; Serial: number; Records: { As: Record<string, string[]>; AAAAs: Record<string, string[]>; SRVs: Record<string, string[]> } };
  t.like(axfr, { Domain: 'mesos', Mname: 'ns1.mesos.', Rname: 'root.ns1.mesos.', TTL: 60, RefreshSeconds: 30 });
  t.deepEqual(axfr.Records.As['web.marathon.mesos.'], ['10.2.0.1']);
  t.deepEqual(axfr.Records.AAAAs['agent.mesos.'], ['fd00::6']);
  t.deepEqual(axfr.Records.SRVs['_web._tcp.marathon.mesos.'], [`${CANONICAL}.:31000`]);
  t.false(Object.keys(axfr.Records.As).some((n) => n.includes('thisdcos')), 'the mirror is not part of the mesos zone');

  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.marathon.mesos`;
  t.deepEqual(await get(`/v1/hosts/${long}`), [{ host: '', ip: '' }], 'names longer than 100 characters are accepted');
  t.is((await app.inject({ method: 'GET', url: '/v1/hosts/a/b' })).statusCode, 404);
  t.is((await app.inject({ method: 'GET', url: `/v1/hosts/${'a'.repeat(400)}` })).statusCode, 400);
  t.like(await get('/v1/version'), { Service: 'Mesos-DNS' });
  t.like(await get('/v1/config'), { Domain: 'mesos', TTL: 60, IPSources: ['host', 'netinfo'], EnforceRFC952: false, SOAMname: 'ns1.mesos.', EnumerationOn: true });
});

test('standalone: 503 DNS_ZONE_NOT_SYNCED before the first sync; version and config still answer', async (t) => {
  const feed = new FakeClusterFeed({ agents: [AGENT] }, { synced: false });
  const { app, started } = await standalone(feed);
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/v1/hosts/slave.mesos' });
  t.is(res.statusCode, 503);
  t.is(res.json().code, 'DNS_ZONE_NOT_SYNCED');
  t.is((await app.inject({ method: 'GET', url: '/v1/version' })).statusCode, 200);
  t.is((await app.inject({ method: 'GET', url: '/v1/config' })).statusCode, 200);
  feed.sync();
  await started;
  t.is((await app.inject({ method: 'GET', url: '/v1/hosts/slave.mesos' })).json()[0].ip, '10.2.0.1');
});

test('standalone: enumerate and axfr are off with enumerationOn: false', async (t) => {
  const { app, started } = await standalone(new FakeClusterFeed({ agents: [AGENT] }), { enumerationOn: false });
  t.teardown(() => app.close());
  await started;
  t.is((await app.inject({ method: 'GET', url: '/v1/axfr' })).statusCode, 404);
  t.is((await app.inject({ method: 'GET', url: '/v1/enumerate' })).statusCode, 404);
});

test('master: /mesos_dns/v1 reads the store; needs dcos:adminrouter:ops:mesos-dns', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  // The zones open on the first request; by then the leader record exists, so the first snapshot holds it.
  await h.master.whenLeader();
  await h.master.records.put('agent', AGENT);
  await h.master.records.put('app', APP);
  await h.master.records.put('task', TASK);
  const dnsUser = await h.tokenFor('dns-reader', [{ rid: MESOS_DNS_RID, actions: ['full'] }]);
  const res = await h.master.app.inject({ method: 'GET', url: '/mesos_dns/v1/hosts/web.marathon.mesos', headers: { authorization: `token=${dnsUser}` } });
  t.is(res.statusCode, 200, res.body);
  t.deepEqual(res.json(), [{ host: 'web.marathon.mesos.', ip: '10.2.0.1' }]);
  const leader = await h.master.app.inject({ method: 'GET', url: '/mesos_dns/v1/hosts/leader.mesos', headers: { authorization: `token=${dnsUser}` } });
  t.is(leader.json()[0].ip, '127.0.0.1', 'the test master leads on 127.0.0.1');
  const reader = await h.tokenFor('reader-only', [{ rid: MESOS_DNS_RID, actions: ['read'] }]);
  const denied = await h.master.app.inject({ method: 'GET', url: '/mesos_dns/v1/axfr', headers: { authorization: `token=${reader}` } });
  t.is(denied.statusCode, 403, 'Admin Router rids take only full');
  const anonymous = await h.master.app.inject({ method: 'GET', url: '/mesos_dns/v1/version' });
  t.is(anonymous.statusCode, 401);
  const metrics = await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${await h.superuserToken()}` } });
  t.regex(metrics.body, /^strata_dns_zone_synced 1$/m);
  t.regex(metrics.body, /^strata_dns_zone_updates_total\{type="snapshot"\} 1$/m);
});

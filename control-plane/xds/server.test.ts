/**
 * The ADS protocol rules, one test each, over raw streams built from the
 * Envoy protos (what the real gRPC client cannot express: wildcards, NACKs
 * on demand, stale nonces, reconnects with an old version, bad input).
 * "Nothing arrives" checks wait a short fixed time: they can only pass
 * wrongly on a slow box, never fail spuriously.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { adsPackageDefinition, TYPE } from './protos.ts';
import { decodeNames, splitSotwRequest } from './server.ts';
import { SnapshotBuilder } from './snapshot.ts';
import { translate } from './translate.ts';
import { adsClient, eventually, openAds, startMeshFixture, task, vipApp, type MeshFixture, type RawAdsStream } from './testing.ts';

const GRPC_NODE = { id: 'n1', user_agent_name: 'gRPC Node Pure JS', locality: {} };
const ENVOY_NODE = { id: 'e1', user_agent_name: 'envoy' };

async function withWeb(t: { teardown(fn: () => Promise<void> | void): void }): Promise<{ mesh: MeshFixture; token: string; client: grpc.Client }> {
  const mesh = await startMeshFixture({ debounceMs: 5 });
  await mesh.records.put('app', vipApp('/web'));
  await mesh.records.put('task', task('web.1', '/web', 31001));
  await eventually(() => mesh.server.snapshot?.resources.get(TYPE.endpoint)?.has('web:80') === true, 10_000, 'the first snapshot');
  const token = await mesh.token('node');
  const client = adsClient(mesh.port);
  t.teardown(async () => {
    client.close();
    await mesh.close();
  });
  return { mesh, token, client };
}

async function nothingWithin(stream: RawAdsStream, ms = 300): Promise<boolean> {
  try {
    await stream.next(ms);
    return false;
  } catch {
    return true;
  }
}

function ack(stream: RawAdsStream, r: { version_info?: string; nonce: string; type_url: string }, names: string[]): void {
  stream.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
}

test('locality: every ClusterLoadAssignment group has a locality and a load_balancing_weight (grpc-js NACKs or drops it otherwise)', async (t) => {
  const { token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: GRPC_NODE, type_url: TYPE.endpoint, resource_names: ['web:80'] });
  const r = await s.next();
  const cla = r.resources[0] as { cluster_name: string; endpoints: { locality?: object; load_balancing_weight?: { value: number }; lb_endpoints: unknown[] }[] };
  t.is(cla.cluster_name, 'web:80');
  t.truthy(cla.endpoints[0]!.locality);
  t.is(cla.endpoints[0]!.load_balancing_weight?.value, 1);
  t.is(cla.endpoints[0]!.lb_endpoints.length, 1);
  s.close();
});

test('reconnect: a request with an old version and an empty nonce gets a full answer, whatever version it claims', async (t) => {
  const { token, client } = await withWeb(t);
  const a = openAds(client, { token });
  a.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] });
  const first = await a.next();
  a.close();
  // The same version the server would otherwise consider current, and an older one.
  for (const version of [first.version_info, 'v-from-another-master-17']) {
    const b = openAds(client, { token });
    b.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'], version_info: version, response_nonce: '' });
    const again = await b.next();
    t.is(again.resources.length, 1);
    t.is((again.resources[0] as { name: string }).name, 'web:80');
    b.close();
  }
});

test('NACK: detected by error_detail even when it carries the new version; the rejected response is not resent; the next change is sent', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: GRPC_NODE, type_url: TYPE.endpoint, resource_names: ['web:80'] });
  const r = await s.next();
  // grpc-js style NACK: the new version, the nonce, and error_detail.
  s.send({ type_url: TYPE.endpoint, version_info: r.version_info, response_nonce: r.nonce, resource_names: ['web:80'], error_detail: { code: 14, message: 'rejected for the test' } });
  t.true(await nothingWithin(s), 'a NACK is never answered by resending the rejected version');
  await eventually(() => mesh.server.streams().some((x) => x.nacks['eds'] === 1), 5000, 'the NACK to be recorded');
  await mesh.records.put('task', task('web.2', '/web', 31002));
  const next = await s.next();
  t.is((next.resources[0] as { endpoints: { lb_endpoints: unknown[] }[] }).endpoints[0]!.lb_endpoints.length, 2);
  t.regex(await mesh.registry.metrics(), /strata_xds_nacks_total\{type="eds"\} 1/);
  s.close();
});

test('a client that NACKs everything gets each change once and leaves the other streams unaffected', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const bad = openAds(client, { token });
  const good = openAds(client, { token });
  for (const s of [bad, good]) s.send({ node: GRPC_NODE, type_url: TYPE.endpoint, resource_names: ['web:80'] });
  const nackLoop = (async () => {
    for (;;) {
      const r = await bad.next(2000).catch(() => undefined);
      if (!r) return;
      bad.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: ['web:80'], error_detail: { code: 3, message: 'no' } });
    }
  })();
  let r = await good.next();
  for (let i = 2; i <= 6; i++) {
    ack(good, r, ['web:80']);
    await mesh.records.put('task', task(`web.${i}`, '/web', 31000 + i));
    r = await good.next();
  }
  await nackLoop;
  t.is((r.resources[0] as { endpoints: { lb_endpoints: unknown[] }[] }).endpoints[0]!.lb_endpoints.length, 6);
  t.true(mesh.server.streams().some((x) => (x.nacks['eds'] ?? 0) >= 1));
  bad.close();
  good.close();
});

test('wildcard only for LDS and CDS: an empty RDS/EDS list means nothing; an empty first LDS/CDS request means everything', async (t) => {
  const { token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: ENVOY_NODE, type_url: TYPE.endpoint, resource_names: [] });
  s.send({ type_url: TYPE.route, resource_names: [] });
  t.true(await nothingWithin(s), 'no EDS/RDS answer to an empty list');
  s.send({ type_url: TYPE.cluster, resource_names: [] });
  const cds = await s.next();
  t.deepEqual(cds.resources.map((r) => (r as { name: string }).name), ['web:80']);
  s.close();
});

test('unsubscribe then resubscribe: the resource is sent again', async (t) => {
  const { token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: GRPC_NODE, type_url: TYPE.route, resource_names: ['web:80'] });
  const r1 = await s.next();
  t.is(r1.resources.length, 1);
  ack(s, r1, []); // unsubscribe
  t.true(await nothingWithin(s));
  ack(s, r1, ['web:80']); // resubscribe: resent even though the node once had it
  const r2 = await s.next();
  t.is((r2.resources[0] as { name: string }).name, 'web:80');
  s.close();
});

test('a name asked for before it exists is remembered and sent when it appears', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['later:80'] });
  const empty = await s.next(); // CDS is full-state: an empty answer says "none of those exist"
  t.is(empty.resources.length, 0);
  ack(s, empty, ['later:80']);
  await mesh.records.put('app', vipApp('/later'));
  const r = await s.next();
  t.deepEqual(r.resources.map((x) => (x as { name: string }).name), ['later:80']);
  s.close();
});

test('SotW LDS/CDS responses hold the full set; CDS and EDS go before LDS and RDS, each waiting for the previous ACK', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: ENVOY_NODE, type_url: TYPE.cluster, resource_names: [] });
  let cds = await s.next();
  ack(s, cds, []);
  s.send({ type_url: TYPE.endpoint, resource_names: ['web:80'] });
  const eds1 = await s.next();
  ack(s, eds1, ['web:80']);
  s.send({ type_url: TYPE.listener, resource_names: [] });
  ack(s, await s.next(), []);
  // A new app adds a cluster, its endpoints and a listener: CDS first, then nothing until it is ACKed.
  await mesh.records.put('app', vipApp('/api'));
  await mesh.records.put('vip', { framework: 'marathon', name: '/api', kind: 'named', ipv4: '11.0.0.9', ports: [{ port: 80, protocol: 'tcp' }] });
  cds = await s.next();
  t.is(cds.type_url, TYPE.cluster);
  t.deepEqual(cds.resources.map((x) => (x as { name: string }).name).sort(), ['api:80', 'web:80'], 'full state: the unchanged cluster too');
  t.true(await nothingWithin(s), 'nothing else before the CDS ACK');
  // As Envoy does: ask for the new cluster's endpoints, then ACK the clusters.
  ack(s, eds1, ['web:80', 'api:80']);
  t.true(await nothingWithin(s), 'EDS waits for the CDS ACK too');
  ack(s, cds, []);
  const eds = await s.next();
  t.is(eds.type_url, TYPE.endpoint);
  ack(s, eds, ['web:80', 'api:80']);
  const lds = await s.next();
  t.is(lds.type_url, TYPE.listener);
  t.deepEqual(lds.resources.map((x) => (x as { name: string }).name), ['vip/api:80'], 'Envoy gets socket listeners only (web has no VIP address yet)');
  s.close();
});

test('a stale nonce is ignored in SotW', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const s = openAds(client, { token });
  s.send({ node: GRPC_NODE, type_url: TYPE.endpoint, resource_names: ['web:80'] });
  const r = await s.next();
  s.send({ type_url: TYPE.endpoint, response_nonce: 'not-a-nonce-we-sent', resource_names: ['web:80', 'other:80'] });
  t.true(await nothingWithin(s));
  t.regex(await mesh.registry.metrics(), /strata_xds_requests_rejected_total\{reason="stale_nonce"\} 1/);
  ack(s, r, ['web:80']);
  s.close();
});

test('bad input: no token, an unknown type URL, malformed and oversized requests end only their own stream', async (t) => {
  const mesh = await startMeshFixture({ debounceMs: 5, maxRequestBytes: 64 * 1024 });
  await mesh.records.put('app', vipApp('/web'));
  const token = await mesh.token('node');
  const client = adsClient(mesh.port);
  t.teardown(async () => {
    client.close();
    await mesh.close();
  });
  const healthy = openAds(client, { token });
  healthy.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] });
  ack(healthy, await healthy.next(), ['web:80']);

  const anonymous = openAds(client);
  anonymous.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] });
  t.is((await anonymous.ended).code, grpc.status.UNAUTHENTICATED);
  const forged = openAds(client, { token: 'not.a.jwt' });
  forged.send({ node: GRPC_NODE, type_url: TYPE.cluster });
  t.is((await forged.ended).code, grpc.status.UNAUTHENTICATED);

  const unknown = openAds(client, { token });
  unknown.send({ node: GRPC_NODE, type_url: 'type.googleapis.com/envoy.config.route.v3.VirtualHost', resource_names: ['x'] });
  unknown.send({ type_url: TYPE.cluster, resource_names: ['web:80'] });
  t.is((await unknown.next()).type_url, TYPE.cluster, 'the stream goes on after an unknown type');
  unknown.close();

  const huge = openAds(client, { token });
  huge.send({ node: GRPC_NODE, type_url: TYPE.endpoint, resource_names: Array.from({ length: 5000 }, (_, i) => `name-${i}-${'x'.repeat(20)}`) });
  t.is((await huge.ended).code, grpc.status.RESOURCE_EXHAUSTED);

  // Bytes that are not a DiscoveryRequest: each ends its own stream (INTERNAL, from gRPC's deserializer); a valid request still works.
  const Raw = grpc.makeGenericClientConstructor({
    Sotw: { path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
  }, 'Raw');
  const raw = new Raw(`127.0.0.1:${mesh.port}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const open = (): grpc.ClientDuplexStream<Buffer, Buffer> => (raw as unknown as { Sotw: (md: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer> }).Sotw(md);
  // wire type 7; a length past the end; a 5-byte string with 1 byte; a varint that never ends
  for (const garbage of [[0x0f, 0x01], [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01], [0x22, 0x05, 0x61], [0xff, 0xff, 0xff]]) {
    const call = open();
    const status = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.write(Buffer.from(garbage));
    t.is((await status).code, grpc.status.INTERNAL, JSON.stringify(garbage));
  }
  const valid = open();
  valid.on('error', () => undefined);
  const firstData = new Promise<Buffer>((resolve) => valid.once('data', resolve));
  const serialize = (adsPackageDefinition()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition)['StreamAggregatedResources']!.requestSerialize;
  valid.write(serialize({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] }));
  t.true((await firstData).includes(Buffer.from('web:80')));
  valid.cancel();

  // The healthy stream still works.
  await mesh.records.put('task', task('web.1', '/web', 31001));
  await mesh.records.put('app', vipApp('/web', { port: 81 }));
  t.is((await healthy.next()).type_url, TYPE.cluster);
  healthy.close();
});

test('a burst of reconnects: every stream is cleaned up and the stream limit holds', async (t) => {
  const mesh = await startMeshFixture({ debounceMs: 5, maxStreams: 50 });
  await mesh.records.put('app', vipApp('/web'));
  const token = await mesh.token('node');
  const client = adsClient(mesh.port);
  t.teardown(async () => {
    client.close();
    await mesh.close();
  });
  // 200 reconnects by default; STRATA_SLOW=1: the 1,000.
  for (let round = 0; round < (process.env['STRATA_SLOW'] === '1' ? 25 : 5); round++) {
    const streams = Array.from({ length: 40 }, () => openAds(client, { token }));
    for (const s of streams) s.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] });
    await Promise.all(streams.map((s) => s.next(10_000)));
    for (const s of streams) s.close();
    await eventually(() => mesh.server.streamCount === 0, 10_000, 'the round\'s streams to be cleaned up');
  }
  await eventually(() => mesh.server.streamCount === 0, 10_000, 'every stream to be cleaned up');
  const over = Array.from({ length: 60 }, () => openAds(client, { token }));
  for (const s of over) s.send({ node: GRPC_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] });
  const refused = (await Promise.all(over.slice(50).map((s) => s.ended))).map((s) => s.code);
  t.true(refused.every((c) => c === grpc.status.RESOURCE_EXHAUSTED), JSON.stringify(refused));
  t.true(mesh.server.streamCount <= 50);
  for (const s of over) s.close();
  await eventually(() => mesh.server.streamCount === 0, 10_000, 'every stream to be cleaned up');
});

test('delta xDS: subscribe, initial versions, changes as upserts, removals and unsubscribe', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  const s = openAds(client, { token, delta: true });
  s.send({ node: ENVOY_NODE, type_url: TYPE.cluster, resource_names_subscribe: ['*'] });
  const cds = await s.next();
  t.deepEqual(cds.resources.map((r) => r['name']), ['web:80']);
  const version = cds.resources[0]!['version'] as string;
  s.send({ type_url: TYPE.cluster, response_nonce: cds.nonce });
  s.send({ type_url: TYPE.endpoint, resource_names_subscribe: ['web:80', 'gone:80'] });
  const eds = await s.next();
  t.deepEqual(eds.resources.map((r) => r['name']), ['web:80']);
  s.send({ type_url: TYPE.endpoint, response_nonce: eds.nonce });

  // A change: only the changed CLA goes out.
  await mesh.records.put('task', task('web.2', '/web', 31002));
  const eds2 = await s.next();
  t.is(eds2.type_url, TYPE.endpoint);
  t.is((eds2.resources[0]!['value'] as { endpoints: { lb_endpoints: unknown[] }[] }).endpoints[0]!.lb_endpoints.length, 2);
  s.send({ type_url: TYPE.endpoint, response_nonce: eds2.nonce });

  // The app goes: its cluster and endpoints are removed.
  await mesh.records.delete('app', '/web');
  const cdsGone = await s.next();
  t.deepEqual(cdsGone.removed_resources, ['web:80']);
  s.send({ type_url: TYPE.cluster, response_nonce: cdsGone.nonce });
  const edsGone = await s.next();
  t.deepEqual(edsGone.removed_resources, ['web:80']);
  s.send({ type_url: TYPE.endpoint, response_nonce: edsGone.nonce, resource_names_unsubscribe: ['web:80', 'gone:80'] });
  s.close();

  // Reconnect with initial_resource_versions: what the node already has is not resent.
  await mesh.records.put('app', vipApp('/web'));
  await eventually(() => mesh.server.snapshot?.resources.get(TYPE.cluster)?.has('web:80') === true, 5000, 'the app back');
  const again = openAds(client, { token, delta: true });
  again.send({ node: ENVOY_NODE, type_url: TYPE.cluster, resource_names_subscribe: ['web:80', 'stale:80'], initial_resource_versions: { 'web:80': version, 'stale:80': 'old' } });
  const r = await again.next();
  t.deepEqual(r.resources, [], 'web:80 is unchanged, so not resent');
  t.deepEqual(r.removed_resources, ['stale:80']);
  again.close();
});

test('property: splitting a SotW request keeps every field; the raw names decode to the same list', (t) => {
  const method = (adsPackageDefinition()['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition)['StreamAggregatedResources']!;
  fc.assert(fc.property(fc.array(fc.string({ maxLength: 30 }), { maxLength: 50 }), fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), (names, version, nonce) => {
    const bytes = method.requestSerialize({ version_info: version, resource_names: names, type_url: TYPE.endpoint, response_nonce: nonce, node: { id: 'n' } });
    const split = splitSotwRequest(bytes, method.requestDeserialize as (b: Buffer) => { type_url?: string; response_nonce?: string }) as { namesBytes?: Buffer; type_url?: string; response_nonce?: string; node?: unknown };
    const whole = method.requestDeserialize(bytes) as Record<string, unknown>;
    t.deepEqual(decodeNames(split.namesBytes!), names);
    t.is(split.type_url, whole['type_url'] as string | undefined);
    t.is(split.response_nonce ?? '', (whole['response_nonce'] as string | undefined) ?? '');
    t.deepEqual(split.node, whole['node']);
  }), { numRuns: 100 });
});

test('SDS service: secret streams are served only secrets, remembered names are answered when a secret exists; FetchSecrets is refused clearly', async (t) => {
  const { mesh, token } = await withWeb(t);
  const Sds = (grpc.loadPackageDefinition(adsPackageDefinition()) as unknown as { envoy: { service: { secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } } }).envoy.service.secret.v3.SecretDiscoveryService;
  const sds = new Sds(`127.0.0.1:${mesh.port}`, grpc.credentials.createInsecure());
  t.teardown(() => sds.close());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = (sds as unknown as { StreamSecrets: (md: grpc.Metadata) => grpc.ClientDuplexStream<unknown, Record<string, unknown>> }).StreamSecrets(md);
  const responses: Record<string, unknown>[] = [];
  call.on('data', (r: Record<string, unknown>) => responses.push(r));
  call.on('error', () => undefined);
  call.write({ node: ENVOY_NODE, type_url: TYPE.cluster, resource_names: ['web:80'] }); // not a secret: ignored
  call.write({ type_url: TYPE.secret, resource_names: ['web-cert'] });
  await eventually(() => mesh.server.streams().length === 1, 5000, 'the SDS stream');
  await new Promise((r) => setTimeout(r, 300));
  t.is(responses.length, 0, 'no secrets exist yet (issue 7), and the cluster request was ignored');
  // A secret appears (as the CA of issue 7 will add them): the remembered name is answered.
  const secret = { typeUrl: TYPE.secret, name: 'web-cert', owners: new Set(['/web']), value: { name: 'web-cert', tls_certificate: { certificate_chain: { inline_string: '-----BEGIN CERTIFICATE-----' } } } };
  const translation = translate(mesh.source.state());
  (translation.resources.get(TYPE.secret) as Map<string, unknown>).set('web-cert', secret);
  mesh.server.setSnapshot(new SnapshotBuilder().build(translation));
  await eventually(() => responses.length === 1, 5000, 'the secret');
  t.is(responses[0]!['type_url'], TYPE.secret);
  call.cancel();
  const fetched = await new Promise<grpc.ServiceError>((resolve) =>
    (sds as unknown as { FetchSecrets: (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError) => void) => void }).FetchSecrets({ type_url: TYPE.secret }, md, resolve));
  t.is(fetched.code, grpc.status.UNIMPLEMENTED);
});

test('an Envoy node gets a listener on a VIP\'s IPv6 address over ADS (proto-built client), and it goes when the address does', async (t) => {
  const { mesh, token, client } = await withWeb(t);
  await mesh.records.put('vip', { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.7', ipv6: 'fd01:c::7', ports: [{ port: 80, protocol: 'tcp' }] });
  await eventually(() => mesh.server.snapshot?.resources.get(TYPE.listener)?.has('vip6/web:80') === true, 10_000, 'the IPv6 listener in the snapshot');
  const s = openAds(client, { token });
  t.teardown(() => s.close());
  s.send({ node: ENVOY_NODE, type_url: TYPE.listener, resource_names: [] });
  const lds = await s.next(10_000);
  t.is(lds.type_url, TYPE.listener);
  const byName = new Map(lds.resources.map((r) => [r['name'] as string, r as { address: { socket_address: { address: string; port_value: number } } }]));
  t.deepEqual([...byName.keys()].sort(), ['vip/web:80', 'vip6/web:80'], 'an Envoy node gets socket listeners, not gRPC API listeners');
  t.like(byName.get('vip6/web:80')!.address.socket_address, { address: 'fd01:c::7', port_value: 80 });
  t.like(byName.get('vip/web:80')!.address.socket_address, { address: '11.0.0.7', port_value: 80 });
  ack(s, lds, []);

  await mesh.records.put('vip', { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.7', ports: [{ port: 80, protocol: 'tcp' }] });
  const next = await s.next(10_000);
  t.is(next.type_url, TYPE.listener);
  t.deepEqual(next.resources.map((r) => r['name']).sort(), ['vip/web:80'], 'SotW: the full set, without the IPv6 listener');
});

/**
 * SDS: workload certificates for the node's authenticated identity, over
 * ADS (state of the world and delta) with raw clients built from the Envoy
 * protos: the certificate chains to the cluster CA, names the principal
 * (never what the request says), matches its key, and rotates at 60-90 % of
 * its life (a manual clock fires the renewal: no waiting). Also: mesh mTLS
 * in the translator, and the xDS mTLS port authenticating by certificate.
 */
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ClusterCa } from '../../security/ca/authority.ts';
import { Iam } from '../../security/iam.ts';
import { ManualClock } from '../../security/mtls/clock.ts';
import { TokenService } from '../../security/tokens.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { loadConfig } from '../config/load.ts';
import { Records } from '../model/records.ts';
import { openEmbeddedStore } from '../store/embedded/embedded-store.ts';
import { tokenAuthenticator } from './identity.ts';
import { createXdsMetrics } from './metrics.ts';
import { adsPackageDefinition, encodeMessage, EXTENSION, TYPE } from './protos.ts';
import { createSecretMetrics, TRUST_BUNDLE_SECRET, WORKLOAD_SECRET, WorkloadSecrets } from './secrets.ts';
import { XdsServer } from './server.ts';
import { openSnapshotSource } from './source.ts';
import { startXds } from './start.ts';
import { adsClient, eventually, openAds, task, vipApp, type DecodedResponse, type RawAdsStream } from './testing.ts';
import { translate } from './translate.ts';

const ENVOY_NODE = { id: 'spiffe://strata.local/user/admin', user_agent_name: 'envoy' };
const TTL_SECONDS = 60;

interface Sds {
  clock: ManualClock;
  ca: ClusterCa;
  secrets: WorkloadSecrets;
  server: XdsServer;
  port: number;
  token: string;
  registry: Registry;
}

async function startSds(t: { teardown(fn: () => Promise<void> | void): void }): Promise<Sds> {
  const store = await openEmbeddedStore({ path: ':memory:' });
  const records = new Records(store);
  const tokens = await TokenService.open(records, { issuer: 'strata', audience: 'strata', tokenTtlSeconds: 3600, algorithm: 'ES256' });
  const iam = new Iam(records);
  const ca = await ClusterCa.open(records, { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => {}, discardPassphrase: async () => {} });
  const clock = new ManualClock();
  const registry = new Registry();
  const metrics = createXdsMetrics(registry);
  const secrets = new WorkloadSecrets({ issuer: ca, ttlSeconds: TTL_SECONDS, clock, metrics: createSecretMetrics(registry) });
  const server = new XdsServer({ authenticate: tokenAuthenticator({ tokens, iam }), metrics, secrets });
  const source = await openSnapshotSource({ records, sink: server, metrics, debounceMs: 5 });
  const port = await server.listen('127.0.0.1', 0);
  await iam.createPrincipal({ uid: 'node', kind: 'user', permissions: [] });
  const token = (await tokens.issue('node')).token;
  await eventually(() => server.snapshot !== undefined, 10_000, 'the first snapshot');
  t.teardown(async () => {
    source.close();
    secrets.close();
    await server.close();
    await store.close();
  });
  return { clock, ca, secrets, server, port, token, registry };
}

interface SecretMsg {
  name: string;
  tls_certificate?: { certificate_chain: { inline_string: string }; private_key: { inline_string: string } };
  validation_context?: { trusted_ca: { inline_string: string }; match_typed_subject_alt_names: { san_type: string; matcher: { prefix: string } }[] };
}

function byName(r: DecodedResponse, delta = false): Map<string, SecretMsg> {
  return new Map(r.resources.map((x) => {
    const m = (delta ? (x as { value: SecretMsg }).value : x) as SecretMsg;
    return [m.name, m];
  }));
}

function leafOf(secret: SecretMsg): { leaf: X509Certificate; intermediate: X509Certificate } {
  const pems = secret.tls_certificate!.certificate_chain.inline_string.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
  return { leaf: new X509Certificate(pems[0]!), intermediate: new X509Certificate(pems[1]!) };
}

function checkWorkload(t: { true(v: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void }, workload: SecretMsg, bundle: SecretMsg, spiffeId: string): X509Certificate {
  const { leaf, intermediate } = leafOf(workload);
  const root = new X509Certificate(bundle.validation_context!.trusted_ca.inline_string);
  t.true(leaf.verify(intermediate.publicKey), 'the leaf is signed by the intermediate');
  t.true(intermediate.verify(root.publicKey), 'the intermediate is signed by the root in the trust bundle');
  t.true(leaf.checkIssued(intermediate) && intermediate.checkIssued(root));
  t.is(leaf.subjectAltName, `URI:${spiffeId}`, 'exactly the principal\'s SPIFFE id');
  t.is(leaf.ca, false);
  t.true(leaf.checkPrivateKey(createPrivateKey(workload.tls_certificate!.private_key.inline_string)), 'the key is the certificate\'s');
  const lifeMs = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
  t.true(lifeMs <= (TTL_SECONDS + 1) * 1000, `a short-lived certificate (${lifeMs} ms)`);
  return leaf;
}

async function nextNonEmpty(s: RawAdsStream): Promise<DecodedResponse> {
  for (;;) {
    const r = await s.next(15_000);
    if (r.resources.length > 0) return r;
    s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: [WORKLOAD_SECRET, TRUST_BUNDLE_SECRET] });
  }
}

test('SotW: the node gets a workload certificate for its authenticated identity and the trust bundle; they rotate before expiry', async (t) => {
  const sds = await startSds(t);
  const s = openAds(adsClient(sds.port), { token: sds.token });
  t.teardown(() => s.close());
  // The node claims another identity in its node id and asks for a name that looks like one: neither matters.
  s.send({ node: ENVOY_NODE, type_url: TYPE.secret, resource_names: [WORKLOAD_SECRET, TRUST_BUNDLE_SECRET, 'spiffe://strata.local/user/admin'] });
  let r = await nextNonEmpty(s);
  const got = byName(r);
  while (got.size < 2) {
    s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: [WORKLOAD_SECRET, TRUST_BUNDLE_SECRET, 'spiffe://strata.local/user/admin'] });
    r = await nextNonEmpty(s);
    for (const [k, v] of byName(r)) got.set(k, v);
  }
  t.deepEqual([...got.keys()].sort(), [TRUST_BUNDLE_SECRET, WORKLOAD_SECRET], 'only the two secrets exist');
  const bundle = got.get(TRUST_BUNDLE_SECRET)!;
  t.like(bundle.validation_context!.match_typed_subject_alt_names[0], { san_type: 'URI', matcher: { prefix: 'spiffe://strata.local/' } });
  t.is(bundle.validation_context!.trusted_ca.inline_string, sds.ca.rootPem);
  const first = checkWorkload(t, got.get(WORKLOAD_SECRET)!, bundle, 'spiffe://strata.local/user/node');
  s.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: [WORKLOAD_SECRET, TRUST_BUNDLE_SECRET, 'spiffe://strata.local/user/admin'] });

  // The renewal is due between 60 % and 90 % of the life.
  const life = Date.parse(first.validTo) - Date.parse(first.validFrom);
  const due = sds.clock.nextAt! - Date.parse(first.validFrom);
  t.true(due >= life * 0.6 - 1000 && due <= life * 0.9 + 1000, `renewal at ${(due / life * 100).toFixed(1)} % of the life`);
  sds.clock.fireNext();
  const rotated = byName(await nextNonEmpty(s));
  const second = checkWorkload(t, rotated.get(WORKLOAD_SECRET)!, bundle, 'spiffe://strata.local/user/node');
  t.not(second.serialNumber, first.serialNumber, 'a new certificate was pushed');
  t.true(Date.parse(second.validTo) >= Date.parse(first.validTo));
  const metrics = await sds.registry.getSingleMetric('strata_xds_workload_certificates_issued_total')!.get();
  t.deepEqual(Object.fromEntries(metrics.values.map((v) => [v.labels['reason'], v.value])), { first: 1, rotation: 1 });
});

test('delta: the workload certificate arrives and its rotation comes as a new version; one certificate per identity is shared by its streams', async (t) => {
  const sds = await startSds(t);
  const client = adsClient(sds.port);
  const d = openAds(client, { token: sds.token, delta: true });
  t.teardown(() => d.close());
  d.send({ node: ENVOY_NODE, type_url: TYPE.secret, resource_names_subscribe: [WORKLOAD_SECRET] });
  const first = await d.next(15_000);
  t.is(first.resources.length, 1);
  const v1 = (first.resources[0] as { version: string }).version;
  const leaf1 = leafOf(byName(first, true).get(WORKLOAD_SECRET)!).leaf;
  t.is(leaf1.subjectAltName, 'URI:spiffe://strata.local/user/node');
  d.send({ type_url: TYPE.secret, response_nonce: first.nonce });

  // A second stream of the same identity gets the same certificate (issued once).
  const s2 = openAds(client, { token: sds.token });
  t.teardown(() => s2.close());
  s2.send({ node: ENVOY_NODE, type_url: TYPE.secret, resource_names: [WORKLOAD_SECRET] });
  const other = byName(await nextNonEmpty(s2)).get(WORKLOAD_SECRET)!;
  t.is(leafOf(other).leaf.serialNumber, leaf1.serialNumber);

  sds.clock.fireNext();
  const second = await d.next(15_000);
  const v2 = (second.resources[0] as { version: string }).version;
  t.not(v2, v1);
  t.not(leafOf(byName(second, true).get(WORKLOAD_SECRET)!).leaf.serialNumber, leaf1.serialNumber);
});

test('mesh mTLS: Envoy listeners require client certificates and clusters originate TLS, both from SDS over ADS; encodes as the Envoy protos say', (t) => {
  const web = vipApp('/web');
  const state = { apps: new Map([['/web', web]]), tasksByApp: new Map([['/web', [task('web.1', '/web', 31001)]]]), vips: new Map([['marathon//web', { id: 'marathon//web', framework: 'marathon', name: '/web', ipv4: '11.0.0.1', ports: [] } as never]]) };
  const off = translate(state);
  t.is((off.resources.get(TYPE.cluster)!.get('web:80')!.value as { transport_socket?: unknown }).transport_socket, undefined);
  const on = translate(state, { meshMtls: true });
  const cluster = on.resources.get(TYPE.cluster)!.get('web:80')!.value as { transport_socket: { typed_config: Record<string, unknown> } };
  t.is(cluster.transport_socket.typed_config['@type'], EXTENSION.upstreamTls);
  const common = (cluster.transport_socket.typed_config['common_tls_context'] as { tls_certificate_sds_secret_configs: { name: string }[]; validation_context_sds_secret_config: { name: string } });
  t.is(common.tls_certificate_sds_secret_configs[0]!.name, WORKLOAD_SECRET);
  t.is(common.validation_context_sds_secret_config.name, TRUST_BUNDLE_SECRET);
  for (const [type, byName] of on.resources) for (const r of byName.values()) t.notThrows(() => encodeMessage(type, r.value), `${r.name} encodes`);
  const listener = [...on.resources.get(TYPE.listener)!.values()].find((l) => l.flavor === 'envoy');
  t.truthy(listener, 'an Envoy listener on the VIP address');
  {
    const chain = (listener!.value as { filter_chains: { transport_socket: { typed_config: { '@type': string; require_client_certificate: { value: boolean } } } }[] }).filter_chains[0]!;
    t.is(chain.transport_socket.typed_config['@type'], EXTENSION.downstreamTls);
    t.true(chain.transport_socket.typed_config.require_client_certificate.value);
  }
});

test('the xDS mTLS port: a workload certificate is the node\'s identity (no token needed); no client certificate is refused; strict serves no plaintext port', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'strict' });
  t.teardown(() => h.close());
  const config = loadConfig({ env: {}, overrides: { 'xds.port': 0, 'xds.mtlsPort': 0, 'xds.debounceMs': 5, 'security.mtls': 'strict' } });
  const xds = await startXds({ config, records: h.master.records, tokens: h.master.tokens, iam: h.master.iam, registry: h.master.metrics, logger: pino({ level: 'silent' }), ca: h.master.ca, mtls: h.master.mtls! });
  t.teardown(() => xds.close());
  t.is(xds.port, undefined);
  await h.master.iam.createPrincipal({ uid: 'sidecar', kind: 'service', publicKey: (await import('node:crypto')).generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString(), permissions: [] });
  const leaf = await h.master.ca.newcert({ uid: 'sidecar', kind: 'service' }, { algo: 'ecdsa', size: 256 });
  const Ads = (grpc.loadPackageDefinition(adsPackageDefinition()) as unknown as { envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } } }).envoy.service.discovery.v3.AggregatedDiscoveryService;
  const options = { 'grpc.ssl_target_name_override': 'master' };
  const verify = { checkServerIdentity: () => undefined };
  const withCert = new Ads(`127.0.0.1:${xds.mtlsPort}`, grpc.credentials.createSsl(Buffer.from(h.master.ca.rootPem), Buffer.from(leaf.privateKey), Buffer.from(leaf.certificateChain), verify), options);
  t.teardown(() => withCert.close());
  const s = openAds(withCert);
  t.teardown(() => s.close());
  s.send({ node: { id: 'sidecar-1', user_agent_name: 'envoy' }, type_url: TYPE.secret, resource_names: [WORKLOAD_SECRET] });
  const r = await s.next(15_000);
  t.is(leafOf(byName(r).get(WORKLOAD_SECRET)!).leaf.subjectAltName, 'URI:spiffe://strata.local/sa/sidecar', 'authenticated by its certificate');

  const noCert = new Ads(`127.0.0.1:${xds.mtlsPort}`, grpc.credentials.createSsl(Buffer.from(h.master.ca.rootPem), null, null, verify), options);
  t.teardown(() => noCert.close());
  const refused = openAds(noCert, { token: await h.superuserToken() });
  refused.send({ node: { id: 'x', user_agent_name: 'envoy' }, type_url: TYPE.cluster, resource_names: [] });
  const ended = await refused.ended;
  t.is(ended.code, grpc.status.UNAVAILABLE, 'the handshake fails without a client certificate');
});

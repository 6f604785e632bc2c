/**
 * Component mTLS on a master's API (security.mtls=strict), end to end on
 * real sockets: an agent enrols with its token, then calls over mTLS; plain
 * calls to internal routes and a certificate naming another agent are
 * refused; and the handshake refuses every bad client certificate the
 * reference lists (no certificate, self-signed, foreign CA, expired,
 * revoked, serverAuth-only, a leaf that signed another certificate, TLS
 * below 1.2), each counted under its reason.
 */
import test from 'ava';
import { generateKeyPairSync, randomBytes, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { startTestMaster, type TestMaster } from '../../test/harness/master.ts';
import { AGENT_RID } from '../../control-plane/api/routes/agents.ts';
import { ClusterCa } from '../ca/authority.ts';
import { KEY_USAGE, OID, buildCertificate, certificateSubject, fromPem, name, toPem } from '../ca/x509.ts';
import { openEmbeddedStore } from '../../control-plane/store/embedded/embedded-store.ts';
import { Records } from '../../control-plane/model/records.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../control-plane/config/load.ts';
import { startAgent } from '../../scheduler/agent/agent.ts';
import { noCgroups } from '../../scheduler/executor/cgroups.ts';
import { apiEnrol, MtlsClient } from './client.ts';

const REGISTRATION = {
  hostname: 'a1.example', address: { ip: '127.0.0.1', port: 5051 }, attributes: {},
  resources: { cpus: 1, memMb: 512, diskMb: 100, gpus: 0, ports: [{ begin: 20000, end: 20100 }] },
};

interface Setup {
  h: TestMaster;
  url: string;
  port: number;
  token: string;
  agent: MtlsClient;
}

async function setup(t: { teardown(fn: () => Promise<void> | void): void }, agentId = 'a1'): Promise<Setup> {
  const h = await startTestMaster({ 'security.mtls': 'strict' });
  const token = await h.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }]);
  const agent = await MtlsClient.enrol({ enrol: apiEnrol({ masterUrl: () => h.master.apiUrl, agentId, token: async () => token }) });
  t.teardown(async () => {
    agent.close();
    await h.close();
  });
  return { h, url: h.master.apiUrl, port: Number(new URL(h.master.apiUrl).port), token, agent };
}

/** Connect with TLS, send GET /health, and say whether an HTTP answer came back. */
function attempt(port: number, options: ConnectionOptions): Promise<boolean> {
  return new Promise((resolve) => {
    let data = '';
    const socket = connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, rejectUnauthorized: false, ...options }, () => {
      socket.write('GET /health HTTP/1.1\r\nHost: master\r\nConnection: close\r\n\r\n');
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(data.startsWith('HTTP/1.1 200')));
  });
}

async function failures(h: TestMaster): Promise<Record<string, number>> {
  const metric = await h.master.metrics.getSingleMetric('strata_mtls_handshake_failures_total')!.get();
  const out: Record<string, number> = {};
  for (const v of metric.values) out[String(v.labels['reason'])] = v.value;
  return out;
}

async function refusedFor(t: { is(a: unknown, b: unknown, m?: string): void; true(v: boolean, m?: string): void }, h: TestMaster, port: number, options: ConnectionOptions, reasons: readonly string[], what: string): Promise<void> {
  const before = await failures(h);
  t.is(await attempt(port, options), false, `${what}: no HTTP answer`);
  const after = await failures(h);
  const grew = Object.keys(after).filter((r) => (after[r] ?? 0) > (before[r] ?? 0));
  t.true(grew.length === 1 && reasons.includes(grew[0]!), `${what}: counted as ${reasons.join(' or ')} (got ${grew.join(', ') || 'nothing'})`);
}

function ecKey(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b;
}

async function intermediateOf(h: TestMaster): Promise<{ key: KeyObject; subject: Buffer; pem: string; rootPem: string }> {
  const record = (await h.master.records.get('certificateAuthority', 'cluster-ca'))!.value;
  return {
    key: createPrivateKey(record.intermediateKeyPem),
    subject: certificateSubject(fromPem(record.intermediateCertificatePem, 'CERTIFICATE')!),
    pem: record.intermediateCertificatePem,
    rootPem: record.rootCertificatePem,
  };
}

test('strict: an agent enrols with its token and calls internal routes over mTLS; plain calls to them and another agent\'s certificate are refused', async (t) => {
  const { h, url, token, agent } = await setup(t);
  t.regex(agent.certificate.current.spiffeId, /^spiffe:\/\/strata\.local\/agent\/a1$/);
  const leaf = new X509Certificate(agent.certificate.current.certificateChain);
  t.true(leaf.verify(new X509Certificate((await intermediateOf(h)).pem).publicKey), 'the leaf chains to the cluster intermediate');
  t.is(leaf.ca, false);

  const headers = { authorization: `token=${token}`, 'content-type': 'application/json' };
  const ok = await agent.fetch(`${url}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(ok.status, 200, await ok.clone().text());

  const plain = await fetch(`${url}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(plain.status, 403);
  t.is(((await plain.json()) as { code: string }).code, 'MTLS_REQUIRED');

  const other = await agent.fetch(`${url}/v1/agents/a2`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(other.status, 403);
  t.is(((await other.json()) as { code: string }).code, 'MTLS_IDENTITY_MISMATCH');

  const tasks = await agent.fetch(`${url}/v1/agents/a1/tasks`, { headers });
  t.is(tasks.status, 200);
  const feed = await agent.fetch(`${url}/v1/dns/cluster-state`, { headers });
  t.is(feed.status, 200);

  // Routes for users stay on plain HTTP (the CLI), token-checked as before.
  const users = await fetch(`${url}/v1/agents`, { headers: { authorization: `token=${await h.superuserToken()}` } });
  t.is(users.status, 200);

  // Status, and rotation of both ends: the master's certificate and the agent's.
  const status = (await (await fetch(`${url}/v1/security/mtls`, { headers: { authorization: `token=${await h.superuserToken()}` } })).json()) as { mode: string; master: { serial_number: string }; components: { spiffe_id: string }[] };
  t.is(status.mode, 'strict');
  t.true(status.components.some((c) => c.spiffe_id.endsWith('/agent/a1')));
  const renewed = (await (await fetch(`${url}/v1/security/mtls/renew`, { method: 'POST', headers: { authorization: `token=${await h.superuserToken()}` } })).json()) as { serial_number: string };
  t.not(renewed.serial_number, status.master.serial_number);
  const before = agent.certificate.current.serial;
  await agent.certificate.renew();
  t.not(agent.certificate.current.serial, before);
  const again = await agent.fetch(`${url}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(again.status, 200, 'both renewed certificates work');
});

test('the handshake refuses: no certificate, self-signed, foreign CA, expired, revoked, serverAuth-only, a leaf that signed another, TLS below 1.2', async (t) => {
  const { h, port, agent } = await setup(t);
  const held = agent.certificate.current;
  const good = { key: held.keyPem, cert: held.certificateChain, ca: held.rootCa };
  t.true(await attempt(port, good), 'control: the enrolled agent gets an answer');

  await refusedFor(t, h, port, {}, ['no_certificate'], 'no client certificate');

  const self = ecKey();
  const selfSubject = name([[OID.commonName, 'a1']]);
  const selfDer = buildCertificate({ serial: serial(), issuer: selfSubject, subject: selfSubject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), publicKey: self.publicKey, issuerPublicKey: self.publicKey, ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: [OID.clientAuth], uris: ['spiffe://strata.local/agent/a1'] }, self.privateKey);
  await refusedFor(t, h, port, { key: self.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: toPem(selfDer, 'CERTIFICATE') }, ['self_signed'], 'self-signed');

  const foreignStore = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => foreignStore.close());
  const foreign = await ClusterCa.open(new Records(foreignStore), { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => {}, discardPassphrase: async () => {} });
  const foreignLeaf = await foreign.newcert({ uid: 'a1', kind: 'agent' }, { algo: 'ecdsa', size: 256 });
  await refusedFor(t, h, port, { key: foreignLeaf.privateKey, cert: foreignLeaf.certificateChain }, ['unknown_ca', 'self_signed'], 'a certificate from a foreign CA with the same trust domain');

  const past = await ClusterCa.open(h.master.records, { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600, now: () => Date.now() - 7200_000 }, { persistPassphrase: async () => {}, discardPassphrase: async () => {} });
  const expired = await past.newcert({ uid: 'a1', kind: 'agent' }, { algo: 'ecdsa', size: 256 }, { ttlSeconds: 3600 });
  await refusedFor(t, h, port, { key: expired.privateKey, cert: expired.certificateChain }, ['expired'], 'expired');

  const revoked = await h.master.ca.newcert({ uid: 'a1', kind: 'agent' }, { algo: 'ecdsa', size: 256 });
  t.true(await attempt(port, { key: revoked.privateKey, cert: revoked.certificateChain }), 'accepted before revocation');
  await h.master.ca.revoke(revoked.serial, 'keyCompromise');
  await h.master.mtls!.refreshCrl();
  await refusedFor(t, h, port, { key: revoked.privateKey, cert: revoked.certificateChain }, ['revoked'], 'revoked (CRL)');

  const inter = await intermediateOf(h);
  const serverOnly = ecKey();
  const serverOnlyDer = buildCertificate({ serial: serial(), issuer: inter.subject, subject: name([]), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), publicKey: serverOnly.publicKey, issuerPublicKey: createPublicKey(inter.key), ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: [OID.serverAuth], uris: ['spiffe://strata.local/agent/a1'] }, inter.key);
  await refusedFor(t, h, port, { key: serverOnly.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: `${toPem(serverOnlyDer, 'CERTIFICATE')}${inter.pem}` }, ['purpose'], 'serverAuth-only leaf used as a client');

  // A leaf (CA:false, no keyCertSign) signing another certificate: the chain child → leaf → intermediate.
  const issuerLeaf = await h.master.ca.newcert({ uid: 'a9', kind: 'agent' }, { algo: 'ecdsa', size: 256 });
  const issuerKey = createPrivateKey(issuerLeaf.privateKey);
  const issuerSubject = name([[OID.commonName, 'leaf-as-ca']]);
  // Give the "issuer" leaf a findable subject: re-issue it from the intermediate with that subject (still CA:false).
  const leafAsCaDer = buildCertificate({ serial: serial(), issuer: inter.subject, subject: issuerSubject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), publicKey: createPublicKey(issuerKey), issuerPublicKey: createPublicKey(inter.key), ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: [OID.serverAuth, OID.clientAuth], uris: ['spiffe://strata.local/agent/a9'] }, inter.key);
  const child = ecKey();
  const childDer = buildCertificate({ serial: serial(), issuer: issuerSubject, subject: name([]), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), publicKey: child.publicKey, issuerPublicKey: createPublicKey(issuerKey), ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: [OID.clientAuth], uris: ['spiffe://strata.local/agent/a1'] }, issuerKey);
  await refusedFor(t, h, port, { key: child.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: `${toPem(childDer, 'CERTIFICATE')}${toPem(leafAsCaDer, 'CERTIFICATE')}${inter.pem}` }, ['not_a_ca'], 'a leaf that signed another certificate');

  await refusedFor(t, h, port, { ...good, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, ['protocol_version'], 'TLS 1.1');

  t.true(await attempt(port, good), 'the good agent still gets through');
});

test('strict: a real agent (startAgent) enrols at join, registers and long-polls its tasks over mTLS, and keeps its certificate in <dataDir>/tls', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'strict' });
  t.teardown(() => h.close());
  const token = await h.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }, { rid: 'dcos:adminrouter:ops:networking', actions: ['read'] }]);
  const dir = await mkdtemp(join(tmpdir(), 'strata-mtls-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({ flags: { 'data-dir': dir, 'agent-port': '0', 'agent-id': 'mtls-agent-S0', 'security-mtls': 'strict' }, env: {} });
  const agent = await startAgent({ config, logger: pino({ level: 'silent' }), masterUrl: h.master.apiUrl, token: async () => token, cgroups: noCgroups('tests'), metrics: h.master.metrics, taskRunner: { waitSeconds: 1 } });
  t.teardown(() => agent.close());
  t.truthy(agent.mtls(), 'enrolled');
  t.truthy(await h.master.records.get('agent', 'mtls-agent-S0'), 'registered (over mTLS: plain is refused in strict mode)');
  const chain = await readFile(join(dir, 'tls', 'cert.pem'), 'utf8');
  t.is(new X509Certificate(chain).subjectAltName, 'URI:spiffe://strata.local/agent/mtls-agent-S0');
  const accepted = await h.master.metrics.getSingleMetric('strata_mtls_handshakes_total')!.get();
  t.true((accepted.values.find((v) => v.labels['listener'] === 'api')?.value ?? 0) >= 1);
});

test('permissive: internal routes take plain and mTLS (an upgrade in progress), a presented certificate must still match; an agent whose master has mTLS off stays on plain HTTP', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'permissive' });
  t.teardown(() => h.close());
  const token = await h.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }]);
  const headers = { authorization: `token=${token}`, 'content-type': 'application/json' };
  const plain = await fetch(`${h.master.apiUrl}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(plain.status, 200);
  const agent = await MtlsClient.enrol({ enrol: apiEnrol({ masterUrl: () => h.master.apiUrl, agentId: 'a1', token: async () => token }) });
  t.teardown(() => agent.close());
  t.is((await agent.fetch(`${h.master.apiUrl}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) })).status, 200);
  const other = await agent.fetch(`${h.master.apiUrl}/v1/agents/a2`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is(((await other.json()) as { code: string }).code, 'MTLS_IDENTITY_MISMATCH');

  const off = await startTestMaster({ 'security.mtls': 'off' });
  t.teardown(() => off.close());
  t.is(off.master.mtls, undefined);
  const offToken = await off.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }, { rid: 'dcos:adminrouter:ops:networking', actions: ['read'] }]);
  const dir = await mkdtemp(join(tmpdir(), 'strata-mtls-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({ flags: { 'data-dir': dir, 'agent-port': '0', 'agent-id': 'plain-agent-S0', 'security-mtls': 'permissive' }, env: {} });
  const started = await startAgent({ config, logger: pino({ level: 'silent' }), masterUrl: off.master.apiUrl, token: async () => offToken, cgroups: noCgroups('tests'), taskRunner: { waitSeconds: 1 } });
  t.teardown(() => started.close());
  t.is(started.mtls(), undefined, 'not enrolled: the master enrols nobody');
  t.truthy(await off.master.records.get('agent', 'plain-agent-S0'), 'registered over plain HTTP');
});

test('connections that say nothing (closed at once, or idle) do not hold the master open at close', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'permissive' });
  const port = Number(new URL(h.master.apiUrl).port);
  const quiet = (): Promise<Socket> => new Promise((resolve) => {
    const s = connectTcp(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => undefined);
  });
  (await quiet()).end(); // a pooled connection its client closes unused
  const idle = await quiet();
  const closedByServer = new Promise<void>((resolve) => idle.on('close', () => resolve()));
  await h.close();
  await closedByServer;
  t.pass('close resolved and ended the idle connection');
});

test('revocation ends the revoked agent\'s open connections; the agent re-enrols with its token and carries on', async (t) => {
  const { h, url, token, agent } = await setup(t);
  const headers = { authorization: `token=${token}`, 'content-type': 'application/json' };
  const put = (): Promise<Response> => agent.fetch(`${url}/v1/agents/a1`, { method: 'PUT', headers, body: JSON.stringify(REGISTRATION) });
  t.is((await put()).status, 200, 'a kept-alive connection is open');
  const revokedSerial = agent.certificate.current.serial;
  await h.master.ca.revoke(revokedSerial, 'keyCompromise');
  await h.master.mtls!.refreshCrl();
  const reasons = await failures(h);
  t.true((reasons['revoked'] ?? 0) >= 1, 'the open connection was ended and counted');
  // The next calls fail until the agent (prompted by the dropped connection) has a new certificate.
  let ok = false;
  for (let i = 0; i < 600 && !ok; i++) {
    ok = await put().then((r) => r.status === 200, () => false);
    if (!ok) await new Promise((r) => setTimeout(r, 50));
  }
  t.true(ok, 'calls work again');
  t.not(agent.certificate.current.serial, revokedSerial, 'with a new certificate');
});

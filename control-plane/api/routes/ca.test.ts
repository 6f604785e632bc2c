/**
 * The cluster CA through its API, checked by real peers: CSRs made by
 * `openssl req`, certificates verified by `openssl verify` (chain, purpose,
 * CRL) and node:crypto's X509Certificate, and a Node TLS server requiring
 * client certificates (mTLS) with the CRL.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import test from 'ava';
import { ClusterCa } from '../../../security/ca/authority.ts';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import { KEY_USAGE, buildCertificate, certificateSubject, fromPem, name, pemBlocks, toPem } from '../../../security/ca/x509.ts';

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout, stderr } = await run('openssl', args, { cwd });
    return { ok: true, out: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface Ctx { h: TestMaster; dir: string; su: string; alice: string; post: (url: string, token: string, payload: unknown) => Promise<{ statusCode: number; json: () => any }> } // eslint-disable-line @typescript-eslint/no-explicit-any

async function setup(t: { teardown(fn: () => Promise<void>): void }): Promise<Ctx> {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-ca-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const alice = await h.tokenFor('alice', [{ rid: 'dcos:adminrouter:ops:ca:rw', actions: ['full'] }]);
  const su = await h.superuserToken();
  const post = (url: string, token: string, payload: unknown) => h.master.app.inject({ method: 'POST', url, headers: { authorization: `token=${token}` }, payload: payload as object });
  await writeFile(join(dir, 'root.pem'), h.master.ca.rootPem);
  await writeFile(join(dir, 'int.pem'), h.master.ca.intermediatePem);
  return { h, dir, su, alice, post };
}

async function csr(dir: string, file: string, keyArgs: string[], extra: string[] = []): Promise<string> {
  const made = await openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${file}.key`, '-subj', '/CN=ignored', ...extra, '-out', `${file}.csr`], dir);
  if (!made.ok) throw new Error(made.out);
  return readFile(join(dir, `${file}.csr`), 'utf8');
}
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

test('sign: an openssl CSR becomes a leaf with exactly the caller\'s SPIFFE id, CA:false, serverAuth+clientAuth, 72 h max, verified by openssl and node', async (t) => {
  const { h, dir, alice, post } = await setup(t);
  const info = await h.master.app.inject({ method: 'POST', url: '/ca/api/v2/info', payload: {} });
  t.is(info.statusCode, 200);
  t.is(info.json().result.certificate, h.master.ca.rootPem);
  t.is(info.json().result.expiry, '259200s');
  const crt = await h.master.app.inject({ method: 'GET', url: '/ca/dcos-ca.crt' });
  t.is(crt.body, h.master.ca.rootPem, 'the root is public');

  const request = await csr(dir, 'alice', P256, ['-addext', 'subjectAltName=URI:spiffe://strata.local/user/alice']);
  const res = await post('/ca/api/v2/sign', alice, { certificate_request: request });
  t.is(res.statusCode, 200, JSON.stringify(res.json()));
  const body = res.json();
  t.true(body.success);
  const r = body.result;
  t.is(r.spiffe_id, 'spiffe://strata.local/user/alice');
  await writeFile(join(dir, 'alice.pem'), r.certificate);

  const leaf = new X509Certificate(r.certificate);
  const intermediate = new X509Certificate(r.issuing_ca);
  const root = new X509Certificate(r.ca);
  t.is(leaf.subjectAltName, 'URI:spiffe://strata.local/user/alice', 'exactly one SAN: the authenticated caller');
  t.false(leaf.ca);
  t.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'extKeyUsage serverAuth + clientAuth');
  t.true(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey));
  t.true(intermediate.ca && intermediate.checkIssued(root) && intermediate.verify(root.publicKey));
  t.true(root.ca && root.verify(root.publicKey));
  t.is(leaf.serialNumber.toLowerCase(), r.serial_number);
  const life = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
  t.is(life, 72 * 3600_000, 'the default lifetime is the maximum, 72 h');
  t.is(Date.parse(r.renewal.start) - Date.parse(r.not_before), 0.6 * life);
  t.is(Date.parse(r.renewal.end) - Date.parse(r.not_before), 0.9 * life);
  t.true(createPublicKey(createPrivateKey(await readFile(join(dir, 'alice.key')))).equals(leaf.publicKey), 'the CSR\'s key');

  const text = (await openssl(['x509', '-in', 'alice.pem', '-noout', '-text'], dir)).out;
  t.regex(text, /Basic Constraints: critical\s+CA:FALSE/);
  t.regex(text, /Key Usage: critical\s+Digital Signature\s/);
  t.notRegex(text, /Certificate Sign|CRL Sign/);
  for (const purpose of ['sslclient', 'sslserver']) {
    const verified = await openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'int.pem', '-purpose', purpose, 'alice.pem'], dir);
    t.true(verified.ok, `${purpose}: ${verified.out}`);
  }
  const short = await post('/ca/api/v2/sign', alice, { certificate_request: request, ttl_seconds: 3600 });
  const shortLeaf = new X509Certificate(short.json().result.certificate);
  t.is(Date.parse(shortLeaf.validTo) - Date.parse(shortLeaf.validFrom), 3600_000);

  // A service account gets an sa/ id; newcert makes the key here.
  const { iam } = h.master;
  await iam.createServiceAccount('web', { publicKey: createPublicKey(createPrivateKey(await readFile(join(dir, 'alice.key')))).export({ type: 'spki', format: 'pem' }).toString() });
  await iam.createAcl('dcos:adminrouter:ops:ca:rw', 'issue certificates');
  await iam.grant({ uid: 'web' }, 'dcos:adminrouter:ops:ca:rw', 'full');
  const bot = (await h.master.tokens.issue('web')).token;
  const made = await post('/ca/api/v2/newcert', bot, { request: { key: { algo: 'rsa', size: 2048 } }, ttl_seconds: 7200 });
  t.is(made.statusCode, 200, JSON.stringify(made.json()));
  const rsaLeaf = new X509Certificate(made.json().result.certificate);
  t.is(rsaLeaf.subjectAltName, 'URI:spiffe://strata.local/sa/web');
  t.true(createPublicKey(made.json().result.private_key).equals(rsaLeaf.publicKey));
  t.regex(made.json().result.certificate_request, /BEGIN CERTIFICATE REQUEST/);
  const metrics = (await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${await h.superuserToken()}` } })).body;
  t.regex(metrics, /^strata_ca_certificates_issued_total\{route="sign"\} 2$/m);
  t.regex(metrics, /^strata_ca_certificates_issued_total\{route="newcert"\} 1$/m);
});

test('sign refuses CA:true, certificate signing, foreign SANs, hosts overrides, overlong TTLs, weak keys and bad CSRs', async (t) => {
  const { dir, alice, post } = await setup(t);
  const cases: [string, () => Promise<string>, Record<string, unknown>, string, RegExp][] = [
    ['CA:true', () => csr(dir, 'c1', P256, ['-addext', 'basicConstraints=critical,CA:TRUE']), {}, 'CA_CSR_REJECTED', /CA:true/],
    ['keyCertSign', () => csr(dir, 'c2', P256, ['-addext', 'keyUsage=critical,keyCertSign,cRLSign']), {}, 'CA_CSR_REJECTED', /keyCertSign/],
    ['a DNS SAN', () => csr(dir, 'c3', P256, ['-addext', 'subjectAltName=DNS:bank.example']), {}, 'CA_CSR_REJECTED', /dns:bank.example/],
    ['another principal\'s id', () => csr(dir, 'c4', P256, ['-addext', 'subjectAltName=URI:spiffe://strata.local/user/admin']), {}, 'CA_CSR_REJECTED', /user\/admin/],
    ['a hosts override', () => csr(dir, 'c5', P256), { hosts: ['spiffe://strata.local/user/admin'] }, 'CA_CSR_REJECTED', /"hosts" names what the caller does not own/],
    ['73 hours', () => csr(dir, 'c6', P256), { ttl_seconds: 73 * 3600 }, 'CA_CSR_REJECTED', /over the maximum of 259200/],
    ['RSA 1024', () => csr(dir, 'c7', ['-newkey', 'rsa:1024']), {}, 'CA_CSR_REJECTED', /1024 bits/],
    ['Ed25519', () => csr(dir, 'c8', ['-newkey', 'ed25519']), {}, 'CA_CSR_INVALID', /signature algorithm 1.3.101.112 is not accepted/],
    ['P-521', () => csr(dir, 'c9', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']), {}, 'CA_CSR_REJECTED', /secp521r1/],
    ['not a CSR', async () => 'hello', {}, 'CA_CSR_INVALID', /no -----BEGIN CERTIFICATE REQUEST-----/],
    ['a tampered CSR', async () => {
      const good = await csr(dir, 'c10', P256);
      const der = fromPem(good, 'CERTIFICATE REQUEST')!;
      der[der.indexOf(Buffer.from('ignored'))] = 0x49;
      return toPem(der, 'CERTIFICATE REQUEST');
    }, {}, 'CA_CSR_INVALID', /self-signature does not verify/],
  ];
  for (const [what, make, extra, code, message] of cases) {
    const res = await post('/ca/api/v2/sign', alice, { certificate_request: await make(), ...extra });
    t.is(res.json().code, code, `${what}: ${JSON.stringify(res.json())}`);
    t.regex(res.json().message, message, what);
  }
  const ownHosts = await post('/ca/api/v2/sign', alice, { certificate_request: await csr(dir, 'c11', P256), hosts: ['spiffe://strata.local/user/alice'] });
  t.is(ownHosts.statusCode, 200, 'hosts may repeat the caller\'s own id');
  const anonymous = await post('/ca/api/v2/sign', '', { certificate_request: 'x' });
  t.is(anonymous.statusCode, 401);
});

test('a leaf cannot act as a CA: openssl refuses a certificate signed by one', async (t) => {
  const { dir, alice, post } = await setup(t);
  const request = await csr(dir, 'leaf', P256);
  const leafPem = (await post('/ca/api/v2/sign', alice, { certificate_request: request })).json().result.certificate as string;
  const leafKey = createPrivateKey(await readFile(join(dir, 'leaf.key')));
  const victim = createPublicKey(createPrivateKey(await readFile(join(dir, 'leaf.key'))));
  const forged = buildCertificate(
    {
      serial: Buffer.from([1]), issuer: certificateSubject(fromPem(leafPem, 'CERTIFICATE')!), subject: name([['2.5.4.3', 'admin']]), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000),
      publicKey: victim, issuerPublicKey: createPublicKey(leafKey), ca: false, keyUsage: [KEY_USAGE.digitalSignature], uris: ['spiffe://strata.local/user/admin'],
    },
    leafKey,
  );
  await writeFile(join(dir, 'forged.pem'), toPem(forged, 'CERTIFICATE'));
  await writeFile(join(dir, 'chain.pem'), `${leafPem}${await readFile(join(dir, 'int.pem'), 'utf8')}`);
  const verified = await openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain.pem', 'forged.pem'], dir);
  t.false(verified.ok);
  t.regex(verified.out, /invalid CA certificate|key usage does not include certificate signing/);
});

test('revocation: the CRL (signed by the intermediate) lists a revoked leaf; openssl verify -crl_check and an mTLS server refuse it', async (t) => {
  const { h, dir, su, alice, post } = await setup(t);
  const issue = async (file: string): Promise<{ cert: string; chain: string; serial: string }> => {
    const r = (await post('/ca/api/v2/sign', alice, { certificate_request: await csr(dir, file, P256) })).json().result;
    await writeFile(join(dir, `${file}.pem`), r.certificate);
    return { cert: r.certificate, chain: r.certificate_chain, serial: r.serial_number };
  };
  const good = await issue('good');
  const bad = await issue('bad');
  const reader = await h.tokenFor('reader', [{ rid: 'dcos:adminrouter:ops:ca:ro', actions: ['read'] }]);
  t.is((await post('/ca/api/v2/revoke', reader, { serial: bad.serial })).statusCode, 403, 'revoking needs full on dcos:adminrouter:ops:ca:rw');
  const revokedRes = await post('/ca/api/v2/revoke', su, { serial: bad.serial, reason: 'keyCompromise' });
  t.is(revokedRes.statusCode, 200, JSON.stringify(revokedRes.json()));
  t.is((await post('/ca/api/v2/revoke', su, { serial: 'ab'.repeat(16) })).statusCode, 404);
  const crlPem = (await h.master.app.inject({ method: 'GET', url: '/ca/api/v2/crl?format=pem' })).body;
  t.is(pemBlocks(crlPem, 'X509 CRL').length, 2, 'the intermediate\'s CRL and the root\'s');
  await writeFile(join(dir, 'crl.pem'), crlPem);
  const crlText = (await openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], dir)).out;
  t.regex(crlText, new RegExp(`Serial Number: ${bad.serial.toUpperCase()}`));
  t.regex(crlText, /Key Compromise/);
  t.notRegex(crlText, new RegExp(good.serial.toUpperCase()));
  const crlDer = (await h.master.app.inject({ method: 'GET', url: '/ca/api/v2/crl' })).rawPayload;
  t.true(crlDer.equals(fromPem(crlPem, 'X509 CRL')!), 'DER and PEM are the same CRL');
  const checked = (file: string) => openssl(['verify', '-crl_check_all', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'int.pem', `${file}.pem`], dir);
  t.true((await checked('good')).ok);
  const refused = await checked('bad');
  t.false(refused.ok);
  t.regex(refused.out, /certificate revoked/);
  const listed = (await post('/ca/api/v2/certificates', su, { serial: bad.serial })).json().result;
  t.is(listed[0].status, 'revoked');

  // mTLS: a Node HTTPS server trusting the cluster root, requiring client certificates, with the CRL.
  const serverLeaf = (await post('/ca/api/v2/newcert', alice, { request: {} })).json().result;
  const server = createServer(
    { key: serverLeaf.private_key, cert: serverLeaf.certificate_chain, ca: h.master.ca.rootPem, requestCert: true, rejectUnauthorized: true, crl: pemBlocks(crlPem, 'X509 CRL'), minVersion: 'TLSv1.2' },
    (req, res) => res.end((req.socket as TLSSocket).getPeerCertificate().subjectaltname),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const handshake = (opts: { key?: Buffer; cert?: string }): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: h.master.ca.rootPem, checkServerIdentity: () => undefined, ...opts }, () => {
        socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () => resolve(data.includes('200 OK') ? `ok ${data.split('\r\n\r\n')[1]}` : 'refused'));
      socket.on('error', () => resolve('refused'));
    });
  t.is(await handshake({ key: await readFile(join(dir, 'good.key')), cert: good.chain }), 'ok URI:spiffe://strata.local/user/alice');
  t.is(await handshake({ key: await readFile(join(dir, 'bad.key')), cert: bad.chain }), 'refused', 'a revoked client certificate');
  t.is(await handshake({}), 'refused', 'no client certificate');
});

test('mTLS with cluster certificates refuses: a self-signed or foreign-CA client, an expired one, a serverAuth-only one, and TLS below 1.2', async (t) => {
  const { h, alice, post } = await setup(t);
  const newcert = async (token: string) => (await post('/ca/api/v2/newcert', token, { request: {} })).json().result as { private_key: string; certificate_chain: string; certificate: string };
  const server = await newcert(alice);
  const good = await newcert(alice);
  const tlsServer = createServer({ key: server.private_key, cert: server.certificate_chain, ca: h.master.ca.rootPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (_q, r) => r.end('in'));
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => tlsServer.close(() => resolve())));
  const port = (tlsServer.address() as AddressInfo).port;
  const attempt = (opts: Record<string, unknown>): Promise<string> =>
    new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: h.master.ca.rootPem, checkServerIdentity: () => undefined, ...opts }, () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () => resolve(data.endsWith('in') ? 'ok' : 'refused'));
      socket.on('error', () => resolve('refused'));
    });
  t.is(await attempt({ key: good.private_key, cert: good.certificate_chain }), 'ok', 'the control case');

  // Self-signed, with the same SPIFFE id.
  const self = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const selfSubject = name([['2.5.4.3', 'alice']]);
  const selfCert = toPem(buildCertificate({ serial: Buffer.from([7]), issuer: selfSubject, subject: selfSubject, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000), publicKey: self.publicKey, issuerPublicKey: self.publicKey, ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: ['1.3.6.1.5.5.7.3.2'], uris: ['spiffe://strata.local/user/alice'] }, self.privateKey), 'CERTIFICATE');
  t.is(await attempt({ key: self.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: selfCert }), 'refused', 'self-signed');

  // A foreign cluster's CA (same trust domain name, different keys).
  const foreign = await startTestMaster();
  t.teardown(() => foreign.close());
  const foreignAlice = await foreign.tokenFor('alice', [{ rid: 'dcos:adminrouter:ops:ca:rw', actions: ['full'] }]);
  const foreignLeaf = (await foreign.master.app.inject({ method: 'POST', url: '/ca/api/v2/newcert', headers: { authorization: `token=${foreignAlice}` }, payload: { request: {} } })).json().result;
  t.is(await attempt({ key: foreignLeaf.private_key, cert: foreignLeaf.certificate_chain }), 'refused', 'foreign CA');

  // Expired: issued by this CA with a clock 100 hours back.
  const past = await ClusterCa.open(h.master.records, { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600, now: () => Date.now() - 100 * 3600_000 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const old = await past.newcert({ uid: 'alice', kind: 'user' }, { algo: 'ecdsa', size: 256 });
  t.true(old.notAfter.getTime() < Date.now());
  t.is(await attempt({ key: old.privateKey, cert: old.certificateChain }), 'refused', 'expired');

  // serverAuth only, signed by the real intermediate (the CA never issues this; built by hand).
  const record = (await h.master.records.get('certificateAuthority', 'cluster-ca'))!.value;
  const intermediateKey = createPrivateKey(record.intermediateKeyPem);
  const serverOnly = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serverOnlyCert = toPem(buildCertificate({
    serial: Buffer.from([9]), issuer: certificateSubject(fromPem(record.intermediateCertificatePem, 'CERTIFICATE')!), subject: name([]), notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000),
    publicKey: serverOnly.publicKey, issuerPublicKey: createPublicKey(intermediateKey), ca: false, keyUsage: [KEY_USAGE.digitalSignature], extKeyUsage: ['1.3.6.1.5.5.7.3.1'], uris: ['spiffe://strata.local/user/alice'],
  }, intermediateKey), 'CERTIFICATE');
  t.is(await attempt({ key: serverOnly.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: `${serverOnlyCert}${record.intermediateCertificatePem}` }), 'refused', 'serverAuth-only certificate used as a client certificate');

  t.is(await attempt({ key: good.private_key, cert: good.certificate_chain, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), 'refused', 'TLS 1.1');
  t.is(await attempt({}), 'refused', 'no client certificate');
});

/** The gateway's server certificate from the cluster CA, checked with openssl and node:crypto. */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { Records } from '../control-plane/model/records.ts';
import { openEmbeddedStore } from '../control-plane/store/embedded/embedded-store.ts';
import { ClusterCa } from '../security/ca/authority.ts';
import { issueServingCertificate, keepRenewed } from './certificate.ts';

const run = promisify(execFile);

test('component certificate: chains to the root, names the DNS names and IPs asked for, serverAuth, CA:false, recorded for revocation', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const records = new Records(store);
  const ca = await ClusterCa.open(records, { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const serving = await issueServingCertificate(ca, { dnsNames: ['localhost', 'gw.example.com'], ipAddresses: ['127.0.0.1', 'fd00::1'] });
  const dir = await mkdtemp(join(tmpdir(), 'strata-gw-cert-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [leafPem, intermediatePem] = serving.cert.split(/(?<=-----END CERTIFICATE-----\n)/);
  await writeFile(join(dir, 'leaf.pem'), leafPem!);
  await writeFile(join(dir, 'chain.pem'), intermediatePem!);
  await writeFile(join(dir, 'root.pem'), ca.rootPem);
  const verify = (extra: string[]) => run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), '-purpose', 'sslserver', ...extra, join(dir, 'leaf.pem')]);
  await t.notThrowsAsync(verify(['-verify_hostname', 'gw.example.com']));
  await t.notThrowsAsync(verify(['-verify_ip', '127.0.0.1']));
  await t.notThrowsAsync(verify(['-verify_ip', 'fd00::1']));
  await t.throwsAsync(verify(['-verify_hostname', 'evil.example.com']));
  await t.throwsAsync(verify(['-verify_ip', '10.9.9.9']));

  const cert = new X509Certificate(leafPem!);
  t.false(cert.ca);
  t.regex(cert.subjectAltName ?? '', /URI:spiffe:\/\/strata\.local\/component\/gateway/);
  t.true(cert.checkPrivateKey(createPrivateKey(serving.key)));
  t.true(serving.renewAt > new Date(Date.now() + 0.5 * 72 * 3600_000) && serving.renewAt < serving.notAfter);
  const recorded = await records.get('certificate', serving.serial);
  t.like(recorded?.value, { uid: 'component.gateway', spiffeId: 'spiffe://strata.local/component/gateway' });
  await t.throwsAsync(ca.issueComponentCertificate('gateway', { dnsNames: [], ipAddresses: ['not-an-ip'] }), { code: 'CA_CSR_REJECTED' } as never);
  await t.throwsAsync(ca.issueComponentCertificate('Bad Name', { dnsNames: [], ipAddresses: [] }), { code: 'CA_CSR_REJECTED' } as never);
});

test('keepRenewed: a certificate past its renewal point is replaced, and the next renewal is scheduled from the new one', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const ca = await ClusterCa.open(new Records(store), { trustDomain: 'strata.local', maxLeafTtlSeconds: 72 * 3600 }, { persistPassphrase: async () => undefined, discardPassphrase: async () => undefined });
  const names = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  const first = await issueServingCertificate(ca, names);
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  // The renewal timer is unref'd (a server keeps the process alive); here this does.
  const alive = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(alive));
  const renewed = await new Promise<Awaited<ReturnType<typeof issueServingCertificate>>>((resolve) => {
    // As if its renewal time had come: the renewal runs after the 1 s floor.
    keepRenewed(ca, names, { ...first, renewAt: new Date(Date.now() - 1000) }, { signal: stop.signal, apply: resolve, onError: (err) => t.fail(String(err)) });
  });
  t.not(renewed.serial, first.serial);
  t.true(renewed.renewAt.getTime() > Date.now() + 3600_000, 'the next renewal is hours away');
  t.regex(new X509Certificate(renewed.cert.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!).subjectAltName ?? '', /DNS:localhost/);
});

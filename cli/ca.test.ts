/** `strata ca ...` as a user runs it: real processes against a test master, results checked with openssl. */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';

const run = promisify(execFile);

test('ca info|cert|sign|list|revoke|root-key export', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-ca-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const strata = async (args: string[]): Promise<string> => {
    const r = await runStrata(args, { env });
    t.is(r.code, 0, `strata ${args.join(' ')}: ${r.output}`);
    return r.output;
  };

  t.regex(await strata(['ca', 'info']), /Trust domain: strata\.local[\s\S]*BEGIN CERTIFICATE/);
  const out = join(dir, 'me');
  const made = await strata(['ca', 'cert', '--out-dir', out, '--ttl', '7200']);
  t.regex(made, /for spiffe:\/\/strata\.local\/user\/admin/);
  t.is((await stat(join(out, 'key.pem'))).mode & 0o777, 0o600);
  const cert = new X509Certificate(await readFile(join(out, 'cert.pem')));
  t.true(cert.checkPrivateKey(createPrivateKey(await readFile(join(out, 'key.pem')))));
  await t.notThrowsAsync(run('openssl', ['verify', '-CAfile', join(out, 'ca.pem'), '-untrusted', join(out, 'chain.pem'), '-purpose', 'sslclient', join(out, 'cert.pem')]));

  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'x.key'), '-subj', '/CN=x', '-out', join(dir, 'x.csr')]);
  t.regex(await strata(['ca', 'sign', join(dir, 'x.csr'), '--out', join(dir, 'x.pem')]), /chain written to/);
  const serial = new X509Certificate(await readFile(join(dir, 'x.pem'))).serialNumber.toLowerCase();
  t.regex(await strata(['ca', 'list']), new RegExp(`^${serial}\\s+spiffe://strata.local/user/admin\\s+\\S+\\s+good$`, 'm'));
  t.regex(await strata(['ca', 'revoke', serial, '--reason', 'superseded']), /Revoked .* \(superseded\)/);
  t.regex(await strata(['ca', 'list']), new RegExp(`^${serial}\\s.*revoked$`, 'm'));

  const exported = join(dir, 'root.key');
  t.regex(await strata(['ca', 'root-key', 'export', '--out', exported]), /no longer in the cluster/);
  const passphrase = (await readFile(join(h.dataDir, 'ca-root-passphrase'), 'utf8')).trim();
  const rootKey = createPrivateKey({ key: await readFile(exported, 'utf8'), passphrase });
  t.true(new X509Certificate(h.master.ca.rootPem).checkPrivateKey(rootKey), 'the exported key is the root\'s, and the passphrase file opens it');
  t.is((await h.master.records.get('certificateAuthority', 'cluster-ca'))!.value.rootKeyEncryptedPem, undefined, 'gone from the store');
  const again = await runStrata(['ca', 'root-key', 'export', '--out', join(dir, 'again.key')], { env });
  t.is(again.code, 1);
  t.regex(again.output, /already offline/);
  // Issuing goes on without the root key.
  await t.notThrowsAsync(strata(['ca', 'cert', '--out-dir', join(dir, 'after')]));
});

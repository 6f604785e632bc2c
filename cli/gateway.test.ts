/** `strata auth login` through the gateway (CA pinned by fingerprint or file) and `strata gateway status`, as real processes. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';
import { startTestGateway } from '../gateway/testing.ts';
import { mkApp } from '../dns/zone/testing.ts';
import { normaliseFingerprint } from './trust.ts';

test('auth login --url https://gateway pins the CA by fingerprint; later verbs and gateway status go through the gateway', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const gw = await startTestGateway(h);
  t.teardown(() => gw.close());
  await h.master.records.put('app', mkApp('/shop/web'));
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-gw-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  const credentials = join(h.dataDir, 'bootstrap-credentials.json');
  const url = gw.gateway.url;

  const unpinned = await runStrata(['auth', 'login', '--url', url, '--password-file', credentials], { env });
  t.is(unpinned.code, 2, unpinned.output);
  t.regex(unpinned.output, /is https: trust the cluster CA with --ca-file FILE, or --ca-fingerprint/);

  const wrong = await runStrata(['auth', 'login', '--url', url, '--password-file', credentials, '--ca-fingerprint', 'AB'.repeat(32)], { env });
  t.not(wrong.code, 0);
  t.regex(wrong.output, /has fingerprint [0-9A-F:]{95}, not AB:AB/);

  const fp = gw.gateway.caFingerprint.replaceAll(':', '').toLowerCase();
  const login = await runStrata(['auth', 'login', '--url', url, '--password-file', credentials, '--ca-fingerprint', fp], { env });
  t.is(login.code, 0, login.output);
  t.regex(login.output, new RegExp(`Logged in to ${url.replace(/[.]/g, '\\.')} as admin`));

  const status = await runStrata(['gateway', 'status'], { env });
  t.is(status.code, 0, status.output);
  t.regex(status.output, new RegExp(`^gateway: +${url.replace(/[.]/g, '\\.')}$`, 'm'));
  t.regex(status.output, /^\/service\/shop\/web\/ +0$/m);
  t.regex(status.output, new RegExp(`cluster CA: +SHA-256 ${gw.gateway.caFingerprint}`));
  const apps = await runStrata(['app', 'list'], { env });
  t.is(apps.code, 0, apps.output);
  t.regex(apps.output, /\/shop\/web/);
  t.true(gw.lines.some((l) => l.fields['path'] === '/v2/apps' && l.fields['uid'] === 'admin'), 'app list went through the gateway');

  // With the CA as a file instead (and the kept file reused when the URL is the same).
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, gw.ca);
  const byFile = await runStrata(['auth', 'login', '--url', url, '--password-file', credentials, '--ca-file', caFile], { env });
  t.is(byFile.code, 0, byFile.output);
  const again = await runStrata(['auth', 'login', '--url', url, '--password-file', credentials], { env });
  t.is(again.code, 0, again.output);
});

test('normaliseFingerprint accepts colons, case and a sha256 prefix; refuses other lengths', (t) => {
  const hex = 'ab'.repeat(32);
  t.is(normaliseFingerprint(hex), Array(32).fill('AB').join(':'));
  t.is(normaliseFingerprint(`sha256:${Array(32).fill('ab').join(':')}`), Array(32).fill('AB').join(':'));
  t.throws(() => normaliseFingerprint('abcd'), { message: /64 hex digits/ });
});

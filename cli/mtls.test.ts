/** `strata mtls status|renew|cert show` as a user runs them: real processes against a test master. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AGENT_RID } from '../control-plane/api/routes/agents.ts';
import { apiEnrol, MtlsClient } from '../security/mtls/client.ts';
import { startTestMaster } from '../test/harness/master.ts';
import { runStrata } from '../test/harness/process.ts';
import { describeChain } from './mtls.ts';

test('mtls status lists the master and enrolled agents; renew gives the master a new certificate; cert show reads a node\'s certificate', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'permissive' });
  t.teardown(() => h.close());
  const dir = await mkdtemp(join(tmpdir(), 'strata-cli-mtls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = { STRATA_CLI_CONFIG: join(dir, 'cli.json') };
  await writeFile(env.STRATA_CLI_CONFIG, JSON.stringify({ url: h.master.apiUrl, uid: 'admin', token: await h.superuserToken() }), { mode: 0o600 });
  const token = await h.tokenFor('agent-sa', [{ rid: AGENT_RID, actions: ['full'] }]);
  const tls = join(dir, 'tls');
  const agent = await MtlsClient.enrol({ enrol: apiEnrol({ masterUrl: () => h.master.apiUrl, agentId: 'cli-a1', token: async () => token }), dir: tls });
  t.teardown(() => agent.close());

  const status = await runStrata(['mtls', 'status'], { env });
  t.is(status.code, 0, status.output);
  t.regex(status.output, /mTLS between components: permissive \(trust domain strata\.local\)/);
  t.regex(status.output, /this master: spiffe:\/\/strata\.local\/master\/\S+ serial ([0-9a-f]{32})/);
  t.regex(status.output, /spiffe:\/\/strata\.local\/agent\/cli-a1\s+[0-9a-f]{32}\s+\S+\s+valid/);
  const before = /serial ([0-9a-f]{32})/.exec(status.output)![1];

  const renewed = await runStrata(['mtls', 'renew'], { env });
  t.is(renewed.code, 0, renewed.output);
  t.regex(renewed.output, /^Renewed spiffe:\/\/strata\.local\/master\/\S+: serial [0-9a-f]{32}/m);
  t.false(renewed.output.includes(before!), 'a new serial');

  const shown = await runStrata(['mtls', 'cert', 'show', '--dir', tls], { env });
  t.is(shown.code, 0, shown.output);
  t.regex(shown.output, new RegExp(`Certificate ${agent.certificate.current.serial} for spiffe://strata\\.local/agent/cli-a1`));
  t.regex(shown.output, /renew: {2}between \S+ and \S+/);
  const missing = await runStrata(['mtls', 'cert', 'show', '--dir', join(dir, 'nope')], { env });
  t.is(missing.code, 2, missing.output);
  t.regex(missing.output, /cannot read .*cert\.pem/);
});

test('describeChain: names the SPIFFE id, the validity with what is left, and the 60-90 % renewal window', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const leaf = await h.master.ca.newcert({ uid: 'a9', kind: 'agent' }, { algo: 'ecdsa', size: 256 }, { ttlSeconds: 1000 });
  const text = describeChain(leaf.certificateChain, new Date(leaf.notBefore.getTime() + 100_000));
  t.regex(text, /for spiffe:\/\/strata\.local\/agent\/a9/);
  t.regex(text, /\(\d+ s left\)/);
  t.regex(text, new RegExp(`renew: {2}between ${leaf.renewal.start.toISOString()} and ${leaf.renewal.end.toISOString()}`));
  t.regex(text, /chain: {2}2 certificate\(s\)/);
  t.regex(describeChain(leaf.certificateChain, new Date(leaf.notAfter.getTime() + 1000)), /EXPIRED/);
});

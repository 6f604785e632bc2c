/**
 * Master → agent mTLS on the agent's log endpoint, end to end in one
 * process (security.mtls=strict on both): the master reads a task's log over
 * mTLS with its master certificate; the agent refuses a plain call (even
 * with a valid grant) and an mTLS call whose client certificate is not a
 * master's; the master refuses an agent whose server certificate names
 * another agent. In permissive, an agent that never enrolled is read over
 * plain HTTP after the TLS attempt.
 */
import test from 'ava';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../control-plane/config/load.ts';
import type { Task } from '../../control-plane/model/schemas.ts';
import { AGENT_RID } from '../../control-plane/api/routes/agents.ts';
import { deploymentController } from '../controller/controller.ts';
import { noCgroups } from '../executor/cgroups.ts';
import { tempDir, waitFor } from '../executor/test-helpers.ts';
import { apiEnrol, agentCertificateProblem, MtlsClient, tlsFetch } from '../../security/mtls/client.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { AGENT_PRINCIPAL, ensureAgentPrincipal, startAgent } from './agent.ts';
import { SANDBOX_LOG_SCOPE } from './sandbox-logs.ts';

async function counter(registry: { getSingleMetric(name: string): unknown }, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name) as { get(): Promise<{ values: { labels: Record<string, string | number>; value: number }[] }> } | undefined;
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

test('strict: the master reads logs over mTLS; the agent refuses plain calls and non-master certificates', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'strict' }, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(async () => {
    const closing = h.close();
    h.master.app.server.closeAllConnections();
    await closing;
  });
  await h.master.whenLeader();
  await ensureAgentPrincipal(h.master.iam);
  const dataDir = join(await tempDir(t), 'agent');
  const config = loadConfig({ flags: { 'data-dir': dataDir, 'agent-port': '0', 'agent-id': 'logs-mtls-S0', 'security-mtls': 'strict' }, env: {} });
  const agent = await startAgent({
    config,
    logger: pino({ level: 'silent' }),
    masterUrl: h.master.apiUrl,
    token: async () => (await h.master.tokens.issue(AGENT_PRINCIPAL, { ttlSeconds: 600 })).token,
    cgroups: noCgroups('tests'),
    metrics: h.master.metrics,
    taskRunner: { waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, minPollIntervalMs: 20 },
  });
  t.teardown(() => agent.close({ killTasks: true }));
  t.truthy(agent.mtls(), 'the agent enrolled');

  const su = await h.superuserToken();
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${su}` }, payload: { id: '/mtls/logs', cmd: 'echo over-mtls; exec sleep 300', cpus: 0.1, mem: 32, portDefinitions: [] } });
  t.is(created.statusCode, 201, created.body);
  let task: Task | undefined;
  await waitFor('a RUNNING task', async () => {
    task = (await h.master.records.list('task')).records.map((r) => r.value).find((x) => x.appId === '/mtls/logs' && x.state === 'RUNNING');
    return task !== undefined;
  }, 20_000);
  const url = `/v1/tasks/${task!.id}/logs`;

  // Through the master: over mTLS (strict has no plain fallback), verified by the agent's listener.
  const handshakesBefore = await counter(h.master.metrics, 'strata_mtls_handshakes_total', { listener: 'agent' });
  await waitFor('the output through the master', async () => (await h.master.app.inject({ method: 'GET', url, headers: { authorization: `token=${su}` } })).body === 'over-mtls\n');
  t.true(await counter(h.master.metrics, 'strata_task_log_agent_calls_total', { transport: 'mtls' }) >= 1, 'the master called the agent over mTLS');
  t.is(await counter(h.master.metrics, 'strata_task_log_agent_calls_total', { transport: 'plain' }), 0, 'never over plain HTTP');
  t.true(await counter(h.master.metrics, 'strata_mtls_handshakes_total', { listener: 'agent' }) > handshakesBefore, 'the agent verified the master\'s certificate');

  const grant = (await h.master.tokens.issue('strata-master', { ttlSeconds: 60, scope: SANDBOX_LOG_SCOPE, claims: { agentId: agent.id, taskId: task!.id } })).token;
  const agentLogs = `${agent.url}/v1/sandboxes/${task!.id}/logs`;

  // Plain HTTP with a valid grant: refused before the grant is looked at.
  const plain = await fetch(agentLogs, { headers: { authorization: `token=${grant}` } });
  t.is(plain.status, 403);
  t.is(((await plain.json()) as { code: string }).code, 'MTLS_REQUIRED');
  t.is((await fetch(`${agent.url}/health`)).status, 200, '/health stays plain');

  // mTLS with a valid grant but an agent's client certificate (another agent of the cluster): refused.
  const agentToken = await h.tokenFor('other-agent', [{ rid: AGENT_RID, actions: ['full'] }]);
  const other = await MtlsClient.enrol({ enrol: apiEnrol({ masterUrl: () => h.master.apiUrl, agentId: 'other-S0', token: async () => agentToken }) });
  t.teardown(() => other.close());
  const held = other.certificate.current;
  const tls = { key: held.keyPem, cert: held.certificateChain, ca: held.rootCa, agent: false as const };
  const notMaster = await tlsFetch(new URL(agentLogs.replace(/^http:/, 'https:')), { headers: { authorization: `token=${grant}` } }, { ...tls, checkServerIdentity: () => undefined });
  t.is(notMaster.status, 403);
  t.is(((await notMaster.json()) as { code: string }).code, 'MTLS_IDENTITY_MISMATCH');

  // The same over the master's own certificate and trust: served (the grant is still checked).
  const master = h.master.mtls!;
  const asMaster = await tlsFetch(new URL(agentLogs.replace(/^http:/, 'https:')), { headers: { authorization: `token=${grant}` } }, {
    ...master.secureContextOptions(), agent: false,
    checkServerIdentity: (_host, cert) => {
      const problem = agentCertificateProblem(cert, master.trustDomain, agent.id);
      return problem ? new Error(problem) : undefined;
    },
  });
  t.is(asMaster.status, 200);
  t.is(await asMaster.text(), 'over-mtls\n');
  const noGrant = await tlsFetch(new URL(agentLogs.replace(/^http:/, 'https:')), {}, { ...master.secureContextOptions(), agent: false, checkServerIdentity: () => undefined });
  t.is(noGrant.status, 401, 'mTLS does not replace the grant');
  t.is(((await noGrant.json()) as { code: string }).code, 'AUTH_TOKEN_INVALID');

  // A master expecting another agent id refuses this agent's server certificate.
  await t.throwsAsync(tlsFetch(new URL(agentLogs.replace(/^http:/, 'https:')), { headers: { authorization: `token=${grant}` } }, {
    ...master.secureContextOptions(), agent: false,
    checkServerIdentity: (_host, cert) => {
      const problem = agentCertificateProblem(cert, master.trustDomain, 'someone-else-S0');
      return problem ? new Error(problem) : undefined;
    },
  }), { message: /not agent someone-else-S0's certificate/ });
});

test('permissive: a master reads the log of an agent that never enrolled (security.mtls=off on the agent) over plain HTTP after the TLS attempt', async (t) => {
  const h = await startTestMaster({ 'security.mtls': 'permissive' }, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(async () => {
    const closing = h.close();
    h.master.app.server.closeAllConnections();
    await closing;
  });
  await h.master.whenLeader();
  await ensureAgentPrincipal(h.master.iam);
  const dataDir = join(await tempDir(t), 'agent');
  const config = loadConfig({ flags: { 'data-dir': dataDir, 'agent-port': '0', 'agent-id': 'logs-plain-S0', 'security-mtls': 'off' }, env: {} });
  const agent = await startAgent({
    config,
    logger: pino({ level: 'silent' }),
    masterUrl: h.master.apiUrl,
    token: async () => (await h.master.tokens.issue(AGENT_PRINCIPAL, { ttlSeconds: 600 })).token,
    cgroups: noCgroups('tests'),
    taskRunner: { waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, minPollIntervalMs: 20 },
  });
  t.teardown(() => agent.close({ killTasks: true }));
  t.is(agent.mtls(), undefined, 'not enrolled');
  const su = await h.superuserToken();
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${su}` }, payload: { id: '/mtls/plain', cmd: 'echo over-plain; exec sleep 300', cpus: 0.1, mem: 32, portDefinitions: [] } });
  t.is(created.statusCode, 201, created.body);
  let task: Task | undefined;
  await waitFor('a RUNNING task', async () => {
    task = (await h.master.records.list('task')).records.map((r) => r.value).find((x) => x.appId === '/mtls/plain' && x.state === 'RUNNING');
    return task !== undefined;
  }, 20_000);
  await waitFor('the output through the master', async () => (await h.master.app.inject({ method: 'GET', url: `/v1/tasks/${task!.id}/logs`, headers: { authorization: `token=${su}` } })).body === 'over-plain\n');
  t.true(await counter(h.master.metrics, 'strata_task_log_agent_calls_total', { transport: 'plain' }) >= 1, 'fell back to plain HTTP');
  t.is(await counter(h.master.metrics, 'strata_task_log_agent_calls_total', { transport: 'mtls' }), 0);
});

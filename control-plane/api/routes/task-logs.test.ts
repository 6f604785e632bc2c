/**
 * Task logs end to end in one process: a test master with the deployment
 * controller, a real agent (`startAgent`, real processes, no cgroups) and
 * `GET /v1/tasks/{id}/logs` proxied to the agent's sandbox endpoint with a
 * grant. Tail, stderr, follow (over real HTTP), permissions, and the errors:
 * unknown task, log gone, agent gone, grants and user tokens in the wrong place.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { pino } from 'pino';
import { loadConfig } from '../../config/load.ts';
import type { Task } from '../../model/schemas.ts';
import { deploymentController } from '../../../scheduler/controller/controller.ts';
import { noCgroups } from '../../../scheduler/executor/cgroups.ts';
import { tempDir, waitFor } from '../../../scheduler/executor/test-helpers.ts';
import { AGENT_PRINCIPAL, ensureAgentPrincipal, startAgent, type AgentHandle } from '../../../scheduler/agent/agent.ts';
import { SANDBOX_LOG_SCOPE } from '../../../scheduler/agent/sandbox-logs.ts';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';

const RID = (app: string): string => `dcos:service:marathon:marathon:services:${app}`;

async function cluster(t: ExecutionContext): Promise<{ h: TestMaster; agent: AgentHandle; su: string; dataDir: string }> {
  const h = await startTestMaster({}, { leaderLoops: [deploymentController({ debounceMs: 10 })] });
  t.teardown(async () => {
    // The agent's keep-alive connections to the master outlive it; drop them, or app.close() waits for their timeout.
    const closing = h.close();
    h.master.app.server.closeAllConnections();
    await closing;
  });
  await h.master.whenLeader();
  await ensureAgentPrincipal(h.master.iam);
  const dataDir = join(await tempDir(t), 'agent');
  const config = loadConfig({ flags: { 'data-dir': dataDir, 'agent-port': '0' }, env: {} });
  const agent = await startAgent({
    config,
    logger: pino({ level: 'silent' }),
    masterUrl: h.master.apiUrl,
    token: async () => (await h.master.tokens.issue(AGENT_PRINCIPAL, { ttlSeconds: 600 })).token,
    cgroups: noCgroups('tests'),
    taskRunner: { waitSeconds: 2, retryInitialMs: 50, retryMaxMs: 200, minPollIntervalMs: 20 },
  });
  let closed = false;
  t.teardown(async () => {
    if (!closed) await agent.close({ killTasks: true });
  });
  const close = agent.close.bind(agent);
  return { h, agent: { ...agent, close: async (o) => { closed = true; await close(o); } }, su: await h.superuserToken(), dataDir };
}

async function runningTask(h: TestMaster, su: string, app: Record<string, unknown> & { id: string }): Promise<Task> {
  const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${su}` }, payload: { cpus: 0.1, mem: 32, portDefinitions: [], ...app } });
  if (created.statusCode !== 201) throw new Error(created.body);
  let task: Task | undefined;
  await waitFor(`a RUNNING task of ${app.id}`, async () => {
    task = (await h.master.records.list('task')).records.map((r) => r.value).find((x) => x.appId === app.id && x.state === 'RUNNING');
    return task !== undefined;
  }, 20_000);
  return task!;
}

const get = (h: TestMaster, token: string, url: string) => h.master.app.inject({ method: 'GET', url, headers: { authorization: `token=${token}` } });

test('tail of stdout and stderr through the master; read on the app is needed; unknown tasks and gone logs are told apart', async (t) => {
  const { h, su, dataDir } = await cluster(t);
  const task = await runningTask(h, su, { id: '/logs/tail', cmd: 'for i in $(seq 1 30); do echo "line $i"; done; echo oops >&2; exec sleep 300' });
  const url = `/v1/tasks/${task.id}/logs`;
  await waitFor('the output to be written', async () => (await get(h, su, `${url}?lines=1`)).body === 'line 30\n');

  const five = await get(h, su, `${url}?lines=5`);
  t.is(five.statusCode, 200, five.body);
  t.regex(String(five.headers['content-type']), /^text\/plain/);
  t.is(five.body, 'line 26\nline 27\nline 28\nline 29\nline 30\n');
  t.is((await get(h, su, url)).body.split('\n').length - 1, 10, 'ten lines by default, as dcos task log');
  t.is((await get(h, su, `${url}?stream=stderr`)).body, 'oops\n');
  t.is((await get(h, su, `${url}?stream=stdin`)).statusCode, 400);
  t.is((await get(h, su, `${url}?lines=-1`)).statusCode, 400);

  const gate = { rid: 'dcos:adminrouter:service:marathon', actions: ['full' as const] };
  const reader = await h.tokenFor('reader', [gate, { rid: RID('/logs/tail'), actions: ['read'] }]);
  const other = await h.tokenFor('other', [gate, { rid: RID('/elsewhere'), actions: ['read'] }]);
  t.is((await get(h, reader, `${url}?lines=1`)).body, 'line 30\n', 'read on the app is enough');
  const denied = await get(h, other, url);
  t.is(denied.statusCode, 403, denied.body);
  t.deepEqual(denied.json().details, { rid: RID('/logs/tail'), action: 'read' });

  const unknown = await get(h, su, '/v1/tasks/logs_tail.instance-nope._app.1/logs');
  t.is(unknown.statusCode, 404);
  t.is(unknown.json().code, 'RECORD_NOT_FOUND');

  await rm(join(dataDir, 'sandboxes', task.id), { recursive: true, force: true });
  const gone = await get(h, su, url);
  t.is(gone.statusCode, 410, gone.body);
  t.is(gone.json().code, 'TASK_LOG_GONE');
});

test('follow streams new output over HTTP until the caller leaves, and ends by itself when the task ends', async (t) => {
  const { h, su } = await cluster(t);
  const ticking = await runningTask(h, su, { id: '/logs/tick', cmd: 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.05; done' });
  const res = await fetch(`${h.master.apiUrl}/v1/tasks/${ticking.id}/logs?lines=1&follow=true`, { headers: { authorization: `token=${su}` } });
  t.is(res.status, 200);
  const reader = res.body!.getReader();
  let text = '';
  while ((text.match(/tick \d+\n/g) ?? []).length < 15) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  await reader.cancel();
  const numbers = (text.match(/tick (\d+)\n/g) ?? []).map((l) => Number(l.slice(5)));
  t.true(numbers.length >= 15, text);
  t.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), 'consecutive lines, none lost or repeated');

  const short = await runningTask(h, su, { id: '/logs/short', cmd: 'echo first; sleep 0.5; echo second; sleep 0.5; echo last', backoffSeconds: 60 });
  const followed = await get(h, su, `/v1/tasks/${short.id}/logs?lines=100&follow=true`);
  t.is(followed.statusCode, 200);
  t.is(followed.body, 'first\nsecond\nlast\n', 'the stream ended when the task did, with everything it wrote');
});

test('grants and tokens stay in their place; an agent that is gone gives 502', async (t) => {
  const { h, su, agent } = await cluster(t);
  const task = await runningTask(h, su, { id: '/logs/gone', cmd: 'echo hi; exec sleep 300' });
  const agentLogs = `${agent.url}/v1/sandboxes/${task.id}/logs`;
  const userOnAgent = await fetch(agentLogs, { headers: { authorization: `token=${su}` } });
  t.is(userOnAgent.status, 401, 'a user token is no grant');
  const grant = (await h.master.tokens.issue('strata-master', { ttlSeconds: 60, scope: SANDBOX_LOG_SCOPE, claims: { agentId: agent.id, taskId: task.id } })).token;
  const other = (await h.master.tokens.issue('strata-master', { ttlSeconds: 60, scope: SANDBOX_LOG_SCOPE, claims: { agentId: agent.id, taskId: 'another.task' } })).token;
  t.is(await (await fetch(agentLogs, { headers: { authorization: `token=${grant}` } })).text(), 'hi\n');
  t.is((await fetch(agentLogs, { headers: { authorization: `token=${other}` } })).status, 401, 'a grant is for one task');
  t.is((await get(h, grant, '/v2/apps')).statusCode, 401, 'a grant never authenticates an API call');

  await agent.close({ killTasks: true });
  const res = await get(h, su, `/v1/tasks/${task.id}/logs`);
  t.is(res.statusCode, 502, res.body);
  t.is(res.json().code, 'TASK_LOG_AGENT_UNAVAILABLE');
  t.regex(res.json().message, /cannot be reached/);
});

/**
 * In-process integration of group deployments and deployment status: a
 * test master running the deployment controller, a fake agent
 * (test/harness/fake-agent.ts), and health reported through the agent's
 * status endpoint as a real agent does.
 */
import test from 'ava';
import type { Deployment, Task } from '../../control-plane/model/schemas.ts';
import { eventually, startControlledCluster } from '../../test/harness/fake-agent.ts';

const COMMAND_CHECK = { protocol: 'COMMAND', command: { value: 'true' }, gracePeriodSeconds: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 0 };

test('a group deployment starts an app only once the app it depends on is healthy, and says so while it waits', async (t) => {
  const { h, api } = await startControlledCluster(t);
  const tasks = async (appId: string): Promise<Task[]> => (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => x.appId === appId);
  const deployments = async (): Promise<Deployment[]> => (await api('GET', '/v2/deployments')).json() as Deployment[];

  const created = await api('POST', '/v2/groups', {
    id: '/shop',
    apps: [
      { id: 'db', cmd: 'db', cpus: 0.1, mem: 16, healthChecks: [COMMAND_CHECK] },
      { id: 'web', cmd: 'web', cpus: 0.1, mem: 16, instances: 2, dependencies: ['db'] },
    ],
  });
  t.is(created.statusCode, 201, created.body);
  await eventually(async () => (await tasks('/shop/db')).some((x) => x.state === 'RUNNING'), '/shop/db RUNNING');
  await eventually(async () => {
    const [d] = await deployments();
    return d?.waitReasons?.some((r) => r.app === '/shop/db' && r.reason === 'health-failing') === true;
  }, 'the deployment says /shop/db is not healthy yet');
  const [waiting] = await deployments();
  t.deepEqual(waiting!.waitReasons!.map((r) => `${r.app} ${r.reason}`), ['/shop/db health-failing', '/shop/web dependency-not-ready']);
  t.is(waiting!.currentStep, 2);
  t.deepEqual(await tasks('/shop/web'), [], 'web waits for its dependency');

  // The agent reports db healthy: web starts, and the deployment ends.
  const [db] = await tasks('/shop/db');
  const token = await h.superuserToken();
  const report = await h.master.app.inject({
    method: 'PUT',
    url: `/v1/agents/${db!.agentId}/tasks/${db!.id}/status`,
    headers: { authorization: `token=${token}` },
    payload: { state: 'RUNNING', healthCheckResults: [{ alive: true, consecutiveFailures: 0, firstSuccess: new Date().toISOString() }] },
  });
  t.is(report.statusCode, 200, report.body);
  await eventually(async () => (await tasks('/shop/web')).filter((x) => x.state === 'RUNNING').length === 2 && (await deployments()).length === 0, 'web RUNNING and the deployment done');
  const web = await tasks('/shop/web');
  t.true(web.every((x) => Date.parse(x.stagedAt) >= Date.parse(db!.startedAt!)), 'web was launched after db ran');
});

test('wait reasons for no capacity and an unmet constraint in GET /v2/deployments', async (t) => {
  const { api } = await startControlledCluster(t);
  t.is((await api('POST', '/v2/apps', { id: '/huge', cmd: 'x', cpus: 1000, mem: 16 })).statusCode, 201);
  t.is((await api('POST', '/v2/apps', { id: '/picky', cmd: 'x', cpus: 0.1, mem: 16, instances: 2, constraints: [['hostname', 'LIKE', 'nowhere']] })).statusCode, 201);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as Deployment[]).every((d) => (d.waitReasons?.length ?? 0) > 0), 'both deployments say why they wait');
  const all = (await api('GET', '/v2/deployments')).json() as Deployment[];
  const by = new Map(all.flatMap((d) => d.waitReasons!.map((r) => [r.app, r] as const)));
  t.like(by.get('/huge'), { reason: 'no-capacity', instances: 1 });
  t.regex(by.get('/huge')!.message, /the closest \(agent-1\) lacks cpus 992/);
  t.like(by.get('/picky'), { reason: 'constraint-unmet', instances: 2 });
  t.regex(by.get('/picky')!.message, /constraint hostname:LIKE:nowhere turned away 1 agent/);
  // Marathon's fields are intact.
  t.true(all.every((d) => Array.isArray(d.steps) && Array.isArray(d.currentActions) && d.totalSteps === 2 && typeof d.version === 'string'));
});

/** Reads the SSE stream until `check` holds on the text so far. */
async function events(apiUrl: string, token: string, query: string) {
  const abort = new AbortController();
  const res = await fetch(`${apiUrl}/v2/events${query}`, { headers: { authorization: `token=${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  const body = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    abort: () => abort.abort(),
    async until(check: (text: string) => boolean, ms = 15_000): Promise<string> {
      const end = Date.now() + ms;
      while (!check(text)) {
        if (Date.now() > end) throw new Error(`events timed out; got:\n${text}`);
        const chunk = await Promise.race([body.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), end - Date.now()))]);
        if (chunk && !chunk.done) text += decoder.decode(chunk.value, { stream: true });
      }
      return text;
    },
  };
}

test('a deployment past its deadline fails (deployment_failed) and is rolled back automatically', async (t) => {
  const { h, api } = await startControlledCluster(t);
  const token = await h.superuserToken();
  const stream = await events(h.master.apiUrl, token, '?event_type=deployment_failed&event_type=deployment_step_failure&event_type=deployment_success&event_type=deployment_info');
  t.teardown(() => stream.abort());
  t.is((await api('POST', '/v2/apps', { id: '/web', cmd: 'web-1', cpus: 0.1, mem: 16, instances: 2 })).statusCode, 201);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 0, 'v1 deployed');
  const v1 = ((await api('GET', '/v2/apps/web')).json() as { app: { version: string } }).app.version;

  // v2 can never be placed; with minimumHealthCapacity 1 the old tasks stay while it waits.
  const refused = await api('PUT', '/v2/apps/web?rollbackOnFailure=true', { cmd: 'web-2' });
  t.is(refused.statusCode, 400, 'rollbackOnFailure alone is refused');
  t.regex(refused.body, /rollbackOnFailure needs deadlineSeconds/);
  const put = await api('PUT', '/v2/apps/web?deadlineSeconds=1&rollbackOnFailure=true', { cmd: 'web-2', constraints: [['hostname', 'LIKE', 'nowhere']] });
  t.is(put.statusCode, 200, put.body);
  const failedId = (put.json() as { deploymentId: string }).deploymentId;
  const text = await stream.until((s) => s.includes('event: deployment_failed') && s.slice(s.indexOf('event: deployment_failed')).includes('event: deployment_success'));
  t.regex(text, new RegExp(`event: deployment_step_failure\\n[^\\n]*"id":"${failedId}"`));
  const failed = /event: deployment_failed\ndata: (.*)\n/.exec(text)![1]!;
  t.like(JSON.parse(failed), { eventType: 'deployment_failed', id: failedId });
  t.regex(JSON.parse(failed).reason, /deadline .* passed at step 1 of 1: \/web: 2 instance\(s\) fit on no agent: constraint hostname:LIKE:nowhere/);
  t.false(new RegExp(`event: deployment_success\\ndata: [^\\n]*"id":"${failedId}"`).test(text), 'the failed deployment did not succeed');

  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 0, 'the rollback deployment finished');
  const app = ((await api('GET', '/v2/apps/web')).json() as { app: { cmd: string; constraints: unknown[]; version: string } }).app;
  t.is(app.cmd, 'web-1');
  t.deepEqual(app.constraints, []);
  t.true(app.version > v1, 'the rollback is a new version');
  const running = (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => x.appId === '/web' && x.state === 'RUNNING');
  t.is(running.length, 2, 'the old tasks kept running all along');
  const metrics = (await api('GET', '/metrics')).body;
  t.regex(metrics, /strata_scheduler_deployments_failed_total 1\b/);
  t.regex(metrics, /strata_scheduler_deployment_rollbacks_total\{outcome="rolled-back"\} 1\b/);
  t.regex(metrics, /strata_scheduler_tasks_launched_total 2\b/, 'the rollback to the running configuration replaced no task');
  t.notRegex(metrics, /strata_scheduler_tasks_killed_total\{reason="upgrade"\}/);
});

test('readiness: a new task counts only once the agent reports it ready; verdicts show per task and on the deployment', async (t) => {
  const { h, api } = await startControlledCluster(t);
  const created = await api('POST', '/v2/apps', {
    id: '/ready', cmd: 'x', cpus: 0.1, mem: 16, portDefinitions: [{ port: 0, name: 'http' }],
    readinessChecks: [{ name: 'warm', protocol: 'HTTP', path: '/ready', portName: 'http', intervalSeconds: 2, timeoutSeconds: 1, preserveLastResponse: true }],
  });
  t.is(created.statusCode, 201, created.body);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as Deployment[])[0]?.waitReasons?.some((r) => r.reason === 'readiness-failing') === true, 'RUNNING, healthy, not ready');
  const [task] = (await h.master.records.list('task')).records.map((r) => r.value);
  const token = await h.superuserToken();
  const report = (ready: boolean, status: number) =>
    h.master.app.inject({
      method: 'PUT', url: `/v1/agents/${task!.agentId}/tasks/${task!.id}/status`, headers: { authorization: `token=${token}` },
      payload: { state: 'RUNNING', readinessCheckResults: [{ taskId: task!.id, name: 'warm', ready, lastResponse: { status, contentType: 'text/plain', body: ready ? 'ok' : 'warming' } }] },
    });
  t.is((await report(false, 503)).statusCode, 200);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as Deployment[])[0]?.currentActions[0]?.readinessCheckResults.length === 1, 'the verdict on the deployment');
  const [d] = (await api('GET', '/v2/deployments')).json() as Deployment[];
  t.like(d!.currentActions[0]!.readinessCheckResults[0], { taskId: task!.id, name: 'warm', ready: false, lastResponse: { status: 503 } });
  t.is((await report(true, 200)).statusCode, 200);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 0, 'the deployment done once ready');
  const tasks = ((await api('GET', '/v2/apps/ready/tasks')).json() as { tasks: { readinessCheckResults?: unknown[] }[] }).tasks;
  t.like(tasks[0]!.readinessCheckResults![0], { name: 'warm', ready: true });
});

test('a failed deployment without rollbackOnFailure stays failed and locked until rolled back by hand', async (t) => {
  const { h, api } = await startControlledCluster(t);
  t.is((await api('POST', '/v2/apps', { id: '/api', cmd: 'api-1', cpus: 0.1, mem: 16 })).statusCode, 201);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 0, 'v1 deployed');
  const put = await api('PUT', '/v2/apps/api?deadlineSeconds=1', { cmd: 'api-2', mem: 1_000_000 });
  t.is(put.statusCode, 200, put.body);
  const id = (put.json() as { deploymentId: string }).deploymentId;
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as Deployment[]).some((d) => d.id === id && d.state === 'failed'), 'failed', 10_000);
  const [failed] = (await api('GET', '/v2/deployments')).json() as Deployment[];
  t.like(failed, { id, state: 'failed', rollbackOnFailure: false });
  t.regex(failed!.failureMessage!, /\/api: 1 instance\(s\) fit on no agent: the closest \(agent-1\) lacks mem/);
  t.is(typeof failed!.failedAt, 'string');
  await new Promise((r) => setTimeout(r, 300));
  t.is(((await api('GET', '/v2/deployments')).json() as unknown[]).length, 1, 'it stays (no automatic rollback)');
  const locked = await api('PUT', '/v2/apps/api', { cmd: 'api-3' });
  t.is(locked.statusCode, 409, 'still locks its app');
  const rollback = await api('DELETE', `/v2/deployments/${id}`);
  t.is(rollback.statusCode, 200, rollback.body);
  await eventually(async () => ((await api('GET', '/v2/deployments')).json() as unknown[]).length === 0, 'the rollback done');
  t.is(((await api('GET', '/v2/apps/api')).json() as { app: { cmd: string } }).app.cmd, 'api-1');
  const tasks = (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => x.appId === '/api' && x.state === 'RUNNING');
  t.is(tasks.length, 1);
});

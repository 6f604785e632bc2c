/**
 * `GET /v2/events`: the pure translation, then a real stream (the test
 * master listens on a free port; fetch reads the body as it comes).
 */
import test from 'ava';
import type { Deployment, Task } from '../../model/schemas.ts';
import { startTestMaster, type TestMaster } from '../../../test/harness/master.ts';
import { mkApp, mkDeployment } from '../../../scheduler/controller/testing.ts';
import { openEventStreams, sseFrame, translate } from './marathon-events.ts';

const NOW = '2026-01-01T00:00:10.000Z';

function task(state: Task['state'], alive?: boolean): Task {
  return {
    id: 'web.instance-1._app.1', appId: '/web', agentId: 'a1', host: 'a1.example', state, stagedAt: NOW, stateChangedAt: NOW, ports: [31000], servicePorts: [], ipAddresses: [],
    healthCheckResults: alive === undefined ? [] : [{ alive, consecutiveFailures: alive ? 0 : 1 }], version: NOW, resources: { cpus: 0.5, memMb: 64, diskMb: 0, gpus: 0 }, role: '*',
  } as Task;
}

test('apps: a new version is api_post_event, a deletion app_terminated_event', (t) => {
  const a = mkApp('/web');
  t.deepEqual(translate('app', undefined, a, NOW).map((e) => e.eventType), ['api_post_event']);
  t.deepEqual(translate('app', a, a, NOW), []);
  t.deepEqual(translate('app', a, undefined, NOW), [{ eventType: 'app_terminated_event', timestamp: NOW, appId: '/web' }]);
});

test('tasks: a state change is a status_update_event with Marathon fields; a health flip is health_status_changed_event', (t) => {
  const [e] = translate('task', task('STAGING'), task('RUNNING'), NOW);
  t.like(e, { eventType: 'status_update_event', taskStatus: 'TASK_RUNNING', slaveId: 'a1', appId: '/web', host: 'a1.example', ports: [31000] });
  t.deepEqual(translate('task', task('RUNNING'), task('RUNNING'), NOW), []);
  t.deepEqual(translate('task', task('RUNNING', true), task('RUNNING', false), NOW).map((x) => [x.eventType, x['alive']]), [['health_status_changed_event', false]]);
});

test('deployments: creation and step changes are deployment_info, an advance also deployment_step_success, deletion deployment_success', (t) => {
  const d0: Deployment = mkDeployment('5d2c7a1e-0b3f-4c1a-9e7d-2f6b8a9c0d1e', [{ actions: [{ action: 'StartApplication', app: '/web' }] }, { actions: [{ action: 'ScaleApplication', app: '/web' }] }], ['/web']);
  const d1 = { ...d0, currentStep: 1 };
  const d2 = { ...d0, currentStep: 2 };
  t.deepEqual(translate('deployment', undefined, d0, NOW).map((e) => e.eventType), ['deployment_info']);
  t.deepEqual(translate('deployment', d0, d1, NOW).map((e) => e.eventType), ['deployment_info']);
  t.deepEqual(translate('deployment', d1, d2, NOW).map((e) => e.eventType), ['deployment_step_success', 'deployment_info']);
  t.like(translate('deployment', d2, undefined, NOW)[0], { eventType: 'deployment_success', id: d0.id });
});

test('deployments: a failure is deployment_step_failure and deployment_failed; removing a failed deployment is no deployment_success', (t) => {
  const d: Deployment = { ...mkDeployment('d-failed', [{ actions: [{ action: 'RestartApplication', app: '/web' }] }], ['/web']), state: 'running', currentStep: 1 };
  const failed: Deployment = { ...d, state: 'failed', failedAt: NOW, failureMessage: 'deadline passed', waitReasons: [{ app: '/web', reason: 'no-capacity', message: 'm', since: NOW }] };
  const events = translate('deployment', d, failed, NOW);
  t.deepEqual(events.map((e) => e.eventType), ['deployment_step_failure', 'deployment_failed']);
  t.like(events[1], { id: 'd-failed', reason: 'deadline passed', waitReasons: [{ app: '/web', reason: 'no-capacity' }] });
  t.deepEqual(translate('deployment', failed, { ...failed, waitReasons: [] }, NOW), [], 'already failed: no second event');
  t.deepEqual(translate('deployment', failed, undefined, NOW), []);
  const group: Deployment = { ...d, groupId: '/shop' };
  t.deepEqual(translate('deployment', group, undefined, NOW).map((e) => [e.eventType, e['groupId']]), [['deployment_success', undefined], ['group_change_success', '/shop']]);
  t.deepEqual(translate('deployment', group, { ...group, state: 'failed' }, NOW).map((e) => e.eventType), ['deployment_step_failure', 'deployment_failed', 'group_change_failed']);
});

test('an SSE frame names the event and carries its JSON', (t) => {
  t.is(sseFrame({ eventType: 'x', timestamp: NOW }), `event: x\ndata: {"eventType":"x","timestamp":"${NOW}"}\n\n`);
});

/** Reads frames from a streaming body until `until` holds (or times out). */
async function reader(h: TestMaster, token: string, query = '') {
  const abort = new AbortController();
  const res = await fetch(`${h.master.apiUrl}/v2/events${query}`, { headers: { authorization: `token=${token}`, accept: 'text/event-stream' }, signal: abort.signal });
  const body = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  return {
    res,
    abort: () => abort.abort(),
    async until(check: (text: string) => boolean, ms = 5_000): Promise<string> {
      const deadline = Date.now() + ms;
      while (!check(text)) {
        if (Date.now() > deadline) throw new Error(`timed out; got: ${text}`);
        const chunk = await Promise.race([body.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
        if (chunk?.done) throw new Error(`stream ended; got: ${text}`);
        if (chunk?.value) text += decoder.decode(chunk.value, { stream: true });
      }
      return text;
    },
  };
}

test.serial('the stream: attached first, then api_post_event and deployment_info for a POST, filtered by event_type, and it closes when the client goes', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();

  const plain = await fetch(`${h.master.apiUrl}/v2/events`, { headers: { authorization: `token=${token}` } });
  t.is(plain.status, 405);

  const all = await reader(h, token);
  t.is(all.res.status, 200);
  t.regex(all.res.headers.get('content-type') ?? '', /text\/event-stream/);
  await all.until((x) => x.includes('event: event_stream_attached'));
  const only = await reader(h, token, '?event_type=deployment_info&event_type=app_terminated_event');
  await new Promise((r) => setTimeout(r, 50));

  const post = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: { authorization: `token=${token}` }, payload: { id: '/web', cmd: 'sleep 1', cpus: 0.1, mem: 16, instances: 0 } });
  t.is(post.statusCode, 201, post.body);
  const text = await all.until((x) => x.includes('event: api_post_event') && x.includes('event: deployment_info'));
  const post1 = text.split('\n\n').find((f) => f.startsWith('event: api_post_event'))!;
  t.like(JSON.parse(post1.split('data: ')[1]!), { eventType: 'api_post_event', uri: '/v2/apps/web', appDefinition: { id: '/web' } });

  const del = await h.master.app.inject({ method: 'DELETE', url: '/v2/apps/web?force=true', headers: { authorization: `token=${token}` } });
  t.is(del.statusCode, 200, del.body);
  const filtered = await only.until((x) => x.includes('event: app_terminated_event'));
  t.false(filtered.includes('api_post_event'));
  t.false(filtered.includes('event_stream_attached'));
  t.true(filtered.includes('event: deployment_info'));

  t.is(openEventStreams(), 2);
  all.abort();
  only.abort();
  const gone = Date.now() + 5_000;
  while (openEventStreams() > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 10));
  t.is(openEventStreams(), 0, 'the server ended both streams when their clients went');
  const t0 = Date.now();
  // The server notices the clients went: closing the master does not hang on the streams.
  await h.close();
  t.true(Date.now() - t0 < 5_000, 'closing did not wait for the streams');
});

test.serial('keep-alive comments flow on an idle stream', async (t) => {
  const { marathonEventRoutes, marathonEventRoutesWith } = await import('./marathon-events.ts');
  const { ROUTE_MODULES } = await import('../app.ts');
  const h = await startTestMaster();
  t.teardown(() => h.close());
  // A second API on the same master state, with a short keep-alive.
  const { buildApi } = await import('../app.ts');
  const { createMetrics } = await import('../metrics.ts');
  const app = await buildApi(
    {
      config: (await import('../../config/load.ts')).loadConfig({ env: {} }),
      store: h.store, records: h.master.records, tokens: h.master.tokens, iam: h.master.iam,
      metrics: createMetrics({ store: h.store, isLeader: () => true }),
      role: () => 'leader',
      leader: async () => ({ id: 'x', apiUrl: 'http://x', fencingToken: 1, electedAt: new Date().toISOString() }),
    } as never,
    { routes: [...ROUTE_MODULES.filter((m) => m !== marathonEventRoutes), marathonEventRoutesWith({ keepAliveMs: 50 })] },
  );
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const token = await h.superuserToken();
  const res = await fetch(`http://127.0.0.1:${port}/v2/events`, { headers: { authorization: `token=${token}`, accept: 'text/event-stream' } });
  const body = res.body!.getReader();
  let text = '';
  while ((text.match(/^:\n\n/gm) ?? []).length < 2) {
    const { value, done } = await body.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  t.true((text.match(/^:\n\n/gm) ?? []).length >= 2, text);
  // Server close ends the open stream.
  await app.close();
  for (;;) {
    const { done } = await body.read();
    if (done) break;
  }
  t.is(openEventStreams(), 0);
});

test.serial('the stream: task state changes in the store arrive as status_update_event', async (t) => {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const token = await h.superuserToken();
  const s = await reader(h, token, '?event_type=status_update_event');
  t.is(s.res.status, 200);
  await new Promise((r) => setTimeout(r, 50));
  const staged = await h.master.records.put('task', task('STAGING'), { casIndex: 0 });
  t.true(staged.ok);
  const current = await h.master.records.get('task', 'web.instance-1._app.1');
  t.true((await h.master.records.put('task', task('RUNNING'), { casIndex: current!.modifyIndex })).ok);
  const text = await s.until((x) => x.includes('TASK_RUNNING'));
  const statuses = text.split('\n\n').filter((f) => f.startsWith('event: status_update_event')).map((f) => (JSON.parse(f.split('data: ')[1]!) as { taskStatus: string }).taskStatus);
  t.deepEqual(statuses, ['TASK_STAGING', 'TASK_RUNNING']);
  s.abort();
});

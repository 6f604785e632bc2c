/**
 * The agent monitor: the pure decision with a fake clock, and an
 * integration with the test master (a real leader loop, a heartbeat over
 * `PUT /v1/agents/{id}`, a short timeout).
 */
import test from 'ava';
import { TERMINAL_TASK_STATES, type Agent } from '../../control-plane/model/schemas.ts';
import { startTestMaster } from '../../test/harness/master.ts';
import { agentMonitor, decideUnreachable, markedUnreachable } from './agent-monitor.ts';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function agent(id: string, lastSeenAt: number, status: Agent['health']['status'] = 'healthy'): Agent {
  return {
    id,
    hostname: `${id}.example`,
    address: { ip: '10.0.0.1', port: 5051 },
    attributes: {},
    resources: { cpus: 4, memMb: 4096, diskMb: 10000, gpus: 0, ports: [] },
    reservations: [],
    health: { status, lastSeenAt: iso(lastSeenAt) },
    maintenance: 'none',
    registeredAt: iso(T0),
  };
}

const timeoutMs = 15_000;

test('an agent silent for the timeout is marked; one within it is not, and the next check is its deadline', (t) => {
  const leaderSince = T0 - 60_000;
  const d = decideUnreachable([agent('b', T0 - 10_000), agent('a', T0 - 15_000)], { now: T0, leaderSince, timeoutMs });
  t.deepEqual(d.mark.map((m) => m.agentId), ['a']);
  t.is(d.mark[0]!.silentMs, 15_000);
  t.regex(d.mark[0]!.detail, /no heartbeat for 15 s .*unreachable after 15 s/);
  t.is(d.nextCheckAt, T0 + 5_000);
});

test('an agent already unreachable is left alone and sets no deadline', (t) => {
  const d = decideUnreachable([agent('a', T0 - 100_000, 'unreachable')], { now: T0, leaderSince: T0 - 200_000, timeoutMs });
  t.deepEqual(d, { mark: [], nextCheckAt: undefined });
});

test('a new leader gives every agent a full timeout from its own start (no flapping on failover)', (t) => {
  const agents = [agent('a', T0 - 600_000), agent('b', T0 - 1_000)];
  const atStart = decideUnreachable(agents, { now: T0, leaderSince: T0, timeoutMs });
  t.deepEqual(atStart.mark, []);
  t.is(atStart.nextCheckAt, T0 + 15_000, 'every agent, even one heard from just before, is due a full timeout after the start');
  t.deepEqual(decideUnreachable(agents, { now: T0 + 14_999, leaderSince: T0, timeoutMs }).mark, []);
  const full = decideUnreachable(agents, { now: T0 + 15_000, leaderSince: T0, timeoutMs });
  t.deepEqual(full.mark.map((m) => m.agentId), ['a', 'b']);
});

test('a heartbeat the leader saw change counts from when it saw it (a master clock behind the leader marks nobody early)', (t) => {
  // lastSeenAt was stamped by a master whose clock is 20 s behind the leader's.
  const a = agent('a', T0 - 20_000);
  const observed = new Map([['a', T0]]);
  t.deepEqual(decideUnreachable([a], { now: T0 + 1_000, leaderSince: T0 - 100_000, timeoutMs, observed }).mark, []);
  t.deepEqual(decideUnreachable([a], { now: T0 + 15_000, leaderSince: T0 - 100_000, timeoutMs, observed }).mark.map((m) => m.agentId), ['a']);
});

test('the marked record keeps the agent and its last heartbeat, and is a valid unreachable agent', (t) => {
  const a = agent('a', T0 - 20_000);
  const [m] = decideUnreachable([a], { now: T0, leaderSince: T0 - 100_000, timeoutMs }).mark;
  const next = markedUnreachable(a, m!);
  t.deepEqual(next.health, { status: 'unreachable', lastSeenAt: a.health.lastSeenAt, detail: m!.detail });
  t.is(next.hostname, a.hostname);
});

test('integration: the leader marks a silent agent unreachable, a heartbeat makes it healthy, silence marks it again', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [agentMonitor({ unreachableAfterSeconds: 0.4 })] });
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const register = () =>
    h.master.app.inject({
      method: 'PUT',
      url: '/v1/agents/agent-1',
      headers: { authorization: `token=${token}` },
      payload: { hostname: 'agent-1.example', address: { ip: '127.0.0.1', port: 5051 }, attributes: {}, resources: { cpus: 1, memMb: 512, diskMb: 100, gpus: 0, ports: [] } },
    });
  const status = async (): Promise<Agent['health']> => (await h.master.records.get('agent', 'agent-1'))!.value.health;
  const eventually = async (want: string): Promise<void> => {
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      if ((await status()).status === want) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`agent never became ${want}`);
  };

  t.is((await register()).statusCode, 200);
  // Heartbeats every 100 ms keep it healthy past several timeouts.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    t.is((await register()).statusCode, 200);
    t.is((await status()).status, 'healthy');
  }
  const silentFrom = Date.now();
  await eventually('unreachable');
  t.true(Date.now() - silentFrom >= 350, 'not before the timeout');
  t.regex((await status()).detail ?? '', /no heartbeat for/);
  t.is((await register()).statusCode, 200);
  t.is((await status()).status, 'healthy');
  await eventually('unreachable');
  const metrics = (await h.master.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `token=${token}` } })).body;
  // At least the two silences above; on a loaded machine a heartbeat can also come late inside the 100 ms loop.
  const marked = Number(/strata_agents_marked_unreachable_total (\d+)/.exec(metrics)?.[1]);
  t.true(marked >= 2, `marked ${marked} times`);
});

test('integration with the deployment controller: a silent agent\'s task is replaced on a live agent', async (t) => {
  const { deploymentController } = await import('../controller/controller.ts');
  const h = await startTestMaster({}, { leaderLoops: [agentMonitor({ unreachableAfterSeconds: 0.5 }), deploymentController({ debounceMs: 10 })] });
  t.teardown(() => h.close());
  await h.master.whenLeader();
  const token = await h.superuserToken();
  const call = (method: 'PUT' | 'POST', url: string, payload: object) => h.master.app.inject({ method, url, headers: { authorization: `token=${token}` }, payload });
  const register = (id: string) =>
    call('PUT', `/v1/agents/${id}`, { hostname: `${id}.example`, address: { ip: '127.0.0.1', port: 5051 }, attributes: {}, resources: { cpus: 2, memMb: 2048, diskMb: 1000, gpus: 0, ports: [{ begin: 20000, end: 20100 }] } });
  t.is((await register('a1')).statusCode, 200);
  t.is((await register('a2')).statusCode, 200);
  t.is((await call('POST', '/v2/apps', { id: '/web', cmd: 'sleep 1000', cpus: 0.1, mem: 16, instances: 1 })).statusCode, 201);
  const live = async () => (await h.master.records.list('task')).records.map((r) => r.value).filter((x) => !TERMINAL_TASK_STATES.has(x.state));
  const wait = async (check: () => Promise<boolean>, what: string): Promise<void> => {
    const until = Date.now() + 8_000;
    while (Date.now() < until) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  await wait(async () => (await live()).length === 1, 'one task launched');
  const [first] = await live();
  const silent = first!.agentId;
  const other = silent === 'a1' ? 'a2' : 'a1';
  // Only the other agent keeps heartbeating.
  let beating = true;
  const beats = (async () => {
    while (beating) {
      await register(other);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  t.teardown(async () => {
    beating = false;
    await beats;
  });
  await wait(async () => (await h.master.records.get('agent', silent))?.value.health.status === 'unreachable', 'the silent agent unreachable');
  await wait(async () => (await live()).some((x) => x.agentId === other), 'a replacement on the live agent');
  t.false((await live()).some((x) => x.agentId === silent), 'the task on the unreachable agent no longer runs (unreachableStrategy 0/0)');
  t.is((await h.master.records.get('agent', other))?.value.health.status, 'healthy');
});

test('integration: after a leader change the new leader waits a full timeout from its own start', async (t) => {
  const h = await startTestMaster({}, { leaderLoops: [agentMonitor({ unreachableAfterSeconds: 1 })] });
  t.teardown(() => h.close());
  const first = await h.master.whenLeader();
  const token = await h.superuserToken();
  const res = await h.master.app.inject({
    method: 'PUT',
    url: '/v1/agents/agent-1',
    headers: { authorization: `token=${token}` },
    payload: { hostname: 'agent-1.example', address: { ip: '127.0.0.1', port: 5051 }, attributes: {}, resources: { cpus: 1, memMb: 512, diskMb: 100, gpus: 0, ports: [] } },
  });
  t.is(res.statusCode, 200);
  await new Promise((r) => setTimeout(r, 700));
  await first.resign();
  await h.master.whenLeader();
  const since = Date.now();
  // The agent's last heartbeat is now older than the timeout, but the new leader has not waited one yet.
  await new Promise((r) => setTimeout(r, 500));
  t.is((await h.master.records.get('agent', 'agent-1'))!.value.health.status, 'healthy', 'not marked right after the failover');
  const until = Date.now() + 5_000;
  while ((await h.master.records.get('agent', 'agent-1'))!.value.health.status !== 'unreachable' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.is((await h.master.records.get('agent', 'agent-1'))!.value.health.status, 'unreachable');
  t.true(Date.now() - since >= 900, 'a full timeout after the new leadership began');
});

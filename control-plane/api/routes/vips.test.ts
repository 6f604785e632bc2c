import test from 'ava';
import { startTestMaster } from '../../../test/harness/master.ts';
import type { Agent, App, Task } from '../../model/schemas.ts';

type Feed =
  | { type: 'snapshot'; epoch: string; index: number; vips: { id: string; ipv4?: string; backends: { port: number; weight: number; agentUnreachable?: boolean }[] }[] }
  | { type: 'changes'; epoch: string; index: number; vips: { id: string; ipv4?: string; backends: { port: number; weight: number; agentUnreachable?: boolean }[] }[]; removed: string[] };

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const h = await startTestMaster();
  t.teardown(() => h.close());
  const auth = { authorization: `token=${await h.superuserToken()}` };
  for (const id of ['/web', '/db']) {
    const created = await h.master.app.inject({ method: 'POST', url: '/v2/apps', headers: auth, payload: { id, cmd: 'x', instances: 0, portDefinitions: [{ port: 0, labels: { VIP_0: `${id}:80` } }] } });
    if (created.statusCode !== 201) throw new Error(created.body);
  }
  await h.master.records.put('vip', { framework: 'marathon', name: '/web', kind: 'named', ipv4: '11.0.0.1', ports: [{ port: 80, protocol: 'tcp' }] });
  const now = new Date().toISOString();
  const task = (app: App, id: string, state: Task['state'], port: number, agentId = 'agent-1'): Task => ({
    id, appId: app.id, agentId, host: '10.0.0.9', state, stagedAt: now, startedAt: now, stateChangedAt: now, ports: [port],
    servicePorts: [], ipAddresses: [], healthCheckResults: [], version: app.version, resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*',
  });
  const web = (await h.master.records.get('app', '/web'))!.value;
  const db = (await h.master.records.get('app', '/db'))!.value;
  await h.master.records.put('task', task(web, 'web.1', 'RUNNING', 31001));
  await h.master.records.put('task', task(db, 'db.1', 'RUNNING', 32001, 'agent-2'));
  const read = async (query: string): Promise<Feed> => {
    const res = await h.master.app.inject({ method: 'GET', url: `/networking/api/v1/vips?delta=true&${query}`, headers: auth });
    if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`);
    t.teardown(async () => undefined);
    return res.json() as Feed;
  };
  return { h, auth, read, task, web, db };
}

test('the delta feed: a snapshot first, then only the VIPs a change touched; removals by id; another epoch gets a snapshot', async (t) => {
  const { h, auth, read, task, web } = await setup(t);
  const first = await read('index=0');
  t.is(first.type, 'snapshot');
  t.deepEqual(first.vips.map((v) => v.id).sort(), ['marathon//db', 'marathon//web']);
  t.is(first.vips.find((v) => v.id === 'marathon//web')!.ipv4, '11.0.0.1');

  // One backend of /web changes while a follower waits: only /web comes back.
  const waiting = read(`epoch=${first.epoch}&index=${first.index}&wait=20`);
  await new Promise((r) => setTimeout(r, 50));
  await h.master.records.put('task', task(web, 'web.2', 'RUNNING', 31002));
  const next = await waiting;
  t.is(next.type, 'changes');
  if (next.type !== 'changes') return;
  t.deepEqual(next.vips.map((v) => v.id), ['marathon//web']);
  t.deepEqual(next.vips[0]!.backends.map((b) => b.port).sort(), [31001, 31002]);
  t.deepEqual(next.removed, []);
  t.true(next.index > first.index);

  // Nothing new: an empty change list after the wait, the same index.
  const quiet = await read(`epoch=${first.epoch}&index=${next.index}&wait=0.2`);
  t.like(quiet, { type: 'changes', index: next.index, vips: [], removed: [] });

  // Asked from the earlier index, the changes since then are merged.
  const drain = await h.master.records.get('task', 'web.1');
  await h.master.records.put('task', { ...drain!.value, state: 'KILLING' });
  const killing = await read(`epoch=${first.epoch}&index=${next.index}&wait=20`);
  t.deepEqual(killing.vips.map((v) => v.id), ['marathon//web']);
  const merged = await read(`epoch=${first.epoch}&index=${first.index}&wait=5`);
  t.is(merged.type, 'changes');
  t.deepEqual(merged.vips.map((v) => v.id), ['marathon//web'], 'a VIP changed twice since the index comes once, as it is now');
  t.deepEqual(merged.vips[0]!.backends.map((b) => [b.port, b.weight]).sort(), [[31001, 0], [31002, 1]]);

  // The app goes: its VIP is removed.
  const deleted = await h.master.app.inject({ method: 'DELETE', url: '/v2/apps/db?force=true', headers: auth });
  t.true(deleted.statusCode < 300, deleted.body);
  let removed: Feed | undefined;
  for (let i = 0; i < 50 && !(removed?.type === 'changes' && removed.removed.length > 0); i++) removed = await read(`epoch=${first.epoch}&index=${merged.index}&wait=5`);
  t.like(removed, { type: 'changes', removed: ['marathon//db'] }, JSON.stringify(removed));

  // A follower of another master (or of this one before a restart) starts over.
  t.is((await read(`epoch=someone-else&index=${next.index}`)).type, 'snapshot');
  t.is((await read(`epoch=${first.epoch}&index=${first.index + 1000}`)).type, 'snapshot', 'an index from the future: a snapshot');
  const metrics = await h.master.app.inject({ method: 'GET', url: '/metrics', headers: auth });
  t.regex(metrics.body, /strata_vip_feed_replies_total\{type="snapshot"\} [1-9]/);
  t.regex(metrics.body, /strata_vip_feed_changed_vips_total [1-9]/);
});

test('the delta feed: an agent heartbeat changes nothing; an agent turning unreachable changes only the VIPs with backends there', async (t) => {
  const { h, read } = await setup(t);
  const now = new Date().toISOString();
  const agent: Agent = {
    id: 'agent-2', hostname: 'a2', address: { ip: '10.0.0.2', port: 5051 }, attributes: {}, resources: { cpus: 1, memMb: 1024, diskMb: 0, gpus: 0, ports: [] },
    reservations: [], health: { status: 'healthy', lastSeenAt: now }, maintenance: 'none', registeredAt: now,
  } as Agent;
  await h.master.records.put('agent', agent);
  const first = await read('index=0');
  const db = first.vips.find((v) => v.id === 'marathon//db')!;
  t.truthy(db);
  const afterAgent = await read(`epoch=${first.epoch}&index=${first.index}&wait=0.2`);
  await h.master.records.put('agent', { ...agent, health: { status: 'healthy', lastSeenAt: new Date(Date.now() + 1000).toISOString() } });
  const heartbeat = await read(`epoch=${first.epoch}&index=${afterAgent.index}&wait=0.3`);
  t.like(heartbeat, { type: 'changes', vips: [] }, 'a heartbeat is not a VIP change');
  await h.master.records.put('agent', { ...agent, health: { status: 'unreachable', lastSeenAt: now } });
  const gone = await read(`epoch=${first.epoch}&index=${heartbeat.index}&wait=5`);
  t.is(gone.type, 'changes');
  t.deepEqual(gone.vips.map((v) => v.id), ['marathon//db']);
  t.true(gone.vips[0]!.backends.every((b) => b.agentUnreachable === true));
});

test('bad input on the feed names the field', async (t) => {
  const { h, auth } = await setup(t);
  const res = await h.master.app.inject({ method: 'GET', url: '/networking/api/v1/vips?delta=true&index=-1', headers: auth });
  t.is(res.statusCode, 400);
  t.regex(res.body, /index/);
});

/**
 * AgentTaskIndex on its own: tasks by agent follow puts, moves and deletes;
 * waiters wake only for their agent; closing (or a failed watch) ends it and
 * releases every waiter.
 */
import test from 'ava';
import { Records } from '../../model/records.ts';
import type { Task } from '../../model/schemas.ts';
import { openEmbeddedStore } from '../../store/embedded/embedded-store.ts';
import { AgentTaskIndex } from './agent-task-index.ts';

const at = '2026-01-01T00:00:00.000Z';
const mkTask = (id: string, agentId: string, state: Task['state'] = 'RUNNING'): Task => ({
  id, appId: '/web', agentId, host: `${agentId}.example`, state, stagedAt: at, stateChangedAt: at, ports: [], servicePorts: [], ipAddresses: [],
  healthCheckResults: [], version: at, resources: { cpus: 0.1, memMb: 16, diskMb: 0, gpus: 0 }, role: '*',
});

test('tasks by agent follow the store; waiters wake for their agent only; close releases them', async (t) => {
  const store = await openEmbeddedStore({ path: ':memory:' });
  t.teardown(() => store.close());
  const records = new Records(store);
  await records.put('task', mkTask('t1', 'a1'));
  await records.put('task', mkTask('done', 'a1', 'FINISHED'));
  const index = await AgentTaskIndex.open(records);
  t.teardown(() => index.close());
  t.deepEqual(index.tasksOf('a1').map((x) => x.id), ['t1'], 'terminal tasks are not listed');
  const from = index.index;
  const stop = new AbortController();
  let otherWoke = false;
  const other = index.waitForChange('a3', from, stop.signal).then(() => (otherWoke = true));
  const a2 = index.waitForChange('a2', from, stop.signal);
  await records.put('task', mkTask('t2', 'a2'));
  await a2;
  t.deepEqual(index.tasksOf('a2').map((x) => x.id), ['t2']);
  t.true(index.changedSince('a2', from));
  t.false(index.changedSince('a1', from));
  await new Promise((r) => setTimeout(r, 20));
  t.false(otherWoke, 'another agent keeps waiting');
  const moved = await records.get('task', 't1');
  await records.put('task', { ...moved!.value, agentId: 'a2' }, { casIndex: moved!.modifyIndex });
  await index.waitForChange('a1', index.index - 1, stop.signal);
  t.deepEqual(index.tasksOf('a1'), []);
  t.deepEqual(index.tasksOf('a2').map((x) => x.id).sort(), ['t1', 't2']);
  await records.delete('task', 't2');
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(index.tasksOf('a2').map((x) => x.id), ['t1']);
  t.true(index.live);
  index.close();
  await other;
  t.false(index.live, 'closed: the route opens a new index');
  stop.abort();
});

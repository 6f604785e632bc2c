import test from 'ava';
import type { Task } from '../../control-plane/model/schemas.ts';
import { T0, mkAgent, mkApp } from '../controller/testing.ts';
import { launchQueue } from './queue.ts';

function task(id: string, appId: string, state: Task['state'], agentId = 'a1', changedAt = T0): Task {
  const at = new Date(changedAt).toISOString();
  return {
    id, appId, agentId, host: `${agentId}.example`, state, stagedAt: at, stateChangedAt: at, ports: [], servicePorts: [], ipAddresses: [],
    healthCheckResults: [], version: '2026-01-01T00:00:00.000Z', resources: { cpus: 0.5, memMb: 64, diskMb: 0, gpus: 0 }, role: '*',
  } as Task;
}

test('apps with fewer active instances than wanted are queued with the count missing; full apps are not', (t) => {
  const apps = [mkApp('/full', { instances: 1 }), mkApp('/short', { instances: 3 }), mkApp('/none', { instances: 2 })];
  const tasks = [task('f1', '/full', 'RUNNING'), task('s1', '/short', 'RUNNING'), task('s2', '/short', 'FAILED', 'a1', T0 + 5000), task('s3', '/short', 'STAGING')];
  const q = launchQueue(apps, tasks, [mkAgent('a1')], T0 + 10_000);
  t.deepEqual(q.map((e) => [e.app.id, e.count]), [['/none', 2], ['/short', 1]]);
  t.deepEqual(q[1]!.delay, { timeLeftSeconds: 0, overdue: true });
  t.is(q[1]!.since, new Date(T0 + 5000).toISOString(), 'since the last task end');
});

test('UNREACHABLE tasks stop counting once inactiveAfterSeconds passed since they were marked, never with "disabled"', (t) => {
  const agents = [{ ...mkAgent('a1', { status: 'unreachable' }) }];
  const tasks = [task('x1', '/x', 'UNREACHABLE'), task('y1', '/y', 'UNREACHABLE')];
  const apps = [mkApp('/x', { instances: 1, unreachableStrategy: { inactiveAfterSeconds: 60, expungeAfterSeconds: 120 } }), mkApp('/y', { instances: 1, unreachableStrategy: 'disabled' })];
  t.deepEqual(launchQueue(apps, tasks, agents, T0 + 30_000), []);
  t.deepEqual(launchQueue(apps, tasks, agents, T0 + 60_000).map((e) => e.app.id), ['/x']);
  t.deepEqual(launchQueue(apps.slice(0, 1), [task('x1', '/x', 'RUNNING')], agents, T0 + 600_000), [], 'a live task of an unreachable agent not yet marked still counts (its clock starts when it is marked)');
  t.deepEqual(launchQueue(apps.slice(0, 1), [task('x2', '/x', 'RUNNING', 'gone')], agents, T0).map((e) => e.app.id), ['/x'], 'an agent with no record counts as gone');
});

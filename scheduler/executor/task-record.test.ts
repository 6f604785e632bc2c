import test from 'ava';
import type { Task } from '../../control-plane/model/schemas.ts';
import { validateRecord } from '../../control-plane/model/validate.ts';
import { applyTaskStatus } from './task-record.ts';

const staged: Task = {
  id: 'web.instance-1._app.1',
  appId: '/web',
  agentId: 'a1-S0',
  host: 'agent-1',
  state: 'STAGING',
  stagedAt: '2026-01-01T00:00:00.000Z',
  stateChangedAt: '2026-01-01T00:00:00.000Z',
  ports: [31000],
  servicePorts: [10000],
  ipAddresses: [],
  healthCheckResults: [],
  version: '2026-01-01T00:00:00.000Z',
  resources: { cpus: 1, memMb: 128, diskMb: 0, gpus: 0 },
  role: '*',
};

test('statuses fold into the Task record: state, change time, first start, last message and reason', (t) => {
  const running = applyTaskStatus(staged, { taskId: staged.id, state: 'RUNNING', timestamp: '2026-01-01T00:00:01.000Z', pid: 42, message: 'cgroup limits: memory 134217728 bytes' });
  t.like(running, { state: 'RUNNING', startedAt: '2026-01-01T00:00:01.000Z', stateChangedAt: '2026-01-01T00:00:01.000Z' });
  const again = applyTaskStatus(running, { taskId: staged.id, state: 'RUNNING', timestamp: '2026-01-01T00:05:00.000Z', message: 'Re-attached after an agent restart' });
  t.is(again.startedAt, '2026-01-01T00:00:01.000Z', 'startedAt is the first RUNNING');
  const failed = applyTaskStatus(again, { taskId: staged.id, state: 'FAILED', timestamp: '2026-01-01T00:06:00.000Z', exitCode: 3, reason: 'REASON_COMMAND_EXECUTOR_FAILED', message: 'x'.repeat(5000) });
  t.like(failed, { state: 'FAILED', reason: 'REASON_COMMAND_EXECUTOR_FAILED' });
  t.is(failed.message!.length, 4096);
  for (const record of [running, again, failed]) t.deepEqual(validateRecord('task', record), [], 'still a valid Task record');
  t.throws(() => applyTaskStatus(staged, { taskId: 'other', state: 'RUNNING', timestamp: '2026-01-01T00:00:01.000Z' }));
});

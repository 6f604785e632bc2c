/**
 * Folds an executor status update into the stored Task record (pure): the
 * state, when it changed, when the task first ran, and the last message and
 * Mesos reason (cut to the record's limits).
 */
import type { Task } from '../../control-plane/model/schemas.ts';
import type { TaskStatus } from './executor.ts';

const MESSAGE_MAX = 4096;
const REASON_MAX = 128;

export function applyTaskStatus(task: Task, status: TaskStatus): Task {
  if (status.taskId !== task.id) throw new Error(`status of task ${status.taskId} applied to task ${task.id}`);
  const next: Task = { ...task, state: status.state, stateChangedAt: status.timestamp };
  if (status.state === 'RUNNING' && task.startedAt === undefined) next.startedAt = status.timestamp;
  delete next.message;
  delete next.reason;
  const message = status.message ?? (status.exitCode !== undefined ? `exit status ${status.exitCode}` : undefined);
  if (message !== undefined) next.message = message.slice(0, MESSAGE_MAX);
  if (status.reason !== undefined) next.reason = status.reason.slice(0, REASON_MAX);
  return next;
}

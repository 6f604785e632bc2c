/**
 * The agent's side of task execution (the contract with
 * `scheduler/agent/task-runner.ts`):
 *
 * - `GET /v1/agents/{agentId}/tasks?index=N&wait=S`: the agent's
 *   non-terminal tasks and the store index to pass next time. With `index`,
 *   the request blocks (like a Consul blocking query) until a task of this
 *   agent changes after `index` (created, changed, deleted), or `wait`
 *   seconds pass (default 30, at most 60). Without `index` (or with one the
 *   store has not reached) it answers at once. It answers from an in-memory
 *   index of tasks by agent (`agent-task-index.ts`, one watch of the task
 *   prefix per API instance) and waits on its agent's own wake-up, never by
 *   polling or re-listing the task prefix.
 * - `PUT /v1/agents/{agentId}/tasks/{taskId}/status`: the agent reports a
 *   state change. 404 if the task is not assigned to that agent; 409 if it
 *   would leave a terminal state (reporting the same terminal state again
 *   is accepted and changes nothing). A task in KILLING stays KILLING on a
 *   STAGING/STARTING/RUNNING report: the kill the master asked for stands.
 *   An optional `healthCheckResults` (the agent's health checks, one per app
 *   check) replaces the task's; the agent sends it only when it changes.
 *   So does `readinessCheckResults` (one per readiness check), and
 *   `ipAddresses` (the container IPs of a task on a container network).
 * - A kill is the master setting `state` to KILLING; the agent kills the
 *   process and reports KILLED.
 */
import { Type, type Static } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { appVersionId } from '../../model/keys.ts';
import { AgentId, AppVersion, HealthCheckResult, ReadinessCheckResult, TASK_STATES, TERMINAL_TASK_STATES, Task, TaskId, TaskIpAddress, Timestamp, type TaskState } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { isInactive } from '../../../scheduler/monitor/queue.ts';
import { AGENT_RID } from './agents.ts';
import { AgentTaskIndex } from './agent-task-index.ts';

export const DEFAULT_WAIT_SECONDS = 30;
export const MAX_WAIT_SECONDS = 60;

const Params = Type.Object({ agentId: AgentId });
const StatusParams = Type.Object({ agentId: AgentId, taskId: TaskId });
const TasksQuery = Type.Object({
  index: Type.Optional(Type.Integer({ minimum: 0, description: 'block until this agent\'s tasks change after this store index (from the previous reply)' })),
  wait: Type.Optional(Type.Number({ minimum: 0, description: `longest wait in seconds (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})` })),
});
export const AgentTasksReply = Type.Object({ index: Type.Integer({ minimum: 0 }), tasks: Type.Array(Task) });

export const TaskStatusReport = Type.Object(
  {
    state: Type.Enum(TASK_STATES),
    message: Type.Optional(Type.String({ maxLength: 4096 })),
    reason: Type.Optional(Type.String({ maxLength: 128 })),
    exitCode: Type.Optional(Type.Integer()),
    signal: Type.Optional(Type.String({ maxLength: 32 })),
    /** When the agent saw the change; default: when the master receives it. */
    timestamp: Type.Optional(Timestamp),
    /** The task's health, one entry per app health check in the app's order (run by the agent); absent = unchanged. */
    healthCheckResults: Type.Optional(Type.Array(HealthCheckResult, { maxItems: 64 })),
    /** The task's readiness verdicts, one per app readiness check (run by the agent until ready); absent = unchanged. */
    readinessCheckResults: Type.Optional(Type.Array(ReadinessCheckResult, { maxItems: 8 })),
    /** The task's container IPs (container networks: given when the agent attached it); absent = unchanged. */
    ipAddresses: Type.Optional(Type.Array(TaskIpAddress, { maxItems: 2 })),
  },
  { additionalProperties: false },
);
export type TaskStatusReport = Static<typeof TaskStatusReport>;

const HOLDS: ReadonlySet<TaskState> = new Set(['STAGING', 'STARTING', 'RUNNING']);

/** The task after an agent's report: the state rules above, timestamps, message. Throws 409 for a move out of a terminal state. */
export function applyStatus(task: Task, report: TaskStatusReport, receivedAt: string): Task {
  if (TERMINAL_TASK_STATES.has(task.state)) {
    if (report.state === task.state) return task;
    throw new StrataError('RECORD_CONFLICT', `task ${task.id} is ${task.state} (terminal); it cannot become ${report.state}`, { details: { state: task.state, reported: report.state } });
  }
  const at = report.timestamp ?? receivedAt;
  const state: TaskState = task.state === 'KILLING' && HOLDS.has(report.state) ? 'KILLING' : report.state;
  const extra = [report.exitCode === undefined ? undefined : `exit code ${report.exitCode}`, report.signal === undefined ? undefined : `signal ${report.signal}`].filter((x) => x !== undefined);
  const base = report.message ?? task.message;
  const message = extra.length === 0 ? base : `${base === undefined ? '' : `${base} `}(${extra.join(', ')})`.trim();
  const next: Task = {
    ...task,
    state,
    stateChangedAt: state === task.state ? task.stateChangedAt : at,
    ...(task.startedAt === undefined && report.state === 'RUNNING' ? { startedAt: at } : {}),
    ...(message === undefined ? {} : { message: message.slice(0, 4096) }),
    ...(report.reason === undefined ? {} : { reason: report.reason }),
    ...(report.healthCheckResults === undefined ? {} : { healthCheckResults: report.healthCheckResults }),
    ...(report.readinessCheckResults === undefined ? {} : { readinessCheckResults: report.readinessCheckResults.map((r) => ({ ...r, taskId: task.id })) }),
    ...(report.ipAddresses === undefined ? {} : { ipAddresses: report.ipAddresses }),
  };
  return next;
}

export function agentTaskRoutes(app: ApiInstance, ctx: ApiContext): void {
  // One in-memory index of tasks by agent per API instance, opened on first use (see agent-task-index.ts).
  let opening: Promise<AgentTaskIndex> | undefined;
  const taskIndex = async (): Promise<AgentTaskIndex> => {
    for (let attempt = 0; ; attempt++) {
      const pending = (opening ??= AgentTaskIndex.open(ctx.records));
      let index: AgentTaskIndex;
      try {
        index = await pending;
      } catch (err) {
        if (opening === pending) opening = undefined;
        throw err;
      }
      // An index whose watch ended (a store outage) is replaced by a new one.
      if (index.live || attempt >= 1) return index;
      if (opening === pending) opening = undefined;
    }
  };
  app.addHook('onClose', async () => {
    const open = opening;
    opening = undefined;
    if (open) (await open.catch(() => undefined))?.close();
  });

  app.get('/v1/agents/:agentId/tasks', {
    config: { permission: requires(AGENT_RID, 'read') },
    schema: {
      summary: 'The agent\'s non-terminal tasks; with ?index=N a blocking query that answers when they change (or after ?wait=S seconds)',
      params: Params,
      querystring: TasksQuery,
      response: { 200: AgentTasksReply },
    },
  }, async (request, reply) => {
    const { agentId } = request.params;
    const index = await taskIndex();
    const from = request.query.index;
    if (from === undefined || from === 0 || from > index.index) return { index: index.index, tasks: index.tasksOf(agentId) };

    const waitMs = Math.min(request.query.wait ?? DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS) * 1000;
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), waitMs);
    const onClose = (): void => stop.abort();
    reply.raw.once('close', onClose);
    try {
      await index.waitForChange(agentId, from, stop.signal);
    } finally {
      clearTimeout(timer);
      stop.abort();
      reply.raw.off('close', onClose);
    }
    return { index: Math.max(index.index, from), tasks: index.tasksOf(agentId) };
  });

  // What an agent needs to launch a task: the app exactly at the task's
  // version. Under the agent's own permission, and only for its own tasks,
  // so agents need no read access to the Marathon app tree.
  app.get('/v1/agents/:agentId/tasks/:taskId/app', {
    config: { permission: requires(AGENT_RID, 'read') },
    schema: {
      summary: 'The app definition a task assigned to this agent runs (at the task\'s version)',
      params: Type.Object({ agentId: AgentId, taskId: TaskId }),
      response: { 200: AppVersion },
    },
  }, async (request) => {
    const { agentId, taskId } = request.params;
    const task = await ctx.records.get('task', taskId);
    if (!task || task.value.agentId !== agentId) throw new StrataError('RECORD_NOT_FOUND', `agent ${agentId} has no task ${JSON.stringify(taskId)}`);
    const version = await ctx.records.get('appVersion', appVersionId(task.value.appId, task.value.version));
    if (!version) throw new StrataError('RECORD_NOT_FOUND', `app ${task.value.appId} at version ${task.value.version} is no longer stored`);
    return version.value;
  });

  app.put('/v1/agents/:agentId/tasks/:taskId/status', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'An agent reports a task\'s state: 404 if the task is not on that agent, 409 out of a terminal state',
      params: StatusParams,
      body: TaskStatusReport,
      response: { 200: Task },
    },
  }, async (request) => {
    const { agentId, taskId } = request.params;
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await ctx.records.get('task', taskId);
      if (!current || current.value.agentId !== agentId) throw new StrataError('RECORD_NOT_FOUND', `agent ${agentId} has no task ${JSON.stringify(taskId)}`);
      const receivedAt = new Date().toISOString();
      let report = request.body;
      // An UNREACHABLE task that comes back after its app replaced it (inactive) is killed, as Marathon does.
      if (current.value.state === 'UNREACHABLE' && HOLDS.has(report.state)) {
        const app = await ctx.records.get('app', current.value.appId);
        if (app && isInactive(current.value, app.value, new Map(), Date.parse(receivedAt))) {
          report = { ...report, state: 'KILLING', message: `came back after it was replaced (unreachable since ${current.value.stateChangedAt}; inactiveAfterSeconds ${app.value.unreachableStrategy === 'disabled' ? '-' : app.value.unreachableStrategy.inactiveAfterSeconds})` };
        }
      }
      const next = applyStatus(current.value, report, receivedAt);
      if (next === current.value) return next;
      const result = await ctx.records.put('task', next, { casIndex: current.modifyIndex });
      if (result.ok) return next;
    }
    throw new StrataError('RECORD_CONFLICT', `task ${taskId} changed concurrently five times; retry`);
  });
}

/**
 * The tasks of each agent, kept in memory for the agents' blocking task
 * query (`GET /v1/agents/{id}/tasks?index=N`): one watch of the task prefix
 * per API instance (a {@link openView}) feeds a map agent → tasks and the
 * store index at which each agent's tasks last changed. A query answers
 * from the map and waits on its agent's own wake-up, so a task change costs
 * the agents it concerns, not a re-listing of every task for every waiting
 * agent (the cost was O(agents × tasks) per change).
 *
 * Opened on first use, closed with the API (fastify `onClose`).
 */
import type { Records, RecordView } from '../../model/records.ts';
import { openView } from '../../model/records.ts';
import { TERMINAL_TASK_STATES, type Task } from '../../model/schemas.ts';

export class AgentTaskIndex {
  readonly #view: RecordView<Task>;
  /** agent id → task id → task (every task, terminal ones too; listings filter). */
  readonly #byAgent = new Map<string, Map<string, Task>>();
  readonly #agentOf = new Map<string, string>();
  /** The view index of the batch that last changed each agent's tasks. */
  readonly #changedAt = new Map<string, number>();
  readonly #waiters = new Map<string, Set<() => void>>();
  #closed = false;

  private constructor(view: RecordView<Task>) {
    this.#view = view;
    // A watch that fails (store outage, compaction beyond recovery) ends the index: waiters answer
    // with what it holds, and the route opens a new one for the next query.
    view.ended.then(
      () => this.#end(),
      () => this.#end(),
    );
    for (const r of view.records.values()) this.#put(r.value, view.index);
    view.subscribe((update) => {
      const touched = new Set<string>();
      if (update.resync) {
        for (const agent of this.#byAgent.keys()) touched.add(agent);
        this.#byAgent.clear();
        this.#agentOf.clear();
        for (const r of view.records.values()) touched.add(this.#put(r.value, update.index));
      } else {
        for (const id of update.removed) {
          const agent = this.#agentOf.get(id);
          if (agent === undefined) continue;
          this.#forget(agent, id);
          this.#agentOf.delete(id);
          touched.add(agent);
        }
        for (const r of update.upserted) {
          const before = this.#agentOf.get(r.id);
          if (before !== undefined && before !== r.value.agentId) {
            this.#forget(before, r.id);
            touched.add(before);
          }
          touched.add(this.#put(r.value, update.index));
        }
      }
      for (const agent of touched) {
        this.#changedAt.set(agent, update.index);
        const waiters = this.#waiters.get(agent);
        if (waiters) for (const wake of [...waiters]) wake();
      }
    });
  }

  static async open(records: Records): Promise<AgentTaskIndex> {
    return new AgentTaskIndex(await openView(records, 'task'));
  }

  #forget(agentId: string, taskId: string): void {
    const tasks = this.#byAgent.get(agentId);
    tasks?.delete(taskId);
    if (tasks?.size === 0) this.#byAgent.delete(agentId);
  }

  #end(): void {
    this.#closed = true;
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake();
  }

  /** False once the watch behind it stopped (closed or failed): open a new one. */
  get live(): boolean {
    return !this.#closed;
  }

  #put(task: Task, index: number): string {
    let tasks = this.#byAgent.get(task.agentId);
    if (!tasks) this.#byAgent.set(task.agentId, (tasks = new Map()));
    tasks.set(task.id, task);
    this.#agentOf.set(task.id, task.agentId);
    if (!this.#changedAt.has(task.agentId)) this.#changedAt.set(task.agentId, index);
    return task.agentId;
  }

  /** The store index the index is current at. */
  get index(): number {
    return this.#view.index;
  }

  /** The agent's non-terminal tasks. */
  tasksOf(agentId: string): Task[] {
    return [...(this.#byAgent.get(agentId)?.values() ?? [])].filter((t) => !TERMINAL_TASK_STATES.has(t.state));
  }

  /** Whether the agent's tasks changed after `index`. */
  changedSince(agentId: string, index: number): boolean {
    return (this.#changedAt.get(agentId) ?? 0) > index;
  }

  /**
   * Resolves when the agent's tasks change after `index` (at once if they
   * already have), or when `signal` aborts.
   */
  async waitForChange(agentId: string, index: number, signal: AbortSignal): Promise<void> {
    if (this.changedSince(agentId, index) || signal.aborted || this.#closed) return;
    await new Promise<void>((resolve) => {
      let waiters = this.#waiters.get(agentId);
      if (!waiters) this.#waiters.set(agentId, (waiters = new Set()));
      const set = waiters;
      const finish = (): void => {
        set.delete(check);
        if (set.size === 0 && this.#waiters.get(agentId) === set) this.#waiters.delete(agentId);
        signal.removeEventListener('abort', finish);
        resolve();
      };
      const check = (): void => {
        if (this.#closed || this.changedSince(agentId, index)) finish();
      };
      set.add(check);
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  close(): void {
    this.#view.close();
    this.#end();
  }
}

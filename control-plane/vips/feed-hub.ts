/**
 * The VIP delta feed for agents' load balancers (`GET
 * /networking/api/v1/vips/feed?epoch=E&index=N&wait=S`): the master keeps
 * views of the apps, tasks, VIP records and agents (one store watch each,
 * however many agents follow), the JSON text of every VIP's view, and a
 * bounded log of which VIPs changed. A follower gets:
 * - no `epoch`, another epoch (another master, or this one restarted), or
 *   an `index` older than the log: a snapshot of every VIP;
 * - otherwise only the VIPs changed or removed after `index`, at once if
 *   there are any, else when the next change comes (or after `wait`, none).
 *
 * A change recomputes only the VIPs it touches: a task change the VIPs of
 * its app, a VIP record change that VIP, an agent change only when its
 * address or reachability changed (heartbeats do not count) the VIPs with
 * backends there; an app change recomputes the desired VIPs and every VIP
 * (apps change rarely). A recomputed view whose JSON text is unchanged is
 * not logged. Indexes are this hub's own change counter within its epoch
 * (the four views apply their batches independently, so store indexes
 * could arrive out of order across kinds).
 */
import { randomUUID } from 'node:crypto';
import { openView, type RecordView, type Records, type ViewUpdate } from '../model/records.ts';
import type { Agent, App, Task, Vip } from '../model/schemas.ts';
import { desiredVips, type DesiredVip } from './plan.ts';
import { vipViewOf, type VipViewInputs } from './view.ts';

export interface VipFeedHubOptions {
  /** VIP changes kept for followers that are behind (default 20,000); older followers get a snapshot. */
  readonly maxLoggedChanges?: number;
  readonly onError?: (err: unknown) => void;
  /** After each logged change: how many VIPs it changed or removed (metrics). */
  readonly onChanges?: (count: number) => void;
}

/** A reply as JSON text (built from each VIP's cached text, never re-serialized). */
export interface VipFeedReply {
  readonly type: 'snapshot' | 'changes';
  readonly index: number;
  readonly json: string;
}

interface LogEntry {
  readonly index: number;
  /** VIP id → its view's JSON text, or `null`: removed. */
  readonly changes: ReadonlyMap<string, string | null>;
}

export class VipFeedHub {
  readonly #records: Records;
  readonly #maxLogged: number;
  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #onChanges: ((count: number) => void) | undefined;
  readonly #epoch = randomUUID();
  #index = 0;
  /** VIP id → JSON text of its view. */
  readonly #texts = new Map<string, string>();
  #log: LogEntry[] = [];
  #logged = 0;
  /** Changes after this index are all in the log. */
  #logFrom = 0;
  readonly #waiters = new Set<() => void>();
  #starting: Promise<void> | undefined;
  #closed = false;
  // Views and what is derived from them.
  #views: { apps: RecordView<App>; tasks: RecordView<Task>; vips: RecordView<Vip>; agents: RecordView<Agent> } | undefined;
  #desired = new Map<string, DesiredVip>();
  readonly #vipsOfApp = new Map<string, Set<string>>();
  readonly #tasksByApp = new Map<string, Task[]>();
  readonly #appOfTask = new Map<string, string>();
  readonly #agentIps = new Map<string, string>();
  readonly #unreachable = new Set<string>();
  // Pending work, applied once per tick (one store batch of several kinds: one log entry).
  #dirty = new Set<string>();
  #all = false;
  #scheduled = false;

  constructor(records: Records, options: VipFeedHubOptions = {}) {
    this.#records = records;
    this.#maxLogged = options.maxLoggedChanges ?? 20_000;
    this.#onError = options.onError;
    this.#onChanges = options.onChanges;
  }

  /** Open the views (once; again after a failure, such as the store being down); resolves when every VIP's view is in. */
  start(): Promise<void> {
    this.#starting ??= this.#open().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  async #open(): Promise<void> {
    const onError = (err: unknown): void => this.#onError?.(err);
    const [apps, tasks, vips, agents] = await Promise.all([
      openView(this.#records, 'app', { onError }), openView(this.#records, 'task', { onError }),
      openView(this.#records, 'vip', { onError }), openView(this.#records, 'agent', { onError }),
    ]);
    this.#views = { apps, tasks, vips, agents };
    if (this.#closed) return this.close();
    for (const r of tasks.records.values()) this.#addTask(r.value);
    for (const r of agents.records.values()) this.#setAgent(r.id, r.value);
    this.#rebuildDesired();
    const inputs = this.#inputs();
    for (const d of this.#desired.values()) this.#texts.set(d.id, JSON.stringify(vipViewOf(d, inputs)));
    apps.subscribe(() => this.#mark(() => (this.#all = true)));
    tasks.subscribe((u) => this.#mark(() => this.#onTasks(u)));
    vips.subscribe((u) => this.#mark(() => (u.resync ? (this.#all = true) : [...u.upserted.map((r) => r.id), ...u.removed].forEach((id) => this.#dirty.add(id)))));
    agents.subscribe((u) => this.#mark(() => this.#onAgents(u)));
  }

  #inputs(): VipViewInputs {
    const { apps, vips } = this.#views!;
    const appMap = new Map<string, App>();
    for (const [id, r] of apps.records) appMap.set(id, r.value);
    const stored = new Map<string, Vip>();
    for (const [id, r] of vips.records) stored.set(id, r.value);
    return { apps: appMap, tasksByApp: this.#tasksByApp, stored, agentIps: this.#agentIps, unreachableAgents: this.#unreachable };
  }

  /** One VIP's inputs only (the apps it uses, its record): cheap at any number of VIPs. */
  #inputsFor(d: DesiredVip): VipViewInputs {
    const { apps, vips } = this.#views!;
    const appMap = new Map<string, App>();
    for (const u of d.uses) {
      const a = apps.get(u.appId);
      if (a) appMap.set(u.appId, a);
    }
    const stored = new Map<string, Vip>();
    const record = vips.get(d.id);
    if (record) stored.set(d.id, record);
    return { apps: appMap, tasksByApp: this.#tasksByApp, stored, agentIps: this.#agentIps, unreachableAgents: this.#unreachable };
  }

  #rebuildDesired(): void {
    this.#desired = desiredVips([...this.#views!.apps.records.values()].map((r) => r.value));
    this.#vipsOfApp.clear();
    for (const d of this.#desired.values()) {
      for (const u of d.uses) {
        const set = this.#vipsOfApp.get(u.appId) ?? new Set<string>();
        set.add(d.id);
        this.#vipsOfApp.set(u.appId, set);
      }
    }
  }

  #addTask(task: Task): void {
    const list = this.#tasksByApp.get(task.appId);
    if (list) list.push(task);
    else this.#tasksByApp.set(task.appId, [task]);
    this.#appOfTask.set(task.id, task.appId);
  }

  #removeTask(id: string): string | undefined {
    const appId = this.#appOfTask.get(id);
    if (appId === undefined) return undefined;
    this.#appOfTask.delete(id);
    const list = this.#tasksByApp.get(appId)?.filter((t) => t.id !== id) ?? [];
    if (list.length > 0) this.#tasksByApp.set(appId, list);
    else this.#tasksByApp.delete(appId);
    return appId;
  }

  #onTasks(u: ViewUpdate<Task>): void {
    if (u.resync) {
      this.#tasksByApp.clear();
      this.#appOfTask.clear();
      for (const r of this.#views!.tasks.records.values()) this.#addTask(r.value);
      this.#all = true;
      return;
    }
    const touched = new Set<string>();
    for (const id of u.removed) {
      const appId = this.#removeTask(id);
      if (appId !== undefined) touched.add(appId);
    }
    for (const r of u.upserted) {
      const before = this.#removeTask(r.id);
      if (before !== undefined) touched.add(before);
      this.#addTask(r.value);
      touched.add(r.value.appId);
    }
    for (const appId of touched) for (const id of this.#vipsOfApp.get(appId) ?? []) this.#dirty.add(id);
  }

  /** Whether the agent's address or reachability changed. */
  #setAgent(id: string, agent: Agent | undefined): boolean {
    const ip = agent?.address.ip;
    const unreachable = agent?.health.status === 'unreachable';
    const changed = this.#agentIps.get(id) !== ip || this.#unreachable.has(id) !== unreachable;
    if (ip === undefined) this.#agentIps.delete(id);
    else this.#agentIps.set(id, ip);
    if (unreachable) this.#unreachable.add(id);
    else this.#unreachable.delete(id);
    return changed;
  }

  #onAgents(u: ViewUpdate<Agent>): void {
    const changed = new Set<string>();
    if (u.resync) {
      for (const id of [...this.#agentIps.keys()]) if (!this.#views!.agents.records.has(id) && this.#setAgent(id, undefined)) changed.add(id);
    }
    for (const id of u.removed) if (this.#setAgent(id, undefined)) changed.add(id);
    for (const r of u.upserted) if (this.#setAgent(r.id, r.value)) changed.add(r.id);
    if (changed.size === 0) return;
    for (const [appId, tasks] of this.#tasksByApp) {
      if (tasks.some((t) => changed.has(t.agentId))) for (const id of this.#vipsOfApp.get(appId) ?? []) this.#dirty.add(id);
    }
  }

  #mark(note: () => unknown): void {
    try {
      note();
    } catch (err) {
      this.#onError?.(err);
      this.#all = true;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.#flush();
      } catch (err) {
        this.#onError?.(err);
      }
    });
  }

  /** Recompute the dirty VIPs, log those whose text changed, wake the followers. */
  #flush(): void {
    if (this.#closed || !this.#views) return;
    const changes = new Map<string, string | null>();
    if (this.#all) {
      this.#rebuildDesired();
      const inputs = this.#inputs();
      for (const d of this.#desired.values()) {
        const text = JSON.stringify(vipViewOf(d, inputs));
        if (this.#texts.get(d.id) !== text) changes.set(d.id, text);
      }
      for (const id of this.#texts.keys()) if (!this.#desired.has(id)) changes.set(id, null);
    } else {
      for (const id of this.#dirty) {
        const d = this.#desired.get(id);
        if (!d) continue; // a VIP record of no desired VIP: not in the view
        const text = JSON.stringify(vipViewOf(d, this.#inputsFor(d)));
        if (this.#texts.get(id) !== text) changes.set(id, text);
      }
    }
    this.#all = false;
    this.#dirty = new Set();
    if (changes.size === 0) return;
    for (const [id, text] of changes) {
      if (text === null) this.#texts.delete(id);
      else this.#texts.set(id, text);
    }
    this.#index++;
    this.#log.push({ index: this.#index, changes });
    this.#logged += changes.size;
    while (this.#logged > this.#maxLogged && this.#log.length > 1) {
      const dropped = this.#log.shift()!;
      this.#logged -= dropped.changes.size;
      this.#logFrom = dropped.index;
    }
    this.#onChanges?.(changes.size);
    for (const wake of [...this.#waiters]) wake();
  }

  #snapshot(): VipFeedReply {
    const json = `{"type":"snapshot","epoch":${JSON.stringify(this.#epoch)},"index":${this.#index},"vips":[${[...this.#texts.values()].join(',')}]}`;
    return { type: 'snapshot', index: this.#index, json };
  }

  #changesAfter(index: number): Map<string, string | null> {
    const merged = new Map<string, string | null>();
    for (const e of this.#log) if (e.index > index) for (const [id, text] of e.changes) merged.set(id, text);
    return merged;
  }

  #changesReply(merged: Map<string, string | null>): VipFeedReply {
    const vips: string[] = [];
    const removed: string[] = [];
    for (const [id, text] of merged) {
      if (text === null) removed.push(JSON.stringify(id));
      else vips.push(text);
    }
    const json = `{"type":"changes","epoch":${JSON.stringify(this.#epoch)},"index":${this.#index},"vips":[${vips.join(',')}],"removed":[${removed.join(',')}]}`;
    return { type: 'changes', index: this.#index, json };
  }

  /** What a follower at (`epoch`, `index`) needs next; waits up to `waitMs` for changes. */
  async read(epoch: string | undefined, index: number, waitMs: number, signal?: AbortSignal): Promise<VipFeedReply> {
    await this.start();
    if (epoch !== this.#epoch || index < this.#logFrom || index > this.#index) return this.#snapshot();
    let changes = this.#changesAfter(index);
    if (changes.size === 0 && waitMs > 0 && !signal?.aborted && !this.#closed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        this.#waiters.add(done);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (index < this.#logFrom) return this.#snapshot();
      changes = this.#changesAfter(index);
    }
    return this.#changesReply(changes);
  }

  close(): void {
    this.#closed = true;
    if (this.#views) for (const v of Object.values(this.#views)) v.close();
    for (const wake of [...this.#waiters]) wake();
  }
}

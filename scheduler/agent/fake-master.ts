/**
 * Test fixture: a master implementing the agent task contract (see
 * README.md here) on node:http, 127.0.0.1, a free port. It keeps tasks and
 * app versions in memory, records every status report, and can go "down"
 * (every connection is destroyed) and come back.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TERMINAL_TASK_STATES, type App, type Task, type TaskState } from '../../control-plane/model/schemas.ts';
import type { StatusReport } from './task-runner.ts';

export const FAKE_TOKEN = 'fake-agent-token';

export interface Report extends StatusReport {
  readonly taskId: string;
  readonly status: number;
}

export class FakeMaster {
  readonly url: string;
  readonly tasks = new Map<string, Task>();
  readonly apps = new Map<string, App>();
  /** Every status report that reached a task (200), in order. */
  readonly reports: Report[] = [];
  /** Every status request, refused ones too. */
  readonly attempts: Report[] = [];
  readonly registrations: string[] = [];
  down = false;
  /** App version reads answer this status instead of the app while set (503: transient, 403: forbidden). */
  appStatus: number | undefined;
  appReads = 0;
  /** Secret values by the app's secret name, handed out for launching tasks; `secretsRefusal` answers 403 with it instead. */
  readonly secretValues = new Map<string, string>();
  secretsRefusal: string | undefined;
  secretReads = 0;
  index = 1;
  readonly #server: Server;
  readonly #waiters = new Set<() => void>();

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  static async start(): Promise<FakeMaster> {
    const holder: { master?: FakeMaster } = {};
    const server = createServer((req, res) => void holder.master!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.master = new FakeMaster(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return holder.master;
  }

  addApp(app: Partial<App> & { id: string; version: string }): App {
    const full = { env: {}, labels: {}, portDefinitions: [], cpus: 0.1, mem: 32, disk: 0, gpus: 0, instances: 1, ...app } as App;
    this.apps.set(`${app.id}@${app.version}`, full);
    return full;
  }

  addTask(task: Partial<Task> & { id: string; appId: string; agentId: string; version: string }): Task {
    const now = new Date().toISOString();
    const full = {
      host: 'agent.test', state: 'STAGING' as TaskState, stagedAt: now, stateChangedAt: now, ports: [], servicePorts: [], ipAddresses: [], healthCheckResults: [],
      resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 }, role: '*', ...task,
    } as Task;
    this.tasks.set(task.id, full);
    this.bump();
    return full;
  }

  setState(taskId: string, state: TaskState): void {
    this.tasks.set(taskId, { ...this.tasks.get(taskId)!, state, stateChangedAt: new Date().toISOString() });
    this.bump();
  }

  removeTask(taskId: string): void {
    this.tasks.delete(taskId);
    this.bump();
  }

  /** The states reported for a task, in order. */
  statesOf(taskId: string): TaskState[] {
    return this.reports.filter((r) => r.taskId === taskId).map((r) => r.state);
  }

  bump(): void {
    this.index++;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  async close(): Promise<void> {
    this.bump();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down) return void req.socket.destroy();
    const send = (status: number, body: unknown): void => {
      if (this.down) return void req.socket.destroy();
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `token=${FAKE_TOKEN}`) return send(401, { code: 'AUTH_REQUIRED' });
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown) : undefined;
    let m: RegExpExecArray | null;
    if (req.method === 'PUT' && (m = /^\/v1\/agents\/([^/]+)$/.exec(url.pathname))) {
      this.registrations.push(decodeURIComponent(m[1]!));
      return send(200, {});
    }
    if (req.method === 'GET' && (m = /^\/v1\/agents\/([^/]+)\/tasks$/.exec(url.pathname))) {
      const agentId = decodeURIComponent(m[1]!);
      const index = Number(url.searchParams.get('index') ?? 0);
      const wait = Number(url.searchParams.get('wait') ?? 30);
      if (index >= this.index) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.#waiters.delete(resolve);
            resolve();
          }, wait * 1000);
          this.#waiters.add(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      const tasks = [...this.tasks.values()].filter((t) => t.agentId === agentId && !TERMINAL_TASK_STATES.has(t.state));
      return send(200, { index: this.index, tasks });
    }
    if (req.method === 'PUT' && (m = /^\/v1\/agents\/([^/]+)\/tasks\/([^/]+)\/status$/.exec(url.pathname))) {
      const [agentId, taskId] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
      const report = { taskId, ...(body as StatusReport) };
      const task = this.tasks.get(taskId);
      const status = !task || task.agentId !== agentId ? 404 : TERMINAL_TASK_STATES.has(task.state) ? 409 : 200;
      this.attempts.push({ ...report, status });
      if (status !== 200) return send(status, { code: status === 404 ? 'RECORD_NOT_FOUND' : 'RECORD_CONFLICT' });
      this.reports.push({ ...report, status });
      const updated = { ...task!, state: report.state, stateChangedAt: report.timestamp ?? new Date().toISOString() };
      this.tasks.set(taskId, updated);
      this.bump();
      return send(200, updated);
    }
    if (req.method === 'GET' && (m = /^\/v1\/agents\/([^/]+)\/tasks\/([^/]+)\/app$/.exec(url.pathname))) {
      this.appReads++;
      if (this.appStatus !== undefined) return send(this.appStatus, { message: `app reads answer ${this.appStatus}` });
      const task = this.tasks.get(decodeURIComponent(m[2]!));
      if (!task || task.agentId !== decodeURIComponent(m[1]!)) return send(404, { code: 'RECORD_NOT_FOUND' });
      const app = this.apps.get(`${task.appId}@${task.version}`);
      return app ? send(200, app) : send(404, { message: 'no such app version' });
    }
    if (req.method === 'GET' && (m = /^\/v1\/agents\/([^/]+)\/tasks\/([^/]+)\/secrets$/.exec(url.pathname))) {
      this.secretReads++;
      const task = this.tasks.get(decodeURIComponent(m[2]!));
      if (!task || task.agentId !== decodeURIComponent(m[1]!)) return send(404, { code: 'RECORD_NOT_FOUND' });
      if (this.secretsRefusal !== undefined) return send(403, { code: 'SECRET_NOT_ALLOWED', message: this.secretsRefusal });
      const app = this.apps.get(`${task.appId}@${task.version}`);
      const secrets: Record<string, string> = {};
      for (const name of Object.keys(app?.secrets ?? {})) {
        const value = this.secretValues.get(name);
        if (value !== undefined) secrets[name] = value;
      }
      return send(200, { secrets });
    }
    send(404, { code: 'API_NOT_FOUND' });
  }
}

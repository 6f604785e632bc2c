/**
 * App endpoints behind `/service/<app-id>/...` (DC/OS Admin Router's service
 * endpoints for Marathon apps).
 *
 * - The app is the longest app id that is a segment prefix of the path, so
 *   apps in groups work (`/service/shop/web/x` is app `/shop/web`, path `/x`).
 * - The backend is a RUNNING task of it that passed every health check (an
 *   app without checks: every RUNNING task), at the port the app's
 *   `DCOS_SERVICE_PORT_INDEX` label names (default 0): the agent's address
 *   and the host port, or the task's container IP and container port on a
 *   container network. Several: round robin.
 * - The prefix is stripped (`DCOS_SERVICE_REWRITE_REQUEST_URLS` = `false`
 *   keeps it, as in DC/OS).
 *
 * {@link resolveService} and {@link serviceBackends} are pure;
 * {@link ServiceDirectory} keeps watched views of apps, tasks and agents and
 * the round-robin position.
 */
import { openView, type Records, type RecordView } from '../control-plane/model/records.ts';
import type { Agent, App, Task } from '../control-plane/model/schemas.ts';
import { appPorts } from '../control-plane/vips/plan.ts';

export interface ServiceBackend {
  readonly taskId: string;
  readonly host: string;
  readonly port: number;
}

export interface ResolvedService {
  readonly appId: string;
  /** The path (and query) to send to the task. */
  readonly upstreamPath: string;
  /** `/service/<app>`, sent as `X-Forwarded-Prefix`. */
  readonly prefix: string;
}

/** Pure: the app a `/service/` path names (longest id first), and the path its task gets. */
export function resolveService(rest: string, query: string, apps: { get(appId: string): App | undefined }): ResolvedService | undefined {
  const segments = rest.split('/');
  for (let n = segments.length; n >= 1; n--) {
    const appId = `/${segments.slice(0, n).join('/')}`;
    const app = apps.get(appId);
    if (!app) continue;
    const prefix = `/service${appId}`;
    const stripped = `/${segments.slice(n).join('/')}`;
    const keep = app.labels['DCOS_SERVICE_REWRITE_REQUEST_URLS'] === 'false';
    return { appId, prefix, upstreamPath: `${keep ? `${prefix}${stripped === '/' ? '' : stripped}` : stripped}${query}` };
  }
  return undefined;
}

/** Pure: the tasks of `app` that may take requests, and why the others may not (for the 503 message). */
export function serviceBackends(app: App, tasks: readonly Task[], agentIp: (agentId: string) => string | undefined): { backends: ServiceBackend[]; excluded: string[] } {
  const index = Number(app.labels['DCOS_SERVICE_PORT_INDEX'] ?? '0');
  const { field, ports } = appPorts(app);
  const backends: ServiceBackend[] = [];
  const excluded: string[] = [];
  for (const task of tasks) {
    if (task.state !== 'RUNNING') {
      excluded.push(`${task.id} is ${task.state}`);
      continue;
    }
    if (app.healthChecks.length > 0 && (task.healthCheckResults.length < app.healthChecks.length || !task.healthCheckResults.every((r) => r.alive))) {
      excluded.push(`${task.id} is not healthy`);
      continue;
    }
    const spec = ports[index];
    const container = task.ipAddresses[0]?.ipAddress;
    let host: string;
    let port: number | undefined;
    if (field === 'container/portMappings' && container !== undefined && spec && 'containerPort' in spec && spec.containerPort > 0) {
      host = container;
      port = spec.containerPort;
    } else {
      host = agentIp(task.agentId) ?? task.host;
      port = task.ports[index];
    }
    if (port === undefined) {
      excluded.push(`${task.id} has no port ${index}`);
      continue;
    }
    backends.push({ taskId: task.id, host, port });
  }
  return { backends, excluded };
}

/** What the gateway asks about app endpoints (a {@link ServiceDirectory}, or a fake). */
export interface ServiceCatalog {
  resolve(rest: string, query: string): ResolvedService | undefined;
  /** The next backend of the app (round robin), or why there is none. */
  pick(appId: string): { readonly backend: ServiceBackend } | { readonly problem: string };
  /** Apps and their servable task count (for the status route). */
  summary(): { appId: string; backends: number }[];
}

/** {@link ServiceCatalog} over watched views of apps, tasks and agents. */
export class ServiceDirectory implements ServiceCatalog {
  readonly #apps: RecordView<App>;
  readonly #tasks: RecordView<Task>;
  readonly #agents: RecordView<Agent>;
  readonly #next = new Map<string, number>();
  #tasksByApp: Map<string, Task[]> | undefined;

  private constructor(apps: RecordView<App>, tasks: RecordView<Task>, agents: RecordView<Agent>) {
    this.#apps = apps;
    this.#tasks = tasks;
    this.#agents = agents;
    tasks.subscribe(() => {
      this.#tasksByApp = undefined;
    });
  }

  static async open(records: Records, options: { readonly onError?: (err: unknown) => void } = {}): Promise<ServiceDirectory> {
    const opts = options.onError ? { onError: options.onError } : {};
    const apps = await openView(records, 'app', opts);
    const tasks = await openView(records, 'task', opts).catch((err: unknown) => {
      apps.close();
      throw err;
    });
    const agents = await openView(records, 'agent', opts).catch((err: unknown) => {
      apps.close();
      tasks.close();
      throw err;
    });
    return new ServiceDirectory(apps, tasks, agents);
  }

  #tasksOf(appId: string): Task[] {
    if (!this.#tasksByApp) {
      const byApp = new Map<string, Task[]>();
      for (const { value } of this.#tasks.records.values()) {
        const list = byApp.get(value.appId) ?? [];
        list.push(value);
        byApp.set(value.appId, list);
      }
      this.#tasksByApp = byApp;
    }
    return this.#tasksByApp.get(appId) ?? [];
  }

  resolve(rest: string, query: string): ResolvedService | undefined {
    // One lookup per path prefix in the watched view: nothing per request grows with the number of apps.
    return resolveService(rest, query, this.#apps);
  }

  pick(appId: string): { backend: ServiceBackend } | { problem: string } {
    const app = this.#apps.get(appId);
    if (!app) return { problem: `app ${appId} no longer exists` };
    const tasks = this.#tasksOf(appId);
    const { backends, excluded } = serviceBackends(app, tasks, (id) => this.#agents.get(id)?.address.ip);
    if (backends.length === 0) {
      const why = tasks.length === 0 ? 'it has no tasks' : `of its ${tasks.length} task(s): ${excluded.slice(0, 5).join('; ')}`;
      return { problem: `app ${appId} has no running, healthy task to take the request (${why})` };
    }
    const i = (this.#next.get(appId) ?? 0) % backends.length;
    this.#next.set(appId, i + 1);
    return { backend: backends[i]! };
  }

  summary(): { appId: string; backends: number }[] {
    return [...this.#apps.records.values()].map(({ value: app }) => ({
      appId: app.id,
      backends: serviceBackends(app, this.#tasksOf(app.id), (id) => this.#agents.get(id)?.address.ip).backends.length,
    }));
  }

  close(): void {
    this.#apps.close();
    this.#tasks.close();
    this.#agents.close();
  }
}

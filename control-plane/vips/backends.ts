/**
 * The backends of a VIP: the tasks of the apps that publish it, with the
 * address and port to reach each and its weight (DC/OS: 1 when running and
 * healthy; 0 when unhealthy, draining in KILLING, or before its first health
 * check result). Pure; the API lists them and the dataplane and xDS
 * translators (issue 5) build on them.
 */
import type { App, Task } from '../model/schemas.ts';
import type { DesiredVip } from './plan.ts';
import { appPorts } from './plan.ts';

export interface VipBackend {
  readonly appId: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** The VIP port this backend serves. */
  readonly vipPort: number;
  readonly state: Task['state'];
  /** 1 = takes new connections, 0 = drained (unhealthy, killing, not checked yet). */
  readonly weight: 0 | 1;
  readonly why?: string;
}

function healthOf(app: App, task: Task): { weight: 0 | 1; why?: string } {
  if (task.state === 'KILLING') return { weight: 0, why: 'draining: the task is being killed' };
  if (app.healthChecks.length === 0) return { weight: 1 };
  if (task.healthCheckResults.length < app.healthChecks.length) return { weight: 0, why: 'no health check result yet' };
  const failing = task.healthCheckResults.findIndex((r) => !r.alive);
  return failing < 0 ? { weight: 1 } : { weight: 0, why: `health check ${failing} failing` };
}

/**
 * Backends of `vip` among `tasks` (RUNNING and KILLING tasks of the apps
 * using it). Host network: the agent's address (`agentIp`, else the task's
 * host name) and the task's host port; container networks: the task's
 * container IP and the container port.
 */
export function vipBackends(
  vip: DesiredVip,
  apps: ReadonlyMap<string, App>,
  tasksByApp: ReadonlyMap<string, readonly Task[]>,
  agentIp: (agentId: string) => string | undefined = () => undefined,
): VipBackend[] {
  const out: VipBackend[] = [];
  for (const use of vip.uses) {
    const app = apps.get(use.appId);
    if (!app) continue;
    const { field, ports } = appPorts(app);
    const portSpec = ports[use.portIndex];
    for (const task of tasksByApp.get(use.appId) ?? []) {
      if (task.state !== 'RUNNING' && task.state !== 'KILLING') continue;
      // Tasks of every version serve while a deployment replaces them.
      let ip: string;
      let port: number | undefined;
      if (field === 'portDefinitions') {
        ip = agentIp(task.agentId) ?? task.host;
        port = task.ports[use.portIndex];
      } else {
        const container = task.ipAddresses[0]?.ipAddress;
        const hostPort = task.ports[use.portIndex];
        if (container !== undefined) {
          ip = container;
          port = portSpec && 'containerPort' in portSpec && portSpec.containerPort > 0 ? portSpec.containerPort : hostPort;
        } else {
          ip = agentIp(task.agentId) ?? task.host;
          port = hostPort;
        }
      }
      if (port === undefined) continue;
      const { weight, why } = healthOf(app, task);
      for (const protocol of use.protocols) {
        out.push({ appId: app.id, taskId: task.id, agentId: task.agentId, ip, port, protocol, vipPort: use.port, state: task.state, weight, ...(why === undefined ? {} : { why }) });
      }
    }
  }
  return out;
}

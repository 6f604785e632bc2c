/**
 * Builders of full model records for the zone tests and the benchmark:
 * agents, apps (with Marathon's defaults), tasks, leader info and VIPs,
 * each valid against the model's schemas (`records.put` accepts them).
 */
import { withAppDefaults } from '../../control-plane/model/app-defaults.ts';
import type { Agent, App, AppDefinition, LeaderInfo, Task, Vip } from '../../control-plane/model/schemas.ts';

export const AT = '2026-01-01T00:00:00.000Z';

export function mkAgent(id: string, extra: { ip?: string; ipv6?: string; hostname?: string; port?: number; status?: Agent['health']['status'] } = {}): Agent {
  return {
    id,
    hostname: extra.hostname ?? `${id.toLowerCase().replace(/[^a-z0-9-]/g, '-')}.example`,
    address: { ip: extra.ip ?? '10.0.0.1', ...(extra.ipv6 ? { ipv6: extra.ipv6 } : {}), port: extra.port ?? 5051 },
    attributes: {},
    resources: { cpus: 4, memMb: 4096, diskMb: 10000, gpus: 0, ports: [{ begin: 10000, end: 20000 }] },
    reservations: [],
    health: { status: extra.status ?? 'healthy', lastSeenAt: AT },
    maintenance: 'none',
    registeredAt: AT,
  };
}

export function mkApp(id: string, def: Partial<AppDefinition> = {}): App {
  return withAppDefaults({ id, cmd: 'sleep 1000', cpus: 0.1, mem: 32, ...def }, { version: AT });
}

export function mkTask(id: string, appId: string, agentId: string, extra: Partial<Task> = {}): Task {
  return {
    id,
    appId,
    agentId,
    host: 'agent.example',
    state: 'RUNNING',
    stagedAt: AT,
    startedAt: AT,
    stateChangedAt: AT,
    ports: [],
    servicePorts: [],
    ipAddresses: [],
    healthCheckResults: [],
    version: AT,
    resources: { cpus: 0.1, memMb: 32, diskMb: 0, gpus: 0 },
    role: '*',
    ...extra,
  };
}

export function mkLeader(apiUrl = 'http://10.0.0.100:8080'): LeaderInfo {
  return { id: 'master-1', apiUrl, electedAt: AT };
}

export function mkVip(name: string, extra: Partial<Vip> = {}): Vip {
  return { framework: 'marathon', name, kind: 'named', ipv4: '11.0.0.1', ports: [{ port: 80, protocol: 'tcp' }], ...extra };
}

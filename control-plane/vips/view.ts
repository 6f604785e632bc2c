/**
 * The VIP view (`GET /networking/api/v1/vips`) of one desired VIP, as data:
 * its addresses, DNS name, ports, apps and backends with their weights and
 * agent reachability. Pure; the list route builds every VIP with it, the
 * delta feed (`feed-hub.ts`) only the VIPs a change touched.
 */
import type { App, Task, Vip } from '../model/schemas.ts';
import { vipDnsLabel } from '../model/vip-label.ts';
import { vipBackends, type VipBackend } from './backends.ts';
import type { DesiredVip } from './plan.ts';

export type VipView = {
  id: string; framework: string; name: string; kind: string; dnsName?: string; ipv4?: string; ipv6?: string;
  allocated: boolean; ports: { port: number; protocol: string }[]; apps: string[]; backends: (VipBackend & { agentUnreachable?: boolean })[];
};

/** What the views are built from (read-only; the caller owns it). */
export interface VipViewInputs {
  readonly apps: ReadonlyMap<string, App>;
  readonly tasksByApp: ReadonlyMap<string, readonly Task[]>;
  /** VIP records by id (the desired VIP's id). */
  readonly stored: ReadonlyMap<string, Vip>;
  /** Agent address by agent id (host-network backends are reached there). */
  readonly agentIps: ReadonlyMap<string, string>;
  readonly unreachableAgents: ReadonlySet<string>;
}

export function vipViewOf(d: DesiredVip, inputs: VipViewInputs): VipView {
  const s = inputs.stored.get(d.id);
  return {
    id: d.id,
    framework: d.framework,
    name: d.name,
    kind: d.kind,
    ...(d.kind === 'named' ? { dnsName: `${vipDnsLabel(d.name)}.${d.framework}.l4lb.thisdcos.directory` } : {}),
    ...(s?.ipv4 === undefined ? {} : { ipv4: s.ipv4 }),
    ...(s?.ipv6 === undefined ? {} : { ipv6: s.ipv6 }),
    allocated: s !== undefined,
    ports: [...d.ports],
    apps: [...new Set(d.uses.map((u) => u.appId))].sort(),
    backends: vipBackends(d, inputs.apps, inputs.tasksByApp, (id) => inputs.agentIps.get(id)).map((b) => (inputs.unreachableAgents.has(b.agentId) ? { ...b, agentUnreachable: true } : b)),
  };
}

/**
 * Network policy decisions (pure): which rule of which policy decides a
 * flow, and why. The same function answers `strata policy explain` and is
 * what the agents' nftables translation must agree with.
 *
 * Semantics (control-plane/model/schemas.ts `Policy`): a policy applies to
 * the destinations its `to` peers select; for a flow to such a destination
 * the first rule whose `from` and `ports` match decides, else the policy's
 * `defaultAction`. Several policies selecting one destination must all
 * allow (deny wins; the first denying policy by name is reported).
 * Destinations no policy selects are not isolated (DC/OS's default).
 */
import { cidrContains, parseCidr } from '../../common/ip.ts';
import type { App, Policy, PolicyPeer, PolicyPorts, Task } from '../model/schemas.ts';
import { TERMINAL_TASK_STATES } from '../model/schemas.ts';

/** One side of a flow, resolved from what the user named. */
export interface Endpoint {
  /** What the user gave (`/web`, `9.0.1.5`, `web.1234`). */
  readonly input: string;
  readonly appId?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Overlay networks the endpoint is on. */
  readonly networks: readonly string[];
  /** Its addresses (task container IPs, or the IP given). */
  readonly ips: readonly string[];
}

export type FlowProtocol = 'tcp' | 'udp' | 'icmp';

export interface Flow {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly protocol: FlowProtocol;
  /** Destination port (tcp/udp). */
  readonly port?: number;
}

export interface PolicyVerdict {
  readonly policy: string;
  readonly action: 'allow' | 'deny';
  /** Index of the deciding rule, or `default`. */
  readonly decidedBy: number | 'default';
  readonly why: string;
}

export interface Decision {
  readonly action: 'allow' | 'deny';
  /** Every policy that selects the destination, in name order, with its verdict. */
  readonly verdicts: readonly PolicyVerdict[];
  readonly summary: string;
}

function matchesApp(pattern: string, appId: string | undefined): boolean {
  if (appId === undefined) return false;
  if (pattern === '/*') return true;
  if (pattern.endsWith('/*')) return appId.startsWith(pattern.slice(0, -1));
  return appId === pattern;
}

/** Does `peer` select `endpoint`? With the reason, for explanations. */
export function peerMatches(peer: PolicyPeer, endpoint: Endpoint): string | undefined {
  if (peer.network !== undefined) return endpoint.networks.includes(peer.network) ? `is on network ${peer.network}` : undefined;
  if (peer.cidr !== undefined) {
    const range = parseCidr(peer.cidr);
    const ip = range && endpoint.ips.find((a) => cidrContains(range, a));
    return ip ? `${ip} is in ${peer.cidr}` : undefined;
  }
  if (peer.appId !== undefined) return matchesApp(peer.appId, endpoint.appId) ? `is app ${endpoint.appId} (${peer.appId})` : undefined;
  if (peer.appLabels !== undefined) {
    const wanted = Object.entries(peer.appLabels);
    return endpoint.appId !== undefined && wanted.every(([k, v]) => endpoint.labels[k] === v)
      ? `has labels ${wanted.map(([k, v]) => `${k}=${v}`).join(',')}`
      : undefined;
  }
  return undefined;
}

function portsMatch(ports: readonly PolicyPorts[], flow: Flow): boolean {
  if (ports.length === 0) return true;
  return ports.some((p) => {
    if (p.protocol !== 'any' && p.protocol !== flow.protocol) return false;
    if (p.port === undefined) return true;
    if (flow.port === undefined) return false;
    return flow.port >= p.port && flow.port <= (p.endPort ?? p.port);
  });
}

function describeFlow(flow: Flow): string {
  return `${flow.from.input} -> ${flow.to.input} ${flow.protocol}${flow.port === undefined ? '' : `/${flow.port}`}`;
}

export function decide(policies: readonly Policy[], flow: Flow): Decision {
  const verdicts: PolicyVerdict[] = [];
  for (const policy of [...policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const selects = policy.to.map((p) => peerMatches(p, flow.to)).find((r) => r !== undefined);
    if (selects === undefined) continue;
    let verdict: PolicyVerdict | undefined;
    for (const [i, rule] of policy.rules.entries()) {
      const source = rule.from.map((p) => peerMatches(p, flow.from)).find((r) => r !== undefined);
      if (source === undefined || !portsMatch(rule.ports, flow)) continue;
      verdict = { policy: policy.name, action: rule.action, decidedBy: i, why: `destination ${selects}; rule ${i} (${rule.action}): source ${source}${rule.description ? ` — ${rule.description}` : ''}` };
      break;
    }
    verdicts.push(verdict ?? { policy: policy.name, action: policy.defaultAction, decidedBy: 'default', why: `destination ${selects}; no rule matches the source and port, so the policy's default (${policy.defaultAction}) decides` });
  }
  if (verdicts.length === 0) return { action: 'allow', verdicts, summary: `${describeFlow(flow)}: allowed — no policy selects ${flow.to.input} (not isolated)` };
  const denied = verdicts.find((v) => v.action === 'deny');
  if (denied) return { action: 'deny', verdicts, summary: `${describeFlow(flow)}: denied by policy ${denied.policy} (${denied.decidedBy === 'default' ? 'its default' : `rule ${denied.decidedBy}`})` };
  return { action: 'allow', verdicts, summary: `${describeFlow(flow)}: allowed by ${verdicts.map((v) => `${v.policy} (${v.decidedBy === 'default' ? 'default' : `rule ${v.decidedBy}`})`).join(', ')}` };
}

/**
 * What the user named, as an endpoint: an app id (`/web`: its labels,
 * networks and its live tasks' IPs), a task id, or an IP address (the task
 * holding it, if any). `undefined` when nothing matches.
 */
export function resolveEndpoint(input: string, apps: ReadonlyMap<string, App>, tasks: readonly Task[]): Endpoint | undefined {
  const live = tasks.filter((t) => !TERMINAL_TASK_STATES.has(t.state));
  const ofApp = (app: App, only?: Task): Endpoint => ({
    input,
    appId: app.id,
    labels: app.labels,
    networks: app.networks.flatMap((n) => (n.mode === 'container' ? [n.name ?? 'dcos'] : [])),
    ips: (only ? [only] : live.filter((t) => t.appId === app.id)).flatMap((t) => t.ipAddresses.map((a) => a.ipAddress)),
  });
  if (input.startsWith('/')) {
    const app = apps.get(input);
    return app ? ofApp(app) : undefined;
  }
  const task = live.find((t) => t.id === input) ?? live.find((t) => t.ipAddresses.some((a) => a.ipAddress === input));
  if (task) {
    const app = apps.get(task.appId);
    if (app) return input === task.id ? ofApp(app, task) : { ...ofApp(app, task), ips: [input] };
  }
  if (parseCidr(`${input}/${input.includes(':') ? 128 : 32}`)) return { input, labels: {}, networks: [], ips: [input] };
  return undefined;
}

/**
 * Every live task with a container IP, as the policies see it (its app's
 * id, labels and networks, its addresses): what the agents' nftables
 * enforcement compiles selectors from, built the way {@link resolveEndpoint}
 * resolves a task's IP, so both see the same endpoint.
 */
export function policyEndpoints(apps: ReadonlyMap<string, App>, tasks: readonly Task[]): { appId: string; labels: Readonly<Record<string, string>>; networks: string[]; ips: string[] }[] {
  const out: { appId: string; labels: Readonly<Record<string, string>>; networks: string[]; ips: string[] }[] = [];
  for (const task of tasks) {
    if (TERMINAL_TASK_STATES.has(task.state) || task.ipAddresses.length === 0) continue;
    const app = apps.get(task.appId);
    if (!app) continue;
    out.push({
      appId: app.id,
      labels: app.labels,
      networks: app.networks.flatMap((n) => (n.mode === 'container' ? [n.name ?? 'dcos'] : [])),
      ips: task.ipAddresses.map((a) => a.ipAddress),
    });
  }
  return out;
}

/**
 * The pure zone builder: cluster state in, resource records out. No I/O, no
 * clock; the same state and options always give the same records.
 *
 * Records come in two parts so an applier can rebuild only what a change
 * touched: {@link taskRecords} (everything one task contributes, a function
 * of the task, its app and its agent) and {@link clusterRecords} (masters,
 * agents, frameworks, VIPs, NS; a function of everything but the tasks).
 * {@link buildZone} is both, for a whole state. SOA records are not built
 * here: their serial changes with every state change, so the authority
 * makes them at answer time ({@link soaRecord}).
 *
 * Names follow Mesos-DNS (MD `records/generator.go`, `records/chains.go`)
 * and dcos-net (`dcos_dns_mesos.erl`, `dcos_l4lb_lashup_vip_listener.erl`);
 * the README lists every name with its source.
 */
import { vipDnsLabel } from '../../control-plane/model/vip-label.ts';
import { isIP } from 'node:net';
import type { Agent, Framework, LeaderInfo, Vip } from '../../control-plane/model/schemas.ts';
import type { ClusterState, ZoneApp, ZoneTask } from './feed.ts';
import {
  agentIdTail,
  domainFrag,
  isValidName,
  labelSpec,
  marathonHostname,
  rfc1123Label,
  reverseName,
  taskIdHash,
  underscoreLabel,
  withLabelSuffix,
} from '../../common/dns-labels.ts';
import { THIS_DCOS_APEX, type SoaOptions, type ZoneOptions } from './options.ts';
import type { ResourceRecord } from './types.ts';

/** The framework of every Marathon app's tasks. */
export const MARATHON_FRAMEWORK = 'marathon';

/** The `dcos.thisdcos.directory` sub-zone (dcos-net). */
export const DCOS_ZONE = `dcos.${THIS_DCOS_APEX}`;
export const L4LB_ZONE = `l4lb.${THIS_DCOS_APEX}`;
export const MESOS_MIRROR_ZONE = `mesos.${THIS_DCOS_APEX}`;

/** One record of `/v1/enumerate` (Mesos-DNS `EnumerableRecord`): absolute name with its dot, address or `target.:port`. */
export interface EnumerableRecord {
  readonly name: string;
  readonly host: string;
  readonly rtype: 'A' | 'AAAA' | 'SRV';
}

/** A task's `mesos`-zone records as `/v1/enumerate` lists them. */
export interface EnumerableTask {
  readonly name: string;
  readonly id: string;
  readonly records: readonly EnumerableRecord[];
}

export interface BuiltZone {
  /** Every record but the SOAs, in build order (duplicates possible: answers de-duplicate). */
  readonly records: readonly ResourceRecord[];
  /** Per published task, by task id. */
  readonly tasks: ReadonlyMap<string, EnumerableTask>;
}

/** One port a task is discoverable on (Marathon's DiscoveryInfo port). */
export interface DiscoveryPort {
  readonly number: number;
  readonly protocol: 'tcp' | 'udp';
  readonly name: string | undefined;
}

/** The apexes of the zones the options serve (reverse zones excepted). */
export function forwardApexes(options: ZoneOptions): readonly string[] {
  return options.thisDcos.enabled ? [options.domain, THIS_DCOS_APEX] : [options.domain];
}

/** The SOA of an apex the options serve; the serial is the state's version (kept within 32 bits). */
export function soaRecord(apex: string, serial: number, options: ZoneOptions): ResourceRecord {
  const thisDcos = apex === THIS_DCOS_APEX;
  const soa: SoaOptions = thisDcos ? options.thisDcos.soa : options.soa;
  return {
    name: apex,
    type: 'SOA',
    ttlSeconds: thisDcos ? options.thisDcos.ttlSeconds : options.ttlSeconds,
    mname: soa.mname,
    rname: soa.rname,
    serial: serial % 2 ** 32,
    refreshSeconds: soa.refreshSeconds,
    retrySeconds: soa.retrySeconds,
    expireSeconds: soa.expireSeconds,
    minimumSeconds: soa.minimumSeconds,
  };
}

/**
 * The `mesos.thisdcos.directory` mirror is not stored: the authority maps
 * a question under it to the `mesos` zone (`toMesos`) and the answer's
 * names and SRV targets back (`toMirror`), so the mirror costs no memory.
 */
export function toMesos(name: string, options: ZoneOptions): string | undefined {
  if (name === MESOS_MIRROR_ZONE) return options.domain;
  return name.endsWith(`.${MESOS_MIRROR_ZONE}`) ? `${name.slice(0, name.length - MESOS_MIRROR_ZONE.length)}${options.domain}` : undefined;
}

export function toMirror(name: string, options: ZoneOptions): string {
  const domain = options.domain;
  if (name === domain) return MESOS_MIRROR_ZONE;
  return name.endsWith(`.${domain}`) ? `${name.slice(0, name.length - domain.length)}${MESOS_MIRROR_ZONE}` : name;
}

/** Labels joined into a name (a flat string). */
function dot(...parts: string[]): string {
  return parts.join('.');
}

/** Collects records, leaving out any whose name or target is not a valid name. */
class Collector {
  readonly out: ResourceRecord[] = [];
  readonly #options: ZoneOptions;

  constructor(options: ZoneOptions) {
    this.#options = options;
  }

  /** True if added (a valid name). */
  add(record: ResourceRecord): boolean {
    if (!isValidName(record.name)) return false;
    if ((record.type === 'SRV' || record.type === 'PTR' || record.type === 'NS') && !isValidName(record.target)) return false;
    this.out.push(record);
    return true;
  }

  address(name: string, address: string, ttlSeconds: number): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.add({ name, type: family === 4 ? 'A' : 'AAAA', ttlSeconds, address: address.toLowerCase() });
  }

  srv(name: string, target: string, port: number, ttlSeconds: number): boolean {
    return this.add({ name, type: 'SRV', ttlSeconds, priority: 0, weight: this.#options.srvWeight, port, target });
  }

  ptr(address: string, target: string, ttlSeconds: number): void {
    if (!this.#options.ptrRecords) return;
    const name = reverseName(address);
    if (name !== undefined) this.add({ name, type: 'PTR', ttlSeconds, target });
  }
}

// ---------------------------------------------------------------------------
// Tasks

/** The agent's addresses: IPv4, then IPv6 when it has one. */
function agentAddresses(agent: Agent): string[] {
  return agent.address.ipv6 ? [agent.address.ip, agent.address.ipv6] : [agent.address.ip];
}

function containerAddresses(task: ZoneTask): string[] {
  return task.ipAddresses.map((a) => a.ipAddress);
}

/** dcos-net's `autoip`: the agent's addresses if the task has host ports or no container address, else the container addresses. */
function autoAddresses(task: ZoneTask, agent: Agent): string[] {
  const container = containerAddresses(task);
  return task.ports.length > 0 || container.length === 0 ? agentAddresses(agent) : container;
}

/** The task's addresses from the first IP source that yields any (Mesos-DNS `IPSources`). */
export function taskAddresses(task: ZoneTask, agent: Agent, options: ZoneOptions): string[] {
  for (const source of options.ipSources) {
    const found = source === 'host' ? agentAddresses(agent) : source === 'autoip' ? autoAddresses(task, agent) : containerAddresses(task);
    if (found.length > 0) return found;
  }
  return [];
}

/**
 * The ports Marathon publishes in the task's DiscoveryInfo: in host
 * networking each port definition with the host port the task got; in
 * bridge/container networking each port mapping, with its host port when
 * it has one, else its container port. `udp,tcp` gives one port per protocol.
 */
export function discoveryPorts(task: ZoneTask, app: ZoneApp | undefined): DiscoveryPort[] {
  if (!app) return [];
  const out: DiscoveryPort[] = [];
  const push = (number: number | undefined, protocol: string, name: string | undefined): void => {
    if (number === undefined || number <= 0) return;
    for (const p of protocol.split(',')) {
      if (p === 'tcp' || p === 'udp') out.push({ number, protocol: p, name });
    }
  };
  const mode = app.networks[0]?.mode ?? 'host';
  if (mode === 'host') {
    app.portDefinitions.forEach((d, i) => push(task.ports[i], d.protocol, d.name));
    return out;
  }
  let hostIndex = 0;
  for (const m of app.container?.portMappings ?? []) {
    if (m.hostPort !== undefined) push(task.ports[hostIndex++], m.protocol, m.name);
    else push(m.containerPort, m.protocol, m.name);
  }
  return out;
}

/** Whether the task gets records: RUNNING (or starting, when asked), on a known agent, and healthy when `healthyOnly`. */
export function isTaskPublished(task: ZoneTask, app: ZoneApp | undefined, agent: Agent | undefined, options: ZoneOptions): agent is Agent {
  if (!agent) return false;
  const live = task.state === 'RUNNING' || (options.includeStartingTasks && (task.state === 'STAGING' || task.state === 'STARTING'));
  if (!live) return false;
  if (options.healthyOnly && task.state === 'RUNNING' && app && app.healthChecks.length > 0) {
    const results = task.healthCheckResults;
    return results.length >= app.healthChecks.length && results.every((r) => r.alive);
  }
  return true;
}

/**
 * Every record one task contributes, or `undefined` when it gets none
 * ({@link isTaskPublished}). The framework is `marathon`; the task's name is
 * its app's Marathon host name (`/group/web` → `web.group`), published both
 * as Marathon's DiscoveryInfo name (dots kept: `web.group.marathon.mesos`)
 * and sanitised (`web-group.marathon.mesos`), as Mesos-DNS does.
 */
export function taskRecords(task: ZoneTask, app: ZoneApp | undefined, agent: Agent | undefined, options: ZoneOptions): readonly ResourceRecord[] | undefined {
  if (!isTaskPublished(task, app, agent, options)) return undefined;
  const spec = labelSpec(options.enforceRfc952);
  const collector = new Collector(options);
  const ttl = options.ttlSeconds;
  const domain = options.domain;
  const framework = domainFrag(MARATHON_FRAMEWORK, spec);
  const discoveryName = marathonHostname(task.appId);
  const hasDiscovery = app !== undefined;
  const hash = taskIdHash(task.id);
  const tail = agentIdTail(task.agentId, spec);
  const taskIps = taskAddresses(task, agent, options);
  const agentIps = agentAddresses(agent);
  const ports = discoveryPorts(task, app);

  const address = (name: string, ips: readonly string[]): void => {
    for (const ip of ips) collector.address(name, ip, ttl);
  };
  const srv = (name: string, target: string, port: number): void => {
    collector.srv(name, target, port, ttl);
  };

  // The name sanitised into one label, and (with DiscoveryInfo) as given, each dot part made a label.
  // The first is the PTR target's form.
  const forms = [...new Set([spec(discoveryName), hasDiscovery ? domainFrag(discoveryName, spec) : ''])].filter((f) => f !== '');
  let ptrTarget: string | undefined;
  for (const taskName of forms) {
    const parts = taskName.split('.');
    const last = parts.pop()!;
    const canonicalLabel = withLabelSuffix(last, `-${hash}${tail ? `-${tail}` : ''}`);
    const canonical = [...parts, canonicalLabel, framework].join('.');
    // Names are joined, not templated: `join` gives flat strings, where templates leave concatenation trees in memory.
    const shortName = dot(taskName, framework, domain);
    const canonicalFqdn = dot(canonical, domain);
    const shortSlave = dot(taskName, framework, 'slave', domain);
    const canonicalSlave = dot(canonical, 'slave', domain);
    ptrTarget ??= canonicalFqdn;
    address(shortName, taskIps);
    address(canonicalFqdn, taskIps);
    address(shortSlave, agentIps);
    address(canonicalSlave, agentIps);

    // `_<task>`: the first label gets the underscore (Mesos-DNS: `"_" + taskName`), kept within 63 characters.
    const labels = taskName.split('.');
    labels[0] = underscoreLabel(labels[0]!);
    const service = labels.join('.');
    // Host ports: `_<task>._tcp|_udp.<fw>.slave.<dom>`, also without `.slave` when there is no DiscoveryInfo.
    if (task.ports.length > 0) {
      for (const proto of ['_tcp', '_udp']) {
        const slaveName = dot(service, proto, framework, 'slave', domain);
        const plainName = hasDiscovery ? '' : dot(service, proto, framework, domain);
        for (const port of task.ports) {
          srv(slaveName, canonicalSlave, port);
          if (!hasDiscovery) srv(plainName, canonicalSlave, port);
        }
      }
    }
    // DiscoveryInfo ports: `_<task>._<proto>.<fw>.<dom>` and `_<port name>._<task>._<proto>.<fw>.<dom>`.
    for (const port of ports) {
      const name = dot(service, `_${port.protocol}`, framework, domain);
      srv(name, canonicalFqdn, port.number);
      const portLabel = port.name === undefined ? '' : spec(port.name);
      if (portLabel !== '') srv(dot(underscoreLabel(portLabel), name), canonicalFqdn, port.number);
    }
  }

  if (options.thisDcos.enabled) {
    const dcosTtl = options.thisDcos.ttlSeconds;
    const label = rfc1123Label(discoveryName);
    const fw = domainFrag(MARATHON_FRAMEWORK, rfc1123Label);
    if (label !== '') {
      const agentip = dot(label, fw, 'agentip', DCOS_ZONE);
      const containerip = dot(label, fw, 'containerip', DCOS_ZONE);
      const autoip = dot(label, fw, 'autoip', DCOS_ZONE);
      for (const ip of agentIps) collector.address(agentip, ip, dcosTtl);
      for (const ip of containerAddresses(task)) collector.address(containerip, ip, dcosTtl);
      for (const ip of autoAddresses(task, agent)) collector.address(autoip, ip, dcosTtl);
    }
  }

  // PTR for container addresses: the canonical name when it resolves to the address, else the containerip name.
  for (const ip of containerAddresses(task)) {
    if (ptrTarget !== undefined && taskIps.includes(ip)) collector.ptr(ip, ptrTarget, ttl);
    else if (options.thisDcos.enabled) {
      const label = rfc1123Label(discoveryName);
      if (label !== '') collector.ptr(ip, dot(label, domainFrag(MARATHON_FRAMEWORK, rfc1123Label), 'containerip', DCOS_ZONE), ttl);
    }
  }

  return collector.out;
}

/** A task's `/v1/enumerate` entry: its A/AAAA/SRV records in the `mesos` zone (not the mirror), names with their dot. */
export function enumerableTask(task: ZoneTask, records: readonly ResourceRecord[], options: ZoneOptions): EnumerableTask {
  const domain = options.domain;
  const suffix = `.${domain}`;
  const out: EnumerableRecord[] = [];
  for (const r of records) {
    if (r.name !== domain && !r.name.endsWith(suffix)) continue;
    if (r.type === 'A' || r.type === 'AAAA') out.push({ name: `${r.name}.`, host: r.address, rtype: r.type });
    else if (r.type === 'SRV') out.push({ name: `${r.name}.`, host: `${r.target}.:${r.port}`, rtype: 'SRV' });
  }
  return { name: marathonHostname(task.appId), id: task.id, records: out };
}

// ---------------------------------------------------------------------------
// Masters, agents, frameworks, VIPs

/** The leader's address and API port: its `apiUrl`'s host when that is an IP (or `localhost`), else the address of the agent of that host name. */
export function leaderAddress(leader: LeaderInfo | undefined, agents: ReadonlyMap<string, Agent>): { readonly ip: string; readonly port: number } | undefined {
  if (!leader) return undefined;
  let url: URL;
  try {
    url = new URL(leader.apiUrl);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  if (isIP(host) !== 0) return { ip: host, port };
  if (host === 'localhost') return { ip: '127.0.0.1', port };
  for (const agent of agents.values()) {
    if (agent.hostname.toLowerCase() === host.toLowerCase()) return { ip: agent.address.ip, port };
  }
  return undefined;
}

function frameworkAddress(framework: Framework, agents: ReadonlyMap<string, Agent>): string | undefined {
  const host = framework.hostname;
  if (host === undefined) return undefined;
  if (isIP(host) !== 0) return host;
  for (const agent of agents.values()) if (agent.hostname.toLowerCase() === host.toLowerCase()) return agent.address.ip;
  return undefined;
}

/** Records that depend on everything but the tasks: NS, name server, leader and masters, agents, frameworks, VIPs, agent PTRs. */
export function clusterRecords(state: Omit<ClusterState, 'tasks' | 'apps' | 'index'>, options: ZoneOptions): ResourceRecord[] {
  const c = new Collector(options);
  const spec = labelSpec(options.enforceRfc952);
  const domain = options.domain;
  const ttl = options.ttlSeconds;

  c.add({ name: domain, type: 'NS', ttlSeconds: ttl, target: options.soa.mname });
  for (const ip of options.nameserverAddresses) c.address(options.soa.mname, ip, ttl);

  // Leader and masters (MD `masterRecord`).
  const leader = leaderAddress(state.leader, state.agents);
  const masters: string[] = [];
  if (leader) {
    c.address(`leader.${domain}`, leader.ip, ttl);
    for (const proto of ['_tcp', '_udp']) c.srv(`_leader.${proto}.${domain}`, `leader.${domain}`, leader.port, ttl);
  }
  let n = 0;
  let leaderListed = false;
  for (const ip of options.masters) {
    if (masters.includes(ip)) continue;
    masters.push(ip);
    c.address(`master${n++}.${domain}`, ip, ttl);
    if (leader && ip === leader.ip) leaderListed = true;
  }
  if (leader && !leaderListed) {
    masters.push(leader.ip);
    c.address(`master${n}.${domain}`, leader.ip, ttl);
  }
  for (const ip of masters) c.address(`master.${domain}`, ip, ttl);

  // Agents: `slave.<dom>` and `agent.<dom>`, SRV `_slave._tcp` / `_agent._tcp`; unreachable agents are left out (Mesos lists them apart).
  for (const agent of state.agents.values()) {
    if (agent.health.status === 'unreachable') continue;
    for (const word of ['slave', 'agent']) {
      for (const ip of agentAddresses(agent)) c.address(`${word}.${domain}`, ip, ttl);
      c.srv(`_${word}._tcp.${domain}`, `${word}.${domain}`, agent.address.port, ttl);
    }
  }
  for (const agent of state.agents.values()) {
    if (isIP(agent.hostname) !== 0) continue;
    for (const ip of agentAddresses(agent)) c.ptr(ip, agent.hostname.toLowerCase(), ttl);
  }

  // Frameworks: `<fw>.<dom>` (scheduler host) and `_framework._tcp.<fw>.<dom>`. Marathon is served by the leading master's API.
  if (leader) {
    const fw = domainFrag(MARATHON_FRAMEWORK, spec);
    c.address(`${fw}.${domain}`, leader.ip, ttl);
    c.srv(`_framework._tcp.${fw}.${domain}`, `${fw}.${domain}`, leader.port, ttl);
  }
  for (const framework of state.frameworks.values()) {
    const fw = domainFrag(framework.name, spec);
    const ip = frameworkAddress(framework, state.agents);
    if (fw !== '' && ip !== undefined) c.address(`${fw}.${domain}`, ip, ttl);
  }

  if (options.thisDcos.enabled) {
    const dcosTtl = options.thisDcos.ttlSeconds;
    c.add({ name: THIS_DCOS_APEX, type: 'NS', ttlSeconds: options.thisDcos.nsTtlSeconds, target: options.thisDcos.soa.mname });
    if (leader) c.address(`leader.${DCOS_ZONE}`, leader.ip, dcosTtl);
    for (const ip of masters) c.address(`master.${DCOS_ZONE}`, ip, dcosTtl);
    // Named VIPs with allocated addresses: `<name>.<fw>.l4lb.thisdcos.directory` (dcos-net `domain_frag`: `/mygroup/myapp` → `mygroupmyapp`).
    for (const vip of state.vips.values()) vipRecords(c, vip, dcosTtl);
  }
  return c.out;
}

function vipRecords(c: Collector, vip: Vip, ttlSeconds: number): void {
  if (vip.kind !== 'named') return;
  const name = vipDnsLabel(vip.name);
  const fw = domainFrag(vip.framework, rfc1123Label);
  if (name === '' || fw === '') return;
  if (vip.ipv4) c.address(`${name}.${fw}.${L4LB_ZONE}`, vip.ipv4, ttlSeconds);
  if (vip.ipv6) c.address(`${name}.${fw}.${L4LB_ZONE}`, vip.ipv6, ttlSeconds);
}

/** The whole zone of a state: cluster records, then every published task's. */
export function buildZone(state: ClusterState, options: ZoneOptions): BuiltZone {
  const records: ResourceRecord[] = clusterRecords(state, options);
  const tasks = new Map<string, EnumerableTask>();
  for (const task of state.tasks.values()) {
    const built = taskRecords(task, state.apps.get(task.appId), state.agents.get(task.agentId), options);
    if (!built) continue;
    for (const r of built) records.push(r);
    tasks.set(task.id, enumerableTask(task, built, options));
  }
  return { records, tasks };
}


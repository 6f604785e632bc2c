/**
 * The translator: a pure function from a read-only view of the cluster state
 * (apps, their tasks, the VIP records) to the Envoy resources every node may
 * be served. go-control-plane leaves this to its users; here it is the only
 * place that knows both the Strata model and the Envoy API.
 *
 * Per TCP VIP port `<label>:<port>` (`web:80`; IP VIPs: `10.1.2.3:80`):
 * - Cluster `<label>:<port>`: EDS over ADS, round robin.
 * - ClusterLoadAssignment `<label>:<port>`: every backend from `vipBackends`,
 *   healthy ones HEALTHY, draining ones (KILLING) DRAINING, unhealthy or
 *   unchecked ones UNHEALTHY (Envoy and gRPC send new requests only to
 *   HEALTHY/UNKNOWN endpoints; listing the others lets Envoy drain open
 *   connections). One locality with weight 1: grpc-js drops a locality
 *   without a weight and NACKs one without `locality`.
 * - RouteConfiguration `<label>:<port>`: the app's routes
 *   (`STRATA_MESH_ROUTES`), then a default route to its own cluster.
 * - For proxyless gRPC (flavor `grpc`): API listeners `<label>:<port>` and,
 *   for the VIP's lowest TCP port, `<label>` (so `xds:///web` works), each an
 *   HttpConnectionManager using RDS over ADS with the router filter last.
 * - For Envoy (flavor `envoy`): listener `vip/<label>:<port>` on the VIP's
 *   IPv4 address and, when it has one, `vip6/<label>:<port>` on its IPv6
 *   address (an IP VIP: `vip/<address>:<port>` on its one address, either
 *   family), a TCP proxy (`STRATA_MESH_PROTOCOL` tcp, the default) or an
 *   HTTP connection manager with RDS (http, http2, grpc). Not emitted until
 *   the VIP has an address. Both listeners send to the same cluster: Envoy
 *   proxies across families, so an IPv6 listener reaches IPv4 backends too
 *   (the kernel load balancer, which DNATs, keeps each family apart).
 *
 * Per UDP VIP port (`<label>:<port>/udp`; `/udp` keeps it apart from a TCP
 * port of the same number, DNS's 53): a cluster and endpoints as above over
 * the UDP backends and, for Envoy, a UDP listener on each VIP address whose
 * listener filter is `envoy.filters.udp_listener.udp_proxy` routing to the
 * cluster (matcher `on_no_match`). Proxyless gRPC has no UDP: no API
 * listener. The kernel load balancer serves the same UDP VIPs without Envoy.
 *
 * Each resource lists its `owners`: the apps whose `read` permission lets a
 * node see it (a cluster a route sends traffic to is also owned by the
 * route's owners).
 */
import type { App, Task, Vip } from '../model/schemas.ts';
import { vipId } from '../model/keys.ts';
import { vipDnsLabel } from '../model/vip-label.ts';
import { desiredVips, MARATHON_FRAMEWORK, type DesiredVip } from '../vips/plan.ts';
import { vipBackends, type VipBackend } from '../vips/backends.ts';
import { isIP } from 'node:net';
import { MESH_LABELS, meshConfig, type MeshConfig, type MeshRoute, type HeaderMatch } from './labels.ts';
import { anyOf, EXTENSION, TYPE, type TypeUrl } from './protos.ts';

/** Which node kind a listener is for: proxyless gRPC wants API listeners, Envoy wants sockets. */
export type Flavor = 'envoy' | 'grpc';

export interface MeshState {
  readonly apps: ReadonlyMap<string, App>;
  readonly tasksByApp: ReadonlyMap<string, readonly Task[]>;
  /** VIP records by id (`marathon//web`), for the allocated addresses. */
  readonly vips: ReadonlyMap<string, Vip>;
}

export interface XdsResource {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  /** The message as protobufjs JSON-ish data (snake_case, `@type` Anys): plain, so its JSON text fingerprints it. */
  readonly value: Record<string, unknown>;
  /** App ids whose read permission shows this resource to a node. */
  readonly owners: ReadonlySet<string>;
  /** Listeners only: the node kind it is for. */
  readonly flavor?: Flavor;
}

export interface TranslateIssue {
  readonly appId?: string;
  readonly resource?: string;
  readonly message: string;
}

export interface Translation {
  readonly resources: ReadonlyMap<TypeUrl, ReadonlyMap<string, XdsResource>>;
  readonly issues: readonly TranslateIssue[];
}

const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };

export interface TranslateOptions {
  /**
   * Mesh mTLS: Envoy socket listeners require a client certificate and
   * clusters originate TLS, both with the node's workload certificate and
   * the trust bundle fetched over SDS (`default`, `ROOTCA`; see secrets.ts).
   * Proxyless gRPC clients read certificates from files (gRFC A29) and NACK
   * SDS references, so this is for Envoy nodes.
   */
  readonly meshMtls?: boolean;
}

/** The TLS context both sides share: the workload certificate and trust bundle over SDS (ADS), TLS 1.2 at least. */
function sdsTlsContext(): Record<string, unknown> {
  return {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
    tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS_SOURCE }],
    validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS_SOURCE },
  };
}

export function upstreamTlsSocket(): Record<string, unknown> {
  return { name: 'envoy.transport_sockets.tls', typed_config: anyOf(EXTENSION.upstreamTls, { common_tls_context: sdsTlsContext() }) };
}

export function downstreamTlsSocket(): Record<string, unknown> {
  return { name: 'envoy.transport_sockets.tls', typed_config: anyOf(EXTENSION.downstreamTls, { common_tls_context: sdsTlsContext(), require_client_certificate: { value: true } }) };
}
export const CONNECT_TIMEOUT_SECONDS = 5;

function duration(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** The name part of a VIP's resources: the DNS label of a named VIP, the address of an IP VIP. */
export function serviceLabel(vip: { readonly kind: 'named' | 'ip'; readonly name: string }): string {
  if (vip.kind === 'named') return vipDnsLabel(vip.name);
  return vip.name.includes(':') ? `[${vip.name}]` : vip.name;
}

export function serviceName(vip: { readonly kind: 'named' | 'ip'; readonly name: string }, port: number): string {
  return `${serviceLabel(vip)}:${port}`;
}

function headerMatcher(h: HeaderMatch): Record<string, unknown> {
  const invert = h.invert ? { invert_match: true } : {};
  if ('present' in h) return { name: h.name, present_match: h.present, ...invert };
  if ('exact' in h) return { name: h.name, string_match: { exact: h.exact }, ...invert };
  if ('prefix' in h) return { name: h.name, string_match: { prefix: h.prefix }, ...invert };
  if ('suffix' in h) return { name: h.name, string_match: { suffix: h.suffix }, ...invert };
  return { name: h.name, string_match: { safe_regex: { regex: h.regex } }, ...invert };
}

function routeEntry(route: MeshRoute | undefined, clusters: readonly { name: string; weight: number }[], mesh: MeshConfig): Record<string, unknown> {
  const match: Record<string, unknown> = {};
  if (route?.path !== undefined) match['path'] = route.path;
  else if (route?.regex !== undefined) match['safe_regex'] = { regex: route.regex };
  else match['prefix'] = route?.prefix ?? '';
  if (route?.caseSensitive !== undefined) match['case_sensitive'] = { value: route.caseSensitive };
  if (route && route.headers.length > 0) match['headers'] = route.headers.map(headerMatcher);
  const action: Record<string, unknown> =
    clusters.length === 1 ? { cluster: clusters[0]!.name } : { weighted_clusters: { clusters: clusters.map((c) => ({ name: c.name, weight: { value: c.weight } })) } };
  const timeoutMs = route?.timeoutMs ?? mesh.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs > 0) {
    // Envoy reads `timeout`; gRPC clients (grpc-js-xds) read `max_stream_duration`.
    action['timeout'] = duration(timeoutMs);
    action['max_stream_duration'] = { max_stream_duration: duration(timeoutMs) };
  }
  const retries = route?.retries ?? mesh.retries;
  if (retries !== undefined && retries > 0) {
    const retryOn = route?.retryOn ?? mesh.retryOn ?? (mesh.protocol === 'grpc' ? 'unavailable,cancelled,deadline-exceeded' : '5xx,reset,connect-failure');
    action['retry_policy'] = { retry_on: retryOn, num_retries: { value: retries } };
  }
  return { match, route: action };
}

function httpConnectionManager(statPrefix: string, routeName: string): Record<string, unknown> {
  return {
    stat_prefix: statPrefix,
    rds: { route_config_name: routeName, config_source: ADS_SOURCE },
    // gRPC requires the router filter, last and only last.
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: anyOf(EXTENSION.router) }],
  };
}

function endpointHealth(b: VipBackend): string {
  if (b.weight === 1) return 'HEALTHY';
  return b.state === 'KILLING' ? 'DRAINING' : 'UNHEALTHY';
}

/** The ClusterLoadAssignment of `svc`: the backends of one VIP port and protocol, one locality. */
function loadAssignment(svc: string, backends: readonly VipBackend[], port: number, protocol: 'tcp' | 'udp', issues: TranslateIssue[]): Record<string, unknown> {
  const seen = new Set<string>();
  const endpoints: Record<string, unknown>[] = [];
  for (const be of backends
    .filter((x) => x.vipPort === port && x.protocol === protocol)
    .sort((x, y) => (x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : x.port - y.port || x.taskId.localeCompare(y.taskId)))) {
    const key = `${be.ip}:${be.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (isIP(be.ip) === 0) {
      issues.push({ appId: be.appId, resource: svc, message: `backend ${be.taskId} has host ${JSON.stringify(be.ip)}, not an IP address; left out` });
      continue;
    }
    endpoints.push({
      endpoint: { address: { socket_address: { address: be.ip, port_value: be.port } } },
      health_status: endpointHealth(be),
      load_balancing_weight: { value: 1 },
    });
  }
  return {
    cluster_name: svc,
    endpoints: [{ locality: { region: 'strata', zone: 'default' }, load_balancing_weight: { value: 1 }, priority: 0, lb_endpoints: endpoints }],
  };
}

function edsCluster(svc: string): Record<string, unknown> {
  return {
    name: svc,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS_SOURCE, service_name: svc },
    connect_timeout: duration(CONNECT_TIMEOUT_SECONDS * 1000),
    lb_policy: 'ROUND_ROBIN',
  };
}

interface Built {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  readonly value: Record<string, unknown>;
  readonly owners: ReadonlySet<string>;
  readonly flavor?: Flavor;
}

/** What one VIP translates to; memoized by the identity of its inputs. */
interface VipOutput {
  readonly resources: readonly Built[];
  readonly issues: readonly TranslateIssue[];
  readonly routeRefs: readonly { readonly owners: readonly string[]; readonly clusters: readonly string[] }[];
}

class VipBuilder {
  readonly resources: Built[] = [];
  readonly issues: TranslateIssue[] = [];
  readonly routeRefs: { owners: readonly string[]; clusters: readonly string[] }[] = [];
  readonly #names = new Set<string>();

  add(typeUrl: TypeUrl, name: string, value: Record<string, unknown>, owners: Iterable<string>, flavor?: Flavor): boolean {
    const key = `${typeUrl}\n${name}`;
    if (this.#names.has(key)) return false;
    this.#names.add(key);
    this.resources.push({ typeUrl, name, value, owners: new Set(owners), ...(flavor ? { flavor } : {}) });
    return true;
  }
}

function translateVip(vip: DesiredVip, state: MeshState, byName: ReadonlyMap<string, DesiredVip>, options: TranslateOptions): VipOutput {
  const b = new VipBuilder();
  const routeRefs = b.routeRefs;
  const tcpPorts = vip.ports.filter((p) => p.protocol === 'tcp').map((p) => p.port);
  const lowest = Math.min(...tcpPorts);
  const backends = vipBackends(vip, state.apps, state.tasksByApp);
  const record = state.vips.get(vipId(MARATHON_FRAMEWORK, vip.name)) ?? state.vips.get(vip.id);
  // Envoy listeners: one per VIP address, by name prefix (`vip/` IPv4 or an IP VIP's own address, `vip6/` a named VIP's IPv6 address).
  const addresses: { prefix: string; address: string }[] = vip.kind === 'ip'
    ? [{ prefix: 'vip', address: vip.name }]
    : [
        ...(record?.ipv4 === undefined ? [] : [{ prefix: 'vip', address: record.ipv4 }]),
        ...(record?.ipv6 === undefined ? [] : [{ prefix: 'vip6', address: record.ipv6 }]),
      ];
  const label = serviceLabel(vip);
  for (const port of tcpPorts) {
    const svc = `${label}:${port}`;
    const owners = [...new Set(vip.uses.filter((u) => u.port === port && u.protocols.includes('tcp')).map((u) => u.appId))].sort();
    // The routing labels come from the first owner (by id) that sets any mesh label.
    const primary = owners.map((id) => state.apps.get(id)!).find((a) => Object.keys(a.labels).some((k) => k.startsWith('STRATA_MESH_'))) ?? state.apps.get(owners[0]!)!;
    const { config: mesh, issues } = meshConfig(primary, vip.name);
    for (const i of issues) b.issues.push({ appId: i.appId, message: `label ${i.label}: ${i.message}` });

    if (!b.add(TYPE.cluster, svc, { ...edsCluster(svc), ...(options.meshMtls ? { transport_socket: upstreamTlsSocket() } : {}) }, owners)) continue;

    b.add(TYPE.endpoint, svc, loadAssignment(svc, backends, port, 'tcp', b.issues), owners);

    // Routes: the app's own, resolved to clusters on this same port, then the default.
    const routes: Record<string, unknown>[] = [];
    for (const route of mesh.routes) {
      const clusters: { name: string; weight: number }[] = [];
      let bad: string | undefined;
      for (const w of route.weights) {
        const target = byName.get(w.vip);
        if (!target || !target.ports.some((p) => p.port === port && p.protocol === 'tcp')) {
          bad = `route to ${JSON.stringify(w.vip)}: no VIP of that name publishes ${port}/tcp`;
          break;
        }
        if (w.weight > 0) clusters.push({ name: serviceName(target, port), weight: w.weight });
      }
      if (bad) {
        b.issues.push({ appId: primary.id, resource: svc, message: `label STRATA_MESH_ROUTES: ${bad} (route skipped)` });
        continue;
      }
      routes.push(routeEntry(route, clusters, mesh));
      routeRefs.push({ owners, clusters: clusters.map((c) => c.name) });
    }
    routes.push(routeEntry(undefined, [{ name: svc, weight: 1 }], mesh));
    b.add(TYPE.route, svc, { name: svc, virtual_hosts: [{ name: svc, domains: ['*'], routes }] }, owners);

    // Proxyless gRPC: API listeners named by the service.
    const api = (name: string): Record<string, unknown> => ({
      name,
      api_listener: { api_listener: anyOf(EXTENSION.httpConnectionManager, httpConnectionManager(svc, svc)) },
    });
    b.add(TYPE.listener, svc, api(svc), owners, 'grpc');
    if (port === lowest && vip.kind === 'named') b.add(TYPE.listener, label, api(label), owners, 'grpc');

    // Envoy: a socket listener on each VIP address.
    for (const { prefix, address } of addresses) {
      const filter =
        mesh.protocol === 'tcp'
          ? { name: 'envoy.filters.network.tcp_proxy', typed_config: anyOf(EXTENSION.tcpProxy, { stat_prefix: svc, cluster: svc }) }
          : {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: anyOf(EXTENSION.httpConnectionManager, { ...httpConnectionManager(svc, svc), codec_type: 'AUTO' }),
            };
      b.add(TYPE.listener, `${prefix}/${svc}`, {
        name: `${prefix}/${svc}`,
        address: { socket_address: { address, port_value: port } },
        freebind: { value: true },
        filter_chains: [{ filters: [filter], ...(options.meshMtls ? { transport_socket: downstreamTlsSocket() } : {}) }],
      }, owners, 'envoy');
    }
  }

  // UDP: Envoy's UDP proxy (a listener filter on a UDP listener); no proxyless gRPC.
  for (const port of vip.ports.filter((p) => p.protocol === 'udp').map((p) => p.port)) {
    const svc = `${label}:${port}/udp`;
    const owners = [...new Set(vip.uses.filter((u) => u.port === port && u.protocols.includes('udp')).map((u) => u.appId))].sort();
    if (!b.add(TYPE.cluster, svc, edsCluster(svc), owners)) continue;
    b.add(TYPE.endpoint, svc, loadAssignment(svc, backends, port, 'udp', b.issues), owners);
    const route = anyOf(EXTENSION.udpProxyRoute, { cluster: svc });
    for (const { prefix, address } of addresses) {
      b.add(TYPE.listener, `${prefix}/${svc}`, {
        name: `${prefix}/${svc}`,
        address: { socket_address: { protocol: 'UDP', address, port_value: port } },
        freebind: { value: true },
        listener_filters: [{
          name: 'envoy.filters.udp_listener.udp_proxy',
          typed_config: anyOf(EXTENSION.udpProxy, { stat_prefix: svc, matcher: { on_no_match: { action: { name: 'route', typed_config: route } } } }),
        }],
      }, owners, 'envoy');
    }
  }
  return b;
}

/**
 * A translator that remembers each VIP's output and reuses it while the
 * VIP's inputs (its apps, their tasks, its record, and for apps with routes
 * the set of VIP ports) are the same objects: the views hand out the same
 * frozen records until they change, so one endpoint change re-translates
 * one VIP. The output equals `translate(state)`'s.
 */
export class Translator {
  #memo = new Map<string, { deps: readonly unknown[]; out: VipOutput }>();
  readonly #options: TranslateOptions;

  constructor(options: TranslateOptions = {}) {
    this.#options = options;
  }

  translate(state: MeshState): Translation {
    const apps = [...state.apps.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const desired = desiredVips(apps);
    const byName = new Map<string, DesiredVip>();
    for (const vip of desired.values()) byName.set(vip.name, vip);
    let portsKey: string | undefined;
    const vipPortsKey = (): string => (portsKey ??= [...desired.values()].map((v) => `${v.name}=${v.ports.map((p) => `${p.port}/${p.protocol}`).join(',')}`).join(' '));
    const memo = new Map<string, { deps: readonly unknown[]; out: VipOutput }>();
    const resources = new Map<TypeUrl, Map<string, Built>>([TYPE.listener, TYPE.route, TYPE.cluster, TYPE.endpoint, TYPE.secret].map((t) => [t, new Map()]));
    const issues: TranslateIssue[] = [];
    const routeRefs: VipOutput['routeRefs'][number][] = [];
    for (const vip of desired.values()) {
      if (!vip.ports.some((p) => p.protocol === 'tcp' || p.protocol === 'udp')) continue;
      const deps: unknown[] = [state.vips.get(vipId(MARATHON_FRAMEWORK, vip.name)) ?? state.vips.get(vip.id), vip.ports.map((p) => `${p.port}/${p.protocol}`).join()];
      let routed = false;
      for (const appId of [...new Set(vip.uses.map((u) => u.appId))]) {
        const a = state.apps.get(appId);
        deps.push(a, ...(state.tasksByApp.get(appId) ?? []), '|');
        if (a && a.labels[MESH_LABELS.routes] !== undefined) routed = true;
      }
      deps.push(vip.uses.map((u) => `${u.appId}#${u.portIndex}#${u.port}`).join());
      if (routed) deps.push(vipPortsKey());
      const old = this.#memo.get(vip.id);
      const out = old && old.deps.length === deps.length && old.deps.every((d, i) => d === deps[i]) ? old.out : translateVip(vip, state, byName, this.#options);
      memo.set(vip.id, { deps, out });
      issues.push(...out.issues);
      routeRefs.push(...out.routeRefs);
      for (const r of out.resources) {
        const byType = resources.get(r.typeUrl)!;
        if (byType.has(r.name)) {
          issues.push({ resource: r.name, message: `two VIPs give the resource name ${JSON.stringify(r.name)}; the first is kept` });
          continue;
        }
        byType.set(r.name, r);
      }
    }
    this.#memo = memo;
    // A node that may see a route also sees the clusters it sends traffic to (copies: memoized outputs stay as they were).
    for (const ref of routeRefs) {
      for (const c of ref.clusters) {
        for (const t of [TYPE.cluster, TYPE.endpoint] as const) {
          const byType = resources.get(t)!;
          const r = byType.get(c);
          if (!r || ref.owners.every((o) => r.owners.has(o))) continue;
          byType.set(c, { ...r, owners: new Set([...r.owners, ...ref.owners]) });
        }
      }
    }
    return { resources, issues };
  }
}

/** Build every resource from the state. Pure: the same state gives equal resources. */
export function translate(state: MeshState, options: TranslateOptions = {}): Translation {
  return new Translator(options).translate(state);
}

/**
 * The check a snapshot passes before it is served (go-control-plane's
 * `Snapshot.Consistent()`, stricter): it reads the resources themselves,
 * not the translator's bookkeeping, so a translator bug cannot vouch for
 * itself.
 * - every RDS name a listener uses exists, and every route config is used;
 * - every cluster a route, TCP proxy or UDP proxy sends to exists;
 * - every EDS cluster has its ClusterLoadAssignment, and every CLA belongs
 *   to an EDS cluster;
 * - every locality has `locality` and a `load_balancing_weight` (grpc-js
 *   NACKs the first and silently drops the second);
 * - every HTTP connection manager ends with the router filter, only once;
 * - resource names are non-empty and equal to their `name` field.
 */
import { EXTENSION, TYPE, type TypeUrl } from './protos.ts';
import type { XdsResource } from './translate.ts';

export interface ConsistencyIssue {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  readonly message: string;
}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export function checkConsistency(resources: ReadonlyMap<TypeUrl, ReadonlyMap<string, XdsResource>>): ConsistencyIssue[] {
  const issues: ConsistencyIssue[] = [];
  const get = (t: TypeUrl): ReadonlyMap<string, XdsResource> => resources.get(t) ?? new Map();
  const routesUsed = new Set<string>();
  const clustersUsed: { from: string; typeUrl: TypeUrl; cluster: string }[] = [];

  for (const [t, byName] of resources) {
    for (const [name, r] of byName) {
      const field = t === TYPE.endpoint ? r.value['cluster_name'] : r.value['name'];
      if (name === '' || field !== name) issues.push({ typeUrl: t, name, message: `resource name ${JSON.stringify(name)} differs from its field ${JSON.stringify(field)}` });
    }
  }

  const checkHcm = (listener: string, hcm: Obj): void => {
    const rds = obj(hcm['rds']);
    const routeName = rds?.['route_config_name'];
    const source = obj(rds?.['config_source']);
    if (typeof routeName !== 'string') issues.push({ typeUrl: TYPE.listener, name: listener, message: 'HTTP connection manager without rds.route_config_name' });
    else {
      routesUsed.add(routeName);
      if (!get(TYPE.route).has(routeName)) issues.push({ typeUrl: TYPE.listener, name: listener, message: `uses route config ${JSON.stringify(routeName)}, which does not exist` });
      if (!source || (!obj(source['ads']) && !obj(source['self']))) issues.push({ typeUrl: TYPE.listener, name: listener, message: 'rds.config_source sets neither ads nor self' });
    }
    const filters = arr(hcm['http_filters']).map(obj);
    const routerAt = filters.map((f) => obj(f?.['typed_config'])?.['@type']).map((u, i) => (u === ROUTER ? i : -1)).filter((i) => i >= 0);
    if (routerAt.length !== 1 || routerAt[0] !== filters.length - 1) issues.push({ typeUrl: TYPE.listener, name: listener, message: 'the router filter must be the last HTTP filter, once' });
  };

  for (const [name, l] of get(TYPE.listener)) {
    const api = obj(obj(l.value['api_listener'])?.['api_listener']);
    if (api) {
      if (api['@type'] !== EXTENSION.httpConnectionManager) issues.push({ typeUrl: TYPE.listener, name, message: 'api_listener is not an HTTP connection manager' });
      else checkHcm(name, api);
    }
    for (const chain of arr(l.value['filter_chains'])) {
      for (const f of arr(obj(chain)?.['filters'])) {
        const cfg = obj(obj(f)?.['typed_config']);
        if (cfg?.['@type'] === EXTENSION.httpConnectionManager) checkHcm(name, cfg);
        else if (cfg?.['@type'] === EXTENSION.tcpProxy) clustersUsed.push({ from: name, typeUrl: TYPE.listener, cluster: String(cfg['cluster']) });
      }
    }
    let udpProxy = false;
    for (const f of arr(l.value['listener_filters'])) {
      const cfg = obj(obj(f)?.['typed_config']);
      if (cfg?.['@type'] !== EXTENSION.udpProxy) continue;
      udpProxy = true;
      const route = obj(obj(obj(obj(cfg['matcher'])?.['on_no_match'])?.['action'])?.['typed_config']);
      const cluster = route?.['cluster'] ?? cfg['cluster'];
      if (typeof cluster !== 'string') issues.push({ typeUrl: TYPE.listener, name, message: 'UDP proxy without a cluster (matcher on_no_match route)' });
      else clustersUsed.push({ from: name, typeUrl: TYPE.listener, cluster });
    }
    if (!api && !udpProxy && arr(l.value['filter_chains']).length === 0) issues.push({ typeUrl: TYPE.listener, name, message: 'neither an API listener, a UDP proxy nor any filter chain' });
  }

  for (const [name, rc] of get(TYPE.route)) {
    if (!routesUsed.has(name)) issues.push({ typeUrl: TYPE.route, name, message: 'no listener uses this route config' });
    for (const vh of arr(rc.value['virtual_hosts'])) {
      for (const route of arr(obj(vh)?.['routes'])) {
        const action = obj(obj(route)?.['route']);
        if (!action) continue;
        const names = typeof action['cluster'] === 'string' ? [action['cluster']] : arr(obj(action['weighted_clusters'])?.['clusters']).map((c) => obj(c)?.['name']);
        if (names.length === 0) issues.push({ typeUrl: TYPE.route, name, message: 'a route sends to no cluster' });
        for (const c of names) clustersUsed.push({ from: name, typeUrl: TYPE.route, cluster: String(c) });
      }
    }
  }
  for (const u of clustersUsed) {
    if (!get(TYPE.cluster).has(u.cluster)) issues.push({ typeUrl: u.typeUrl, name: u.from, message: `sends to cluster ${JSON.stringify(u.cluster)}, which does not exist` });
  }

  const edsNames = new Set<string>();
  for (const [name, c] of get(TYPE.cluster)) {
    if (c.value['type'] !== 'EDS') continue;
    const eds = obj(c.value['eds_cluster_config']);
    const serviceName = typeof eds?.['service_name'] === 'string' && eds['service_name'] !== '' ? eds['service_name'] : name;
    edsNames.add(serviceName);
    const source = obj(eds?.['eds_config']);
    if (!source || (!obj(source['ads']) && !obj(source['self']))) issues.push({ typeUrl: TYPE.cluster, name, message: 'eds_config sets neither ads nor self' });
    if (!get(TYPE.endpoint).has(serviceName)) issues.push({ typeUrl: TYPE.cluster, name, message: `EDS cluster without its ClusterLoadAssignment ${JSON.stringify(serviceName)}` });
  }
  for (const [name, cla] of get(TYPE.endpoint)) {
    if (!edsNames.has(name)) issues.push({ typeUrl: TYPE.endpoint, name, message: 'no EDS cluster uses this ClusterLoadAssignment' });
    for (const [i, group] of arr(cla.value['endpoints']).entries()) {
      const g = obj(group);
      if (!obj(g?.['locality'])) issues.push({ typeUrl: TYPE.endpoint, name, message: `endpoints[${i}] has no locality` });
      const w = obj(g?.['load_balancing_weight'])?.['value'];
      if (typeof w !== 'number' || w < 1) issues.push({ typeUrl: TYPE.endpoint, name, message: `endpoints[${i}] has no load_balancing_weight >= 1` });
    }
  }
  return issues;
}

/**
 * The Envoy API protos, loaded once with proto-loader from the files pinned
 * inside `@grpc/grpc-js-xds` (`deps/{envoy-api,xds,googleapis,protoc-gen-validate}`),
 * plus the encoders the xDS server needs: a resource as a `google.protobuf.Any`,
 * and the discovery messages. Field names stay snake_case (`keepCase`), as
 * in Envoy's docs and YAML.
 *
 * Loading takes about 0.3-1.5 s on a loaded box, so it happens on first use
 * and is shared by everything in the process.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { loadProtosWithOptionsSync } from '@grpc/proto-loader/build/src/util.js';

export type ProtoRoot = ReturnType<typeof loadProtosWithOptionsSync>;
export type ProtoType = ReturnType<ProtoRoot['lookupType']>;

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** The resource types this server serves, as their v3 type URLs. */
export const TYPE = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type TypeUrl = (typeof TYPE)[keyof typeof TYPE];
export const TYPE_URLS: readonly TypeUrl[] = Object.values(TYPE);

/** Short names for metrics and logs (`cds`, `eds`, ...). */
export const TYPE_SHORT: Readonly<Record<TypeUrl, string>> = {
  [TYPE.listener]: 'lds',
  [TYPE.route]: 'rds',
  [TYPE.cluster]: 'cds',
  [TYPE.endpoint]: 'eds',
  [TYPE.secret]: 'sds',
};

export function isTypeUrl(url: string): url is TypeUrl {
  return (TYPE_URLS as readonly string[]).includes(url);
}

/** Extension types a snapshot embeds in `typed_config` Anys. */
export const EXTENSION = {
  httpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  udpProxy: 'type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig',
  udpProxyRoute: 'type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
} as const;

const require = createRequire(import.meta.url);

/** The include directories inside the pinned `@grpc/grpc-js-xds` package. */
export function protoIncludeDirs(): string[] {
  const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
}

const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/udp/udp_proxy/v3/udp_proxy.proto',
  'envoy/extensions/filters/udp/udp_proxy/v3/route.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
];

const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true };

let root: ProtoRoot | undefined;
let ads: PackageDefinition | undefined;

/** The protobufjs root with every type the server, the translator and the bootstrap use. */
export function protoRoot(): ProtoRoot {
  root ??= loadProtosWithOptionsSync(FILES, { ...LOAD_OPTIONS, includeDirs: protoIncludeDirs() });
  return root;
}

/** proto-loader's definition of the ADS and SDS services (clients in tests build stubs from it). */
export function adsPackageDefinition(): PackageDefinition {
  ads ??= loadSync(['envoy/service/discovery/v3/ads.proto', 'envoy/service/secret/v3/sds.proto'], { ...LOAD_OPTIONS, includeDirs: protoIncludeDirs() });
  return ads;
}

const types = new Map<string, ProtoType>();

/** A message type by full name (`envoy.config.cluster.v3.Cluster`) or type URL. */
export function protoType(nameOrUrl: string): ProtoType {
  const name = nameOrUrl.startsWith(TYPE_URL_PREFIX) ? nameOrUrl.slice(TYPE_URL_PREFIX.length) : nameOrUrl;
  let type = types.get(name);
  if (!type) {
    type = protoRoot().lookupType(name);
    types.set(name, type);
  }
  return type;
}

/**
 * Encode a plain object as the message `typeUrl` names. Unknown field names
 * are refused (protobufjs's `fromObject` would silently drop them, and the
 * translator must never lose a field to a typo).
 */
export function encodeMessage(typeUrl: string, value: Record<string, unknown>): Uint8Array {
  const type = protoType(typeUrl);
  const problem = unknownField(type, value, '');
  if (problem) throw new TypeError(`${type.fullName.slice(1)}: unknown field ${problem}`);
  return type.encode(type.fromObject(value)).finish();
}

/**
 * An `Any` in protobufjs's JSON form (`{'@type': url, ...fields}`): plain
 * data, so a resource stays JSON (its fingerprint is its JSON text), and it
 * is encoded with the resource.
 */
export function anyOf(typeUrl: string, value: Record<string, unknown> = {}): Record<string, unknown> {
  return { '@type': typeUrl, ...value };
}

/** Decode bytes as the message `typeUrl` names, to a plain snake_case object. */
export function decodeMessage(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  const type = protoType(typeUrl);
  return type.toObject(type.decode(bytes), LOAD_OPTIONS) as Record<string, unknown>;
}

function unknownField(type: ProtoType, value: unknown, path: string): string | undefined {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || Array.isArray(value)) return undefined;
  if (type.fullName === '.google.protobuf.Struct') return undefined;
  if (type.fullName === '.google.protobuf.Any') {
    // The JSON form `{'@type': url, ...fields}` is checked against the named type; `{type_url, value}` is opaque.
    const { '@type': url, ...rest } = value as Record<string, unknown>;
    return typeof url === 'string' ? unknownField(protoType(url), rest, path) : undefined;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const field = type.fields[key];
    if (!field) {
      if (type.oneofs?.[key]) continue;
      return `${path}/${key}`;
    }
    field.resolve();
    const child = field.resolvedType;
    if (child && 'fields' in child) {
      if (field.map) {
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
          const bad = unknownField(child, item, `${path}/${key}/${k}`);
          if (bad) return bad;
        }
      } else {
        for (const [i, item] of (Array.isArray(v) ? v : [v]).entries()) {
          const bad = unknownField(child, item, `${path}/${key}${field.repeated ? `/${i}` : ''}`);
          if (bad) return bad;
        }
      }
    }
  }
  return undefined;
}

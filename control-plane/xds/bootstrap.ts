/**
 * Bootstraps that point a node at this xDS server:
 * - `envoyBootstrap`: an Envoy `envoy.config.bootstrap.v3.Bootstrap` (ADS
 *   over gRPC to a static `strata_xds` cluster, the token as
 *   `authorization` initial metadata of the ADS stream, LDS and CDS over ADS);
 * - `grpcBootstrap`: the JSON grpc-js-xds (and grpc-go/java) read from
 *   `GRPC_XDS_BOOTSTRAP_CONFIG`. gRPC clients cannot add call metadata to
 *   their ADS stream, so the token travels in `node.metadata.STRATA_TOKEN`.
 * `validateEnvoyBootstrap` encodes one against the Envoy protos, refusing
 * unknown fields, and decodes it back.
 */
import { encodeMessage, decodeMessage } from './protos.ts';
import { NODE_TOKEN_KEY } from './server.ts';

export const BOOTSTRAP_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';
export const XDS_CLUSTER = 'strata_xds';

export interface BootstrapOptions {
  readonly nodeId: string;
  /** Envoy's `--service-cluster` / gRPC's node.cluster (default `strata`). */
  readonly cluster?: string;
  /** The xDS server address: an IP literal or host name, and port. */
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** Envoy admin listener port (default 9901, Envoy's usual; 127.0.0.1 only). */
  readonly adminPort?: number;
  /**
   * Envoy only: reach the xDS mTLS port with the key and certificate in this
   * directory (`strata ca cert --out-dir DIR` writes key.pem, chain.pem and
   * ca.pem), trusting only ca.pem and only a master's SPIFFE id.
   */
  readonly tlsDir?: string;
}

/** The `strata_xds` cluster's transport socket for the mTLS port (files from `strata ca cert`). */
export function xdsTlsSocket(dir: string): Record<string, unknown> {
  const file = (name: string): { filename: string } => ({ filename: `${dir.replace(/\/+$/, '')}/${name}` });
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        tls_certificates: [{ certificate_chain: file('chain.pem'), private_key: file('key.pem') }],
        validation_context: {
          trusted_ca: file('ca.pem'),
          match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { safe_regex: { regex: '^spiffe://[^/]+/master/[^/]+$' } } }],
        },
        alpn_protocols: ['h2'],
      },
    },
  };
}

const ADS = { ads: {}, resource_api_version: 'V3' };

export function envoyBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const isIp = /^[0-9.]+$|:/.test(o.host);
  return {
    node: { id: o.nodeId, cluster: o.cluster ?? 'strata' },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER }, initial_metadata: [{ key: 'authorization', value: `Bearer ${o.token}` }] }],
      },
      lds_config: ADS,
      cds_config: ADS,
    },
    static_resources: {
      clusters: [
        {
          name: XDS_CLUSTER,
          type: isIp ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: { seconds: 5 },
          ...(o.tlsDir ? { transport_socket: xdsTlsSocket(o.tlsDir) } : {}),
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: XDS_CLUSTER,
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: o.host, port_value: o.port } } } }] }],
          },
        },
      ],
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort ?? 9901 } } },
  };
}

/** Encode against the Envoy protos (unknown fields refused) and decode back; returns the decoded message. */
export function validateEnvoyBootstrap(bootstrap: Record<string, unknown>): Record<string, unknown> {
  return decodeMessage(BOOTSTRAP_TYPE, encodeMessage(BOOTSTRAP_TYPE, bootstrap));
}

export function grpcBootstrap(o: BootstrapOptions): Record<string, unknown> {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    xds_servers: [{ server_uri: `${host}:${o.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: o.nodeId, cluster: o.cluster ?? 'strata', locality: { region: 'strata', zone: 'default' }, metadata: { [NODE_TOKEN_KEY]: o.token } },
  };
}

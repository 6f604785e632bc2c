import test from 'ava';
import { createRequire } from 'node:module';
import { bootstrapText } from '../../cli/envoy.ts';
import { envoyBootstrap, grpcBootstrap, validateEnvoyBootstrap } from './bootstrap.ts';
import { NODE_TOKEN_KEY } from './server.ts';

const require = createRequire(import.meta.url);

test('the Envoy bootstrap validates against the Envoy Bootstrap proto: node id, ADS over gRPC with the token, LDS/CDS over ADS', (t) => {
  const decoded = validateEnvoyBootstrap(envoyBootstrap({ nodeId: 'edge-1', host: '10.0.0.5', port: 15010, token: 'jwt-here' })) as {
    node: { id: string; cluster: string };
    dynamic_resources: { ads_config: { api_type: string; transport_api_version: string; grpc_services: { envoy_grpc: { cluster_name: string }; initial_metadata: { key: string; value: string }[] }[] }; lds_config: { ads: object }; cds_config: { ads: object } };
    static_resources: { clusters: { name: string; type: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] };
  };
  t.is(decoded.node.id, 'edge-1');
  t.is(decoded.dynamic_resources.ads_config.api_type, 'GRPC');
  t.is(decoded.dynamic_resources.ads_config.transport_api_version, 'V3');
  t.deepEqual(decoded.dynamic_resources.ads_config.grpc_services[0]!.initial_metadata, [{ key: 'authorization', value: 'Bearer jwt-here' }]);
  t.truthy(decoded.dynamic_resources.lds_config.ads);
  t.truthy(decoded.dynamic_resources.cds_config.ads);
  const cluster = decoded.static_resources.clusters[0]!;
  t.is(cluster.name, decoded.dynamic_resources.ads_config.grpc_services[0]!.envoy_grpc.cluster_name);
  t.is(cluster.type, 'STATIC');
  t.deepEqual(cluster.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address, { address: '10.0.0.5', port_value: 15010, port_specifier: 'port_value' } as never);
  t.is((validateEnvoyBootstrap(envoyBootstrap({ nodeId: 'n', host: 'xds.example', port: 1, token: 't' })) as { static_resources: { clusters: { type: string }[] } }).static_resources.clusters[0]!.type, 'STRICT_DNS');
  // A misspelled field is refused, not silently dropped.
  t.throws(() => validateEnvoyBootstrap({ ...envoyBootstrap({ nodeId: 'n', host: '::1', port: 1, token: 't' }), dynamic_resource: {} }), { message: /unknown field \/dynamic_resource/ });
});

test('the gRPC bootstrap is accepted by grpc-js-xds and carries the token in node metadata', (t) => {
  const { validateBootstrapConfig } = require('@grpc/grpc-js-xds/build/src/xds-bootstrap') as { validateBootstrapConfig(o: unknown): { node: { id: string; locality: object }; xdsServers: { server_uri: string }[] } };
  const raw = grpcBootstrap({ nodeId: 'client-7', host: '::1', port: 15010, token: 'jwt' });
  const parsed = validateBootstrapConfig(raw);
  t.is(parsed.node.id, 'client-7');
  t.truthy(parsed.node.locality, 'grpc-js-xds refuses a bootstrap without node.locality');
  t.is(parsed.xdsServers[0]!.server_uri, '[::1]:15010');
  t.is(((raw['node'] as { metadata: Record<string, string> }).metadata)[NODE_TOKEN_KEY], 'jwt');
});

test('strata envoy bootstrap text: validated JSON, clear errors for a bad node id or address', (t) => {
  const text = bootstrapText({ node: 'sidecar-1', address: '127.0.0.1:15010', token: 'tok', grpc: false });
  t.is((JSON.parse(text) as { node: { id: string } }).node.id, 'sidecar-1');
  t.is((JSON.parse(bootstrapText({ node: 'g', address: '[::1]:15010', token: 'tok', grpc: true })) as { xds_servers: { server_uri: string }[] }).xds_servers[0]!.server_uri, '[::1]:15010');
  t.throws(() => bootstrapText({ node: 'bad node', address: '127.0.0.1:15010', token: 't', grpc: false }), { message: /--node must be/ });
  t.throws(() => bootstrapText({ node: 'n', address: '127.0.0.1', token: 't', grpc: false }), { message: /--xds-address must be HOST:PORT/ });
});

test('Envoy bootstrap for the mTLS port: the xDS cluster presents the files of `strata ca cert` and trusts only a master of the cluster CA; valid against the protos', (t) => {
  const decoded = validateEnvoyBootstrap(envoyBootstrap({ nodeId: 'edge-1', host: '10.0.0.5', port: 15012, token: 'jwt', tlsDir: '/etc/strata/tls/' })) as {
    static_resources: { clusters: { transport_socket: { name: string; typed_config: { type_url: string } } }[] };
  };
  const socket = decoded.static_resources.clusters[0]!.transport_socket;
  t.is(socket.name, 'envoy.transport_sockets.tls');
  const raw = envoyBootstrap({ nodeId: 'edge-1', host: '10.0.0.5', port: 15012, token: 'jwt', tlsDir: '/etc/strata/tls/' }) as { static_resources: { clusters: { transport_socket: { typed_config: { common_tls_context: { tls_certificates: { certificate_chain: { filename: string }; private_key: { filename: string } }[]; validation_context: { trusted_ca: { filename: string } } } } } }[] } };
  const common = raw.static_resources.clusters[0]!.transport_socket.typed_config.common_tls_context;
  t.is(common.tls_certificates[0]!.certificate_chain.filename, '/etc/strata/tls/chain.pem');
  t.is(common.tls_certificates[0]!.private_key.filename, '/etc/strata/tls/key.pem');
  t.is(common.validation_context.trusted_ca.filename, '/etc/strata/tls/ca.pem');
});

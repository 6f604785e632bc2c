/**
 * `strata envoy bootstrap --node ID`: print a bootstrap pointing a node at
 * the xDS server: Envoy's (JSON, which Envoy also reads as YAML), validated
 * against the Envoy protos before it is printed, or with `--grpc` the
 * `GRPC_XDS_BOOTSTRAP_CONFIG` JSON for proxyless gRPC clients. The token is
 * the logged-in one unless `--token-file` names another (a node's service
 * account token: what it may see follows that principal's permissions).
 */
import { readFile } from 'node:fs/promises';
import { envoyBootstrap, grpcBootstrap, validateEnvoyBootstrap } from '../control-plane/xds/bootstrap.ts';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { loggedIn } from './client.ts';

/** The default xDS port (control-plane/config/schema.ts `xds.port`). */
export const DEFAULT_XDS_PORT = 15010;

export function parseXdsAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):([0-9]{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`--xds-address must be HOST:PORT (IPv6 in brackets), not ${JSON.stringify(address)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** The default xDS mTLS port (`xds.mtlsPort`). */
export const DEFAULT_XDS_MTLS_PORT = 15012;

export function bootstrapText(options: { node: string; cluster?: string; address: string; token: string; grpc: boolean; adminPort?: number; tlsDir?: string }): string {
  if (!/^[A-Za-z0-9._:@/-]{1,256}$/.test(options.node)) throw new UsageError(`--node must be 1-256 characters of letters, digits and ._:@/-, not ${JSON.stringify(options.node)}`);
  const { host, port } = parseXdsAddress(options.address);
  const common = { nodeId: options.node, host, port, token: options.token, ...(options.cluster ? { cluster: options.cluster } : {}) };
  if (options.grpc) {
    if (options.tlsDir) throw new UsageError('--mtls-dir is for Envoy: gRPC clients reach xDS over plaintext only (grpc-js-xds channel_creds)');
    return JSON.stringify(grpcBootstrap(common), null, 2);
  }
  const bootstrap = envoyBootstrap({ ...common, ...(options.adminPort !== undefined ? { adminPort: options.adminPort } : {}), ...(options.tlsDir ? { tlsDir: options.tlsDir } : {}) });
  validateEnvoyBootstrap(bootstrap);
  return JSON.stringify(bootstrap, null, 2);
}

export async function envoyBootstrapVerb(args: ParsedArgs): Promise<number> {
  const node = args.values['node'];
  if (!node) throw new UsageError('--node ID is required');
  const state = await loggedIn();
  const tokenFile = args.values['token-file'];
  const token = tokenFile
    ? (await readFile(tokenFile, 'utf8').catch((err: Error) => {
        throw new UsageError(`cannot read --token-file ${tokenFile}: ${err.message}`);
      })).trim()
    : state.token;
  const tlsDir = args.values['mtls-dir'];
  const address = args.values['xds-address'] ?? `${new URL(state.url).hostname}:${tlsDir ? DEFAULT_XDS_MTLS_PORT : DEFAULT_XDS_PORT}`;
  const adminPort = args.values['admin-port'];
  if (adminPort !== undefined && !/^[0-9]{1,5}$/.test(adminPort)) throw new UsageError('--admin-port must be a port number');
  const cluster = args.values['cluster'];
  console.log(bootstrapText({ node, address, token, grpc: args.booleans.has('grpc'), ...(cluster ? { cluster } : {}), ...(adminPort ? { adminPort: Number(adminPort) } : {}), ...(tlsDir ? { tlsDir } : {}) }));
  return 0;
}

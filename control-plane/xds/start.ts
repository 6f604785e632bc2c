/**
 * The xDS server of a master: the snapshot source over the master's records
 * (watches: every master serves, leader or not) feeding an ADS server on
 * `xds.host:xds.port`, authenticating nodes with the master's TokenService
 * and IAM, metrics in the master's registry.
 */
import type { Registry } from 'prom-client';
import type { Iam } from '../../security/iam.ts';
import type { TokenService } from '../../security/tokens.ts';
import type { StrataConfig } from '../config/schema.ts';
import type { Records } from '../model/records.ts';
import { tokenAuthenticator } from './identity.ts';
import { createXdsMetrics } from './metrics.ts';
import { XdsServer, type XdsLogger } from './server.ts';
import { openSnapshotSource } from './source.ts';

export interface XdsHandle {
  readonly server: XdsServer;
  /** The bound port (xds.port, or the one picked for 0). */
  readonly port: number;
  /** `host:port` nodes are told to use. */
  readonly address: string;
  close(): Promise<void>;
}

export async function startXds(options: {
  readonly config: Readonly<StrataConfig>;
  readonly records: Records;
  readonly tokens: TokenService;
  readonly iam: Iam;
  readonly registry: Registry;
  readonly logger: XdsLogger;
}): Promise<XdsHandle> {
  const { xds } = options.config;
  const metrics = createXdsMetrics(options.registry);
  const server = new XdsServer({
    authenticate: tokenAuthenticator({ tokens: options.tokens, iam: options.iam }),
    metrics,
    logger: options.logger,
    maxStreams: xds.maxStreams,
    maxRequestBytes: xds.maxRequestBytes,
  });
  const source = await openSnapshotSource({ records: options.records, sink: server, metrics, logger: options.logger, debounceMs: xds.debounceMs });
  let port: number;
  try {
    port = await server.listen(xds.host, xds.port);
  } catch (err) {
    source.close();
    throw err;
  }
  const host = xds.advertiseHost ?? (xds.host === '0.0.0.0' ? '127.0.0.1' : xds.host === '::' ? '::1' : xds.host);
  return {
    server,
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    async close() {
      source.close();
      await server.close();
    },
  };
}

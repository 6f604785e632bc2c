/**
 * The xDS server of a master: the snapshot source over the master's records
 * (watches: every master serves, leader or not) feeding an ADS server on
 * `xds.host:xds.port`, authenticating nodes with the master's TokenService
 * and IAM, metrics in the master's registry.
 *
 * With the cluster CA, nodes get workload certificates over SDS
 * (`secrets.ts`); with component mTLS on (`security.mtls`), the server also
 * listens on `xds.mtlsPort` with mTLS (`mtls.ts`), and in `strict` mode only
 * there.
 */
import type { Registry } from 'prom-client';
import type { ClusterCa } from '../../security/ca/authority.ts';
import type { Iam } from '../../security/iam.ts';
import type { MtlsServerContext } from '../../security/mtls/server.ts';
import type { TokenService } from '../../security/tokens.ts';
import type { StrataConfig } from '../config/schema.ts';
import type { Records } from '../model/records.ts';
import { createXdsMetrics } from './metrics.ts';
import { certificateAuthenticator, MtlsServerCredentials } from './mtls.ts';
import { createSecretMetrics, WorkloadSecrets } from './secrets.ts';
import { XdsServer, type XdsLogger } from './server.ts';
import { openSnapshotSource } from './source.ts';

export interface XdsHandle {
  readonly server: XdsServer;
  /** The bound plaintext port (xds.port, or the one picked for 0); undefined in strict mTLS mode. */
  readonly port: number | undefined;
  /** The bound mTLS port, when component mTLS is on. */
  readonly mtlsPort: number | undefined;
  /** `host:port` nodes are told to use (the plaintext port, or the mTLS one in strict mode). */
  readonly address: string;
  /** Per-identity workload certificates (SDS), when the master has a CA. */
  readonly secrets: WorkloadSecrets | undefined;
  close(): Promise<void>;
}

export async function startXds(options: {
  readonly config: Readonly<StrataConfig>;
  readonly records: Records;
  readonly tokens: TokenService;
  readonly iam: Iam;
  readonly registry: Registry;
  readonly logger: XdsLogger;
  /** The cluster CA: workload certificates over SDS. */
  readonly ca?: ClusterCa;
  /** Component mTLS on this master: the mTLS port. */
  readonly mtls?: MtlsServerContext;
}): Promise<XdsHandle> {
  const { xds, security } = options.config;
  const metrics = createXdsMetrics(options.registry);
  const secrets = options.ca
    ? new WorkloadSecrets({
        issuer: options.ca,
        ttlSeconds: Math.min(security.workloadCertTtlSeconds, options.config.ca.maxLeafTtlSeconds),
        metrics: createSecretMetrics(options.registry),
        logger: options.logger,
      })
    : undefined;
  const server = new XdsServer({
    authenticate: certificateAuthenticator({ tokens: options.tokens, iam: options.iam, trustDomain: options.config.ca.trustDomain }),
    metrics,
    logger: options.logger,
    maxStreams: xds.maxStreams,
    maxRequestBytes: xds.maxRequestBytes,
    ...(secrets ? { secrets } : {}),
  });
  const source = await openSnapshotSource({ records: options.records, sink: server, metrics, logger: options.logger, debounceMs: xds.debounceMs, translate: { meshMtls: security.meshMtls } });
  const strict = options.mtls !== undefined && security.mtls === 'strict';
  let port: number | undefined;
  let mtlsPort: number | undefined;
  let credentials: MtlsServerCredentials | undefined;
  try {
    if (!strict) port = await server.listen(xds.host, xds.port);
    if (options.mtls) {
      credentials = new MtlsServerCredentials(options.mtls);
      try {
        mtlsPort = await server.listen(xds.host, xds.mtlsPort, credentials);
      } catch (err) {
        // Permissive: a taken mTLS port (another Strata or an istiod here) leaves the plaintext port serving.
        if (strict) throw err;
        options.logger.warn({ err, port: xds.mtlsPort }, 'xds: the mTLS port could not be bound; serving plaintext only (pick another with --xds-mtls-port; 0 picks a free one)');
      }
    }
  } catch (err) {
    source.close();
    secrets?.close();
    credentials?.close();
    await server.close();
    throw err;
  }
  const host = xds.advertiseHost ?? (xds.host === '0.0.0.0' ? '127.0.0.1' : xds.host === '::' ? '::1' : xds.host);
  const shown = (port ?? mtlsPort)!;
  return {
    server,
    port,
    mtlsPort,
    secrets,
    address: host.includes(':') ? `[${host}]:${shown}` : `${host}:${shown}`,
    async close() {
      source.close();
      secrets?.close();
      credentials?.close();
      await server.close();
    },
  };
}

/**
 * Start the gateway next to a master (`strata up`, `strata master`): one
 * HTTPS listener with a server certificate from the cluster CA (renewed in
 * place), in front of that master's API and the cluster's app endpoints.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { Agent } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import type { StrataConfig } from '../control-plane/config/schema.ts';
import type { Records } from '../control-plane/model/records.ts';
import type { Iam } from '../security/iam.ts';
import type { TokenService } from '../security/tokens.ts';
import { iamAccess } from './access.ts';
import { certificateNames, issueServingCertificate, keepRenewed, type ComponentCertificateIssuer, type ServingCertificate } from './certificate.ts';
import { createGatewayHandler, type GatewayLog } from './handler.ts';
import { gatewayMetrics, type UpstreamPoolStats } from './metrics.ts';
import { ServiceDirectory } from './services.ts';

export interface StartGatewayOptions {
  readonly config: Readonly<StrataConfig>;
  /** The master's API (`http://host:port`). */
  readonly apiUrl: string;
  readonly tokens: TokenService;
  readonly iam: Iam;
  readonly ca: ComponentCertificateIssuer;
  readonly records: Records;
  readonly registry: Registry;
  readonly logger: GatewayLog & { error(fields: Record<string, unknown>, message: string): void };
}

export interface GatewayHandle {
  /** `https://host:port` (127.0.0.1 for a wildcard listen host). */
  readonly url: string;
  readonly port: number;
  /** SHA-256 fingerprint of the cluster root CA (colon-separated hex), to pin at login. */
  readonly caFingerprint: string;
  close(): Promise<void>;
}

/** SHA-256 of a PEM certificate's DER, as `AB:CD:...` (what openssl and the CLI print). */
export function certificateFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The same for raw DER bytes. */
export function derFingerprint(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** Connections in the upstream agent: carrying a request, and kept alive for the next. */
export function upstreamPool(agent: Agent): UpstreamPoolStats {
  let active = 0;
  let idle = 0;
  for (const list of Object.values(agent.sockets)) active += list?.length ?? 0;
  for (const list of Object.values(agent.freeSockets)) idle += list?.length ?? 0;
  return { active, idle };
}

export async function startGateway(options: StartGatewayOptions): Promise<GatewayHandle> {
  const { config, logger } = options;
  const gw = config.gateway;
  const api = new URL(options.apiUrl);
  const apiHost = api.hostname.replace(/^\[|\]$/g, '');
  const names = certificateNames(gw.host, gw.certificateNames);
  let serving: ServingCertificate = await issueServingCertificate(options.ca, names);
  const services = await ServiceDirectory.open(options.records, { onError: (err) => logger.error({ err }, 'gateway: app view failed') });
  // Every kept-alive upstream connection stays usable: a burst above a smaller free limit would close
  // connections after each answer and open new ones for the next (a TCP handshake per request).
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
  const stop = new AbortController();
  const handler = createGatewayHandler({
    access: iamAccess(options.tokens, options.iam),
    services,
    api: { host: apiHost === '0.0.0.0' ? '127.0.0.1' : apiHost, port: Number(api.port || 80) },
    agent,
    metrics: gatewayMetrics(options.registry, () => upstreamPool(agent)),
    log: logger,
    accessLog: gw.accessLog,
    connectTimeoutMs: gw.connectTimeoutMs,
    upstreamTimeoutMs: gw.upstreamTimeoutMs,
    status: () => ({
      url,
      upstreamConnections: upstreamPool(agent),
      certificate: { serial: serving.serial, notAfter: serving.notAfter.toISOString(), renewAt: serving.renewAt.toISOString(), names: serving.names },
      caFingerprint,
    }),
  });
  const caFingerprint = certificateFingerprint(options.ca.rootPem);
  const server: Server = createServer({ cert: serving.cert, key: serving.key, minVersion: 'TLSv1.2', keepAliveTimeout: 65_000 }, handler.onRequest);
  server.on('upgrade', handler.onUpgrade);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(gw.port, gw.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    services.close();
    agent.destroy();
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : gw.port;
  const host = gw.host === '0.0.0.0' || gw.host === '::' ? '127.0.0.1' : gw.host;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  keepRenewed(options.ca, names, serving, {
    signal: stop.signal,
    apply: (next) => {
      serving = next;
      server.setSecureContext({ cert: next.cert, key: next.key });
      logger.info({ serial: next.serial, notAfter: next.notAfter.toISOString() }, 'gateway certificate renewed');
    },
    onError: (err) => logger.error({ err }, 'gateway certificate renewal failed; retrying in a minute'),
  });
  return {
    url,
    port,
    caFingerprint,
    async close() {
      stop.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Open streams (events, websockets) would hold the close forever.
      for (const s of sockets) s.destroy();
      await closed;
      services.close();
      agent.destroy();
    },
  };
}

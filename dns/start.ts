/**
 * The DNS server's one entry point: builds the handler chain from the
 * config's plugin names, then listens on UDP and TCP. `strata up`, masters
 * and agents call this; tests too (port 0).
 */
import type { Registry } from 'prom-client';
import type { DnsConfig } from '../control-plane/config/schema.ts';
import { pluginSetup } from './plugins/registry.ts';
import { compose } from './server/handler.ts';
import { serverMetrics } from './server/metrics.ts';
import { buildDnsServer, type DnsLogger, type DnsServer } from './server/server.ts';
import { listenTcp } from './server/tcp.ts';
import { listenUdp } from './server/udp.ts';
import type { Authority } from './zone/types.ts';

/**
 * An authority with no zones: every name goes on to `forward`. What
 * `strata up` serves until the zones built from cluster state (dns/zone) are
 * passed in; the dispatcher and `ready.spartan` work without them.
 */
export const NO_ZONES: Authority = { zones: () => [], lookup: () => undefined };

export interface StartDnsOptions {
  /** The validated, frozen `dns` section of the Strata config. */
  readonly config: Readonly<DnsConfig>;
  readonly authority: Authority;
  readonly logger: DnsLogger;
  /** The process's shared prom-client registry. */
  readonly metrics: Registry;
}

export interface RunningDnsServer {
  readonly udpPort: number;
  readonly tcpPort: number;
  /** The socket-less server (same chain), for in-process lookups such as `strata dns lookup`. */
  readonly server: DnsServer;
  /** Stops listening, closes upstream sockets; idempotent. */
  close(): Promise<void>;
}

/** Builds the chain and the socket-less server. Throws on a bad config value, before any socket opens. */
export function buildFromConfig(options: StartDnsOptions): { server: DnsServer; close(): Promise<void> } {
  const cleanups: (() => void | Promise<void>)[] = [];
  const context = {
    config: options.config,
    authority: options.authority,
    registry: options.metrics,
    logger: options.logger,
    onClose: (cleanup: () => void | Promise<void>) => {
      cleanups.push(cleanup);
    },
  };
  try {
    const plugins = options.config.chain.map((name) => pluginSetup(name)(context));
    const server = buildDnsServer({
      handler: compose(plugins),
      metrics: serverMetrics(options.metrics),
      logger: options.logger,
      maxUdpPayloadBytes: options.config.maxUdpPayloadBytes,
      answerCacheMaxEntries: options.config.answerCacheMaxEntries,
      recursionAvailable: options.config.chain.includes('forward') && (options.config.upstreams.length > 0 || Object.keys(options.config.forwardZones).length > 0),
    });
    return { server, close: async () => void (await Promise.all(cleanups.map((c) => c()))) };
  } catch (err) {
    for (const c of cleanups) void c();
    throw err;
  }
}

export async function startDnsServer(options: StartDnsOptions): Promise<RunningDnsServer> {
  const { config, logger } = options;
  const built = buildFromConfig(options);
  const address = (port: number) => ({ host: config.host, port, reusePort: config.reusePort });
  let udp: Awaited<ReturnType<typeof listenUdp>> | undefined;
  try {
    udp = await listenUdp(built.server, address(config.udpPort), logger);
    // Port 0 for both: take the same number for TCP when it is free, as resolvers expect.
    const tcpPort = config.tcpPort === 0 && config.udpPort === 0 ? udp.port : config.tcpPort;
    const tcp = await listenTcp(built.server, address(tcpPort), {
      idleTimeoutMs: config.tcpIdleTimeoutMs,
      maxConnections: config.tcpMaxConnections,
      logger,
      metrics: serverMetrics(options.metrics),
    }).catch((err: unknown) => {
      if (tcpPort !== config.tcpPort) {
        return listenTcp(built.server, address(0), { idleTimeoutMs: config.tcpIdleTimeoutMs, maxConnections: config.tcpMaxConnections, logger, metrics: serverMetrics(options.metrics) });
      }
      throw err;
    });
    logger.info({ host: config.host, udpPort: udp.port, tcpPort: tcp.port, udpRecvBufferBytes: udp.recvBufferBytes, chain: config.chain }, 'dns: listening');
    let closing: Promise<void> | undefined;
    const u = udp;
    return {
      udpPort: udp.port,
      tcpPort: tcp.port,
      server: built.server,
      close: () => (closing ??= Promise.all([u.close(), tcp.close()]).then(() => built.close())),
    };
  } catch (err) {
    await udp?.close();
    await built.close();
    throw err;
  }
}

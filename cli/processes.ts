/**
 * Verbs that run long-lived processes: `up`, `master`, `agent`. Each loads
 * and freezes the configuration, starts its parts, prints where they listen,
 * and shuts down gracefully on SIGTERM or SIGINT (a second signal exits at
 * once).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { isStrataError } from '../common/errors.ts';
import { loadConfig } from '../control-plane/config/load.ts';
import type { StrataConfig } from '../control-plane/config/schema.ts';
import { BOOTSTRAP_CREDENTIALS_FILE, startMaster, type LeaderLoop, type MasterHandle } from '../control-plane/master.ts';
import { startDnsServer, type RunningDnsServer } from '../dns/start.ts';
import { StoreAuthority } from '../dns/zone/store-feed.ts';
import { ZoneAuthority } from '../dns/zone/authority.ts';
import { zoneOptionsFromConfig } from '../dns/zone/options.ts';
import { HttpClusterFeed } from '../dns/zone/http-feed.ts';
import { MasterUrls } from '../scheduler/agent/masters.ts';
import { Registry } from 'prom-client';
import { AGENT_PRINCIPAL, ensureAgentPrincipal, startAgent } from '../scheduler/agent/agent.ts';
import { deploymentController } from '../scheduler/controller/controller.ts';
import { agentMonitor } from '../scheduler/monitor/agent-monitor.ts';
import { vipAllocator } from '../control-plane/vips/allocator.ts';
import { overlayAddressReaper } from '../control-plane/networks/address-reaper.ts';
import { startConfiguredL4lb } from '../dataplane/l4lb/start.ts';
import { startConfiguredPolicy } from '../dataplane/policy/start.ts';
import { startConfiguredOverlay } from '../overlay/start.ts';
import { overlayTaskNetworking } from '../overlay/task-networking.ts';
import { vipRangesOf } from '../control-plane/vips/plan.ts';
import { startXds, type XdsHandle } from '../control-plane/xds/start.ts';
import { startGateway, type GatewayHandle } from '../gateway/start.ts';
import type { FetchLike } from '../security/mtls/client.ts';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}

function makeLogger(config: Readonly<StrataConfig>, file?: string): Logger {
  const options = {
    level: config.log.level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', 'password', 'token'], censor: '[redacted]' },
  };
  return file ? pino(options, pino.destination({ dest: file, mkdir: true, sync: false })) : pino(options);
}

/** The leader loops every master runs: deployments, agent health, VIP addresses, container IP release. */
function leaderLoopsOf(config: Readonly<StrataConfig>): LeaderLoop[] {
  return [
    deploymentController(),
    agentMonitor({ unreachableAfterSeconds: config.agent.unreachableAfterSeconds }),
    vipAllocator({ ranges: vipRangesOf(config) }),
    overlayAddressReaper(),
  ];
}

/** The xDS server every master runs (no leadership needed: it reads state through watches). */
async function xdsOf(config: Readonly<StrataConfig>, master: MasterHandle, logger: Logger): Promise<XdsHandle | undefined> {
  if (!config.xds.enabled) return undefined;
  return startXds({ config, records: master.records, tokens: master.tokens, iam: master.iam, registry: master.metrics, logger: logger.child({ component: 'xds' }), ca: master.ca, ...(master.mtls ? { mtls: master.mtls } : {}) });
}

/**
 * The gateway every master runs when `gateway.enabled` (HTTPS in front of its
 * API and the apps). A taken port is reported and the rest runs on.
 */
async function gatewayOf(config: Readonly<StrataConfig>, master: MasterHandle, logger: Logger): Promise<{ handle?: GatewayHandle; line: string }> {
  if (!config.gateway.enabled) return { line: 'off (--gateway-enabled false)' };
  try {
    const handle = await startGateway({
      config, apiUrl: master.apiUrl, tokens: master.tokens, iam: master.iam, ca: master.ca, records: master.records, registry: master.metrics,
      logger: logger.child({ component: 'gateway' }),
    });
    return { handle, line: `${handle.url} (HTTPS, cluster CA SHA-256 ${handle.caFingerprint})` };
  } catch (err) {
    if (!/EADDRINUSE|address already in use/.test(String(err))) throw err;
    logger.warn({ err }, 'gateway: not started');
    return { line: `not started: port ${config.gateway.port} is taken (pick another with --gateway-port; 0 picks a free one)` };
  }
}

/** The login line: through the gateway (pinning the CA) when it runs, else the plain API. */
function loginLine(master: MasterHandle, gateway: GatewayHandle | undefined, credentials: string): string {
  return gateway
    ? `npx strata auth login --url ${gateway.url} --ca-fingerprint ${gateway.caFingerprint} --password-file ${credentials}`
    : `npx strata auth login --url ${master.apiUrl} --password-file ${credentials}`;
}

export async function runMaster(args: ParsedArgs): Promise<number> {
  const config = loadConfig({ flags: args.values, env: process.env });
  const logger = makeLogger(config);
  const master = await startMaster({ config, logger, leaderLoops: leaderLoopsOf(config) });
  let xds: XdsHandle | undefined;
  try {
    xds = await xdsOf(config, master, logger);
  } catch (err) {
    await master.close();
    throw err;
  }
  const dns = await startNodeDns(config, logger, master);
  const gateway = await gatewayOf(config, master, logger);
  console.log(`strata master ${master.id} serving the API at ${master.apiUrl} (store: ${config.store.backend}); DNS: ${dns.line}`);
  if (xds) console.log(`xDS (ADS for Envoy and proxyless gRPC) at ${xds.address}${xds.mtlsPort !== undefined ? `; mTLS on port ${xds.mtlsPort}` : ''}`);
  console.log(`gateway (Admin Router): ${gateway.line}`);
  if (master.bootstrapCredentialsFile) console.log(`bootstrap superuser credentials written to ${master.bootstrapCredentialsFile}`);
  const signal = await waitForSignal();
  logger.info({ signal }, 'shutting down');
  await gateway.handle?.close();
  await dns.close();
  await xds?.close();
  await master.close();
  return 0;
}

export async function runAgent(args: ParsedArgs): Promise<number> {
  const config = loadConfig({ flags: args.values, env: process.env });
  if (!config.agent.masterUrl) throw new UsageError('--agent-master-url is required');
  if (!config.agent.tokenFile) throw new UsageError('--agent-token-file is required');
  const tokenFile = config.agent.tokenFile;
  // Re-read at every registration, so a renewed token file takes effect without a restart.
  const token = async (): Promise<string> =>
    (await readFile(tokenFile, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --agent-token-file ${tokenFile}: ${err.message}`);
    })).trim();
  await token();
  const logger = makeLogger(config);
  // One list of masters for the node-side followers: they move to the next master together.
  const masters = new MasterUrls(config.agent.masterUrl);
  // Tasks on virtual networks: bound to the agent and its overlay once both run.
  const networking = overlayTaskNetworking({ masterUrl: () => masters.current, token, netnsDir: config.overlay.netnsDir });
  const agent = await startAgent({ config, logger, masterUrl: config.agent.masterUrl, token, networking });
  const l4lb = await startConfiguredL4lb({ config, masters, token, fetch: agent.fetch, agentId: agent.id, logger: logger.child({ component: 'l4lb' }) });
  const policy = await startConfiguredPolicy({ config, masters, token, logger: logger.child({ component: 'policy' }) });
  const dns = await startAgentDns(config, logger, masters, token, agent.fetch);
  const overlay = startConfiguredOverlay({ config, masters, token, fetch: agent.fetch, agentId: agent.id, logger: logger.child({ component: 'overlay' }) });
  networking.bind({ agentId: agent.id, overlay, fetch: agent.fetch });
  console.log(`strata agent ${agent.id} registered with ${config.agent.masterUrl}${l4lb ? '; VIP load balancer on' : ''}${policy ? '; network policy enforced' : ''}${overlay ? '; overlay on' : ''}; DNS: ${dns.line}`);
  const signal = await waitForSignal();
  logger.info({ signal }, 'shutting down');
  await dns.close();
  // The overlay's devices stay: tasks that keep running across an agent restart keep their networking.
  await overlay?.close();
  // The policy table stays: it keeps enforcing until the next start replaces it in one transaction.
  await policy?.close();
  await l4lb?.close();
  await agent.close();
  networking.close();
  return 0;
}

/**
 * The DNS server of a master (and of `strata up`): the internal zones
 * (`dns/zone`'s `StoreAuthority`, pushed by store watches), `ready.spartan`
 * and the dispatcher. A port already taken (another Strata on this machine)
 * is reported in the banner and the log, and the rest runs on.
 */
async function startNodeDns(config: Readonly<StrataConfig>, logger: Logger, master: MasterHandle): Promise<{ server?: RunningDnsServer; close(): Promise<void>; line: string }> {
  const { dns } = config;
  if (!dns.enabled) return { line: 'off (--dns-enabled false)', close: async () => {} };
  const log = logger.child({ component: 'dns' });
  const authority = new StoreAuthority(master.records, {
    zone: zoneOptionsFromConfig(config.dns),
    metrics: master.metrics,
    onError: (err) => log.error({ err }, 'dns zone view listener failed'),
    onInvalid: (invalid) => log.warn({ key: invalid.key, err: invalid.error.message }, 'unusable record left out of the DNS zones'),
  });
  await authority.start();
  try {
    const server = await startDnsServer({ config: dns, authority, logger: log, metrics: master.metrics });
    const upstreams = dns.upstreams.length > 0 ? `forwards to ${dns.upstreams.join(', ')}` : 'no upstreams (--dns-upstreams): other names REFUSED';
    return {
      server,
      line: `${dns.host} UDP ${server.udpPort}, TCP ${server.tcpPort}; zones ${config.dns.domain} and thisdcos.directory; ${upstreams}; try: npx strata dns lookup leader.${config.dns.domain} --dns-udp-port ${server.udpPort}`,
      async close() {
        await server.close();
        await authority.close();
      },
    };
  } catch (err) {
    await authority.close();
    if (!isStrataError(err, 'DNS_LISTEN_FAILED')) throw err;
    log.warn({ err }, 'dns: not started');
    return { line: `not started: ${err.message} (pick another with --dns-udp-port/--dns-tcp-port; 0 picks free ports)`, close: async () => {} };
  }
}

/**
 * The DNS server of an agent node: the same listener and chain as a
 * master's, its zones fed by a master's `/v1/dns/cluster-state` blocking
 * query (agents do not read the store). It answers SERVFAIL for internal
 * names until the first state arrives, then follows every change.
 */
async function startAgentDns(config: Readonly<StrataConfig>, logger: Logger, masters: MasterUrls, token: () => Promise<string>, fetch: FetchLike): Promise<{ close(): Promise<void>; line: string }> {
  const { dns } = config;
  if (!dns.enabled) return { line: 'off (--dns-enabled false)', close: async () => {} };
  const log = logger.child({ component: 'dns' });
  const stop = new AbortController();
  const authority = new ZoneAuthority(new HttpClusterFeed({
    signal: stop.signal,
    masterUrl: () => masters.current,
    masterFailed: (url) => masters.failed(url),
    token,
    fetch,
    onError: (err) => log.warn({ err }, 'cannot read the cluster state for DNS from the master; retrying'),
  }), { zone: zoneOptionsFromConfig(config.dns) });
  void authority.start().catch((err: unknown) => log.error({ err }, 'DNS zones stopped following the master'));
  try {
    const server = await startDnsServer({ config: dns, authority, logger: log, metrics: new Registry() });
    return {
      line: `${dns.host} UDP ${server.udpPort}, TCP ${server.tcpPort} (zones from the master)`,
      async close() {
        await server.close();
        stop.abort();
        authority.close();
      },
    };
  } catch (err) {
    stop.abort();
    authority.close();
    if (!isStrataError(err, 'DNS_LISTEN_FAILED')) throw err;
    log.warn({ err }, 'dns: not started');
    return { line: `not started: ${err.message}`, close: async () => {} };
  }
}

export async function runUp(args: ParsedArgs): Promise<number> {
  const config = loadConfig({ flags: args.values, env: process.env });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const logFile = join(config.dataDir, 'strata.log');
  const logger = makeLogger(config, logFile);
  const master = await startMaster({ config, logger: logger.child({ component: 'master' }), leaderLoops: leaderLoopsOf(config) });
  let xds: XdsHandle | undefined;
  let xdsProblem: string | undefined;
  let gateway: { handle?: GatewayHandle; line: string } | undefined;
  try {
    // A taken xDS port (another Strata or an Istio on this machine) is reported, as DNS's is; strata up runs on.
    xds = await xdsOf(config, master, logger).catch((err: unknown) => {
      if (!/EADDRINUSE|address already in use/.test(String(err))) throw err;
      xdsProblem = `not started: port ${config.xds.port} is taken (pick another with --xds-port; 0 picks a free one)`;
      logger.warn({ err }, 'xds: not started');
      return undefined;
    });
    await master.whenLeader();
    await ensureAgentPrincipal(master.iam);
    // A fresh short token for each registration: the in-process agent never holds an expiring one.
    const token = async (): Promise<string> => (await master.tokens.issue(AGENT_PRINCIPAL, { ttlSeconds: 600 })).token;
    const networking = overlayTaskNetworking({ masterUrl: () => master.apiUrl, token, metrics: master.metrics, netnsDir: config.overlay.netnsDir });
    const agent = await startAgent({ config, logger: logger.child({ component: 'agent' }), masterUrl: master.apiUrl, token, networking, metrics: master.metrics });
      const l4lb = await startConfiguredL4lb({ config, masters: new MasterUrls(master.apiUrl), token, fetch: agent.fetch, agentId: agent.id, logger: logger.child({ component: 'l4lb' }), metrics: master.metrics });
    const policy = await startConfiguredPolicy({ config, masters: new MasterUrls(master.apiUrl), token, logger: logger.child({ component: 'policy' }), metrics: master.metrics });
    const dns = await startNodeDns(config, logger, master);
    gateway = await gatewayOf(config, master, logger);
    const overlay = startConfiguredOverlay({ config, masters: new MasterUrls(master.apiUrl), token, fetch: agent.fetch, agentId: agent.id, logger: logger.child({ component: 'overlay' }), metrics: master.metrics });
    networking.bind({ agentId: agent.id, overlay, fetch: agent.fetch });
    const credentials = join(config.dataDir, BOOTSTRAP_CREDENTIALS_FILE);
    const lines = [
      `Strata is up: one master and one agent in this process (store: ${config.store.backend}).`,
      `  API (IAM /acs/api/v1, /health, /metrics, /openapi.json): ${master.apiUrl}`,
      `  store:  ${config.store.backend === 'embedded' ? join(config.dataDir, config.store.embeddedPath) : config.store.backend}`,
      `  agent:  ${agent.id}, heartbeat every ${config.agent.heartbeatSeconds} s`,
      `  VIPs:   ${l4lb ? `kernel load balancer on (nftables table strata_l4lb; ranges ${config.vips.ipv4Range} and ${config.vips.ipv6Range} routed locally)` : 'load balancer off (needs root and nft, or --dataplane-l4lb on)'}; npx strata vip list`,
      `  policy: ${policy ? 'enforced in nftables (table strata_policy); npx strata policy list' : 'not enforced (needs root and nft, or --dataplane-policy on)'}`,
      xds ? `  xDS:    ${xds.address} (ADS; \`strata envoy bootstrap --node ID\` prints a bootstrap)${xds.mtlsPort !== undefined ? `; mTLS on port ${xds.mtlsPort}` : ''}` : `  xDS:    ${xdsProblem ?? 'off (xds.enabled=false)'}`,
      `  overlay: ${overlay ? `on (VXLAN dstport ${config.overlay.vxlanPort}; this agent's lease: npx strata network leases)` : 'off (needs root, or --overlay-enabled on)'}`,
      `  log:    ${logFile}`,
      existsSync(credentials)
        ? `  bootstrap superuser credentials: ${credentials} (uid ${config.auth.bootstrapUid})${master.bootstrapCredentialsFile ? ' (new)' : ''}`
        : `  bootstrap superuser: created on an earlier start; its credentials file is no longer in ${config.dataDir}`,
      '  apps:   npx strata app add app.json (Marathon JSON); tasks run on the local agent and stop with this command',
      `  DNS:    ${dns.line}`,
      `  gateway: ${gateway.line}; every API and /service/<app-id>/ behind one login`,
      `  web UI: ${gateway.handle ? `${gateway.handle.url}/ (also ${master.apiUrl}/)` : `${master.apiUrl}/`}; log in with the bootstrap credentials (npx strata ui)`,
      '',
      `Log in:  ${loginLine(master, gateway.handle, credentials)}`,
      'Stop:    Ctrl-C (or SIGTERM)',
    ];
    console.log(lines.join('\n'));
    const signal = await waitForSignal();
    logger.info({ signal }, 'shutting down');
    // A single-node Strata stops as a whole: its tasks end with it (a plain
    // `strata agent` leaves them running for the next start to recover).
    await dns.close();
    await overlay?.close({ removeDevices: true });
    await policy?.close({ removeRules: true });
    await l4lb?.close({ removeRules: true });
    await agent.close({ killTasks: true });
    networking.close();
  } finally {
    await gateway?.handle?.close();
    await xds?.close();
    await master.close();
    logger.flush();
  }
  return 0;
}

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
import { loadConfig } from '../control-plane/config/load.ts';
import type { StrataConfig } from '../control-plane/config/schema.ts';
import { BOOTSTRAP_CREDENTIALS_FILE, startMaster, type LeaderLoop } from '../control-plane/master.ts';
import { AGENT_PRINCIPAL, ensureAgentPrincipal, startAgent } from '../scheduler/agent/agent.ts';
import { deploymentController } from '../scheduler/controller/controller.ts';
import { agentMonitor } from '../scheduler/monitor/agent-monitor.ts';
import { vipAllocator } from '../control-plane/vips/allocator.ts';
import { overlayAddressReaper } from '../control-plane/networks/address-reaper.ts';
import { startConfiguredL4lb } from '../dataplane/l4lb/start.ts';
import { startConfiguredOverlay } from '../overlay/start.ts';
import { vipRangesOf } from '../control-plane/vips/plan.ts';
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

export async function runMaster(args: ParsedArgs): Promise<number> {
  const config = loadConfig({ flags: args.values, env: process.env });
  const logger = makeLogger(config);
  const master = await startMaster({ config, logger, leaderLoops: leaderLoopsOf(config) });
  console.log(`strata master ${master.id} serving the API at ${master.apiUrl} (store: ${config.store.backend})`);
  if (master.bootstrapCredentialsFile) console.log(`bootstrap superuser credentials written to ${master.bootstrapCredentialsFile}`);
  const signal = await waitForSignal();
  logger.info({ signal }, 'shutting down');
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
  const agent = await startAgent({ config, logger, masterUrl: config.agent.masterUrl, token });
  const l4lb = await startConfiguredL4lb({ config, masterUrl: config.agent.masterUrl, token, agentId: agent.id, logger: logger.child({ component: 'l4lb' }) });
  const overlay = startConfiguredOverlay({ config, masterUrl: config.agent.masterUrl, token, agentId: agent.id, logger: logger.child({ component: 'overlay' }) });
  console.log(`strata agent ${agent.id} registered with ${config.agent.masterUrl}${l4lb ? '; VIP load balancer on' : ''}${overlay ? '; overlay on' : ''}`);
  const signal = await waitForSignal();
  logger.info({ signal }, 'shutting down');
  // The overlay's devices stay: tasks that keep running across an agent restart keep their networking.
  await overlay?.close();
  await l4lb?.close();
  await agent.close();
  return 0;
}

export async function runUp(args: ParsedArgs): Promise<number> {
  const config = loadConfig({ flags: args.values, env: process.env });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const logFile = join(config.dataDir, 'strata.log');
  const logger = makeLogger(config, logFile);
  const master = await startMaster({ config, logger: logger.child({ component: 'master' }), leaderLoops: leaderLoopsOf(config) });
  try {
    await master.whenLeader();
    await ensureAgentPrincipal(master.iam);
    // A fresh short token for each registration: the in-process agent never holds an expiring one.
    const token = async (): Promise<string> => (await master.tokens.issue(AGENT_PRINCIPAL, { ttlSeconds: 600 })).token;
    const agent = await startAgent({ config, logger: logger.child({ component: 'agent' }), masterUrl: master.apiUrl, token });
    const l4lb = await startConfiguredL4lb({ config, masterUrl: master.apiUrl, token, agentId: agent.id, logger: logger.child({ component: 'l4lb' }), metrics: master.metrics });
    const overlay = startConfiguredOverlay({ config, masterUrl: master.apiUrl, token, agentId: agent.id, logger: logger.child({ component: 'overlay' }), metrics: master.metrics });
    const credentials = join(config.dataDir, BOOTSTRAP_CREDENTIALS_FILE);
    const lines = [
      `Strata is up: one master and one agent in this process (store: ${config.store.backend}).`,
      `  API (IAM /acs/api/v1, /health, /metrics, /openapi.json): ${master.apiUrl}`,
      `  store:  ${config.store.backend === 'embedded' ? join(config.dataDir, config.store.embeddedPath) : config.store.backend}`,
      `  agent:  ${agent.id}, heartbeat every ${config.agent.heartbeatSeconds} s`,
      `  VIPs:   ${l4lb ? `kernel load balancer on (nftables table strata_l4lb; range ${config.vips.ipv4Range} routed locally)` : 'load balancer off (needs root and nft, or --dataplane-l4lb on)'}; npx strata vip list`,
      `  overlay: ${overlay ? `on (VXLAN dstport ${config.overlay.vxlanPort}; this agent's lease: npx strata network leases)` : 'off (needs root, or --overlay-enabled on)'}`,
      `  log:    ${logFile}`,
      existsSync(credentials)
        ? `  bootstrap superuser credentials: ${credentials} (uid ${config.auth.bootstrapUid})${master.bootstrapCredentialsFile ? ' (new)' : ''}`
        : `  bootstrap superuser: created on an earlier start; its credentials file is no longer in ${config.dataDir}`,
      '  apps:   npx strata app add app.json (Marathon JSON); tasks run on the local agent and stop with this command',
      '  DNS and xDS join this command as they land (issues 4 and 5).',
      '',
      `Log in:  npx strata auth login --url ${master.apiUrl} --password-file ${credentials}`,
      'Stop:    Ctrl-C (or SIGTERM)',
    ];
    console.log(lines.join('\n'));
    const signal = await waitForSignal();
    logger.info({ signal }, 'shutting down');
    // A single-node Strata stops as a whole: its tasks end with it (a plain
    // `strata agent` leaves them running for the next start to recover).
    await overlay?.close({ removeDevices: true });
    await l4lb?.close({ removeRules: true });
    await agent.close({ killTasks: true });
  } finally {
    await master.close();
    logger.flush();
  }
  return 0;
}

/**
 * The agent process (foundation part): it identifies this host, serves its
 * own `/health` and its sandboxes' logs to the master (`sandbox-logs.ts`), registers with a master over the authenticated API
 * (`PUT /v1/agents/{id}`) and heartbeats with the same call. After the first
 * registration it starts the task runner (`task-runner.ts`): it recovers the
 * sandboxes in `<dataDir>/sandboxes`, then runs the tasks the master assigns
 * here and reports their states. Unreachable handling is the master's.
 *
 * The agent id is kept in `<dataDir>/agent-id`, so a restarted agent comes
 * back as the same agent.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { availableParallelism, hostname, networkInterfaces, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { StrataError, isStrataError } from '../../common/errors.ts';
import type { StrataConfig } from '../../control-plane/config/schema.ts';
import { AGENT_RID } from '../../control-plane/api/routes/agents.ts';
import type { Iam } from '../../security/iam.ts';
import { apiEnrol, MtlsClient, type FetchLike } from '../../security/mtls/client.ts';
import { guardAgentEndpoint } from '../../security/mtls/guard.ts';
import { componentListenerContext } from '../../security/mtls/listener-context.ts';
import { mtlsMetrics } from '../../security/mtls/metrics.ts';
import { attachMtls, peerOf, type AttachedMtls } from '../../security/mtls/server.ts';
import { detectCgroups, type CgroupManager } from '../executor/cgroups.ts';
import { Executor } from '../executor/executor.ts';
import { MasterUrls } from './masters.ts';
import { jwksGrantVerifier, sandboxLogHandler } from './sandbox-logs.ts';
import { TaskRunner, type TaskRunnerOptions } from './task-runner.ts';
import type { TaskNetworking } from './task-networking.ts';

/** The service account agents authenticate as in `strata up`. */
export const AGENT_PRINCIPAL = 'strata-agent';

/** `31000-32000,33000-33100` (Mesos's default range is 31000-32000) as port ranges; CONFIG_INVALID when a range is empty or out of bounds. */
export function parsePortRanges(text: string): { begin: number; end: number }[] {
  return text.split(',').map((part) => {
    const [begin, end] = part.split('-').map(Number) as [number, number];
    if (!(begin >= 1 && end <= 65535 && begin <= end)) {
      throw new StrataError('CONFIG_INVALID', `config: agent.portRanges has the range ${JSON.stringify(part)}; each must be begin-end with 1 <= begin <= end <= 65535`);
    }
    return { begin, end };
  });
}

export interface AgentRegistration {
  readonly hostname: string;
  readonly address: { readonly ip: string; readonly port: number };
  readonly attributes: Record<string, string>;
  readonly resources: { cpus: number; memMb: number; diskMb: number; gpus: number; ports: { begin: number; end: number }[] };
  readonly version: string;
}

export interface AgentHandle {
  readonly id: string;
  readonly url: string;
  /**
   * How this agent's parts call masters: over mTLS with the agent's
   * certificate once it is enrolled (security.mtls permissive or strict),
   * plain before or when mTLS is off.
   */
  readonly fetch: FetchLike;
  /** The mTLS client, once enrolled. */
  mtls(): MtlsClient | undefined;
  /**
   * Stop the agent. Tasks keep running by default (as a Mesos agent's do; the
   * next start recovers them); `killTasks` stops them first, each with its
   * app's grace period (what `strata up` does on Ctrl-C).
   */
  close(options?: { killTasks?: boolean }): Promise<void>;
}

export async function ensureAgentPrincipal(iam: Iam): Promise<void> {
  if (await iam.getPrincipal(AGENT_PRINCIPAL)) return;
  // A service account needs a public key (its own login tokens verify with
  // it). In `strata up` the master mints the agent's token directly, so the
  // private half is not kept.
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await iam
    .createPrincipal({
      uid: AGENT_PRINCIPAL,
      kind: 'service',
      description: 'local agents',
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      // Its tasks, and the VIP view its kernel load balancer follows (dataplane/l4lb).
      permissions: [{ rid: AGENT_RID, actions: ['full'] }, { rid: 'dcos:adminrouter:ops:networking', actions: ['read'] }],
    })
    .catch((err: unknown) => {
      if (!(err instanceof StrataError && err.code === 'RECORD_CONFLICT')) throw err;
    });
}

async function agentId(config: Readonly<StrataConfig>): Promise<string> {
  if (config.agent.id) return config.agent.id;
  const file = join(config.dataDir, 'agent-id');
  try {
    const id = (await readFile(file, 'utf8')).trim();
    if (/^[a-zA-Z0-9._-]{1,128}$/.test(id)) return id;
    throw new StrataError('CONFIG_INVALID', `agent id file ${file} holds an invalid id; remove it to get a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = `${randomUUID()}-S0`;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await writeFile(file, `${id}\n`, { mode: 0o600 });
  return id;
}

/** The first non-internal IPv4 address, or the loopback when the host has none. */
function primaryIpv4(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && /^\d+\.\d+\.\d+\.\d+$/.test(bindHost)) return bindHost;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export async function describeHost(config: Readonly<StrataConfig>, port: number): Promise<AgentRegistration> {
  const fs = await statfs(config.dataDir);
  const host = hostname().toLowerCase();
  return {
    hostname: /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(host) ? host : 'localhost',
    address: { ip: primaryIpv4(config.agent.host), port },
    attributes: {},
    resources: {
      cpus: availableParallelism(),
      memMb: Math.floor(totalmem() / (1024 * 1024)),
      diskMb: Math.floor((fs.bavail * fs.bsize) / (1024 * 1024)),
      gpus: 0,
      ports: parsePortRanges(config.agent.portRanges),
    },
    version: '0.1.0',
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

export async function startAgent(options: {
  config: Readonly<StrataConfig>;
  logger: Logger;
  /** The master's API, or several, comma-separated (the agent moves to the next when one fails; see `masters.ts`). */
  masterUrl: string;
  /** Asked before every registration, so tokens can be renewed (re-read a file, re-issue). */
  token: () => Promise<string>;
  /** Default: `detectCgroups()` (cgroup v1 limits where the host has them). */
  cgroups?: CgroupManager;
  /** Container networks for tasks (the overlay's, bound once the agent is registered); without it tasks on virtual networks are ERROR. */
  networking?: TaskNetworking;
  /** Where `strata_mtls_*` metrics go (`strata up`: the master's registry). */
  metrics?: Registry;
  /** Task runner tuning (tests). */
  taskRunner?: Pick<TaskRunnerOptions, 'waitSeconds' | 'retryInitialMs' | 'retryMaxMs' | 'orphanGraceMs' | 'minPollIntervalMs'>;
}): Promise<AgentHandle> {
  const { config, logger } = options;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const id = await agentId(config);
  let serveLogs: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/sandboxes/')) {
      // Only masters call the log endpoint: in strict mode over mTLS only, and over mTLS only with a master's certificate.
      const verdict = guardAgentEndpoint(config.security.mtls, peerOf(req.socket));
      if (!verdict.ok) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ code: verdict.code, message: verdict.message }));
        return;
      }
    }
    if (serveLogs?.(req, res)) return;
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', id }));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'API_NOT_FOUND', message: `no route for ${req.method} ${req.url}` }));
    }
  });
  const port = await listen(server, config.agent.host, config.agent.port);
  let registration: AgentRegistration;
  try {
    registration = await describeHost(config, port);
  } catch (err) {
    server.close();
    throw err;
  }
  const masters = new MasterUrls(options.masterUrl);

  // Component mTLS: enrol with the token at the first registration (and keep the certificate renewed);
  // from then on every call to a master goes over mTLS. A permissive agent whose masters do not enrol
  // (mTLS off, or an older master) stays on plain HTTP.
  let mtls: MtlsClient | undefined;
  let plainOnly = config.security.mtls === 'off';
  const agentFetch: FetchLike = (url, init) => (mtls ? mtls.fetch(url, init) : fetch(url, init));
  const ensureMtls = async (): Promise<void> => {
    if (mtls || plainOnly) return;
    try {
      mtls = await MtlsClient.enrol({
        enrol: apiEnrol({ masterUrl: () => masters.current, agentId: id, token: options.token }),
        dir: join(config.dataDir, 'tls'),
        ...(options.metrics ? { metrics: mtlsMetrics(options.metrics) } : {}),
        onError: (err) => logger.warn({ err }, 'mTLS: renewing the agent certificate failed; retrying'),
      });
      logger.info({ spiffeId: mtls.certificate.current.spiffeId, notAfter: mtls.certificate.current.notAfter }, 'mTLS: enrolled; calls to masters use mTLS');
    } catch (err) {
      if (config.security.mtls === 'permissive' && isStrataError(err, 'MTLS_OFF')) {
        plainOnly = true;
        logger.warn({ err: err.message }, 'mTLS: the master enrols no agents; staying on plain HTTP (security.mtls=permissive)');
        return;
      }
      throw err;
    }
  };

  const register = async (): Promise<void> => {
    const base = masters.current;
    let response: Response;
    try {
      await ensureMtls();
      response = await agentFetch(`${base}/v1/agents/${encodeURIComponent(id)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `token=${await options.token()}` },
        body: JSON.stringify(registration),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      masters.failed(base);
      throw err;
    }
    if (!response.ok) {
      if (response.status >= 500) masters.failed(base);
      const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
      throw new StrataError('API_BAD_REQUEST', `master refused registration (${response.status} ${body.code ?? ''}): ${body.message ?? ''}`);
    }
  };

  // Register, then heartbeat with the same call. Failures (master not up
  // yet, a restart, a network blip) back off from the heartbeat interval
  // doubling to 60 s, and never stop the agent.
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let registered!: () => void;
  const firstRegistration = new Promise<void>((resolve) => (registered = resolve));
  const beat = (delayMs: number): void => {
    timer = setTimeout(() => {
      register().then(
        () => {
          if (failures > 0) logger.info({ id }, 'registered with the master again');
          failures = 0;
          registered();
        },
        (err: unknown) => {
          failures++;
          logger.warn({ err, failures }, 'registration failed; retrying with backoff');
        },
      ).finally(() => {
        if (!stopped) beat(Math.min(config.agent.heartbeatSeconds * 1000 * 2 ** Math.min(failures, 4), 60_000));
      });
    }, delayMs);
  };
  beat(0);
  await firstRegistration;
  logger.info({ id, master: masters.current }, 'agent registered');

  // Enrolled: serve mTLS next to plain HTTP on the agent's port (first-byte demux, as the master's API port),
  // presenting the agent's certificate, so masters call the log endpoint over mTLS.
  let tlsListener: AttachedMtls | undefined;
  if (mtls) {
    tlsListener = attachMtls(server, componentListenerContext(mtls.certificate), { listener: 'agent', ...(options.metrics ? { metrics: mtlsMetrics(options.metrics) } : {}), logger });
    logger.info({ spiffeId: mtls.certificate.current.spiffeId }, 'mTLS: the agent port serves mTLS next to plain HTTP');
  }

  // Tasks: recover what an earlier run left in the sandboxes, then run what the master assigns.
  let executor: Executor | undefined;
  let runner: TaskRunner | undefined;
  try {
    const networking = options.networking;
    executor = new Executor({
      workDir: join(config.dataDir, 'sandboxes'),
      host: registration.hostname,
      cgroups: options.cgroups ?? (await detectCgroups()),
      ...(networking ? { enterNetns: <T>(path: string, fn: () => T): T => networking.within(path, fn) } : {}),
    });
    runner = new TaskRunner({ orphanGraceMs: config.agent.orphanGraceSeconds * 1000, ...options.taskRunner, ...(networking ? { networking } : {}), agentId: id, masterUrl: options.masterUrl, masters, token: options.token, fetch: agentFetch, executor, logger: logger.child({ component: 'task-runner' }) });
    await runner.start();
    serveLogs = sandboxLogHandler({ agentId: id, executor, verify: jwksGrantVerifier({ masterUrl: () => masters.current, issuer: config.auth.issuer, audience: config.auth.audience }) });
  } catch (err) {
    stopped = true;
    clearTimeout(timer);
    await runner?.close();
    await executor?.close();
    tlsListener?.close();
    mtls?.close();
    server.close();
    throw err;
  }

  return {
    id,
    url: `http://${config.agent.host.includes(':') ? `[${config.agent.host}]` : config.agent.host}:${port}`,
    fetch: agentFetch,
    mtls: () => mtls,
    async close(closeOptions = {}) {
      stopped = true;
      clearTimeout(timer);
      await runner.close();
      if (closeOptions.killTasks) {
        await executor.killAll();
        // The runner stopped listening: remove the killed tasks' namespaces here.
        for (const handle of executor.tasks()) await options.networking?.detach(handle.taskId).catch((err: unknown) => logger.warn({ err, taskId: handle.taskId }, 'cannot remove the network namespace of a killed task'));
      }
      await executor.close();
      tlsListener?.close();
      mtls?.close();
      // Followed logs stream until their task ends: end them with the agent.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

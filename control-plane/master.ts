/**
 * A master process: the API server over the shared store, plus leader
 * election. Every master serves the API (all state is in the store); only
 * the leader runs the leader loops that later components register
 * (scheduling, VIP allocation, ...). A standby campaigns again the moment the
 * leader key is deleted, so a dead leader is replaced within its session TTL.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from 'prom-client';
import { StrataError, isStrataError } from '../common/errors.ts';
import { ClusterCa } from '../security/ca/authority.ts';
import { Iam } from '../security/iam.ts';
import { Keyring, kekFile } from '../security/secrets/keyring.ts';
import { secretMetrics } from '../security/secrets/metrics.ts';
import { SecretVault } from '../security/secrets/vault.ts';
import { ComponentCertificate } from '../security/mtls/certificate.ts';
import { mtlsMetrics } from '../security/mtls/metrics.ts';
import { attachMtls, MtlsServerContext, type AttachedMtls } from '../security/mtls/server.ts';
import { TokenService } from '../security/tokens.ts';
import { buildApi, type ApiContext, type ApiInstance, type LeaderInfo, type RouteModule } from './api/app.ts';
import { createMetrics } from './api/metrics.ts';
import { ensureDefaultNetworks } from './api/routes/networks.ts';
import type { StrataConfig } from './config/schema.ts';
import { keys } from './model/keys.ts';
import { Records } from './model/records.ts';
import { campaign, readLeader, type Leadership } from './store/election.ts';
import type { StateStore } from './store/port.ts';
import { openStore } from './store/registry.ts';


/** What a leader loop may use besides its leadership: the master's store, records, logger and metrics registry. */
export interface LeaderLoopContext {
  readonly store: StateStore;
  readonly records: Records;
  readonly logger: FastifyBaseLogger;
  readonly metrics: Registry;
}

/** Work only the leader does; started on election, its signal aborts on loss. */
export type LeaderLoop = (leadership: Leadership, context: LeaderLoopContext) => Promise<void> | void;

export interface MasterOptions {
  readonly config: Readonly<StrataConfig>;
  readonly logger: FastifyBaseLogger;
  /** Use this store instead of opening the configured one (not closed by the master). */
  readonly store?: StateStore;
  readonly routes?: readonly RouteModule[];
  readonly leaderLoops?: readonly LeaderLoop[];
}

export interface MasterHandle {
  readonly id: string;
  readonly apiUrl: string;
  readonly store: StateStore;
  readonly app: ApiInstance;
  readonly records: Records;
  readonly tokens: TokenService;
  /** The registry `/metrics` serves (components in the same process add theirs). */
  readonly metrics: Registry;
  readonly iam: Iam;
  readonly ca: ClusterCa;
  readonly secrets: SecretVault;
  /** Component mTLS (absent when security.mtls is off): this master's certificate, trust and CRL. */
  readonly mtls: MtlsServerContext | undefined;
  /** Path of the bootstrap credentials file, when this start created the superuser. */
  readonly bootstrapCredentialsFile: string | undefined;
  isLeader(): boolean;
  /** Resolves when this master next becomes leader (at once if it is). */
  whenLeader(): Promise<Leadership>;
  close(): Promise<void>;
}

export const BOOTSTRAP_CREDENTIALS_FILE = 'bootstrap-credentials.json';
/** Written by the master that creates the cluster CA: the passphrase of the root key (stored encrypted). Move it offline. */
export const CA_ROOT_PASSPHRASE_FILE = 'ca-root-passphrase';

/** Resolves when the signal aborts (at once if it already has). */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

async function writePrivateFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomUUID()}.tmp`;
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
  await rename(tmp, path);
}

export async function startMaster(options: MasterOptions): Promise<MasterHandle> {
  const { config } = options;
  const id = randomUUID();
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const store = options.store ?? (await openStoreWithRetry(config, options.logger));
  const ownsStore = options.store === undefined;
  try {
    return await startOnStore(options, id, store, ownsStore);
  } catch (err) {
    if (ownsStore) await store.close().catch(() => undefined);
    throw err;
  }
}

/**
 * A master waits for its store rather than exiting: an unreachable etcd or
 * Consul is retried with backoff (0.5 s doubling to 10 s), each failure
 * logged. Other errors (bad config, corrupt data) end the start at once.
 */
async function openStoreWithRetry(config: Readonly<StrataConfig>, logger: FastifyBaseLogger): Promise<StateStore> {
  for (let delayMs = 500; ; delayMs = Math.min(delayMs * 2, 10_000)) {
    try {
      return await openStore(config);
    } catch (err) {
      if (!isStrataError(err, 'STORE_UNAVAILABLE')) throw err;
      logger.warn({ err: err.message, retryInMs: delayMs }, 'state store unavailable; retrying');
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

async function startOnStore(options: MasterOptions, id: string, store: StateStore, ownsStore: boolean): Promise<MasterHandle> {
  const { config, logger } = options;
  const records = new Records(store);
  const tokens = await TokenService.open(records, {
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    tokenTtlSeconds: config.auth.tokenTtlSeconds,
    algorithm: config.auth.algorithm,
  });
  const iam = new Iam(records);
  await iam.start({ onError: (err) => logger.error({ err }, 'IAM view failed') });

  const credentialsFile = join(config.dataDir, BOOTSTRAP_CREDENTIALS_FILE);
  const uid = config.auth.bootstrapUid;
  const bootstrap = await iam.ensureBootstrapUser(uid, {
    persist: (password) => writePrivateFile(credentialsFile, `${JSON.stringify({ uid, password }, null, 2)}\n`),
    discard: () => rm(credentialsFile, { force: true }),
  });
  // A new cluster (this start created its superuser) starts with DC/OS's overlay networks.
  if (bootstrap.created) await ensureDefaultNetworks(records);

  const passphraseFile = join(config.dataDir, CA_ROOT_PASSPHRASE_FILE);
  const ca = await ClusterCa.open(records, { trustDomain: config.ca.trustDomain, maxLeafTtlSeconds: config.ca.maxLeafTtlSeconds }, {
    persistPassphrase: (passphrase) => writePrivateFile(passphraseFile, `${passphrase}\n`),
    discardPassphrase: () => rm(passphraseFile, { force: true }),
  }).catch((err: unknown) => {
    iam.close();
    throw err;
  });
  const caSweeper = setInterval(() => void ca.sweep().catch((err: unknown) => logger.warn({ err }, 'CA sweep failed')), 3600_000);
  caSweeper.unref();

  let leadership: Leadership | undefined;
  const leaderWaiters: ((l: Leadership) => void)[] = [];
  const metrics = createMetrics({ store, isLeader: () => leadership !== undefined && !leadership.signal.aborted });
  const kekPath = isAbsolute(config.secrets.kekFile) ? config.secrets.kekFile : join(config.dataDir, config.secrets.kekFile);
  const keyring = await Keyring.open(kekFile(kekPath), { create: config.secrets.createKek, where: kekPath }).catch((err: unknown) => {
    iam.close();
    clearInterval(caSweeper);
    throw err;
  });
  const secrets = new SecretVault(records, keyring, { metrics: secretMetrics(metrics.registry) });
  if (keyring.created) logger.warn({ file: kekPath }, 'created the secrets key-encryption key file: back it up and give every master a copy (without it no secret can be decrypted)');

  // Component mTLS: this master's own certificate (spiffe://<td>/master/<id>), signed by the CA it runs.
  let mtls: MtlsServerContext | undefined;
  if (config.security.mtls !== 'off') {
    try {
      const ttlSeconds = Math.min(config.security.componentCertTtlSeconds, config.ca.maxLeafTtlSeconds);
      const certificate = await ComponentCertificate.obtain({
        component: 'master',
        enrol: (csr) => ca.sign({ uid: id, kind: 'master' }, csr, { ttlSeconds }),
        metrics: mtlsMetrics(metrics.registry),
        onError: (err) => logger.warn({ err }, 'mTLS: renewing this master\'s certificate failed; retrying'),
      });
      mtls = await MtlsServerContext.start({ certificate, trust: ca, trustDomain: ca.trustDomain, crlRefreshSeconds: config.security.crlRefreshSeconds, logger });
    } catch (err) {
      iam.close();
      clearInterval(caSweeper);
      throw err;
    }
  }

  const ctx: ApiContext = {
    config,
    store,
    records,
    tokens,
    iam,
    ca,
    secrets,
    metrics,
    ...(mtls ? { mtls } : {}),
    role: () => (leadership && !leadership.signal.aborted ? 'leader' : 'standby'),
    async leader(): Promise<LeaderInfo> {
      const current = await readLeader(store, keys.leader());
      if (!current) throw new StrataError('RECORD_NOT_FOUND', 'no master leads at the moment');
      const value = JSON.parse(current.value) as LeaderInfo;
      return { ...value, fencingToken: current.token };
    },
  };
  const app = await buildApi(ctx, { logger, ...(options.routes ? { routes: options.routes } : {}) });
  try {
    await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    // Nothing of this start may outlive it (the port may be taken).
    iam.close();
    mtls?.close();
    mtls?.certificate.close();
    clearInterval(caSweeper);
    await app.close().catch(() => undefined);
    throw err;
  }
  // Plain HTTP and mTLS on the one API port (the first byte of a connection decides).
  const attached: AttachedMtls | undefined = mtls ? attachMtls(app.server, mtls, { listener: 'api', metrics: mtlsMetrics(metrics.registry), logger }) : undefined;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.api.port;
  const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
  const apiUrl = config.api.advertiseUrl ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  if (bootstrap.created) logger.info({ file: credentialsFile, uid }, 'created the bootstrap superuser; its password is in the file');

  // The store may not accept the configured TTL (Consul's sessions last at
  // least 10 s): use the nearest it accepts, and say so.
  const { minSessionTtlSeconds: minTtl, maxSessionTtlSeconds: maxTtl } = store.capabilities;
  const leaderTtlSeconds = Math.min(maxTtl, Math.max(minTtl, config.master.leaderTtlSeconds));
  if (leaderTtlSeconds !== config.master.leaderTtlSeconds) {
    logger.warn({ configured: config.master.leaderTtlSeconds, used: leaderTtlSeconds, backend: store.backend }, 'master.leaderTtlSeconds is outside what the store accepts; using the nearest allowed value');
  }

  const stop = new AbortController();
  const electionLoop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const won = await campaign(store, {
          key: keys.leader(),
          value: JSON.stringify({ id, apiUrl, electedAt: new Date().toISOString() }),
          ttlSeconds: leaderTtlSeconds,
          signal: stop.signal,
          onWarning: (message, err) => logger.warn({ err }, message),
        });
        if (stop.signal.aborted) {
          await won.resign();
          break;
        }
        leadership = won;
        logger.info({ id, token: won.token }, 'this master is the leader');
        for (const w of leaderWaiters.splice(0)) w(won);
        for (const loop of options.leaderLoops ?? []) {
          Promise.resolve()
            .then(() => loop(won, { store, records, logger, metrics: metrics.registry }))
            .catch((err: unknown) => logger.error({ err }, 'leader loop failed'));
        }
        await untilAborted(won.signal);
        if (!stop.signal.aborted) logger.warn({ id, reason: String(won.signal.reason) }, 'lost leadership; campaigning again');
      } catch (err) {
        if (stop.signal.aborted) break;
        logger.warn({ err }, 'campaign failed; retrying in 1 s');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  let closing: Promise<void> | undefined;
  return {
    id,
    apiUrl,
    store,
    app,
    records,
    tokens,
    metrics: metrics.registry,
    iam,
    ca,
    secrets,
    mtls,
    bootstrapCredentialsFile: bootstrap.created ? credentialsFile : undefined,
    isLeader: () => ctx.role() === 'leader',
    whenLeader: () =>
      leadership && !leadership.signal.aborted ? Promise.resolve(leadership) : new Promise((resolve) => leaderWaiters.push(resolve)),
    close(): Promise<void> {
      closing ??= (async () => {
        stop.abort(new StrataError('PROCESS_LEADER_LOST', 'master shutting down'));
        await leadership?.resign();
        await electionLoop;
        // The loop may have won once more while stopping; give that back too.
        await leadership?.resign();
        attached?.close();
        mtls?.close();
        mtls?.certificate.close();
        await app.close();
        await secrets.rotationSettled().catch(() => undefined);
        iam.close();
        clearInterval(caSweeper);
        if (ownsStore) await store.close();
      })();
      return closing;
    },
  };
}

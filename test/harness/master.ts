/**
 * Test harness: a master on an in-memory embedded store, listening on a free
 * port in a temp data dir, plus helpers to mint tokens for principals with
 * given permissions. Close it with `close()` (tests register it in teardown).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../control-plane/config/load.ts';
import { startMaster, type LeaderLoop, type MasterHandle } from '../../control-plane/master.ts';
import { openEmbeddedStore } from '../../control-plane/store/embedded/embedded-store.ts';
import type { StateStore } from '../../control-plane/store/port.ts';
import type { Permission } from '../../security/iam.ts';

export interface TestMaster {
  readonly master: MasterHandle;
  readonly store: StateStore;
  readonly dataDir: string;
  /** A token for a new principal holding exactly `permissions`. */
  tokenFor(uid: string, permissions: readonly Permission[]): Promise<string>;
  superuserToken(): Promise<string>;
  close(): Promise<void>;
}

export async function startTestMaster(overrides: Record<string, unknown> = {}, options: { readonly leaderLoops?: readonly LeaderLoop[] } = {}): Promise<TestMaster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-test-'));
  const store = await openEmbeddedStore({ path: ':memory:' });
  const config = loadConfig({ env: {}, overrides: { dataDir, 'api.port': 0, 'master.leaderTtlSeconds': 2, ...overrides } });
  const { pino } = await import('pino');
  const master = await startMaster({ config, logger: pino({ level: 'silent' }), store, ...(options.leaderLoops ? { leaderLoops: options.leaderLoops } : {}) });
  return {
    master,
    store,
    dataDir,
    async tokenFor(uid, permissions) {
      await master.iam.createPrincipal({ uid, kind: 'user', permissions: [...permissions] });
      return (await master.tokens.issue(uid)).token;
    },
    async superuserToken() {
      return (await master.tokens.issue(config.auth.bootstrapUid)).token;
    },
    async close() {
      await master.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

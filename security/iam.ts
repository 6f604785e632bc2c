/**
 * The foundation's identity and access checks: principals kept in the store,
 * password login, and DC/OS-style permission decisions
 * (principal, resource id, action). Users, groups and external identity
 * providers beyond this are the security issue's.
 */
import { StrataError } from '../common/errors.ts';
import type { StateStore } from '../control-plane/store/port.ts';
import { generatePassword, hashPassword, verifyPassword } from './passwords.ts';

export const ACTIONS = ['create', 'read', 'update', 'delete', 'full'] as const;
export type Action = (typeof ACTIONS)[number];

/** Holding any action on this resource grants everything (DC/OS). */
export const SUPERUSER_RID = 'dcos:superuser';

export interface Permission {
  readonly rid: string;
  readonly actions: readonly Action[];
}

export interface PrincipalRecord {
  readonly uid: string;
  readonly kind: 'user' | 'service';
  readonly description?: string;
  /** argon2id PHC string; never leaves the server. */
  readonly passwordHash?: string;
  readonly disabled?: boolean;
  readonly permissions: readonly Permission[];
}

/** Pure decision: does this principal hold `action` on `rid`? `full` covers every action. */
export function allows(principal: PrincipalRecord, rid: string, action: Action): boolean {
  if (principal.disabled) return false;
  return principal.permissions.some(
    (p) => p.rid === SUPERUSER_RID || (p.rid === rid && (p.actions.includes(action) || p.actions.includes('full'))),
  );
}

// A fixed hash to verify against when the uid does not exist, so the time a
// failed login takes does not tell whether the user exists.
let dummyHash: Promise<string> | undefined;

export class Iam {
  readonly #store: StateStore;
  readonly #prefix: string;

  constructor(store: StateStore, options: { prefix: string }) {
    this.#store = store;
    this.#prefix = options.prefix;
  }

  async getPrincipal(uid: string): Promise<PrincipalRecord | undefined> {
    const entry = await this.#store.get(this.#key(uid));
    if (!entry) return undefined;
    return JSON.parse(entry.value) as PrincipalRecord;
  }

  /** Create a principal; `RECORD_CONFLICT` if the uid is taken. */
  async createPrincipal(principal: PrincipalRecord): Promise<void> {
    const result = await this.#store.put(this.#key(principal.uid), JSON.stringify(principal), { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `principal ${JSON.stringify(principal.uid)} already exists`);
  }

  /** Check a password; `AUTH_LOGIN_FAILED` for a wrong uid, password, or a disabled account alike. */
  async login(uid: string, password: string): Promise<PrincipalRecord> {
    const principal = await this.getPrincipal(uid);
    const hash = principal?.passwordHash ?? (await (dummyHash ??= hashPassword(generatePassword())));
    const ok = await verifyPassword(password, hash);
    if (!principal || !principal.passwordHash || !ok || principal.disabled) {
      throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
    }
    return principal;
  }

  /**
   * On a cluster's first start, create the superuser with a random password.
   * `persist` stores the password (a 0600 file) before the user exists, so a
   * crash never leaves a superuser whose password nobody has; only the
   * candidate whose create-only write wins keeps its copy.
   */
  async ensureBootstrapUser(
    uid: string,
    hooks: { persist(password: string): Promise<void>; discard(): Promise<void> },
  ): Promise<{ created: boolean }> {
    if (await this.getPrincipal(uid)) return { created: false };
    const password = generatePassword();
    const record: PrincipalRecord = {
      uid,
      kind: 'user',
      description: 'bootstrap superuser',
      passwordHash: await hashPassword(password),
      permissions: [{ rid: SUPERUSER_RID, actions: ['full'] }],
    };
    await hooks.persist(password);
    const result = await this.#store.put(this.#key(uid), JSON.stringify(record), { casIndex: 0 }).catch(async (err: unknown) => {
      await hooks.discard();
      throw err;
    });
    if (!result.ok) await hooks.discard();
    return { created: result.ok };
  }

  #key(uid: string): string {
    return `${this.#prefix}${encodeURIComponent(uid)}`;
  }
}

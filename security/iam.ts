/**
 * The foundation's identity and access checks: principals kept in the store,
 * password login, and DC/OS-style permission decisions
 * (principal, resource id, action). Users, groups and external identity
 * providers beyond this are the security issue's.
 */
import { StrataError } from '../common/errors.ts';
import type { Records } from '../control-plane/model/records.ts';
import type { Action, Principal } from '../control-plane/model/schemas.ts';
import { generatePassword, hashPassword, verifyPassword } from './passwords.ts';

export type { Action, Permission } from '../control-plane/model/schemas.ts';

/** Holding any action on this resource grants everything (DC/OS). */
export const SUPERUSER_RID = 'dcos:superuser';

/**
 * Does a permission on `granted` cover `wanted`? The same rid does; and,
 * beyond DC/OS (which matched app rids exactly), a rid whose last segment is
 * a path covers every path nested under it:
 * `dcos:service:marathon:marathon:services:/prod` covers
 * `...services:/prod/web` and `...services:/prod/db/primary`, not
 * `...services:/production`.
 */
export function ridCovers(granted: string, wanted: string): boolean {
  if (granted === wanted) return true;
  const lastColon = granted.lastIndexOf(':');
  if (granted[lastColon + 1] !== '/') return false;
  return wanted.startsWith(granted.endsWith('/') ? granted : `${granted}/`);
}

/** Pure decision: does this principal hold `action` on `rid` (or on a group path above it)? `full` covers every action. */
export function allows(principal: Principal, rid: string, action: Action): boolean {
  if (principal.disabled) return false;
  return principal.permissions.some(
    (p) => p.rid === SUPERUSER_RID || (ridCovers(p.rid, rid) && (p.actions.includes(action) || p.actions.includes('full'))),
  );
}

// A fixed hash to verify against when the uid does not exist, so the time a
// failed login takes does not tell whether the user exists.
let dummyHash: Promise<string> | undefined;

/**
 * argon2id costs 19 MiB and a libuv thread per check: at most
 * `concurrent` run at once and `queued` wait; more are refused with
 * `API_TOO_MANY_REQUESTS` rather than starving the process.
 */
export class LoginLimiter {
  readonly #concurrent: number;
  readonly #queued: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(options: { concurrent: number; queued: number }) {
    this.#concurrent = options.concurrent;
    this.#queued = options.queued;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrent) {
      if (this.#waiting.length >= this.#queued) {
        throw new StrataError('API_TOO_MANY_REQUESTS', 'too many logins in progress; retry in a moment');
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

export class Iam {
  readonly #records: Records;
  readonly #limiter: LoginLimiter;

  constructor(records: Records, options: { loginConcurrency?: number; loginQueue?: number } = {}) {
    this.#records = records;
    this.#limiter = new LoginLimiter({ concurrent: options.loginConcurrency ?? 4, queued: options.loginQueue ?? 256 });
    dummyHash ??= hashPassword(generatePassword());
  }

  async getPrincipal(uid: string): Promise<Principal | undefined> {
    return (await this.#records.get('principal', uid))?.value;
  }

  /** Create a principal; `RECORD_INVALID` if it breaks the model, `RECORD_CONFLICT` if the uid is taken. */
  async createPrincipal(principal: Principal): Promise<void> {
    const result = await this.#records.put('principal', principal, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `principal ${JSON.stringify(principal.uid)} already exists`);
  }

  /** Check a password; `AUTH_LOGIN_FAILED` for a wrong uid, password, or a disabled account alike. */
  async login(uid: string, password: string): Promise<Principal> {
    const principal = await this.getPrincipal(uid);
    const stored = principal?.kind === 'user' ? principal.passwordHash : undefined;
    const hash = stored ?? (await dummyHash!);
    const ok = await this.#limiter.run(() => verifyPassword(password, hash));
    if (!principal || stored === undefined || !ok || principal.disabled) {
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
    const record: Principal = {
      uid,
      kind: 'user',
      description: 'bootstrap superuser',
      passwordHash: await hashPassword(password),
      permissions: [{ rid: SUPERUSER_RID, actions: ['full'] }],
    };
    await hooks.persist(password);
    // Only a definite loss discards the password: a write whose outcome is
    // unknown (the store failed mid-call) may have created the user.
    const result = await this.#records.put('principal', record, { casIndex: 0 });
    if (!result.ok) await hooks.discard();
    return { created: result.ok };
  }

}

/**
 * Identity and access management (DC/OS Bouncer's model): users and service
 * accounts (principals), groups, ACLs, permissions as (principal, resource
 * id, action), password and service-account login, and token revocation.
 *
 * Decisions are pure functions of records: {@link resolvePrincipal} folds a
 * principal's groups' permissions into it, {@link allows} decides one
 * (rid, action), {@link tokenRejection} says whether a verified token is still
 * good. The {@link Iam} class is the I/O around them: it keeps watched views of
 * principals, groups and revoked tokens (after {@link Iam.start}), so the
 * auth hook decides from memory, and it writes with check-and-set.
 */
import { StrataError } from '../common/errors.ts';
import { openView, type Records, type RecordView, type Versioned } from '../control-plane/model/records.ts';
import type { Action, Group, Permission, Principal, RecordKind, RecordTypes, ServicePrincipal, UserPrincipal } from '../control-plane/model/schemas.ts';
import { generatePassword, hashPassword, verifyPassword } from './passwords.ts';
import { checkServicePublicKey, verifyServiceLoginToken } from './service-login.ts';
import type { VerifiedToken } from './tokens.ts';

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

/**
 * The principal as decisions see it: its own permissions followed by those of
 * every group it belongs to (groups do not nest; an unknown gid adds nothing).
 * Pure; `allows(resolvePrincipal(p, g), ...)` grants exactly what the
 * principal or one of its groups holds.
 */
export function resolvePrincipal(principal: Principal, groupOf: (gid: string) => Group | undefined): Principal {
  if (!principal.groups || principal.groups.length === 0) return principal;
  const permissions: Permission[] = [...principal.permissions];
  for (const gid of principal.groups) permissions.push(...(groupOf(gid)?.permissions ?? []));
  return { ...principal, permissions };
}

/**
 * Pure: why a verified token must be refused now, or `undefined` if it is
 * good. A token dies with its principal (deleted or disabled, and stays dead
 * when the uid is created again: its `pidx` names the old record), when it
 * was issued before the principal's `tokensValidFromSeconds`, and when its
 * jti was revoked (logout).
 */
export function tokenRejection(principal: Principal | undefined, token: VerifiedToken, jtiRevoked: boolean, principalCreateIndex?: number): string | undefined {
  if (!principal) return `principal ${JSON.stringify(token.uid)} does not exist`;
  if (token.principalIndex !== undefined && principalCreateIndex !== undefined && token.principalIndex !== principalCreateIndex) {
    return `the token was issued to an earlier ${JSON.stringify(token.uid)}, deleted since`;
  }
  if (principal.disabled) return `principal ${JSON.stringify(token.uid)} is disabled`;
  const from = principal.tokensValidFromSeconds;
  if (from !== undefined && (token.issuedAtSeconds === undefined || token.issuedAtSeconds < from)) {
    return `the token was issued before ${new Date(from * 1000).toISOString()}, when ${JSON.stringify(token.uid)}'s tokens were revoked`;
  }
  if (jtiRevoked) return 'the token was revoked (logged out)';
  return undefined;
}

/** Pure: how many enabled principals hold `dcos:superuser`, directly or through a group. */
export function countSuperusers(principals: Iterable<Principal>, groupOf: (gid: string) => Group | undefined): number {
  let n = 0;
  for (const p of principals) {
    if (!p.disabled && resolvePrincipal(p, groupOf).permissions.some((x) => x.rid === SUPERUSER_RID)) n++;
  }
  return n;
}

/** Add `action` to the permission on `rid` (pure; the list keeps one entry per rid). */
export function withGrant(permissions: readonly Permission[], rid: string, action: Action): Permission[] {
  const found = permissions.find((p) => p.rid === rid);
  if (!found) return [...permissions, { rid, actions: [action] }];
  if (found.actions.includes(action)) return [...permissions];
  return permissions.map((p) => (p.rid === rid ? { rid, actions: [...p.actions, action] } : p));
}

/** Remove `action` (or, with `undefined`, every action) from the permission on `rid` (pure). */
export function withoutGrant(permissions: readonly Permission[], rid: string, action: Action | undefined): Permission[] {
  const out: Permission[] = [];
  for (const p of permissions) {
    if (p.rid !== rid) out.push(p);
    else if (action !== undefined) {
      const actions = p.actions.filter((a) => a !== action);
      if (actions.length > 0) out.push({ rid, actions });
    }
  }
  return out;
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

/** Who a grant is for. */
export type Grantee = { readonly uid: string } | { readonly gid: string };

export interface IamOptions {
  readonly loginConcurrency?: number;
  readonly loginQueue?: number;
  /** Longest a service login token may live (DC/OS: 10 minutes). */
  readonly loginTokenMaxSeconds?: number;
  readonly now?: () => number;
}

interface Views {
  readonly principal: RecordView<Principal>;
  readonly group: RecordView<Group>;
  readonly revokedToken: RecordView<RecordTypes['revokedToken']>;
}

/**
 * Checks the password of a user whose `provider` says it lives elsewhere
 * (LDAP: a bind as the user). Resolves whether the password is right; throws
 * for a provider that cannot answer.
 */
export type ExternalPasswordCheck = (principal: Principal, password: string) => Promise<boolean>;

/** How many times a read-modify-write retries a lost check-and-set before giving up with `RECORD_CONFLICT`. */
const CAS_ATTEMPTS = 16;

export class Iam {
  readonly #records: Records;
  readonly #limiter: LoginLimiter;
  readonly #options: IamOptions;
  #views: Views | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #externalPassword: ExternalPasswordCheck | undefined;

  constructor(records: Records, options: IamOptions = {}) {
    this.#records = records;
    this.#options = options;
    this.#limiter = new LoginLimiter({ concurrent: options.loginConcurrency ?? 4, queued: options.loginQueue ?? 256 });
    dummyHash ??= hashPassword(generatePassword());
  }

  /**
   * Open the watched views (principals, groups, revoked tokens) so decisions
   * need no store reads, and sweep expired revocation and login-token records
   * every `sweepSeconds` (any master may; deletes are idempotent).
   */
  async start(options: { readonly sweepSeconds?: number; readonly onError?: (err: unknown) => void } = {}): Promise<void> {
    if (this.#views) return;
    const viewOptions = options.onError ? { onError: options.onError } : {};
    const [principal, group, revokedToken] = await Promise.all([
      openView(this.#records, 'principal', viewOptions),
      openView(this.#records, 'group', viewOptions),
      openView(this.#records, 'revokedToken', viewOptions),
    ]);
    this.#views = { principal, group, revokedToken };
    const sweepMs = (options.sweepSeconds ?? 300) * 1000;
    this.#sweeper = setInterval(() => void this.sweep().catch((err: unknown) => options.onError?.(err)), sweepMs);
    this.#sweeper.unref();
  }

  /** Sizes of the watched views (for metrics); `undefined` before {@link start}. */
  stats(): { users: number; serviceAccounts: number; groups: number; revokedTokens: number } | undefined {
    if (!this.#views) return undefined;
    let users = 0;
    for (const r of this.#views.principal.records.values()) if (r.value.kind === 'user') users++;
    return { users, serviceAccounts: this.#views.principal.records.size - users, groups: this.#views.group.records.size, revokedTokens: this.#views.revokedToken.records.size };
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    if (!this.#views) return;
    for (const v of Object.values(this.#views) as RecordView<unknown>[]) v.close();
    this.#views = undefined;
  }

  #now(): number {
    return this.#options.now ? this.#options.now() : Date.now();
  }

  // -------------------------------------------------------------------------
  // Reads

  /**
   * The principal as decisions see it (its groups' permissions folded in), or
   * `undefined`. From the watched views once started (no store read).
   */
  async getPrincipal(uid: string): Promise<Principal | undefined> {
    if (this.#views) {
      const p = this.#views.principal.get(uid);
      return p && resolvePrincipal(p, (gid) => this.#views?.group.get(gid));
    }
    const p = (await this.#records.get('principal', uid))?.value;
    if (!p) return undefined;
    const groups = new Map<string, Group>();
    for (const gid of p.groups ?? []) {
      const g = (await this.#records.get('group', gid))?.value;
      if (g) groups.set(gid, g);
    }
    return resolvePrincipal(p, (gid) => groups.get(gid));
  }

  /** Pure-from-memory check of a verified token (see {@link tokenRejection}); needs {@link start}. */
  async tokenProblem(token: VerifiedToken): Promise<string | undefined> {
    const principal = await this.getPrincipal(token.uid);
    const createIndex = this.#views ? this.#views.principal.records.get(token.uid)?.createIndex : (await this.#records.get('principal', token.uid))?.createIndex;
    const revoked = token.tokenId !== undefined && (this.#views ? this.#views.revokedToken.get(token.tokenId) !== undefined : (await this.#records.get('revokedToken', token.tokenId)) !== undefined);
    return tokenRejection(principal, token, revoked, createIndex);
  }

  /** The stored principal (its own permissions only). */
  async readPrincipal(uid: string): Promise<Versioned<Principal> | undefined> {
    return this.#records.get('principal', uid);
  }

  async listPrincipals(): Promise<Principal[]> {
    return (await this.#records.list('principal')).records.map((r) => r.value);
  }

  async readGroup(gid: string): Promise<Versioned<Group> | undefined> {
    return this.#records.get('group', gid);
  }

  async listGroups(): Promise<Group[]> {
    return (await this.#records.list('group')).records.map((r) => r.value);
  }

  async readAcl(rid: string): Promise<RecordTypes['acl'] | undefined> {
    return (await this.#records.get('acl', rid))?.value;
  }

  async listAcls(): Promise<RecordTypes['acl'][]> {
    return (await this.#records.list('acl')).records.map((r) => r.value);
  }

  // -------------------------------------------------------------------------
  // Writes

  /**
   * Refuse a change that would leave no enabled superuser (simulated on the
   * current principals and groups). Not atomic with the write: two
   * administrators removing each other at the same instant can still both
   * succeed; this guards against the everyday lock-out.
   */
  async #keepASuperuser(what: string, change: (principals: Map<string, Principal>, groups: Map<string, Group>) => void): Promise<void> {
    const principals = new Map((await this.listPrincipals()).map((p) => [p.uid, structuredClone(p) as Principal]));
    const groups = new Map((await this.listGroups()).map((g) => [g.gid, structuredClone(g) as Group]));
    if (countSuperusers(principals.values(), (gid) => groups.get(gid)) === 0) return;
    change(principals, groups);
    if (countSuperusers(principals.values(), (gid) => groups.get(gid)) === 0) {
      throw new StrataError('IAM_LAST_SUPERUSER', `${what} would leave no enabled principal holding ${SUPERUSER_RID}; grant it to another principal first`);
    }
  }

  /** After a write, wait until this master's view holds it, so the next request here sees it. */
  async #seen(kind: 'principal' | 'group' | 'revokedToken', index: number): Promise<void> {
    await this.#views?.[kind].waitFor(index);
  }

  /** Create a principal; `RECORD_INVALID` if it breaks the model, `RECORD_CONFLICT` if the uid is taken. */
  async createPrincipal(principal: Principal): Promise<void> {
    // A uid used before may have tokens out there: they must not come back to life.
    const record: Principal = { ...principal, tokensValidFromSeconds: principal.tokensValidFromSeconds ?? Math.floor(this.#now() / 1000) };
    const result = await this.#records.put('principal', record, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `principal ${JSON.stringify(principal.uid)} already exists`);
    await this.#seen('principal', result.index);
  }

  async createUser(uid: string, fields: { readonly description?: string; readonly password: string }): Promise<void> {
    const user: UserPrincipal = {
      uid,
      kind: 'user',
      ...(fields.description === undefined ? {} : { description: fields.description }),
      passwordHash: await this.#limiter.run(() => hashPassword(fields.password)),
      permissions: [],
    };
    await this.createPrincipal(user);
  }

  async createServiceAccount(uid: string, fields: { readonly description?: string; readonly publicKey: string }): Promise<void> {
    checkServicePublicKey(fields.publicKey);
    const account: ServicePrincipal = {
      uid,
      kind: 'service',
      ...(fields.description === undefined ? {} : { description: fields.description }),
      publicKey: fields.publicKey,
      permissions: [],
    };
    await this.createPrincipal(account);
  }

  /** Read-modify-write with check-and-set; `RECORD_NOT_FOUND` if absent. Returns the new record. */
  async #update<K extends RecordKind>(kind: K, id: string, what: string, change: (current: RecordTypes[K]) => RecordTypes[K] | Promise<RecordTypes[K]>): Promise<RecordTypes[K]> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.#records.get(kind, id);
      if (!current) throw new StrataError('RECORD_NOT_FOUND', `no ${what} ${JSON.stringify(id)}`);
      const next = await change(structuredClone(current.value) as RecordTypes[K]);
      const result = await this.#records.put(kind, next, { casIndex: current.modifyIndex });
      if (result.ok) {
        if (kind === 'principal' || kind === 'group') await this.#seen(kind, result.index);
        return next;
      }
    }
    throw new StrataError('RECORD_CONFLICT', `${what} ${JSON.stringify(id)} kept changing; try again`);
  }

  /** Change a user's description, password or disabled flag (a service account's description, public key or flag). */
  async updatePrincipal(
    uid: string,
    fields: { readonly description?: string; readonly password?: string; readonly publicKey?: string; readonly disabled?: boolean },
  ): Promise<Principal> {
    if (fields.publicKey !== undefined) checkServicePublicKey(fields.publicKey);
    if (fields.disabled === true) {
      await this.#keepASuperuser(`disabling ${uid}`, (principals) => {
        const p = principals.get(uid);
        if (p) principals.set(uid, { ...p, disabled: true });
      });
    }
    const passwordHash = fields.password === undefined ? undefined : await this.#limiter.run(() => hashPassword(fields.password!));
    return this.#update('principal', uid, 'principal', (p) => {
      if (passwordHash !== undefined && p.kind !== 'user') throw new StrataError('IAM_PRINCIPAL_KIND', `${uid} is a service account: it logs in with its key, not a password`);
      if (fields.publicKey !== undefined && p.kind !== 'service') throw new StrataError('IAM_PRINCIPAL_KIND', `${uid} is a user: only service accounts have a public key`);
      const next: Record<string, unknown> = { ...p };
      if (fields.description !== undefined) next['description'] = fields.description;
      if (passwordHash !== undefined) next['passwordHash'] = passwordHash;
      if (fields.publicKey !== undefined) next['publicKey'] = fields.publicKey;
      if (fields.disabled === true) {
        next['disabled'] = true;
        next['tokensValidFromSeconds'] = this.#revocationPoint();
      } else if (fields.disabled === false) delete next['disabled'];
      return next as unknown as Principal;
    });
  }

  /** Tokens issued up to now (this whole second included) stop working. */
  #revocationPoint(): number {
    return Math.floor(this.#now() / 1000) + 1;
  }

  /** Refuse every token issued to `uid` so far. */
  async revokeTokensOf(uid: string): Promise<void> {
    await this.#update('principal', uid, 'principal', (p) => ({ ...p, tokensValidFromSeconds: this.#revocationPoint() }));
  }

  /** Delete a principal; its tokens die with it (and stay dead if the uid is created again). */
  async deletePrincipal(uid: string): Promise<void> {
    const current = await this.#records.get('principal', uid);
    if (!current) throw new StrataError('RECORD_NOT_FOUND', `no principal ${JSON.stringify(uid)}`);
    await this.#keepASuperuser(`deleting ${uid}`, (principals) => principals.delete(uid));
    const result = await this.#records.delete('principal', uid);
    if (result.ok) await this.#seen('principal', result.index);
  }

  async createGroup(gid: string, description: string | undefined): Promise<void> {
    const result = await this.#records.put('group', { gid, ...(description === undefined ? {} : { description }), permissions: [] }, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `group ${JSON.stringify(gid)} already exists`);
    await this.#seen('group', result.index);
  }

  async updateGroup(gid: string, description: string): Promise<void> {
    await this.#update('group', gid, 'group', (g) => ({ ...g, description }));
  }

  /** Delete a group: its members leave it first, so no principal names a missing group. */
  async deleteGroup(gid: string): Promise<void> {
    if (!(await this.#records.get('group', gid))) throw new StrataError('RECORD_NOT_FOUND', `no group ${JSON.stringify(gid)}`);
    await this.#keepASuperuser(`deleting group ${gid}`, (_principals, groups) => groups.delete(gid));
    for (const p of await this.listPrincipals()) {
      if (p.groups?.includes(gid)) await this.removeMember(gid, p.uid).catch((err: unknown) => {
        if (!(err instanceof StrataError && err.code === 'RECORD_NOT_FOUND')) throw err;
      });
    }
    const result = await this.#records.delete('group', gid);
    if (result.ok) await this.#seen('group', result.index);
  }

  async members(gid: string): Promise<Principal[]> {
    return (await this.listPrincipals()).filter((p) => p.groups?.includes(gid));
  }

  async addMember(gid: string, uid: string): Promise<void> {
    if (!(await this.#records.get('group', gid))) throw new StrataError('RECORD_NOT_FOUND', `no group ${JSON.stringify(gid)}`);
    await this.#update('principal', uid, 'principal', (p) => (p.groups?.includes(gid) ? p : { ...p, groups: [...(p.groups ?? []), gid] }));
  }

  async removeMember(gid: string, uid: string): Promise<void> {
    await this.#keepASuperuser(`removing ${uid} from ${gid}`, (principals) => {
      const p = principals.get(uid);
      if (p) principals.set(uid, { ...p, groups: (p.groups ?? []).filter((g) => g !== gid) });
    });
    await this.#update('principal', uid, 'principal', (p) => {
      const groups = (p.groups ?? []).filter((g) => g !== gid);
      const next: Record<string, unknown> = { ...p, groups };
      if (groups.length === 0) delete next['groups'];
      return next as unknown as Principal;
    });
  }

  // ACLs ----------------------------------------------------------------------

  async createAcl(rid: string, description: string): Promise<void> {
    const result = await this.#records.put('acl', { rid, description }, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', `an ACL for ${rid} already exists`);
  }

  async updateAcl(rid: string, description: string): Promise<void> {
    await this.#update('acl', rid, 'ACL', (a) => ({ ...a, description }));
  }

  /** Delete an ACL and every grant on its rid (from every principal and group). */
  async deleteAcl(rid: string): Promise<void> {
    if (!(await this.#records.get('acl', rid))) throw new StrataError('IAM_ACL_NOT_FOUND', `no ACL for ${rid}`);
    if (rid === SUPERUSER_RID) {
      await this.#keepASuperuser(`deleting the ACL ${rid}`, (principals, groups) => {
        for (const [uid, p] of principals) principals.set(uid, { ...p, permissions: withoutGrant(p.permissions, rid, undefined) });
        for (const [gid, g] of groups) groups.set(gid, { ...g, permissions: withoutGrant(g.permissions, rid, undefined) });
      });
    }
    for (const p of await this.listPrincipals()) {
      if (p.permissions.some((x) => x.rid === rid)) await this.revoke({ uid: p.uid }, rid, undefined);
    }
    for (const g of await this.listGroups()) {
      if (g.permissions.some((x) => x.rid === rid)) await this.revoke({ gid: g.gid }, rid, undefined);
    }
    await this.#records.delete('acl', rid);
  }

  /** Grant `action` on `rid`; the ACL must exist (DC/OS: create it with `PUT /acls/{rid}` first). */
  async grant(grantee: Grantee, rid: string, action: Action): Promise<void> {
    if (!(await this.#records.get('acl', rid))) throw new StrataError('IAM_ACL_NOT_FOUND', `no ACL for ${rid}: create it with PUT /acs/api/v1/acls/{rid} first`);
    if ('uid' in grantee) await this.#update('principal', grantee.uid, 'principal', (p) => ({ ...p, permissions: withGrant(p.permissions, rid, action) }));
    else await this.#update('group', grantee.gid, 'group', (g) => ({ ...g, permissions: withGrant(g.permissions, rid, action) }));
  }

  /** Take back `action` (every action when `undefined`) on `rid`; taking back what was not granted is a no-op. */
  async revoke(grantee: Grantee, rid: string, action: Action | undefined): Promise<void> {
    if (rid === SUPERUSER_RID) {
      await this.#keepASuperuser(`taking ${SUPERUSER_RID} from ${'uid' in grantee ? grantee.uid : `group ${grantee.gid}`}`, (principals, groups) => {
        if ('uid' in grantee) {
          const p = principals.get(grantee.uid);
          if (p) principals.set(p.uid, { ...p, permissions: withoutGrant(p.permissions, rid, action) });
        } else {
          const g = groups.get(grantee.gid);
          if (g) groups.set(g.gid, { ...g, permissions: withoutGrant(g.permissions, rid, action) });
        }
      });
    }
    if ('uid' in grantee) await this.#update('principal', grantee.uid, 'principal', (p) => ({ ...p, permissions: withoutGrant(p.permissions, rid, action) }));
    else await this.#update('group', grantee.gid, 'group', (g) => ({ ...g, permissions: withoutGrant(g.permissions, rid, action) }));
  }

  // Logins and tokens ---------------------------------------------------------

  /** Let users marked as LDAP users log in with their directory password (security/idp). */
  useExternalPasswords(check: ExternalPasswordCheck): void {
    this.#externalPassword = check;
  }

  /** Check a password; `AUTH_LOGIN_FAILED` for a wrong uid, password, or a disabled account alike. Returns the record (its createIndex goes into the token). */
  async login(uid: string, password: string): Promise<Versioned<Principal>> {
    const stored = await this.#records.get('principal', uid);
    const principal = stored?.value;
    if (principal?.kind === 'user' && principal.provider?.type === 'ldap' && this.#externalPassword && !principal.disabled) {
      if (await this.#externalPassword(principal, password)) return stored!;
      throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
    }
    const storedHash = principal?.kind === 'user' ? principal.passwordHash : undefined;
    const hash = storedHash ?? (await dummyHash!);
    const ok = await this.#limiter.run(() => verifyPassword(password, hash));
    if (!stored || !principal || storedHash === undefined || !ok || principal.disabled) {
      throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
    }
    return stored;
  }

  /**
   * A service account's login (DC/OS: `{uid, token}`): the token is a JWT the
   * account signed with its private key, carrying `uid` and `exp`, living at
   * most 10 minutes, used once (its digest is written create-only, so two
   * masters cannot both accept it).
   */
  async serviceLogin(uid: string, token: string): Promise<Versioned<Principal>> {
    const stored = await this.#records.get('principal', uid);
    const principal = stored?.value;
    if (!principal || principal.kind !== 'service' || principal.disabled) {
      throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown service account or bad login token');
    }
    const verified = await verifyServiceLoginToken(token, principal.publicKey, {
      uid,
      nowMs: this.#now(),
      maxLifetimeSeconds: this.#options.loginTokenMaxSeconds ?? 600,
    });
    const used = await this.#records.put(
      'usedLoginToken',
      { digest: verified.digest, uid, expiresAt: new Date(verified.expiresAtSeconds * 1000).toISOString() },
      { casIndex: 0 },
    );
    if (!used.ok) throw new StrataError('AUTH_LOGIN_TOKEN_REJECTED', 'login token rejected: it was already used (login tokens are single use)');
    return stored!;
  }

  /** Revoke one auth token until it expires (logout). */
  async revokeToken(token: VerifiedToken): Promise<void> {
    if (token.tokenId === undefined) {
      // Without a jti the only handle is the principal: revoke all of its tokens.
      await this.revokeTokensOf(token.uid);
      return;
    }
    const result = await this.#records.put('revokedToken', { jti: token.tokenId, uid: token.uid, expiresAt: new Date(token.expiresAtSeconds * 1000).toISOString() });
    if (result.ok) await this.#seen('revokedToken', result.index);
  }

  /** Delete revocations, used login tokens (and SAML assertions) and login flows that have expired (they can no longer matter). */
  async sweep(): Promise<number> {
    const now = this.#now();
    let removed = 0;
    for (const kind of ['revokedToken', 'usedLoginToken', 'loginFlow'] as const) {
      const { records } = await this.#records.list(kind);
      for (const r of records) {
        if (Date.parse(r.value.expiresAt) < now - 60_000) {
          const result = await this.#records.delete(kind, r.id, { casIndex: r.modifyIndex });
          if (result.ok) removed++;
        }
      }
    }
    return removed;
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
    if (await this.#records.get('principal', uid)) return { created: false };
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
    else await this.#seen('principal', result.index);
    return { created: result.ok };
  }
}

/**
 * External identity providers around the IAM: their configurations (records
 * `identityProvider`), the browser login flows (records `loginFlow`, each
 * used once), and the users and groups they bring.
 *
 * - LDAP: one configuration (`ldap.default`). Users imported from it
 *   (`importUser`, or as members by `importGroup`) are marked
 *   `provider: {type: 'ldap'}` and log in at `/acs/api/v1/auth/login` with
 *   their directory password: {@link IdentityProviders.ldapPasswordCheck} is
 *   the IAM's external password check.
 * - OIDC and SAML: `startLogin` keeps a flow (state/nonce/PKCE verifier, or
 *   the AuthnRequest id) and returns the provider's URL; `finishOidc` /
 *   `finishSaml` take the flow (delete with check-and-set: a second use
 *   fails), verify the answer and return the Strata user, created on first
 *   login and linked by (provider, subject), never taking over a uid that
 *   belongs to someone else.
 * - Hand-off: the CLI's loopback target gets a one-time code, exchanged once
 *   for the auth token within {@link HANDOFF_SECONDS}.
 *
 * Adapters (ldap.ts, oidc.ts, saml.ts) are reached through {@link IdpAdapters}
 * so tests can swap them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { StrataError } from '../../common/errors.ts';
import type { Records, Versioned } from '../../control-plane/model/records.ts';
import type { IdentityProvider, IdpType, LdapConfig, LoginFlow, OidcProviderConfig, Principal, ProviderLink, SamlProviderConfig } from '../../control-plane/model/schemas.ts';
import type { Iam } from '../iam.ts';
import { openLdapDirectory, type LdapDirectory } from './ldap.ts';
import { isLoopbackHost, openOidcRelyingParty, type OidcRelyingParty } from './oidc.ts';
import { openSamlServiceProvider, type SamlServiceProvider } from './saml.ts';

export const LDAP_ID = 'default';
/** How long a browser has to come back from the provider. */
export const LOGIN_FLOW_SECONDS = 600;
/** How long the CLI has to exchange its hand-off code. */
export const HANDOFF_SECONDS = 60;
/** Discovered OIDC providers are kept this long (keys rotate; JWKS is refetched by jose on unknown kids). */
const OIDC_CACHE_MS = 10 * 60_000;

export interface IdpAdapters {
  ldap(config: LdapConfig): LdapDirectory;
  oidc(id: string, config: OidcProviderConfig): Promise<OidcRelyingParty>;
  saml(id: string, config: SamlProviderConfig): SamlServiceProvider;
}

export const DEFAULT_ADAPTERS: IdpAdapters = { ldap: openLdapDirectory, oidc: openOidcRelyingParty, saml: openSamlServiceProvider };

/** Where the browser may be sent after a login: a path on this cluster, or a loopback URL (the CLI). */
export function targetProblem(target: string): string | undefined {
  // A path on this cluster; browsers drop tabs and newlines and read `\` as `/`, so `/\t/evil` would be `//evil`.
  if (target.startsWith('/')) {
    const unsafe = target.startsWith('//') || [...target].some((ch) => ch <= ' ' || ch === '\\' || ch === '\u007f');
    return unsafe ? 'a path must not start with // and holds no spaces, control characters or backslashes' : undefined;
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return 'must be a path on this cluster (/...) or an http://127.0.0.1:PORT/... loopback URL';
  }
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname) && url.username === '' && url.password === '') return undefined;
  return 'must be a path on this cluster (/...) or an http loopback URL (127.0.0.1, localhost, [::1]); other hosts would receive the login';
}

export function isLoopbackTarget(target: string): boolean {
  return !target.startsWith('/');
}

/** Pure: the Strata uid a provider's identity asks for, from the configured claim or attribute. */
export function uidFromClaims(claims: Readonly<Record<string, unknown>>, claim: string): string | undefined {
  const v = claims[claim];
  const value = Array.isArray(v) ? v[0] : v;
  return typeof value === 'string' && /^[A-Za-z0-9][A-Za-z0-9@._-]{0,95}$/.test(value) ? value : undefined;
}

/** Pure: the principal linked to (type, id, subject), if any. */
export function linkedPrincipal(principals: Iterable<Principal>, link: ProviderLink): Principal | undefined {
  for (const p of principals) {
    if (p.kind === 'user' && p.provider?.type === link.type && p.provider.id === link.id && p.provider.subject === link.subject) return p;
  }
  return undefined;
}

export interface IdentityProvidersOptions {
  readonly adapters?: IdpAdapters;
  readonly now?: () => number;
  /** Called after every external login attempt (metrics). */
  readonly onLogin?: (provider: string, result: string) => void;
}

export type ProviderConfigOf<T extends IdpType> = T extends 'ldap' ? LdapConfig : T extends 'oidc' ? OidcProviderConfig : SamlProviderConfig;

export class IdentityProviders {
  readonly #records: Records;
  readonly #iam: Iam;
  readonly #adapters: IdpAdapters;
  readonly #now: () => number;
  readonly #onLogin: (provider: string, result: string) => void;
  readonly #oidc = new Map<string, { readonly key: string; readonly at: number; readonly rp: Promise<OidcRelyingParty> }>();

  constructor(records: Records, iam: Iam, options: IdentityProvidersOptions = {}) {
    this.#records = records;
    this.#iam = iam;
    this.#adapters = options.adapters ?? DEFAULT_ADAPTERS;
    this.#now = options.now ?? Date.now;
    this.#onLogin = options.onLogin ?? (() => undefined);
  }

  // Configurations -------------------------------------------------------------

  async get<T extends IdpType>(type: T, id: string): Promise<ProviderConfigOf<T> | undefined> {
    const r = await this.#records.get('identityProvider', `${type}.${id}`);
    return r?.value.config as ProviderConfigOf<T> | undefined;
  }

  async must<T extends IdpType>(type: T, id: string): Promise<ProviderConfigOf<T>> {
    const config = await this.get(type, id);
    if (!config) {
      throw new StrataError('IDP_NOT_CONFIGURED', type === 'ldap' ? 'no LDAP configuration: PUT /acs/api/v1/ldap/config first' : `no ${type.toUpperCase()} provider ${JSON.stringify(id)}`);
    }
    return config;
  }

  async list(type: IdpType): Promise<{ id: string; config: IdentityProvider['config'] }[]> {
    return (await this.#records.list('identityProvider')).records.filter((r) => r.value.type === type).map((r) => ({ id: r.value.id, config: r.value.config }));
  }

  /** Create or replace; returns whether it was created. SAML metadata is checked here (a bad one names `idp_metadata`). */
  async put<T extends IdpType>(type: T, id: string, config: ProviderConfigOf<T>): Promise<{ created: boolean }> {
    if (type === 'saml') this.#adapters.saml(id, config as SamlProviderConfig);
    const existed = (await this.#records.get('identityProvider', `${type}.${id}`)) !== undefined;
    await this.#records.put('identityProvider', { type, id, config } as IdentityProvider);
    this.#oidc.delete(id);
    return { created: !existed };
  }

  async remove(type: IdpType, id: string): Promise<void> {
    await this.must(type, id);
    await this.#records.delete('identityProvider', `${type}.${id}`);
    this.#oidc.delete(id);
  }

  // LDAP -------------------------------------------------------------------------

  async #directory(): Promise<LdapDirectory> {
    return this.#adapters.ldap(await this.must('ldap', LDAP_ID));
  }

  /** The IAM's password check for users marked as LDAP users: a bind as the user. */
  async ldapPasswordCheck(principal: Principal, password: string): Promise<boolean> {
    try {
      await (await this.#directory()).authenticate(principal.uid, password);
      this.#onLogin('ldap.default', 'ok');
      return true;
    } catch (err) {
      this.#onLogin('ldap.default', err instanceof StrataError ? err.code : 'error');
      if (err instanceof StrataError && err.code === 'AUTH_LOGIN_FAILED') return false;
      throw err;
    }
  }

  /** DC/OS `POST /ldap/config/test`: does this name and password bind? */
  async testLdap(uid: string, password: string, config?: LdapConfig): Promise<{ code: string; description: string }> {
    const directory = config ? this.#adapters.ldap(config) : await this.#directory();
    try {
      const user = await directory.authenticate(uid, password);
      return { code: 'TEST_PASSED', description: `bound as ${user.dn}` };
    } catch (err) {
      if (err instanceof StrataError && err.code === 'AUTH_LOGIN_FAILED') return { code: 'AUTHENTICATION_FAILURE', description: 'the directory refused the name or password' };
      if (err instanceof StrataError && err.code === 'IDP_UNAVAILABLE') return { code: 'CONNECTION_FAILURE', description: err.message };
      throw err;
    }
  }

  /** Import one directory user (DC/OS `POST /ldap/importuser`); `RECORD_CONFLICT` if the uid exists. */
  async importUser(username: string): Promise<void> {
    const user = await (await this.#directory()).findUser(username);
    if (!user) throw new StrataError('RECORD_NOT_FOUND', `no LDAP user ${JSON.stringify(username)}`);
    await this.#createLdapUser(username, user.dn, user.displayName);
  }

  async #createLdapUser(uid: string, dn: string, description: string | undefined): Promise<'created' | 'exists'> {
    const existing = (await this.#iam.readPrincipal(uid))?.value;
    if (existing) {
      if (existing.kind === 'user' && existing.provider?.type === 'ldap') return 'exists';
      throw new StrataError('IDP_USER_CONFLICT', `uid ${JSON.stringify(uid)} already belongs to a ${existing.kind === 'user' && existing.provider ? `${existing.provider.type} user` : 'local principal'}; it is not turned into an LDAP user`);
    }
    await this.#iam.createPrincipal({ uid, kind: 'user', ...(description ? { description: description.slice(0, 1024) } : {}), permissions: [], provider: { type: 'ldap', id: LDAP_ID, subject: dn.slice(0, 1024) } });
    return 'created';
  }

  /**
   * Import a directory group and its members (DC/OS `POST /ldap/importgroup`):
   * the group is created (or kept), each member imported as an LDAP user
   * (members whose uid belongs to a local principal are skipped and listed)
   * and added to the group.
   */
  async importGroup(groupname: string): Promise<{ members: string[]; skipped: string[] }> {
    const group = await (await this.#directory()).findGroup(groupname);
    if (!group) throw new StrataError('RECORD_NOT_FOUND', `no LDAP group ${JSON.stringify(groupname)}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9@._-]{0,95}$/.test(groupname)) throw new StrataError('API_BAD_REQUEST', `group name ${JSON.stringify(groupname)} is not a valid gid (letters, digits, @ . _ -)`);
    const existing = (await this.#iam.readGroup(groupname))?.value;
    if (!existing) {
      const result = await this.#records.put('group', { gid: groupname, description: `LDAP group ${group.dn}`.slice(0, 1024), permissions: [], provider: { type: 'ldap', id: LDAP_ID, subject: group.dn.slice(0, 1024) } }, { casIndex: 0 });
      if (!result.ok) throw new StrataError('RECORD_CONFLICT', `group ${JSON.stringify(groupname)} was created meanwhile; import again`);
    } else if (existing.provider?.type !== 'ldap') {
      throw new StrataError('IDP_USER_CONFLICT', `group ${JSON.stringify(groupname)} already exists as a local group; it is not turned into an LDAP group`);
    }
    const members: string[] = [];
    const skipped: string[] = [];
    const directory = await this.#directory();
    for (const uid of group.members) {
      const user = /^[A-Za-z0-9][A-Za-z0-9@._-]{0,95}$/.test(uid) ? await directory.findUser(uid) : undefined;
      if (!user) {
        skipped.push(uid);
        continue;
      }
      try {
        await this.#createLdapUser(uid, user.dn, user.displayName);
      } catch (err) {
        if (err instanceof StrataError && err.code === 'IDP_USER_CONFLICT') {
          skipped.push(uid);
          continue;
        }
        throw err;
      }
      await this.#iam.addMember(groupname, uid);
      members.push(uid);
    }
    return { members, skipped };
  }

  // Browser flows ------------------------------------------------------------------

  #expiry(seconds: number): string {
    return new Date(this.#now() + seconds * 1000).toISOString();
  }

  async #newFlow(flow: Omit<LoginFlow, 'id' | 'expiresAt'>, seconds: number): Promise<LoginFlow> {
    const record: LoginFlow = { id: randomBytes(16).toString('hex'), expiresAt: this.#expiry(seconds), ...flow } as LoginFlow;
    const result = await this.#records.put('loginFlow', record, { casIndex: 0 });
    if (!result.ok) throw new StrataError('RECORD_CONFLICT', 'login flow id collision; start again');
    return record;
  }

  /** Take a flow once: read, check kind/provider/expiry, delete with check-and-set (a concurrent second use loses). */
  async #takeFlow(id: string | null | undefined, kind: LoginFlow['kind'], provider: string): Promise<LoginFlow> {
    const unknown = (): StrataError => new StrataError('IDP_RESPONSE_REJECTED', `${kind === 'handoff' ? 'hand-off code' : 'login'} unknown, expired or already used; start the login again`);
    if (!id || !/^[0-9a-f]{32}$/.test(id)) throw unknown();
    const r: Versioned<LoginFlow> | undefined = await this.#records.get('loginFlow', id);
    if (!r || r.value.kind !== kind || (provider !== '*' && r.value.provider !== provider)) throw unknown();
    const deleted = await this.#records.delete('loginFlow', id, { casIndex: r.modifyIndex });
    if (!deleted.ok) throw unknown();
    if (Date.parse(r.value.expiresAt) <= this.#now()) throw unknown();
    return r.value;
  }

  async #rp(id: string, config: OidcProviderConfig): Promise<OidcRelyingParty> {
    const key = JSON.stringify(config);
    const cached = this.#oidc.get(id);
    if (cached && cached.key === key && this.#now() - cached.at < OIDC_CACHE_MS) return cached.rp;
    const rp = this.#adapters.oidc(id, config);
    this.#oidc.set(id, { key, at: this.#now(), rp });
    rp.catch(() => this.#oidc.delete(id));
    return rp;
  }

  /** Start a browser login; returns the provider URL to redirect to. `target` was checked with {@link targetProblem}. */
  async startLogin(type: 'oidc' | 'saml', id: string, target: string | undefined): Promise<string> {
    if (type === 'oidc') {
      const config = await this.must('oidc', id);
      const rp = await this.#rp(id, config);
      const nonce = randomBytes(16).toString('hex');
      const codeVerifier = randomBytes(32).toString('base64url');
      const flow = await this.#newFlow({ kind: 'oidc', provider: `oidc.${id}`, nonce, codeVerifier, ...(target === undefined ? {} : { target }) }, LOGIN_FLOW_SECONDS);
      return rp.authorizationUrl({ state: flow.id, nonce, codeVerifier });
    }
    const sp = this.#adapters.saml(id, await this.must('saml', id));
    const flow = await this.#newFlow({ kind: 'saml', provider: `saml.${id}`, ...(target === undefined ? {} : { target }) }, LOGIN_FLOW_SECONDS);
    return sp.loginUrl(flow.id, flow.id);
  }

  async finishOidc(id: string, query: URLSearchParams): Promise<{ principal: Versioned<Principal>; target: string | undefined }> {
    const provider = `oidc.${id}`;
    // Outside the try: only configured providers are counted (ids in URLs are anyone's to invent).
    const config = await this.must('oidc', id);
    try {
      const flow = await this.#takeFlow(query.get('state'), 'oidc', provider);
      const rp = await this.#rp(id, config);
      const identity = await rp.finish(query, { state: flow.id, nonce: flow.nonce!, codeVerifier: flow.codeVerifier! });
      const claim = config.uid_claim ?? 'email';
      const uid = uidFromClaims(identity.claims, claim);
      if (claim === 'email' && identity.claims['email_verified'] === false) throw new StrataError('IDP_RESPONSE_REJECTED', 'OIDC login rejected: the email is not verified at the provider');
      const principal = await this.#linkUser({ type: 'oidc', id, subject: `${identity.issuer} ${identity.subject}`.slice(0, 1024) }, uid, claim, typeof identity.claims['name'] === 'string' ? identity.claims['name'] : undefined);
      this.#onLogin(provider, 'ok');
      return { principal, target: flow.target };
    } catch (err) {
      this.#onLogin(provider, err instanceof StrataError ? err.code : 'error');
      throw err;
    }
  }

  async finishSaml(id: string, samlResponse: string): Promise<{ principal: Versioned<Principal>; target: string | undefined }> {
    const provider = `saml.${id}`;
    const config = await this.must('saml', id);
    try {
      const sp = this.#adapters.saml(id, config);
      const identity = await sp.verify(samlResponse, this.#now());
      // The assertion is single use: its digest is written create-only (until it expires) before the
      // request is taken, so a replay is refused as such and does not use up a pending request.
      const digest = createHash('sha256').update(`saml\0${provider}\0${identity.assertionId}`).digest('hex');
      const replay = await this.#records.put('usedLoginToken', { digest, uid: 'saml-assertion', expiresAt: new Date(Math.max(identity.notOnOrAfterMs, this.#now()) + 60_000).toISOString() }, { casIndex: 0 });
      if (!replay.ok) throw new StrataError('IDP_RESPONSE_REJECTED', 'SAML login rejected: this assertion was already used');
      const flow = await this.#takeFlow(identity.inResponseTo, 'saml', provider);
      const attribute = config.uid_attribute;
      const uid = attribute === undefined ? uidFromClaims({ nameId: identity.nameId }, 'nameId') : uidFromClaims(identity.attributes, attribute);
      const principal = await this.#linkUser({ type: 'saml', id, subject: identity.nameId.slice(0, 1024) }, uid, attribute ?? 'NameID', undefined);
      this.#onLogin(provider, 'ok');
      return { principal, target: flow.target };
    } catch (err) {
      this.#onLogin(provider, err instanceof StrataError ? err.code : 'error');
      throw err;
    }
  }

  /** The user linked to `link`, or a new one named `uid` (first login); someone else's uid is refused. */
  async #linkUser(link: ProviderLink, uid: string | undefined, claim: string, name: string | undefined): Promise<Versioned<Principal>> {
    const linked = linkedPrincipal(await this.#iam.listPrincipals(), link);
    if (linked) {
      if (linked.disabled) throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: the account is disabled');
      return (await this.#iam.readPrincipal(linked.uid))!;
    }
    if (uid === undefined) throw new StrataError('IDP_RESPONSE_REJECTED', `${link.type.toUpperCase()} login rejected: ${claim} is missing or not a valid uid (letters, digits, @ . _ -)`);
    if (await this.#iam.readPrincipal(uid)) {
      throw new StrataError('IDP_USER_CONFLICT', `uid ${JSON.stringify(uid)} already belongs to another user; the ${link.type.toUpperCase()} login is not linked to it`);
    }
    await this.#iam.createPrincipal({ uid, kind: 'user', ...(name ? { description: name.slice(0, 1024) } : {}), permissions: [], provider: link });
    return (await this.#iam.readPrincipal(uid))!;
  }

  /** A one-time code for the CLI's loopback target; exchanged by {@link redeemHandoff}. */
  async createHandoff(uid: string, token: string, provider: string): Promise<string> {
    return (await this.#newFlow({ kind: 'handoff', provider, uid, token }, HANDOFF_SECONDS)).id;
  }

  async redeemHandoff(code: string): Promise<{ uid: string; token: string }> {
    const flow = await this.#takeFlow(code, 'handoff', '*');
    return { uid: flow.uid!, token: flow.token! };
  }
}

/**
 * LDAP as an identity provider (DC/OS's LDAPConfiguration): simple bind by a
 * DN template (direct bind) or by searching the user with a lookup account
 * (search bind), over ldaps or StartTLS, and group lookups for import.
 *
 * The pure part builds DNs and filters from user input and is the only place
 * input reaches LDAP syntax: values are escaped per RFC 4515 (filters) and
 * RFC 4514 (DN attribute values), so `*)(uid=*` is a name, not a filter.
 * {@link LdapDirectory} is the port the IAM uses; {@link openLdapDirectory}
 * is its adapter over `ldapts` (one connection per operation: logins are
 * rare and a pooled, bound connection would carry the last user's identity).
 */
import { isIP } from 'node:net';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import { StrataError } from '../../common/errors.ts';
import type { LdapConfig } from '../../control-plane/model/schemas.ts';

/** RFC 4515 §3: `*`, `(`, `)`, `\` and NUL (and other control bytes) as `\XX`. */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x20 || byte === 0x7f || ch === '*' || ch === '(' || ch === ')' || ch === '\\' ? `\\${byte.toString(16).padStart(2, '0')}` : byte < 0x80 ? ch : `\\${byte.toString(16)}`;
  }
  return out;
}

/** RFC 4514 §2.4: the special characters of a DN attribute value, a leading `#` or space and a trailing space, as `\XX`. */
export function escapeDnValue(value: string): string {
  const bytes = [...Buffer.from(value, 'utf8')];
  return bytes
    .map((byte, i) => {
      const ch = String.fromCharCode(byte);
      const special = ',+"\\<>;='.includes(ch) || byte < 0x20 || byte === 0x7f || (i === 0 && (ch === '#' || ch === ' ')) || (i === bytes.length - 1 && ch === ' ');
      return special || byte >= 0x80 ? `\\${byte.toString(16).padStart(2, '0')}` : ch;
    })
    .join('');
}

/** Put `value` (already escaped for where it goes) in place of every `%(<name>)s` of a DC/OS template. */
export function fillTemplate(template: string, name: 'username' | 'groupname', escapedValue: string): string {
  return template.split(`%(${name})s`).join(escapedValue);
}

/** Names that may be looked up: non-empty, no longer than 256 characters (escaping handles the rest). */
export function checkLdapName(what: 'username' | 'groupname', name: string): void {
  if (name.length === 0 || name.length > 256) throw new StrataError('API_BAD_REQUEST', `${what} must be 1 to 256 characters`, { details: [{ path: `/${what === 'username' ? 'uid' : 'groupname'}`, errors: ['must be 1 to 256 characters'] }] });
}

export interface LdapUser {
  readonly dn: string;
  readonly username: string;
  /** `cn` or `displayName`, when the entry has one. */
  readonly displayName?: string;
}

export interface LdapGroup {
  readonly dn: string;
  readonly groupname: string;
  /** Usernames of the members (from `memberUid`, or the `uid` of each `member`/`uniqueMember` entry). */
  readonly members: readonly string[];
}

/** What the IAM needs of a directory. Implementations never log passwords. */
export interface LdapDirectory {
  /** Bind as the user; `AUTH_LOGIN_FAILED` for a wrong name or password (empty passwords are refused before any bind). */
  authenticate(username: string, password: string): Promise<LdapUser>;
  findUser(username: string): Promise<LdapUser | undefined>;
  findGroup(groupname: string): Promise<LdapGroup | undefined>;
}

const TIMEOUT_MS = 10_000;

function unavailable(config: LdapConfig, err: unknown): StrataError {
  const message = err instanceof Error ? err.message : String(err);
  return new StrataError('IDP_UNAVAILABLE', `LDAP server ${config.host}:${config.port} failed: ${message}`, { cause: err });
}

function first(entry: Entry, attribute: string): string | undefined {
  const v = entry[attribute];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

function all(entry: Entry, attribute: string): string[] {
  const v = entry[attribute];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

/** The adapter over ldapts. `config` was validated by the model (one of dntemplate / user-search is set). */
export function openLdapDirectory(config: LdapConfig): LdapDirectory {
  // The name the certificate must carry (an IP address is matched against its IP SANs; SNI only for names).
  const host = config.host.replace(/^\[|\]$/g, '');
  const tlsOptions = { ...(config['ca-certs'] ? { ca: config['ca-certs'] } : {}), minVersion: 'TLSv1.2' as const, host, ...(isIP(host) ? {} : { servername: host }) };

  /** A connected client, TLS as configured (StartTLS before anything else when enforced), bound as `as`, or anonymous. */
  async function session<T>(as: { dn: string; password: string } | 'lookup' | 'none', fn: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({
      url: `${config['use-ldaps'] ? 'ldaps' : 'ldap'}://${config.host}:${config.port}`,
      timeout: TIMEOUT_MS,
      connectTimeout: TIMEOUT_MS,
      ...(config['use-ldaps'] ? { tlsOptions } : {}),
    });
    try {
      if (config['enforce-starttls']) {
        try {
          await client.startTLS(tlsOptions);
        } catch (err) {
          throw unavailable(config, err);
        }
      }
      const bind = as === 'lookup' ? (config['lookup-dn'] ? { dn: config['lookup-dn'], password: config['lookup-password'] ?? '' } : undefined) : as === 'none' ? undefined : as;
      if (bind) {
        try {
          await client.bind(bind.dn, bind.password);
        } catch (err) {
          if (err instanceof InvalidCredentialsError && as !== 'lookup') throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
          throw err instanceof StrataError ? err : unavailable(config, as === 'lookup' ? new Error(`lookup bind as ${config['lookup-dn']}: ${(err as Error).message}`) : err);
        }
      }
      return await fn(client);
    } catch (err) {
      throw err instanceof StrataError ? err : unavailable(config, err);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  async function searchUser(client: Client, username: string): Promise<LdapUser[]> {
    const search = config['user-search'];
    if (search) {
      const filter = fillTemplate(search['search-filter-template'], 'username', escapeFilterValue(username));
      const { searchEntries } = await client.search(search['search-base'], { scope: 'sub', filter, sizeLimit: 2, attributes: ['cn', 'displayName'] });
      return searchEntries.map((e) => ({ dn: e.dn, username, ...displayName(e) }));
    }
    const dn = fillTemplate(config.dntemplate!, 'username', escapeDnValue(username));
    try {
      const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['cn', 'displayName'] });
      return searchEntries.map((e) => ({ dn: e.dn, username, ...displayName(e) }));
    } catch (err) {
      if ((err as { code?: number }).code === 0x20) return []; // noSuchObject
      throw err;
    }
  }

  return {
    async authenticate(username, password) {
      checkLdapName('username', username);
      // An empty password is an "unauthenticated bind" (RFC 4513 §5.1.2), which some servers treat as success.
      if (password.length === 0) throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
      let user: LdapUser;
      if (config['user-search']) {
        const found = await session('lookup', (client) => searchUser(client, username));
        if (found.length !== 1) throw new StrataError('AUTH_LOGIN_FAILED', 'login failed: unknown uid or wrong password');
        user = found[0]!;
      } else {
        user = { dn: fillTemplate(config.dntemplate!, 'username', escapeDnValue(username)), username };
      }
      await session({ dn: user.dn, password }, async () => undefined);
      return user;
    },

    async findUser(username) {
      checkLdapName('username', username);
      const found = await session('lookup', (client) => searchUser(client, username));
      if (found.length > 1) throw new StrataError('IDP_UNAVAILABLE', `LDAP user search for ${JSON.stringify(username)} matched ${found.length} entries; the search filter must match one`);
      return found[0];
    },

    async findGroup(groupname) {
      checkLdapName('groupname', groupname);
      const search = config['group-search'];
      if (!search) throw new StrataError('IDP_NOT_CONFIGURED', 'the LDAP configuration has no group-search: set it to import groups');
      return session('lookup', async (client) => {
        const filter = fillTemplate(search['search-filter-template'], 'groupname', escapeFilterValue(groupname));
        const { searchEntries } = await client.search(search['search-base'], { scope: 'sub', filter, sizeLimit: 2, attributes: ['member', 'uniqueMember', 'memberUid'] });
        if (searchEntries.length === 0) return undefined;
        if (searchEntries.length > 1) throw new StrataError('IDP_UNAVAILABLE', `LDAP group search for ${JSON.stringify(groupname)} matched ${searchEntries.length} entries; the search filter must match one`);
        const group = searchEntries[0]!;
        const members = new Set(all(group, 'memberUid'));
        for (const dn of [...all(group, 'member'), ...all(group, 'uniqueMember')]) {
          const uid = await memberUid(client, dn);
          if (uid !== undefined) members.add(uid);
        }
        return { dn: group.dn, groupname, members: [...members].sort() };
      });
    },
  };
}

function displayName(e: Entry): { displayName?: string } {
  const name = first(e, 'displayName') ?? first(e, 'cn');
  return name === undefined ? {} : { displayName: name };
}

/** The `uid` of a member entry; a member that no longer exists is skipped. */
async function memberUid(client: Client, dn: string): Promise<string | undefined> {
  try {
    const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: ['uid'] });
    return searchEntries[0] ? first(searchEntries[0], 'uid') : undefined;
  } catch (err) {
    if ((err as { code?: number }).code === 0x20) return undefined;
    throw err;
  }
}

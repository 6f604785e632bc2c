/**
 * The store key layout: where each record kind lives, under one root
 * `strata/`. Every function here is the only place its key is spelled.
 *
 * Invariants (property-tested in `keys.test.ts`)
 * - id → key is injective and reversible: `idFromKey(kind, keyOf(kind, id))`
 *   returns `id`, and each key has exactly one spelling (non-canonical
 *   encodings decode to `undefined`).
 * - Kind prefixes are prefix-free: a key belongs to exactly one kind, and a
 *   watch on `prefix(kind)` sees that kind only.
 * - Every key of a valid id is a valid store key (ASCII, no leading `/`,
 *   within `KEY_MAX_BYTES`).
 *
 * Spelling
 * - App ids are Marathon paths and keep their shape: `/group/web` →
 *   `strata/apps/group/web`, so a watch on `appGroupPrefix('/group')`
 *   (`strata/apps/group/`) sees every app under that group.
 * - Every other id is one key segment: letters, digits, `_`, `-` and `.` as
 *   they are, anything else (and a leading `.`) as `%XX` of its UTF-8 bytes.
 *   So role `*` → `%2A`, role `eng/web` → `eng%2Fweb`, VIP `/db` → `%2Fdb`.
 */
import { isIP } from 'node:net';
import { StrataError } from '../../common/errors.ts';
import { canonicalIp } from '../../common/ip.ts';
import { KEY_MAX_BYTES } from '../store/port.ts';
import {
  APP_ID_MAX_LENGTH,
  APP_ID_PATTERN,
  FRAMEWORK_NAME_PATTERN,
  KID_PATTERN,
  DNS_LABEL_PATTERN,
  NETWORK_NAME_PATTERN,
  NODE_ID_PATTERN,
  OVERLAY_POOL_PATTERN,
  PRINCIPAL_ID_PATTERN,
  RECORD_KINDS,
  RID_PATTERN,
  ROLE_PATTERN,
  SECRET_PATH_PATTERN,
  SERIAL_PATTERN,
  VERSION_PATTERN,
  VIP_NAME_PATTERN,
  type RecordKind,
  type RecordTypes,
} from './schemas.ts';

export const ROOT = 'strata/';

/** The id of the one LeaderInfo record. */
export const LEADER_ID = 'leader';

// ---------------------------------------------------------------------------
// Segment encoding

const SAFE = /[A-Za-z0-9_.-]/;

/** One id as one key segment (see the module comment). Total and injective. */
export function encodeSegment(text: string): string {
  let out = '';
  let i = 0;
  for (const ch of text) {
    if (SAFE.test(ch) && !(i === 0 && ch === '.')) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    i += 1;
  }
  return out;
}

/** The text `encodeSegment` made `segment` from, or `undefined` if `segment` is not its canonical spelling. */
export function decodeSegment(segment: string): string | undefined {
  if (!/^(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*$/.test(segment)) return undefined;
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return encodeSegment(text) === segment ? text : undefined;
}

// ---------------------------------------------------------------------------
// Ids

interface IdRule {
  readonly pattern: RegExp;
  readonly maxLength: number;
  readonly describe: string;
}

const rule = (pattern: string, maxLength: number, describe: string): IdRule => ({ pattern: new RegExp(pattern, 'u'), maxLength, describe });

const NODE_ID = (maxLength: number, what: string): IdRule => rule(NODE_ID_PATTERN, maxLength, `${what}: letters, digits, . _ -, starting with a letter or digit, at most ${maxLength} characters`);

const ID_RULES: { readonly [K in Exclude<RecordKind, 'vip' | 'leader' | 'appVersion' | 'acl' | 'launchDelay' | 'overlayClaim' | 'overlayAddress'>]: IdRule } = {
  agent: NODE_ID(128, 'agent id'),
  framework: NODE_ID(128, 'framework id'),
  task: NODE_ID(400, 'task id'),
  role: rule(ROLE_PATTERN, 128, 'role: "*" or "/"-separated names of letters, digits, _ . - (not starting with "-" or ".")'),
  app: rule(APP_ID_PATTERN, APP_ID_MAX_LENGTH, `app id: an absolute Marathon path such as /group/web (lowercase letters, digits, - and .), at most ${APP_ID_MAX_LENGTH} characters`),
  network: rule(NETWORK_NAME_PATTERN, 13, 'network name: a DNS label of at most 13 characters'),
  policy: rule(DNS_LABEL_PATTERN, 63, 'policy name: a DNS label (RFC 1123)'),
  principal: rule(PRINCIPAL_ID_PATTERN, 96, 'uid: letters, digits, @ . _ -, at most 96 characters'),
  group: rule(PRINCIPAL_ID_PATTERN, 96, 'gid: letters, digits, @ . _ -, at most 96 characters'),
  signingKey: rule(KID_PATTERN, 64, 'kid: letters, digits, _ -, at most 64 characters'),
  deployment: NODE_ID(128, 'deployment id'),
  revokedToken: rule(KID_PATTERN, 64, 'jti: letters, digits, _ -, at most 64 characters'),
  usedLoginToken: rule('^[0-9a-f]{64}$', 64, 'login token digest: 64 lowercase hex digits (SHA-256)'),
  certificateAuthority: rule(KID_PATTERN, 64, 'CA id: letters, digits, _ -, at most 64 characters'),
  certificate: rule(SERIAL_PATTERN, 32, 'certificate serial: 32 lowercase hex digits'),
  identityProvider: rule('^(?:ldap|oidc|saml)\\.[A-Za-z0-9_-]{1,64}$', 69, 'identity provider: <ldap|oidc|saml>.<id of letters, digits, _ ->'),
  loginFlow: rule('^[0-9a-f]{32}$', 32, 'login flow id: 32 lowercase hex digits'),
  servicePort: rule('^(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$', 5, 'service port: a port number from 1 to 65535, no leading zeros'),
  overlayLease: NODE_ID(128, 'agent id'),
  secret: rule(SECRET_PATH_PATTERN, 256, 'secret path: "/"-separated names of letters, digits, _ . - (not starting with . or -), no leading "/", at most 256 characters'),
};
/** ACL rids are spelled as one encoded segment; the encoded form must fit a store key. */
const ACL_RID = rule(RID_PATTERN, 512, 'resource id such as dcos:service:marathon:marathon:services:/dev');
const ACL_KEY_SEGMENT_MAX = 440;
const APP_VERSION = rule(VERSION_PATTERN, 40, 'version: a UTC timestamp such as 2015-09-25T15:13:48.343Z');
const FRAMEWORK_NAME = rule(FRAMEWORK_NAME_PATTERN, 63, 'framework name: lowercase letters, digits, . -');
const VIP_NAME = rule(VIP_NAME_PATTERN, 128, 'VIP name: letters, digits, / . _ : -, at most 128 characters');
const OVERLAY_POOL = rule(OVERLAY_POOL_PATTERN, 13, 'pool: a network name or _vtep');
const NETWORK_NAME = rule(NETWORK_NAME_PATTERN, 13, 'network name: a DNS label of at most 13 characters');

function fits(r: IdRule, id: string): boolean {
  return id.length <= r.maxLength && r.pattern.test(id);
}

/** A VIP's id: `<framework>/<name>`, e.g. `marathon//mygroup/myapp` (framework names hold no `/`). */
export function vipId(framework: string, name: string): string {
  return `${framework}/${name}`;
}

export function parseVipId(id: string): { framework: string; name: string } | undefined {
  const slash = id.indexOf('/');
  if (slash < 0) return undefined;
  const framework = id.slice(0, slash);
  const name = id.slice(slash + 1);
  return fits(FRAMEWORK_NAME, framework) && fits(VIP_NAME, name) ? { framework, name } : undefined;
}

/** An app version's id: `<app id>@<version>`, e.g. `/group/web@2015-09-25T15:13:48.343Z` (neither part holds `@`). */
export function appVersionId(appId: string, version: string): string {
  return `${appId}@${version}`;
}

export function parseAppVersionId(id: string): { appId: string; version: string } | undefined {
  const at = id.indexOf('@');
  if (at < 0) return undefined;
  const appId = id.slice(0, at);
  const version = id.slice(at + 1);
  return fits(ID_RULES.app, appId) && fits(APP_VERSION, version) ? { appId, version } : undefined;
}

/** Canonical IP text (IPv4 dotted quad without leading zeros, or lower-case compressed IPv6). */
function isCanonicalIp(text: string): boolean {
  const family = isIP(text);
  return (family === 4 || family === 6) && canonicalIp(text) === text;
}

/** An overlay claim's id: `<pool>/<cidr>`, e.g. `dcos/9.0.3.0/24`, `_vtep/44.128.0.1/32` (pools hold no `/`). */
export function overlayClaimId(pool: string, cidr: string): string {
  return `${pool}/${cidr}`;
}

export function parseOverlayClaimId(id: string): { pool: string; cidr: string } | undefined {
  const slash = id.indexOf('/');
  if (slash < 0) return undefined;
  const pool = id.slice(0, slash);
  const cidr = id.slice(slash + 1);
  const cut = cidr.lastIndexOf('/');
  if (cut < 0 || !/^[0-9]{1,3}$/.test(cidr.slice(cut + 1)) || !isCanonicalIp(cidr.slice(0, cut))) return undefined;
  const length = Number(cidr.slice(cut + 1));
  if (String(length) !== cidr.slice(cut + 1) || length > (isIP(cidr.slice(0, cut)) === 4 ? 32 : 128)) return undefined;
  return fits(OVERLAY_POOL, pool) ? { pool, cidr } : undefined;
}

/** A container address's id: `<network>/<ip>`, e.g. `dcos/9.0.3.2`. */
export function overlayAddressId(network: string, ip: string): string {
  return `${network}/${ip}`;
}

export function parseOverlayAddressId(id: string): { network: string; ip: string } | undefined {
  const slash = id.indexOf('/');
  if (slash < 0) return undefined;
  const network = id.slice(0, slash);
  const ip = id.slice(slash + 1);
  return fits(NETWORK_NAME, network) && isCanonicalIp(ip) ? { network, ip } : undefined;
}

/** Why `id` is not a valid id of `kind`, or `undefined` if it is. */
export function idProblem(kind: RecordKind, id: string): string | undefined {
  if (typeof id !== 'string') return `a ${kind} id must be a string`;
  if (kind === 'leader') return id === LEADER_ID ? undefined : `the leader record's id is always ${JSON.stringify(LEADER_ID)}`;
  if (kind === 'vip') {
    return parseVipId(id) ? undefined : `VIP id must be "<framework>/<name>" (${FRAMEWORK_NAME.describe}; ${VIP_NAME.describe})`;
  }
  if (kind === 'appVersion') {
    return parseAppVersionId(id) ? undefined : `app version id must be "<app id>@<version>" (${ID_RULES.app.describe}; ${APP_VERSION.describe})`;
  }
  if (kind === 'overlayClaim') return parseOverlayClaimId(id) ? undefined : `overlay claim id must be "<pool>/<canonical cidr>" (${OVERLAY_POOL.describe})`;
  if (kind === 'overlayAddress') return parseOverlayAddressId(id) ? undefined : `overlay address id must be "<network>/<canonical ip>" (${NETWORK_NAME.describe})`;
  if (kind === 'acl') {
    if (!fits(ACL_RID, id)) return `must be a valid ${ACL_RID.describe}`;
    return encodeSegment(id).length <= ACL_KEY_SEGMENT_MAX ? undefined : `is too long: encoded (":" and "/" take 3 characters each) it must fit in ${ACL_KEY_SEGMENT_MAX} characters`;
  }
  const r = ID_RULES[kind === 'launchDelay' ? 'app' : kind];
  return fits(r, id) ? undefined : `must be a valid ${r.describe}`;
}

function checkId(kind: RecordKind, id: string): void {
  const problem = idProblem(kind, id);
  if (problem !== undefined) {
    throw new StrataError('RECORD_ID_INVALID', `${kind} id ${JSON.stringify(String(id).slice(0, 80))} is invalid: ${problem}`);
  }
}

/** The id a record is stored under. */
export function recordId<K extends RecordKind>(kind: K, record: RecordTypes[K]): string {
  const r = record as RecordTypes[RecordKind];
  switch (kind) {
    case 'agent':
    case 'framework':
    case 'app':
    case 'task':
    case 'deployment':
      return (r as { id: string }).id;
    case 'servicePort':
      return String((r as RecordTypes['servicePort']).port);
    case 'launchDelay':
      return (r as RecordTypes['launchDelay']).appId;
    case 'appVersion':
      return appVersionId((r as RecordTypes['appVersion']).id, (r as RecordTypes['appVersion']).version);
    case 'role':
    case 'network':
    case 'policy':
      return (r as { name: string }).name;
    case 'principal':
      return (r as RecordTypes['principal']).uid;
    case 'group':
      return (r as RecordTypes['group']).gid;
    case 'vip':
      return vipId((r as RecordTypes['vip']).framework, (r as RecordTypes['vip']).name);
    case 'leader':
      return LEADER_ID;
    case 'signingKey':
      return (r as RecordTypes['signingKey']).kid;
    case 'acl':
      return (r as RecordTypes['acl']).rid;
    case 'revokedToken':
      return (r as RecordTypes['revokedToken']).jti;
    case 'usedLoginToken':
      return (r as RecordTypes['usedLoginToken']).digest;
    case 'certificateAuthority':
      return (r as RecordTypes['certificateAuthority']).id;
    case 'certificate':
      return (r as RecordTypes['certificate']).serial;
    case 'identityProvider':
      return `${(r as RecordTypes['identityProvider']).type}.${(r as RecordTypes['identityProvider']).id}`;
    case 'loginFlow':
      return (r as RecordTypes['loginFlow']).id;
    case 'overlayLease':
      return (r as RecordTypes['overlayLease']).agentId;
    case 'overlayClaim':
      return overlayClaimId((r as RecordTypes['overlayClaim']).pool, (r as RecordTypes['overlayClaim']).cidr);
    case 'overlayAddress':
      return overlayAddressId((r as RecordTypes['overlayAddress']).network, (r as RecordTypes['overlayAddress']).ip);
    case 'secret':
      return (r as RecordTypes['secret']).path;
    default:
      throw new TypeError(`unknown record kind ${JSON.stringify(kind)}`);
  }
}

// ---------------------------------------------------------------------------
// Keys

/** Where each kind lives. The leader's entry is its one key; the others end in `/`. */
const PREFIXES: { readonly [K in RecordKind]: string } = {
  agent: `${ROOT}agents/`,
  framework: `${ROOT}frameworks/`,
  role: `${ROOT}roles/`,
  app: `${ROOT}apps/`,
  task: `${ROOT}tasks/`,
  vip: `${ROOT}vips/`,
  network: `${ROOT}networks/`,
  policy: `${ROOT}policies/`,
  principal: `${ROOT}principals/`,
  group: `${ROOT}groups/`,
  leader: `${ROOT}leader/master`,
  signingKey: `${ROOT}security/signing-keys/`,
  deployment: `${ROOT}deployments/`,
  appVersion: `${ROOT}app-versions/`,
  acl: `${ROOT}security/acls/`,
  revokedToken: `${ROOT}security/revoked-tokens/`,
  usedLoginToken: `${ROOT}security/used-login-tokens/`,
  certificateAuthority: `${ROOT}security/ca/`,
  certificate: `${ROOT}security/certificates/`,
  identityProvider: `${ROOT}security/identity-providers/`,
  loginFlow: `${ROOT}security/login-flows/`,
  servicePort: `${ROOT}service-ports/`,
  launchDelay: `${ROOT}launch-delays/`,
  overlayLease: `${ROOT}overlay/leases/`,
  overlayClaim: `${ROOT}overlay/claims/`,
  overlayAddress: `${ROOT}overlay/addresses/`,
  secret: `${ROOT}security/secrets/`,
};

/** The prefix to list or watch for every record of `kind` (the leader's is its key). */
export function prefix(kind: RecordKind): string {
  const p = PREFIXES[kind];
  if (p === undefined) throw new TypeError(`unknown record kind ${JSON.stringify(kind)}`);
  return p;
}

/** The key of the `kind` record with this id; `RECORD_ID_INVALID` if the id is malformed. */
export function keyOf(kind: RecordKind, id: string): string {
  checkId(kind, id);
  switch (kind) {
    case 'app':
      return `${ROOT}apps${id}`;
    case 'launchDelay':
      return `${ROOT}launch-delays${id}`;
    case 'appVersion': {
      const { appId, version } = parseAppVersionId(id)!;
      return `${PREFIXES.appVersion}${appId.slice(1)}/${encodeSegment(version)}`;
    }
    case 'leader':
      return PREFIXES.leader;
    case 'vip': {
      const { framework, name } = parseVipId(id)!;
      return `${PREFIXES.vip}${encodeSegment(framework)}/${encodeSegment(name)}`;
    }
    case 'overlayClaim': {
      const { pool, cidr } = parseOverlayClaimId(id)!;
      return `${PREFIXES.overlayClaim}${encodeSegment(pool)}/${encodeSegment(cidr)}`;
    }
    case 'overlayAddress': {
      const { network, ip } = parseOverlayAddressId(id)!;
      return `${PREFIXES.overlayAddress}${network}/${encodeSegment(ip)}`;
    }
    default:
      return `${prefix(kind)}${encodeSegment(id)}`;
  }
}

/** The id a key names for `kind`, or `undefined` if the key is not a canonical key of a valid `kind` id. */
export function idFromKey(kind: RecordKind, key: string): string | undefined {
  const p = prefix(kind);
  if (kind === 'leader') return key === p ? LEADER_ID : undefined;
  if (!key.startsWith(p)) return undefined;
  const rest = key.slice(p.length);
  let id: string | undefined;
  if (kind === 'app' || kind === 'launchDelay') id = `/${rest}`;
  else if (kind === 'appVersion') {
    // The version is the last segment (it always holds `%3A`, which no path element does).
    const slash = rest.lastIndexOf('/');
    const version = slash < 0 ? undefined : decodeSegment(rest.slice(slash + 1));
    id = version === undefined ? undefined : appVersionId(`/${rest.slice(0, slash)}`, version);
  } else if (kind === 'overlayClaim' || kind === 'overlayAddress') {
    const [first, second, extra] = rest.split('/');
    const a = first === undefined ? undefined : decodeSegment(first);
    const b = second === undefined ? undefined : decodeSegment(second);
    id = extra === undefined && a !== undefined && b !== undefined ? `${a}/${b}` : undefined;
  } else if (kind === 'vip') {
    const [fw, name, extra] = rest.split('/');
    const framework = fw === undefined ? undefined : decodeSegment(fw);
    const decodedName = name === undefined ? undefined : decodeSegment(name);
    id = extra === undefined && framework !== undefined && decodedName !== undefined ? vipId(framework, decodedName) : undefined;
  } else id = decodeSegment(rest);
  return id !== undefined && idProblem(kind, id) === undefined ? id : undefined;
}

/** Which kind and id a key names, if any. */
export function parseKey(key: string): { kind: RecordKind; id: string } | undefined {
  for (const kind of RECORD_KINDS) {
    const id = idFromKey(kind, key);
    if (id !== undefined) return { kind, id };
  }
  return undefined;
}

/** The prefix that holds every app under a group: `/` → `strata/apps/`, `/dev` → `strata/apps/dev/`. */
export function appGroupPrefix(groupId: string): string {
  if (groupId === '/') return PREFIXES.app;
  checkId('app', groupId);
  return `${ROOT}apps${groupId}/`;
}

/**
 * The prefix that holds every stored version of one app, and of apps below it
 * (`/web`'s prefix also holds `/web/api`'s): filter by `parseAppVersionId(id).appId`.
 */
export function appVersionPrefix(appId: string): string {
  checkId('app', appId);
  return `${PREFIXES.appVersion}${appId.slice(1)}/`;
}

/** One function per kind, for call sites that know their kind: `keys.app('/group/web')`. */
export const keys = {
  root: ROOT,
  prefix,
  appGroupPrefix,
  agent: (id: string): string => keyOf('agent', id),
  framework: (id: string): string => keyOf('framework', id),
  role: (name: string): string => keyOf('role', name),
  app: (id: string): string => keyOf('app', id),
  task: (id: string): string => keyOf('task', id),
  vip: (framework: string, name: string): string => keyOf('vip', vipId(framework, name)),
  network: (name: string): string => keyOf('network', name),
  policy: (name: string): string => keyOf('policy', name),
  principal: (uid: string): string => keyOf('principal', uid),
  group: (gid: string): string => keyOf('group', gid),
  leader: (): string => PREFIXES.leader,
  signingKey: (kid: string): string => keyOf('signingKey', kid),
  deployment: (id: string): string => keyOf('deployment', id),
  appVersion: (appId: string, version: string): string => keyOf('appVersion', appVersionId(appId, version)),
  appVersionPrefix,
  acl: (rid: string): string => keyOf('acl', rid),
  revokedToken: (jti: string): string => keyOf('revokedToken', jti),
  usedLoginToken: (digest: string): string => keyOf('usedLoginToken', digest),
  certificateAuthority: (id: string): string => keyOf('certificateAuthority', id),
  certificate: (serial: string): string => keyOf('certificate', serial),
  identityProvider: (type: string, id: string): string => keyOf('identityProvider', `${type}.${id}`),
  loginFlow: (id: string): string => keyOf('loginFlow', id),
  servicePort: (port: number): string => keyOf('servicePort', String(port)),
  launchDelay: (appId: string): string => keyOf('launchDelay', appId),
  overlayLease: (agentId: string): string => keyOf('overlayLease', agentId),
  overlayClaim: (pool: string, cidr: string): string => keyOf('overlayClaim', overlayClaimId(pool, cidr)),
  overlayAddress: (network: string, ip: string): string => keyOf('overlayAddress', overlayAddressId(network, ip)),
  secret: (path: string): string => keyOf('secret', path),
  /** Every container address of one network. */
  overlayAddressPrefix: (network: string): string => {
    checkId('network', network);
    return `${PREFIXES.overlayAddress}${encodeSegment(network)}/`;
  },
} as const;

// ---------------------------------------------------------------------------
// The layout, as data (README.md and docs/architecture.md render it)

export interface KeyLayoutRow {
  readonly kind: RecordKind;
  /** The key pattern. */
  readonly key: string;
  readonly example: string;
  /** What the id is. */
  readonly id: string;
  /** Who writes it; who reads it. */
  readonly writers: string;
  readonly readers: string;
}

export const KEY_LAYOUT: readonly KeyLayoutRow[] = [
  { kind: 'agent', key: 'strata/agents/<agent id>', example: keys.agent('8b23-S0'), id: 'agent id (Mesos-style)', writers: 'agent registration, health monitor', readers: 'scheduler, DNS, overlay' },
  { kind: 'framework', key: 'strata/frameworks/<framework id>', example: keys.framework('5e1c-0001'), id: 'framework id', writers: 'framework registration', readers: 'scheduler, DNS' },
  { kind: 'role', key: 'strata/roles/<role, encoded>', example: keys.role('eng/web'), id: 'role name (`*` → `%2A`)', writers: 'API (weights, quota)', readers: 'scheduler (DRF)' },
  { kind: 'app', key: 'strata/apps<app id>', example: keys.app('/group/web'), id: 'Marathon path id', writers: 'API (Marathon /v2/apps)', readers: 'scheduler, DNS, xDS, VIP allocator' },
  { kind: 'task', key: 'strata/tasks/<task id>', example: keys.task('group_web.instance-1a2b._app.1'), id: 'task id', writers: 'scheduler, agents (status)', readers: 'DNS, xDS, overlay, API' },
  { kind: 'vip', key: 'strata/vips/<framework>/<name, encoded>', example: keys.vip('marathon', '/mygroup/myapp'), id: '`<framework>/<name>`', writers: 'VIP allocator', readers: 'DNS (l4lb), xDS, dataplane' },
  { kind: 'network', key: 'strata/networks/<name>', example: keys.network('dcos'), id: 'network name', writers: 'API, bootstrap', readers: 'overlay, scheduler' },
  { kind: 'policy', key: 'strata/policies/<name>', example: keys.policy('deny-db'), id: 'policy name', writers: 'API', readers: 'dataplane, xDS' },
  { kind: 'principal', key: 'strata/principals/<uid, encoded>', example: keys.principal('alice'), id: 'uid (user or service account)', writers: 'IAM API, bootstrap', readers: 'IAM, API auth' },
  { kind: 'group', key: 'strata/groups/<gid, encoded>', example: keys.group('ops'), id: 'gid', writers: 'IAM API', readers: 'IAM' },
  { kind: 'leader', key: 'strata/leader/master', example: keys.leader(), id: `always \`${LEADER_ID}\` (one record)`, writers: 'leader election (bound to the leader\'s session)', readers: 'every master, CLI, DNS (leader.mesos)' },
  { kind: 'signingKey', key: 'strata/security/signing-keys/<kid>', example: keys.signingKey('3f1c9a'), id: 'JWT kid', writers: 'token service (rotation)', readers: 'token service, /auth/jwks' },
  { kind: 'deployment', key: 'strata/deployments/<deployment id>', example: keys.deployment('5d2c7a1e-0b3f-4c1a-9e7d-2f6b8a9c0d1e'), id: 'deployment id (UUID)', writers: 'API (Marathon /v2/apps, /v2/deployments), deployment controller', readers: 'API (locks, /v2/deployments), deployment controller' },
  { kind: 'servicePort', key: 'strata/service-ports/<port>', example: keys.servicePort(10000), id: 'port number', writers: 'API (every app write claims and releases its service ports in the same transaction)', readers: 'API (service port allocation)' },
  { kind: 'launchDelay', key: 'strata/launch-delays<app id>', example: keys.launchDelay('/group/web'), id: 'Marathon path id', writers: 'deployment controller (fenced), API (DELETE /v2/queue/{id}/delay)', readers: 'deployment controller (after a failover), API (/v2/queue)' },
  { kind: 'overlayLease', key: 'strata/overlay/leases/<agent id>', example: keys.overlayLease('8b23-S0'), id: 'agent id', writers: 'overlay IPAM (`PUT /networking/api/v1/agents/{id}/overlay`)', readers: 'overlay agents (every agent\'s VTEP and subnets)' },
  { kind: 'overlayClaim', key: 'strata/overlay/claims/<pool>/<cidr, encoded>', example: keys.overlayClaim('dcos', '9.0.3.0/24'), id: '`<network or _vtep>/<cidr>`', writers: 'overlay IPAM (create-only, with the lease)', readers: 'overlay IPAM' },
  { kind: 'overlayAddress', key: 'strata/overlay/addresses/<network>/<ip, encoded>', example: keys.overlayAddress('dcos', '9.0.3.2'), id: '`<network>/<ip>`', writers: 'overlay IPAM (task addresses, release, quarantine)', readers: 'overlay IPAM, agents' },
  { kind: 'appVersion', key: 'strata/app-versions<app id>/<version, encoded>', example: keys.appVersion('/group/web', '2015-09-25T15:13:48.343Z'), id: '`<app id>@<version>`', writers: 'API (every app write)', readers: 'API (/v2/apps/{id}/versions, rollback)' },
  { kind: 'acl', key: 'strata/security/acls/<rid, encoded>', example: keys.acl('dcos:service:marathon:marathon:services:/dev'), id: 'resource id (`:` → `%3A`, `/` → `%2F`)', writers: 'IAM API (/acs/api/v1/acls)', readers: 'IAM API' },
  { kind: 'revokedToken', key: 'strata/security/revoked-tokens/<jti>', example: keys.revokedToken('6f0d2b7e-5c1a-4f3e-9d8b-1a2b3c4d5e6f'), id: 'auth token `jti`', writers: 'logout, sweeper (after `exp`)', readers: 'every master (watched; API auth)' },
  { kind: 'usedLoginToken', key: 'strata/security/used-login-tokens/<sha256>', example: keys.usedLoginToken('0'.repeat(64)), id: 'SHA-256 of a service login token', writers: 'service login (create-only), sweeper', readers: 'service login (replay check)' },
  { kind: 'certificateAuthority', key: 'strata/security/ca/<id>', example: keys.certificateAuthority('ca-1'), id: 'CA id', writers: 'bootstrap (first master)', readers: 'CA API (/ca/api/v2)' },
  { kind: 'secret', key: 'strata/security/secrets/<path, encoded>', example: keys.secret('mysql/password'), id: 'secret path in the `default` store (`/` → `%2F`)', writers: 'secrets API (/secrets/v1), KEK rotation (re-wrap)', readers: 'secrets API, agents\' task secrets (through the master)' },
  { kind: 'certificate', key: 'strata/security/certificates/<serial>', example: keys.certificate('0123456789abcdef0123456789abcdef'), id: 'serial (32 hex digits)', writers: 'CA API (issue, revoke), sweeper', readers: 'CA API (CRL)' },
  { kind: 'identityProvider', key: 'strata/security/identity-providers/<type>.<id>', example: keys.identityProvider('oidc', 'google'), id: '`ldap.default`, `oidc.<id>` or `saml.<id>`', writers: 'IAM API (/acs/api/v1/ldap/config, /auth/oidc/providers, /auth/saml/providers)', readers: 'logins (LDAP bind, OIDC and SAML callbacks)' },
  { kind: 'loginFlow', key: 'strata/security/login-flows/<id>', example: keys.loginFlow('0123456789abcdef0123456789abcdef'), id: 'OIDC state, SAML request id or CLI hand-off code (32 hex digits)', writers: 'OIDC/SAML login start, callbacks (hand-off), sweeper', readers: 'OIDC/SAML callbacks (deleted on use: single use)' },
];

/** The layout as a Markdown table. */
export function keyLayoutMarkdown(): string {
  const rows = KEY_LAYOUT.map((r) => `| ${r.kind} | \`${r.key}\` | \`${r.example}\` | ${r.id} | ${r.writers} | ${r.readers} |`);
  return ['| kind | key | example | id | written by | read by |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/** True if the key fits the store's limits (used by tests; keyOf's id limits guarantee it). */
export function fitsStore(key: string): boolean {
  return key.length > 0 && !key.startsWith('/') && Buffer.byteLength(key, 'utf8') <= KEY_MAX_BYTES;
}

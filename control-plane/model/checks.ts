/**
 * Rules that span fields, which JSON Schema cannot say (or cannot say with
 * errors a person can read): cmd xor args, Marathon's network-mode rules,
 * port references, constraint operators, CIDR arithmetic, JWK consistency.
 * Each check receives a record that already passed its schema and returns
 * every broken rule as an issue naming the field (JSON Pointer path).
 */
import { createPublicKey } from 'node:crypto';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import {
  CONSTRAINT_OPERATORS,
  HTTP_HEALTH_CHECK_PROTOCOLS,
  MARATHON_HEALTH_CHECK_PROTOCOLS,
  type Acl,
  type Agent,
  type App,
  type CertificateAuthority,
  type Deployment,
  type Framework,
  type Group,
  type IssuedCertificate,
  type Jwk,
  type LeaderInfo,
  type Network,
  type OverlayAddress,
  type OverlayClaim,
  type OverlayLease,
  type Permission,
  type Policy,
  type StoredSecret,
  type PolicyPeer,
  type Principal,
  type RecordKind,
  type RecordTypes,
  type RevokedToken,
  type Role,
  type SigningKey,
  type Task,
  type UsedLoginToken,
  type Vip,
} from './schemas.ts';
import { NAMED_VIP_PATTERN, isVipLabelKey, parseVipLabel } from './vip-label.ts';

/** One wrong field: `path` is a JSON Pointer into the record (`''` = the record itself). */
export interface Issue {
  readonly path: string;
  readonly message: string;
}

const ptr = (token: string): string => token.replaceAll('~', '~0').replaceAll('/', '~1');

// ---------------------------------------------------------------------------
// Addresses

export interface ParsedCidr {
  readonly family: 4 | 6;
  /** The network address as an integer. */
  readonly address: bigint;
  readonly length: number;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = `${text.slice(0, v4.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...fill, ...tailGroups].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** `undefined` unless `text` is `address/length` with a valid address, length in range, and no host bits set. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const lengthText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lengthText)) return undefined;
  const length = Number(lengthText);
  const family = isIP(ip);
  if (family !== 4 && family !== 6) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (length > bits) return undefined;
  const address = family === 4 ? ipv4ToBigInt(ip) : ipv6ToBigInt(ip);
  const hostMask = (1n << BigInt(bits - length)) - 1n;
  if ((address & hostMask) !== 0n) return undefined;
  return { family, address, length };
}

function checkCidr(issues: Issue[], path: string, text: string, family?: 4 | 6): ParsedCidr | undefined {
  const parsed = parseCidr(text);
  if (!parsed) {
    issues.push({ path, message: 'must be an address/length CIDR with no host bits set' });
    return undefined;
  }
  if (family !== undefined && parsed.family !== family) {
    issues.push({ path, message: `must be an IPv${family} CIDR` });
    return undefined;
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// App

function checkConstraint(issues: Issue[], path: string, constraint: readonly string[]): void {
  const [, operator, value] = constraint;
  if (!(CONSTRAINT_OPERATORS as readonly string[]).includes(operator!)) {
    issues.push({ path: `${path}/1`, message: `must be one of ${CONSTRAINT_OPERATORS.join(', ')}` });
    return;
  }
  const needsValue = (what: string): boolean => {
    if (value === undefined) issues.push({ path, message: `${operator} needs a value (${what})` });
    return value !== undefined;
  };
  switch (operator) {
    case 'UNIQUE':
      if (value !== undefined) issues.push({ path: `${path}/2`, message: 'UNIQUE takes no value' });
      break;
    case 'LIKE':
    case 'UNLIKE':
      if (needsValue('a regular expression')) {
        try {
          new RegExp(`^(?:${value})$`);
        } catch {
          issues.push({ path: `${path}/2`, message: 'must be a valid regular expression' });
        }
      }
      break;
    case 'MAX_PER':
      if (needsValue('a positive integer') && !/^[1-9][0-9]*$/.test(value!)) {
        issues.push({ path: `${path}/2`, message: 'must be a positive integer' });
      }
      break;
    case 'GROUP_BY':
      if (value !== undefined && !/^[1-9][0-9]*$/.test(value)) issues.push({ path: `${path}/2`, message: 'must be a positive integer' });
      break;
    case 'IS':
      if (needsValue('the value to equal') && !/^[a-zA-Z0-9_/.-]+$/.test(value!)) {
        issues.push({ path: `${path}/2`, message: 'may hold only letters, digits and _ / . -' });
      }
      break;
    default: // CLUSTER: the value is optional
      break;
  }
}

function checkPortLabels(issues: Issue[], path: string, labels: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(labels)) {
    if (isVipLabelKey(key) && !parseVipLabel(value)) {
      issues.push({ path: `${path}/labels/${ptr(key)}`, message: 'must be a VIP "/name:port" or "ip:port"' });
    }
  }
}

export function checkApp(app: App): Issue[] {
  const issues: Issue[] = [];
  if (app.cmd !== undefined && app.args !== undefined) issues.push({ path: '/args', message: 'must not be set together with cmd' });
  if (app.cmd === undefined && app.args === undefined && app.container?.docker === undefined) {
    issues.push({ path: '/cmd', message: 'is required (or args, or a container image)' });
  }
  if (app.container?.type === 'DOCKER' && app.container.docker === undefined) {
    issues.push({ path: '/container/docker', message: 'is required for a DOCKER container' });
  }

  // Networks: one host, or one bridge, or one or more container networks.
  const modes = new Set(app.networks.map((n) => n.mode));
  const mode = app.networks[0]!.mode;
  if (modes.size > 1) issues.push({ path: '/networks', message: 'cannot mix network modes' });
  else if (mode !== 'container' && app.networks.length > 1) issues.push({ path: '/networks', message: `allows only one ${mode} network` });
  const names = new Set<string>();
  app.networks.forEach((n, i) => {
    if (n.name !== undefined && n.mode !== 'container') issues.push({ path: `/networks/${i}/name`, message: 'is only allowed in container mode' });
    const name = n.name ?? '';
    if (n.mode === 'container') {
      if (names.has(name)) issues.push({ path: `/networks/${i}/name`, message: 'names a network the app already joins' });
      names.add(name);
    }
  });

  // Ports live in portDefinitions (host mode) or container.portMappings (the others).
  const host = mode === 'host';
  const mappings = app.container?.portMappings ?? [];
  if (host && mappings.length > 0) issues.push({ path: '/container/portMappings', message: 'is only allowed with container or bridge networks' });
  if (!host && app.portDefinitions.length > 0) issues.push({ path: '/portDefinitions', message: 'is only allowed with host networking' });
  const portNames = new Map<string, number>();
  const noteName = (path: string, name: string | undefined): void => {
    if (name === undefined) return;
    if (portNames.has(name)) issues.push({ path: `${path}/name`, message: `repeats the port name ${JSON.stringify(name)}` });
    portNames.set(name, portNames.size);
  };
  const uniquePort = (seen: Set<string>, path: string, port: number | undefined, protocol: string): void => {
    if (port === undefined || port === 0) return;
    const id = `${port}/${protocol}`;
    if (seen.has(id)) issues.push({ path, message: `repeats port ${port}` });
    seen.add(id);
  };
  const servicePorts = new Set<string>();
  const hostPorts = new Set<string>();
  app.portDefinitions.forEach((p, i) => {
    noteName(`/portDefinitions/${i}`, p.name);
    uniquePort(servicePorts, `/portDefinitions/${i}/port`, p.port, p.protocol);
    checkPortLabels(issues, `/portDefinitions/${i}`, p.labels);
  });
  mappings.forEach((p, i) => {
    noteName(`/container/portMappings/${i}`, p.name);
    uniquePort(servicePorts, `/container/portMappings/${i}/servicePort`, p.servicePort, p.protocol);
    uniquePort(hostPorts, `/container/portMappings/${i}/hostPort`, p.hostPort, p.protocol);
    checkPortLabels(issues, `/container/portMappings/${i}`, p.labels);
    for (const [j, name] of (p.networkNames ?? []).entries()) {
      if (!names.has(name)) issues.push({ path: `/container/portMappings/${i}/networkNames/${j}`, message: 'names a network the app does not join' });
    }
  });
  const portCount = host ? app.portDefinitions.length : mappings.length;

  // Health checks.
  const kinds = new Set(app.healthChecks.map((h) => MARATHON_HEALTH_CHECK_PROTOCOLS.includes(h.protocol)));
  if (kinds.size > 1) issues.push({ path: '/healthChecks', message: 'cannot mix Marathon-level (HTTP, HTTPS, TCP) and Mesos-level checks' });
  app.healthChecks.forEach((h, i) => {
    const at = `/healthChecks/${i}`;
    if (h.protocol === 'COMMAND') {
      if (h.command === undefined) issues.push({ path: `${at}/command`, message: 'is required for a COMMAND check' });
      for (const field of ['path', 'port', 'portIndex'] as const) {
        if (h[field] !== undefined) issues.push({ path: `${at}/${field}`, message: 'is not allowed for a COMMAND check' });
      }
      return;
    }
    if (h.command !== undefined) issues.push({ path: `${at}/command`, message: 'is only allowed for a COMMAND check' });
    if (h.path !== undefined && !HTTP_HEALTH_CHECK_PROTOCOLS.includes(h.protocol)) {
      issues.push({ path: `${at}/path`, message: `is not allowed for a ${h.protocol} check` });
    }
    if (h.path === undefined && HTTP_HEALTH_CHECK_PROTOCOLS.includes(h.protocol)) issues.push({ path: `${at}/path`, message: 'is required for an HTTP check' });
    if (h.port !== undefined && h.portIndex !== undefined) issues.push({ path: `${at}/port`, message: 'must not be set together with portIndex' });
    if (h.port === undefined && h.portIndex === undefined) issues.push({ path: `${at}/portIndex`, message: 'is required (or port)' });
    if (h.portIndex !== undefined && h.portIndex >= portCount) {
      issues.push({ path: `${at}/portIndex`, message: `refers to no port (the app has ${portCount})` });
    }
  });

  app.readinessChecks.forEach((r, i) => {
    if (r.timeoutSeconds >= r.intervalSeconds) {
      issues.push({ path: `/readinessChecks/${i}/timeoutSeconds`, message: 'must be less than intervalSeconds' });
    }
    if (!portNames.has(r.portName)) issues.push({ path: `/readinessChecks/${i}/portName`, message: 'names no port of the app' });
  });

  if (app.unreachableStrategy !== 'disabled' && app.unreachableStrategy.expungeAfterSeconds < app.unreachableStrategy.inactiveAfterSeconds) {
    issues.push({ path: '/unreachableStrategy/expungeAfterSeconds', message: 'must be >= inactiveAfterSeconds' });
  }
  for (const [name, value] of Object.entries(app.env)) {
    if (typeof value !== 'string' && !(value.secret in app.secrets)) {
      issues.push({ path: `/env/${ptr(name)}/secret`, message: 'names no entry of secrets' });
    }
  }
  app.container?.volumes?.forEach((v, i) => {
    if (!(v.secret in app.secrets)) issues.push({ path: `/container/volumes/${i}/secret`, message: 'names no entry of secrets' });
  });
  app.dependencies.forEach((d, i) => {
    if (d === app.id) issues.push({ path: `/dependencies/${i}`, message: 'an app cannot depend on itself' });
  });
  app.constraints.forEach((c, i) => checkConstraint(issues, `/constraints/${i}`, c));
  return issues;
}

// ---------------------------------------------------------------------------
// The other kinds

export function checkAgent(agent: Agent): Issue[] {
  const issues: Issue[] = [];
  const ranges = agent.resources.ports.map((r, i) => ({ ...r, i })).sort((a, b) => a.begin - b.begin);
  let lastEnd = 0;
  for (const r of ranges) {
    if (r.end < r.begin) issues.push({ path: `/resources/ports/${r.i}/end`, message: 'must be >= begin' });
    else if (r.begin <= lastEnd) issues.push({ path: `/resources/ports/${r.i}`, message: 'overlaps another range' });
    lastEnd = Math.max(lastEnd, r.end);
  }
  const roles = new Set<string>();
  const reserved = { cpus: 0, memMb: 0, diskMb: 0, gpus: 0 };
  agent.reservations.forEach((r, i) => {
    if (roles.has(r.role)) issues.push({ path: `/reservations/${i}/role`, message: 'repeats a role' });
    roles.add(r.role);
    for (const k of ['cpus', 'memMb', 'diskMb', 'gpus'] as const) reserved[k] += r[k];
  });
  for (const k of ['cpus', 'memMb', 'diskMb', 'gpus'] as const) {
    if (reserved[k] > agent.resources[k] + 1e-9) issues.push({ path: `/reservations`, message: `reserve more ${k} than the agent has` });
  }
  return issues;
}

export function checkTask(task: Task): Issue[] {
  const issues: Issue[] = [];
  task.ipAddresses.forEach((a, i) => {
    const ok = a.protocol === 'IPv4' ? isIPv4(a.ipAddress) : isIPv6(a.ipAddress);
    if (!ok) issues.push({ path: `/ipAddresses/${i}/ipAddress`, message: `must be an ${a.protocol} address` });
  });
  const seen = new Set<number>();
  task.ports.forEach((p, i) => {
    if (seen.has(p)) issues.push({ path: `/ports/${i}`, message: `repeats port ${p}` });
    seen.add(p);
  });
  return issues;
}

export function checkVip(vip: Vip): Issue[] {
  const issues: Issue[] = [];
  const family = isIP(vip.name);
  if (vip.kind === 'ip') {
    if (family === 0) issues.push({ path: '/name', message: 'must be an IP address for an ip VIP' });
    if (family === 4 && (vip.ipv6 !== undefined || (vip.ipv4 !== undefined && vip.ipv4 !== vip.name))) {
      issues.push({ path: '/ipv4', message: 'of an ip VIP must be absent or equal its name' });
    }
    if (family === 6 && (vip.ipv4 !== undefined || (vip.ipv6 !== undefined && vip.ipv6 !== vip.name))) {
      issues.push({ path: '/ipv6', message: 'of an ip VIP must be absent or equal its name' });
    }
  } else if (family !== 0 || !NAMED_VIP_PATTERN.test(vip.name)) {
    issues.push({ path: '/name', message: 'must be "/"-separated names (letters, digits, _ . -) for a named VIP' });
  }
  const seen = new Set<string>();
  vip.ports.forEach((p, i) => {
    const id = `${p.port}/${p.protocol}`;
    if (seen.has(id)) issues.push({ path: `/ports/${i}`, message: `repeats ${id}` });
    seen.add(id);
  });
  return issues;
}

export function checkNetwork(network: Network): Issue[] {
  const issues: Issue[] = [];
  if (network.subnet === undefined && network.subnet6 === undefined) issues.push({ path: '/subnet', message: 'is required (or subnet6)' });
  if (network.subnet !== undefined) {
    const c = checkCidr(issues, '/subnet', network.subnet, 4);
    if (c && network.prefix < c.length) issues.push({ path: '/prefix', message: `must be >= the subnet's length ${c.length}` });
  }
  if (network.subnet6 !== undefined) {
    const c = checkCidr(issues, '/subnet6', network.subnet6, 6);
    if (c && network.prefix6 < c.length) issues.push({ path: '/prefix6', message: `must be >= the subnet6's length ${c.length}` });
  }
  return issues;
}

/** DC/OS's VTEP MAC: the OUI 70:b3:d5 and the low 24 bits of the VTEP's IPv4 address. */
export function vtepMacOf(vtepIp: string): string {
  const [, b, c, d] = vtepIp.split('.').map(Number) as [number, number, number, number];
  return ['70', 'b3', 'd5', ...[b, c, d].map((n) => n.toString(16).padStart(2, '0'))].join(':');
}

function checkOverlayLease(lease: OverlayLease): Issue[] {
  const issues: Issue[] = [];
  if (isIPv4(lease.vtepIp) && lease.vtepMac !== vtepMacOf(lease.vtepIp)) issues.push({ path: '/vtepMac', message: `must be ${vtepMacOf(lease.vtepIp)} (OUI 70:b3:d5 and the VTEP address's low 24 bits)` });
  for (const [name, subnets] of Object.entries(lease.networks)) {
    if (subnets.subnet !== undefined) checkCidr(issues, `/networks/${name}/subnet`, subnets.subnet, 4);
    if (subnets.subnet6 !== undefined) checkCidr(issues, `/networks/${name}/subnet6`, subnets.subnet6, 6);
  }
  return issues;
}

function checkOverlayClaim(claim: OverlayClaim): Issue[] {
  const issues: Issue[] = [];
  const c = checkCidr(issues, '/cidr', claim.cidr);
  if (c && claim.pool === '_vtep' && c.length !== (c.family === 4 ? 32 : 128)) issues.push({ path: '/cidr', message: 'a VTEP claim is one address (/32 or /128)' });
  return issues;
}

function checkOverlayAddress(address: OverlayAddress): Issue[] {
  const issues: Issue[] = [];
  if (!isIP(address.ip)) issues.push({ path: '/ip', message: 'must be an IP address' });
  if (address.state === 'released' && address.releasedAt === undefined) issues.push({ path: '/releasedAt', message: 'is required once released' });
  if (address.state === 'assigned' && address.releasedAt !== undefined) issues.push({ path: '/releasedAt', message: 'must be absent while assigned' });
  return issues;
}

function checkPeer(issues: Issue[], path: string, peer: PolicyPeer): void {
  const set = (['network', 'cidr', 'appId', 'appLabels'] as const).filter((k) => peer[k] !== undefined);
  if (set.length !== 1) issues.push({ path, message: 'must set exactly one of network, cidr, appId, appLabels' });
  if (peer.cidr !== undefined) checkCidr(issues, `${path}/cidr`, peer.cidr);
}

export function checkPolicy(policy: Policy): Issue[] {
  const issues: Issue[] = [];
  policy.to.forEach((p, i) => checkPeer(issues, `/to/${i}`, p));
  policy.rules.forEach((rule, r) => {
    rule.from.forEach((p, i) => checkPeer(issues, `/rules/${r}/from/${i}`, p));
    rule.ports.forEach((p, i) => {
      const at = `/rules/${r}/ports/${i}`;
      if ((p.protocol === 'icmp' || p.protocol === 'any') && p.port !== undefined) issues.push({ path: `${at}/port`, message: `is not allowed for ${p.protocol}` });
      if (p.endPort !== undefined && p.port === undefined) issues.push({ path: `${at}/endPort`, message: 'needs port' });
      if (p.endPort !== undefined && p.port !== undefined && p.endPort < p.port) issues.push({ path: `${at}/endPort`, message: 'must be >= port' });
    });
  });
  return issues;
}

function checkPermissions(issues: Issue[], permissions: readonly Permission[]): void {
  const rids = new Set<string>();
  permissions.forEach((p, i) => {
    if (rids.has(p.rid)) issues.push({ path: `/permissions/${i}/rid`, message: 'repeats a resource id (merge the actions)' });
    rids.add(p.rid);
  });
}

export function checkPrincipal(principal: Principal): Issue[] {
  const issues: Issue[] = [];
  checkPermissions(issues, principal.permissions);
  if (principal.kind === 'service') {
    try {
      createPublicKey(principal.publicKey);
    } catch {
      issues.push({ path: '/publicKey', message: 'is not a readable PEM public key' });
    }
  }
  return issues;
}

export function checkGroup(group: Group): Issue[] {
  const issues: Issue[] = [];
  checkPermissions(issues, group.permissions);
  return issues;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const PUBLIC_MEMBERS = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] } as const;

export function checkSigningKey(key: SigningKey): Issue[] {
  const issues: Issue[] = [];
  const expected = key.alg === 'RS256' ? { kty: 'RSA' } : { kty: 'EC', crv: 'P-256' };
  for (const [field, jwk] of [['privateJwk', key.privateJwk], ['publicJwk', key.publicJwk]] as const) {
    if (jwk.kty !== expected.kty) issues.push({ path: `/${field}/kty`, message: `must be ${expected.kty} for ${key.alg}` });
    if (expected.crv !== undefined && jwk.crv !== expected.crv) issues.push({ path: `/${field}/crv`, message: `must be ${expected.crv} for ${key.alg}` });
    for (const m of PUBLIC_MEMBERS[jwk.kty]) {
      if (jwk[m] === undefined) issues.push({ path: `/${field}/${m}`, message: `is required for a ${jwk.kty} key` });
    }
    if (jwk.kid !== undefined && jwk.kid !== key.kid) issues.push({ path: `/${field}/kid`, message: 'must equal kid' });
    if (jwk.alg !== undefined && jwk.alg !== key.alg) issues.push({ path: `/${field}/alg`, message: 'must equal alg' });
  }
  for (const m of PRIVATE_MEMBERS) {
    if (key.publicJwk[m] !== undefined) issues.push({ path: `/publicJwk/${m}`, message: 'is a private member; a public key must not hold it' });
  }
  if (key.privateJwk.d === undefined) issues.push({ path: '/privateJwk/d', message: 'is required for a private key' });
  for (const m of PUBLIC_MEMBERS[key.publicJwk.kty]) {
    const a: Jwk[typeof m] = key.privateJwk[m];
    if (a !== undefined && key.publicJwk[m] !== undefined && a !== key.publicJwk[m]) {
      issues.push({ path: `/publicJwk/${m}`, message: 'does not match the private key' });
    }
  }
  if (Date.parse(key.notAfter) <= Date.parse(key.createdAt)) issues.push({ path: '/notAfter', message: 'must be after createdAt' });
  return issues;
}

/**
 * A deployment's counts agree with its steps, every app in a step is an
 * affected app (and every affected app is acted on), an app appears at most
 * once per step, and each affected app has at most one `previous` entry.
 */
export function checkDeployment(d: Deployment): Issue[] {
  const issues: Issue[] = [];
  if (d.totalSteps !== d.steps.length) issues.push({ path: '/totalSteps', message: `must equal the number of steps (${d.steps.length})` });
  if (d.currentStep > d.totalSteps) issues.push({ path: '/currentStep', message: 'must be <= totalSteps' });
  const affected = new Set(d.affectedApps);
  const acted = new Set<string>();
  d.steps.forEach((step, s) => {
    const inStep = new Set<string>();
    step.actions.forEach((a, i) => {
      if (!affected.has(a.app)) issues.push({ path: `/steps/${s}/actions/${i}/app`, message: 'is not in affectedApps' });
      if (inStep.has(a.app)) issues.push({ path: `/steps/${s}/actions/${i}/app`, message: 'appears twice in one step' });
      inStep.add(a.app);
      acted.add(a.app);
    });
  });
  d.affectedApps.forEach((app, i) => {
    if (!acted.has(app)) issues.push({ path: `/affectedApps/${i}`, message: 'has no action in any step' });
  });
  const origins = new Set<string>();
  d.previous.forEach((p, i) => {
    if (origins.has(p.app)) issues.push({ path: `/previous/${i}/app`, message: 'repeats an app' });
    origins.add(p.app);
  });
  return issues;
}

const none = (): Issue[] => [];

/** LDAP: a direct-bind template or a search bind (with its lookup account), and a lookup password only beside a lookup DN. */
function checkIdentityProvider(p: RecordTypes['identityProvider']): Issue[] {
  if (p.type !== 'ldap') return [];
  const issues: Issue[] = [];
  const c = p.config;
  if (c.dntemplate === undefined && c['user-search'] === undefined) issues.push({ path: '/config/dntemplate', message: 'give a dntemplate (direct bind) or a user-search (search bind)' });
  if ((c['lookup-dn'] === undefined) !== (c['lookup-password'] === undefined)) issues.push({ path: '/config/lookup-password', message: 'lookup-dn and lookup-password go together' });
  if (c['enforce-starttls'] && c['use-ldaps']) issues.push({ path: '/config/enforce-starttls', message: 'StartTLS upgrades a plain connection; with use-ldaps the connection is TLS already (set one)' });
  if (c['user-search'] && !c['user-search']['search-filter-template'].includes('%(username)s')) issues.push({ path: '/config/user-search/search-filter-template', message: 'must contain %(username)s' });
  if (c['group-search'] && !c['group-search']['search-filter-template'].includes('%(groupname)s')) issues.push({ path: '/config/group-search/search-filter-template', message: 'must contain %(groupname)s' });
  return issues;
}

/** The cross-field rules of each kind (none for kinds whose schema says everything). */
export const RECORD_CHECKS: { readonly [K in RecordKind]: (record: RecordTypes[K]) => Issue[] } = {
  agent: checkAgent,
  framework: none as (record: Framework) => Issue[],
  role: none as (record: Role) => Issue[],
  app: checkApp,
  task: checkTask,
  vip: checkVip,
  network: checkNetwork,
  policy: checkPolicy,
  principal: checkPrincipal,
  group: checkGroup,
  leader: none as (record: LeaderInfo) => Issue[],
  signingKey: checkSigningKey,
  deployment: checkDeployment,
  appVersion: checkApp,
  acl: none as (record: Acl) => Issue[],
  revokedToken: none as (record: RevokedToken) => Issue[],
  usedLoginToken: none as (record: UsedLoginToken) => Issue[],
  certificateAuthority: none as (record: CertificateAuthority) => Issue[],
  certificate: none as (record: IssuedCertificate) => Issue[],
  secret: none as (record: StoredSecret) => Issue[],
  identityProvider: checkIdentityProvider,
  loginFlow: none as (record: RecordTypes['loginFlow']) => Issue[],
  servicePort: none as (record: RecordTypes['servicePort']) => Issue[],
  launchDelay: none as (record: RecordTypes['launchDelay']) => Issue[],
  overlayLease: checkOverlayLease,
  overlayClaim: checkOverlayClaim,
  overlayAddress: checkOverlayAddress,
};

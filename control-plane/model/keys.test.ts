import { readFileSync } from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { isStrataError } from '../../common/errors.ts';
import { checkKey } from '../store/limits.ts';
import {
  KEY_LAYOUT,
  LEADER_ID,
  appGroupPrefix,
  appVersionId,
  appVersionPrefix,
  decodeSegment,
  encodeSegment,
  fitsStore,
  idFromKey,
  keyLayoutMarkdown,
  keyOf,
  keys,
  overlayAddressId,
  overlayClaimId,
  parseAppVersionId,
  parseOverlayAddressId,
  parseOverlayClaimId,
  parseKey,
  parseVipId,
  prefix,
  vipId,
} from './keys.ts';
import { canonicalIp } from '../../common/ip.ts';
import { RECORD_KINDS, type RecordKind } from './schemas.ts';

// ---------------------------------------------------------------------------
// Generators of valid ids, per kind

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const pathElement = fc.array(label, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));
const appId = fc
  .array(pathElement, { minLength: 1, maxLength: 8 })
  .map((elements) => `/${elements.join('/')}`)
  .filter((id) => id.length <= 255);
const nodeId = (max: number) => fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]*$/).filter((s) => s.length <= max);
const roleElement = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}$/);
const role = fc.oneof(fc.constant('*'), fc.array(roleElement, { minLength: 1, maxLength: 4 }).map((e) => e.join('/'))).filter((r) => r.length <= 128);
const frameworkName = fc.stringMatching(/^[a-z0-9](?:[a-z0-9.-]{0,20}[a-z0-9])?$/);
const vipName = fc.oneof(fc.stringMatching(/^\/?[A-Za-z0-9_][A-Za-z0-9_./:-]{0,60}$/), fc.ipV4(), fc.ipV6()).filter((n) => n.length <= 128);
const version = fc
  .date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .chain((d) => fc.constantFrom(d.toISOString(), d.toISOString().replace(/\.\d+Z$/, 'Z'), d.toISOString().replace('Z', '123456Z')));
const networkName = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,11}[a-z0-9])?$/);
const principalId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9@._-]{0,40}$/);

const ids: { [K in RecordKind]: fc.Arbitrary<string> } = {
  agent: nodeId(128),
  framework: nodeId(128),
  task: nodeId(400),
  role,
  app: appId,
  network: networkName,
  policy: label,
  principal: principalId,
  group: principalId,
  vip: fc.tuple(frameworkName, vipName).map(([fw, name]) => vipId(fw, name)),
  leader: fc.constant(LEADER_ID),
  signingKey: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  deployment: nodeId(128),
  appVersion: fc.tuple(appId, version).map(([app, v]) => appVersionId(app, v)),
  acl: fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,10}$/), fc.array(fc.stringMatching(/^[^\s:]{1,12}$/), { minLength: 1, maxLength: 5 })).map(([head, rest]) => [head, ...rest].join(':')),
  revokedToken: fc.uuid(),
  usedLoginToken: fc.stringMatching(/^[0-9a-f]{64}$/),
  certificateAuthority: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
  certificate: fc.stringMatching(/^[0-9a-f]{32}$/),
  secret: fc.array(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
  identityProvider: fc.tuple(fc.constantFrom('ldap', 'oidc', 'saml'), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/)).map(([type, id]) => `${type}.${id}`),
  loginFlow: fc.stringMatching(/^[0-9a-f]{32}$/),
  servicePort: fc.integer({ min: 1, max: 65535 }).map(String),
  launchDelay: appId,
  overlayLease: nodeId(128),
  overlayClaim: fc.tuple(
    fc.oneof(fc.constant('_vtep'), networkName),
    fc.oneof(fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })), fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }))),
  ).map(([pool, [ip, length]]) => overlayClaimId(pool, `${canonicalIp(ip)}/${length}`)),
  overlayAddress: fc.tuple(networkName, fc.oneof(fc.ipV4(), fc.ipV6())).map(([network, ip]) => overlayAddressId(network, canonicalIp(ip))),
};

const kindAndId = fc.constantFrom(...RECORD_KINDS).chain((kind) => ids[kind].map((id) => ({ kind, id })));

// ---------------------------------------------------------------------------
// Properties

test('property: every valid id maps to a store-valid key and back to itself', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(kindAndId, ({ kind, id }) => {
      const key = keyOf(kind, id);
      checkKey(key); // the store's own rules
      return fitsStore(key) && key.startsWith('strata/') && idFromKey(kind, key) === id && parseKey(key)?.kind === kind && parseKey(key)?.id === id;
    }),
    { numRuns: 2000 },
  ));
});

test('property: distinct ids (of any kinds) never share a key', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(kindAndId, kindAndId, (a, b) => {
      fc.pre(a.kind !== b.kind || a.id !== b.id);
      return keyOf(a.kind, a.id) !== keyOf(b.kind, b.id);
    }),
    { numRuns: 2000 },
  ));
});

test('property: app ids keep their path shape, so a group prefix holds exactly its subtree', (t) => {
  fc.assert(
    fc.property(appId, appId, (group, id) => {
      const inGroup = id.startsWith(`${group}/`);
      return keys.app(id) === `strata/apps${id}` && keys.app(id).startsWith(appGroupPrefix(group)) === inGroup;
    }),
    { numRuns: 2000 },
  );
  t.is(appGroupPrefix('/'), 'strata/apps/');
  t.is(appGroupPrefix('/dev'), 'strata/apps/dev/');
  t.false(keys.app('/dev2/web').startsWith(appGroupPrefix('/dev')));
});

test('property: segment encoding is reversible for any well-formed text, and canonical', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
      fc.pre(text.isWellFormed());
      const segment = encodeSegment(text);
      return /^(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*$/.test(segment) && !segment.startsWith('.') && decodeSegment(segment) === text;
    }),
    { numRuns: 2000 },
  );
  // Only the canonical spelling decodes: one id, one key.
  for (const other of ['%41', '%2f', 'a%2', '%', '.x', 'a/b', '%FF']) t.is(decodeSegment(other), undefined, other);
  t.is(encodeSegment('*'), '%2A');
  t.is(encodeSegment('eng/web'), 'eng%2Fweb');
  t.is(encodeSegment('..'), '%2E.');
});

test('property: vip ids split back into framework and name', (t) => {
  fc.assert(
    fc.property(frameworkName, vipName, (fw, name) => {
      const parsed = parseVipId(vipId(fw, name));
      return parsed?.framework === fw && parsed.name === name;
    }),
  );
  t.is(keys.vip('marathon', '/mygroup/myapp'), 'strata/vips/marathon/%2Fmygroup%2Fmyapp');
});

test('property: app version ids split back, and an app\'s version prefix holds its versions and those of apps below it only', (t) => {
  fc.assert(
    fc.property(appId, version, appId, (app, v, other) => {
      const parsed = parseAppVersionId(appVersionId(app, v));
      const key = keys.appVersion(other, v);
      const below = other === app || other.startsWith(`${app}/`);
      return parsed?.appId === app && parsed.version === v && key.startsWith(appVersionPrefix(app)) === below;
    }),
    { numRuns: 1000 },
  );
  t.is(keys.appVersion('/group/web', '2015-09-25T15:13:48.343Z'), 'strata/app-versions/group/web/2015-09-25T15%3A13%3A48.343Z');
  t.is(appVersionPrefix('/group/web'), 'strata/app-versions/group/web/');
  t.is(keys.deployment('5d2c7a1e-0b3f'), 'strata/deployments/5d2c7a1e-0b3f');
  for (const bad of ['/web', '/web@', 'web@2015-09-25T15:13:48.343Z', '/web@2015-09-25T17:13:48+02:00', '/web@2015-09-25']) {
    t.true(isStrataError(t.throws(() => keyOf('appVersion', bad)), 'RECORD_ID_INVALID'), bad);
  }
  t.is(idFromKey('appVersion', 'strata/app-versions/web/child'), undefined, 'a last segment that is no version');
  t.is(idFromKey('appVersion', 'strata/app-versions/2015-09-25T15%3A13%3A48.343Z'), undefined, 'no app id');
});

test('overlay claim and address ids: canonical addresses only, keys one segment each', (t) => {
  t.is(keys.overlayClaim('dcos', '9.0.3.0/24'), 'strata/overlay/claims/dcos/9.0.3.0%2F24');
  t.is(keys.overlayClaim('_vtep', '44.128.0.1/32'), 'strata/overlay/claims/_vtep/44.128.0.1%2F32');
  t.is(keys.overlayAddress('dcos', '9.0.3.2'), 'strata/overlay/addresses/dcos/9.0.3.2');
  t.is(keys.overlayAddressPrefix('dcos'), 'strata/overlay/addresses/dcos/');
  t.deepEqual(parseOverlayClaimId('dcos6/fd01:b::/80'), { pool: 'dcos6', cidr: 'fd01:b::/80' });
  t.deepEqual(parseOverlayAddressId('dcos/9.0.3.2'), { network: 'dcos', ip: '9.0.3.2' });
  for (const bad of ['dcos/9.0.3.0', 'dcos/9.0.3.0/33', 'dcos/FD01::/64', 'dcos/9.0.3.0/024', 'Bad/9.0.3.0/24', 'vtep_/1.2.3.4/32']) t.is(parseOverlayClaimId(bad), undefined, bad);
  for (const bad of ['dcos/9.0.3.0/24', 'dcos/FD01::1', 'dcos/fd01:0::1', 'x/09.0.0.1']) t.is(parseOverlayAddressId(bad), undefined, bad);
});

test('kind prefixes are prefix-free', (t) => {
  for (const a of RECORD_KINDS) {
    for (const b of RECORD_KINDS) {
      if (a !== b) t.false(prefix(a).startsWith(prefix(b)), `${a} inside ${b}`);
    }
    t.true(prefix(a).startsWith('strata/'));
  }
});

test('keys that name no valid id decode to nothing', (t) => {
  for (const [kind, key] of [
    ['app', 'strata/apps/Web'],
    ['app', 'strata/apps/a//b'],
    ['app', 'strata/apps/a/'],
    ['app', 'strata/apps/'],
    ['role', 'strata/roles/*'],
    ['role', 'strata/roles/%2a'],
    ['agent', 'strata/agents/a%2Fb'],
    ['vip', 'strata/vips/marathon'],
    ['vip', 'strata/vips/marathon/a/b'],
    ['leader', 'strata/leader/master/x'],
    ['task', 'strata/apps/web'],
  ] as const) {
    t.is(idFromKey(kind, key), undefined, `${kind} ${key}`);
  }
  t.is(parseKey('strata/unknown/x'), undefined);
  t.is(parseKey('other/apps/web'), undefined);
});

test('malformed ids are refused with RECORD_ID_INVALID', (t) => {
  for (const [kind, id] of [
    ['app', 'web'],
    ['app', '/web/'],
    ['app', '/a/../b'],
    ['app', '/WEB'],
    ['agent', ''],
    ['agent', '-x'],
    ['role', 'a//b'],
    ['network', 'much-too-long-name'],
    ['vip', 'no-slash'],
    ['leader', 'other'],
    ['signingKey', '../../dev/null'],
    ['task', 'x'.repeat(401)],
  ] as const) {
    const err = t.throws(() => keyOf(kind, id), undefined, `${kind} ${id}`);
    t.true(isStrataError(err, 'RECORD_ID_INVALID'), `${kind} ${id}`);
  }
});

test('the per-kind key functions', (t) => {
  t.is(keys.app('/group/web'), 'strata/apps/group/web');
  t.is(keys.agent('8b23-S0'), 'strata/agents/8b23-S0');
  t.is(keys.role('*'), 'strata/roles/%2A');
  t.is(keys.task('a.instance-1._app.1'), 'strata/tasks/a.instance-1._app.1');
  t.is(keys.principal('alice@example.com'), 'strata/principals/alice%40example.com');
  t.is(keys.group('ops'), 'strata/groups/ops');
  t.is(keys.leader(), 'strata/leader/master');
  t.is(keys.signingKey('k1'), 'strata/security/signing-keys/k1');
  t.is(keys.network('dcos'), 'strata/networks/dcos');
  t.is(keys.policy('p'), 'strata/policies/p');
  t.is(keys.framework('f-1'), 'strata/frameworks/f-1');
  t.is(keys.acl('dcos:service:marathon:marathon:services:/dev'), 'strata/security/acls/dcos%3Aservice%3Amarathon%3Amarathon%3Aservices%3A%2Fdev');
  t.is(keys.revokedToken('6f0d2b7e'), 'strata/security/revoked-tokens/6f0d2b7e');
  t.is(keys.certificate('0123456789abcdef0123456789abcdef'), 'strata/security/certificates/0123456789abcdef0123456789abcdef');
});

test('an ACL rid too long to fit a key once encoded is refused with a clear reason', (t) => {
  const rid = `dcos:service:marathon:marathon:services:${'/a'.repeat(120)}`;
  const err = t.throws(() => keyOf('acl', rid));
  t.regex(err.message, /too long: encoded/);
});

test('the keys the master already uses are the model\'s', (t) => {
  // control-plane/master.ts MASTER_KEYS and docs/architecture.md spell these.
  t.is(keys.leader(), 'strata/leader/master');
  t.is(prefix('signingKey'), 'strata/security/signing-keys/');
  t.is(prefix('principal'), 'strata/principals/');
  t.is(prefix('agent'), 'strata/agents/');
});

test('the layout table covers every kind, its examples parse, and README.md shows it', (t) => {
  t.deepEqual(KEY_LAYOUT.map((r) => r.kind).sort(), [...RECORD_KINDS].sort());
  for (const row of KEY_LAYOUT) t.is(parseKey(row.example)?.kind, row.kind, row.example);
  const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
  t.true(readme.includes(keyLayoutMarkdown()), 'README.md holds keyLayoutMarkdown() verbatim');
});

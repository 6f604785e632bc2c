import test from 'ava';
import fc from 'fast-check';
import type { Group, Permission, Principal } from '../control-plane/model/schemas.ts';
import { LoginLimiter, allows, countSuperusers, resolvePrincipal, ridCovers, tokenRejection, withGrant, withoutGrant } from './iam.ts';

test('allows: exact rid and action, full covers every action, superuser covers everything, disabled gets nothing', (t) => {
  const p = { uid: 'u', kind: 'user' as const, permissions: [{ rid: 'dcos:service:marathon:marathon:services:/dev', actions: ['read' as const] }, { rid: 'dcos:adminrouter:ops:mesos', actions: ['full' as const] }] };
  t.true(allows(p, 'dcos:service:marathon:marathon:services:/dev', 'read'));
  t.false(allows(p, 'dcos:service:marathon:marathon:services:/dev', 'update'));
  t.false(allows(p, 'dcos:service:marathon:marathon:services:/prod', 'read'));
  t.true(allows(p, 'dcos:adminrouter:ops:mesos', 'delete'));
  const su = { uid: 's', kind: 'user' as const, permissions: [{ rid: 'dcos:superuser', actions: ['full' as const] }] };
  t.true(allows(su, 'anything:at:all', 'create'));
  t.false(allows({ ...su, disabled: true }, 'anything:at:all', 'read'));
});

test('a permission on a group path covers the apps and groups nested under it, and nothing beside it', (t) => {
  const S = 'dcos:service:marathon:marathon:services:';
  const p = { uid: 'u', kind: 'user' as const, permissions: [{ rid: `${S}/prod`, actions: ['update' as const] }] };
  t.true(allows(p, `${S}/prod/web`, 'update'));
  t.true(allows(p, `${S}/prod/db/primary`, 'update'));
  t.false(allows(p, `${S}/production`, 'update'), 'a path boundary, not a string prefix');
  t.false(allows(p, `${S}/prod/web`, 'delete'));
  t.false(allows(p, `${S}/`, 'update'), 'not upwards');
  t.true(ridCovers(`${S}/`, `${S}/anything/below`), 'the root group covers every app');
  t.false(ridCovers('dcos:adminrouter:ops:mesos', 'dcos:adminrouter:ops:mesos:x'), 'only path segments nest');
  t.false(ridCovers('dcos:adminrouter:ops', 'dcos:adminrouter:ops:mesos'));
});

test('LoginLimiter: at most N run at once, a bounded queue waits, the rest are refused with API_TOO_MANY_REQUESTS', async (t) => {
  const limiter = new LoginLimiter({ concurrent: 2, queued: 1 });
  let running = 0;
  let peak = 0;
  const release: (() => void)[] = [];
  const job = (): Promise<void> =>
    limiter.run(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => release.push(r));
      running--;
    });
  const jobs = [job(), job(), job()];
  const refused = await limiter.run(async () => 'x').catch((err: { code?: string }) => err.code);
  t.is(refused, 'API_TOO_MANY_REQUESTS');
  while (release.length < 2) await new Promise((r) => setTimeout(r, 5));
  release.shift()!();
  while (release.length < 2) await new Promise((r) => setTimeout(r, 5));
  release.splice(0).forEach((r) => r());
  await Promise.all(jobs);
  t.is(peak, 2);
  t.is(await limiter.run(async () => 'again'), 'again', 'capacity comes back');
});

// ---------------------------------------------------------------------------
// Groups, grants and token revocation (pure)

const ACTION_LIST = ['create', 'read', 'update', 'delete', 'full'] as const;
const ridArb = fc.constantFrom(
  'dcos:superuser',
  'dcos:adminrouter:acs',
  'dcos:adminrouter:ops:mesos',
  'dcos:service:marathon:marathon:services:/',
  'dcos:service:marathon:marathon:services:/prod',
  'dcos:service:marathon:marathon:services:/prod/web',
  'dcos:service:marathon:marathon:services:/production',
  'dcos:service:marathon:marathon:services:/dev/db',
);
const permsArb = fc.uniqueArray(fc.record({ rid: ridArb, actions: fc.uniqueArray(fc.constantFrom(...ACTION_LIST), { minLength: 1 }) }), { selector: (p) => p.rid, maxLength: 4 });
const user = (permissions: Permission[], groups?: string[], disabled?: boolean): Principal => ({
  uid: 'u', kind: 'user', permissions, ...(groups ? { groups } : {}), ...(disabled ? { disabled } : {}),
});

test('property: with groups, allows() grants exactly what the user or one of its groups holds, never more', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(permsArb, fc.array(permsArb, { maxLength: 3 }), fc.boolean(), ridArb, fc.constantFrom(...ACTION_LIST), (own, groupPerms, disabled, rid, action) => {
      const groups = new Map<string, Group>(groupPerms.map((permissions, i) => [`g${i}`, { gid: `g${i}`, permissions }]));
      const p = user(own, [...groups.keys(), 'missing-group'], disabled);
      const resolved = resolvePrincipal(p, (gid) => groups.get(gid));
      const viaSomeone = allows(user(own), rid, action) || groupPerms.some((g) => allows(user(g), rid, action));
      return allows(resolved, rid, action) === (!disabled && viaSomeone);
    }),
    { numRuns: 2000 },
  ));
});

test('resolvePrincipal: a member holds its group\'s permissions, a non-member does not, and the stored principal is unchanged', (t) => {
  const ops: Group = { gid: 'ops', permissions: [{ rid: 'dcos:service:marathon:marathon:services:/prod', actions: ['update'] }] };
  const member = user([], ['ops']);
  const resolved = resolvePrincipal(member, (gid) => (gid === 'ops' ? ops : undefined));
  t.true(allows(resolved, 'dcos:service:marathon:marathon:services:/prod/web', 'update'), 'group permission with group-path inheritance');
  t.false(allows(member, 'dcos:service:marathon:marathon:services:/prod/web', 'update'));
  t.false(allows(resolvePrincipal(user([]), () => ops), 'dcos:service:marathon:marathon:services:/prod', 'update'));
  t.deepEqual(member.permissions, []);
});

test('withGrant/withoutGrant keep one entry per rid, add and remove single actions, and remove an emptied entry', (t) => {
  let perms = withGrant([], 'dcos:adminrouter:acs', 'read');
  perms = withGrant(perms, 'dcos:adminrouter:acs', 'read');
  perms = withGrant(perms, 'dcos:adminrouter:acs', 'update');
  perms = withGrant(perms, 'dcos:superuser', 'full');
  t.deepEqual(perms, [{ rid: 'dcos:adminrouter:acs', actions: ['read', 'update'] }, { rid: 'dcos:superuser', actions: ['full'] }]);
  perms = withoutGrant(perms, 'dcos:adminrouter:acs', 'read');
  t.deepEqual(perms[0], { rid: 'dcos:adminrouter:acs', actions: ['update'] });
  perms = withoutGrant(perms, 'dcos:adminrouter:acs', 'update');
  t.deepEqual(perms, [{ rid: 'dcos:superuser', actions: ['full'] }]);
  t.deepEqual(withoutGrant(perms, 'dcos:superuser', undefined), []);
  t.deepEqual(withoutGrant(perms, 'dcos:nothing:here', 'read'), perms, 'taking back what was never granted changes nothing');
});

test('tokenRejection: deleted, disabled, issued before tokensValidFromSeconds, or revoked jti', (t) => {
  const token = { uid: 'u', expiresAtSeconds: 2000, issuedAtSeconds: 1000, tokenId: 'j1', principalIndex: undefined };
  t.is(tokenRejection(user([]), token, false), undefined);
  t.regex(tokenRejection(undefined, token, false)!, /does not exist/);
  t.regex(tokenRejection(user([], undefined, true), token, false)!, /disabled/);
  t.regex(tokenRejection({ ...user([]), tokensValidFromSeconds: 1001 }, token, false)!, /issued before/);
  t.is(tokenRejection({ ...user([]), tokensValidFromSeconds: 1000 }, token, false), undefined, 'a token of the same second as the (re)creation is good');
  t.regex(tokenRejection({ ...user([]), tokensValidFromSeconds: 1 }, { ...token, issuedAtSeconds: undefined }, false)!, /issued before/, 'no iat: cannot prove it is newer');
  t.regex(tokenRejection(user([]), token, true)!, /revoked/);
  t.regex(tokenRejection(user([]), { ...token, principalIndex: 5 }, false, 9)!, /issued to an earlier "u", deleted since/);
  t.is(tokenRejection(user([]), { ...token, principalIndex: 9 }, false, 9), undefined);
});

test('countSuperusers: direct or through a group, enabled only', (t) => {
  const su: Permission = { rid: 'dcos:superuser', actions: ['full'] };
  const groups = new Map<string, Group>([['admins', { gid: 'admins', permissions: [su] }]]);
  const count = (ps: Principal[]): number => countSuperusers(ps, (gid) => groups.get(gid));
  t.is(count([user([su]), user([], ['admins']), user([])]), 2);
  t.is(count([user([su], undefined, true), user([], ['admins'], true)]), 0, 'disabled ones do not count');
  t.is(count([user([], ['missing'])]), 0);
});

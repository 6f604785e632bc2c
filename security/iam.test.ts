import test from 'ava';
import { LoginLimiter, allows, ridCovers } from './iam.ts';

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

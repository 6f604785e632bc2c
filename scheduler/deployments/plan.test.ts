import test from 'ava';
import fc from 'fast-check';
import { isStrataError, type StrataError } from '../../common/errors.ts';
import { withAppDefaults } from '../../control-plane/model/app-defaults.ts';
import type { App } from '../../control-plane/model/schemas.ts';
import { dependencyDepths, isConfigChange, planDeployment } from './plan.ts';

const V0 = '2026-01-01T00:00:00.000Z';
const V1 = '2026-01-02T00:00:00.000Z';
const app = (id: string, extra: Partial<App> = {}, version = V0): App => ({ ...withAppDefaults({ id, cmd: 'sleep 100' }, { version }), ...extra });
const names = (plan: ReturnType<typeof planDeployment>): string[][] => plan.steps.map((s) => s.actions.map((a) => `${a.action} ${a.app}`));

test('a new app is started at 0 then scaled; nothing else is touched', (t) => {
  const plan = planDeployment([app('/a')], [app('/a'), app('/b', {}, V1)], { version: V1 });
  t.deepEqual(names(plan), [['StartApplication /b'], ['ScaleApplication /b']]);
  t.deepEqual(plan.affectedApps, ['/b']);
  t.is(plan.version, V1);
});

test('removed apps stop first; a config change restarts; a scale-only change scales; a new version alone is no change', (t) => {
  const current = [app('/gone'), app('/cfg'), app('/scale'), app('/same')];
  const target = [app('/cfg', { cmd: 'sleep 200' }, V1), app('/scale', { instances: 3 }, V1), app('/same', {}, V1)];
  t.deepEqual(names(planDeployment(current, target, { version: V1 })), [
    ['StopApplication /gone'],
    ['RestartApplication /cfg', 'ScaleApplication /scale'],
  ]);
  t.deepEqual(planDeployment(current, current, { version: V1 }).steps, [], 'no change, no steps');
});

test('a change of config and instances together is one restart', (t) => {
  const plan = planDeployment([app('/a')], [app('/a', { instances: 5, mem: 256 }, V1)], { version: V1 });
  t.deepEqual(names(plan), [['RestartApplication /a']]);
});

test('steps follow the dependencies: the longest path below an app decides its layer', (t) => {
  // /web -> /api -> /db, /web -> /db, /cache alone
  const target = [
    app('/db'),
    app('/api', { dependencies: ['/db'] }),
    app('/web', { dependencies: ['/api', '/db'] }),
    app('/cache'),
  ];
  t.deepEqual(names(planDeployment([], target, { version: V1 })), [
    ['StartApplication /api', 'StartApplication /cache', 'StartApplication /db', 'StartApplication /web'],
    ['ScaleApplication /cache', 'ScaleApplication /db'],
    ['ScaleApplication /api'],
    ['ScaleApplication /web'],
  ]);
  // Only /web and /db change: still db (layer 0) before web (layer 2), with no empty step between.
  const changed = target.map((a) => (a.id === '/web' || a.id === '/db' ? { ...a, cmd: 'new' } : a));
  t.deepEqual(names(planDeployment(target, changed, { version: V1 })), [['RestartApplication /db'], ['RestartApplication /web']]);
  // A dependency on an app that does not exist orders nothing.
  t.deepEqual(names(planDeployment([], [app('/x', { dependencies: ['/nowhere'] })], { version: V1 })), [['StartApplication /x'], ['ScaleApplication /x']]);
});

test('a dependency cycle is refused, naming the apps in it', (t) => {
  const err = t.throws(() =>
    planDeployment([], [app('/a', { dependencies: ['/b'] }), app('/b', { dependencies: ['/c'] }), app('/c', { dependencies: ['/a'] }), app('/d')], { version: V1 }),
  ) as StrataError;
  t.true(isStrataError(err, 'DEPLOYMENT_DEPENDENCY_CYCLE'));
  t.is(err.httpStatus, 422);
  t.regex(err.message, /\/a -> \/b -> \/c -> \/a form a cycle/);
  t.deepEqual((err.details as { cycle: string[] }).cycle, ['/a', '/b', '/c', '/a']);
});

test('a long dependency chain does not overflow the stack', (t) => {
  const chain = new Map(Array.from({ length: 20_000 }, (_, i) => [`/a${i}`, { id: `/a${i}`, dependencies: i === 0 ? [] : [`/a${i - 1}`] }]));
  t.is(dependencyDepths(chain).get('/a19999'), 19_999);
});

test('isConfigChange ignores key order, version and instances', (t) => {
  const a = app('/a');
  const reordered = Object.fromEntries(Object.entries(a).reverse()) as App;
  t.false(isConfigChange(a, { ...reordered, version: V1, instances: 9 }));
  t.true(isConfigChange(a, { ...a, env: { X: '1' } }));
});

// ---------------------------------------------------------------------------
// Properties over random clusters and changes

const IDS = ['/a', '/b', '/c', '/d', '/e', '/f', '/g/h', '/g/i'];

/** Apps with acyclic dependencies: an app may depend only on apps earlier in IDS. */
const cluster = fc
  .subarray(IDS)
  .chain((ids) =>
    fc.tuple(
      ...ids.map((id, i) =>
        fc.record({
          deps: fc.subarray(IDS.slice(0, IDS.indexOf(id))),
          instances: fc.integer({ min: 0, max: 3 }),
          mem: fc.constantFrom(64, 128),
        }).map((r) => app(id, { dependencies: r.deps, instances: r.instances, mem: r.mem }, i % 2 ? V0 : V1)),
      ),
    ),
  );

test('property: every change is planned exactly once, dependencies go first, nothing else is touched', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(cluster, cluster, (current, target) => {
        const plan = planDeployment(current, target, { version: V1 });
        const before = new Map(current.map((a) => [a.id, a]));
        const after = new Map(target.map((a) => [a.id, a]));
        const stepOf = new Map<string, number>();
        const seen = new Map<string, string[]>();
        plan.steps.forEach((s, i) => {
          if (s.actions.length === 0) throw new Error('empty step');
          for (const a of s.actions) {
            seen.set(a.app, [...(seen.get(a.app) ?? []), a.action]);
            if (a.action === 'ScaleApplication' || a.action === 'RestartApplication') stepOf.set(a.app, i);
          }
        });
        for (const id of new Set([...before.keys(), ...after.keys()])) {
          const prev = before.get(id);
          const next = after.get(id);
          const actions = seen.get(id) ?? [];
          let expected: string[];
          if (!next) expected = ['StopApplication'];
          else if (!prev) expected = ['StartApplication', 'ScaleApplication'];
          else if (isConfigChange(prev, next)) expected = ['RestartApplication'];
          else if (prev.instances !== next.instances) expected = ['ScaleApplication'];
          else expected = [];
          if (actions.join() !== expected.join()) throw new Error(`${id}: ${actions.join()} != ${expected.join()}`);
        }
        for (const [id, step] of stepOf) {
          for (const dep of after.get(id)!.dependencies) {
            const depStep = stepOf.get(dep);
            if (depStep !== undefined && depStep >= step) throw new Error(`${id} in step ${step} but its dependency ${dep} in ${depStep}`);
          }
        }
        if (plan.affectedApps.join() !== [...seen.keys()].sort().join()) throw new Error('affectedApps');
        // Stops come first, starts before any scale or restart.
        const kinds = plan.steps.map((s) => s.actions[0]!.action);
        const stopAt = kinds.indexOf('StopApplication');
        if (stopAt > 0) throw new Error('stop step not first');
        const startAt = kinds.indexOf('StartApplication');
        if (startAt >= 0 && startAt > (stopAt === 0 ? 1 : 0)) throw new Error('start step misplaced');
        return true;
      }),
      { numRuns: 500 },
    ),
  );
});

test('property: any dependency cycle is refused, whatever the current apps', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(cluster, fc.integer({ min: 2, max: 5 }), (current, length) => {
        const ring = IDS.slice(0, length).map((id, i) => app(id, { dependencies: [IDS[(i + 1) % length]!] }));
        try {
          planDeployment(current, ring, { version: V1 });
        } catch (err) {
          return isStrataError(err, 'DEPLOYMENT_DEPENDENCY_CYCLE');
        }
        return false;
      }),
      { numRuns: 200 },
    ),
  );
});

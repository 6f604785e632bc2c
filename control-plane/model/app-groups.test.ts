/**
 * Derived groups: path resolution as Marathon's canonicalPath, the tree of
 * a group, app/group conflicts and the dependency expansion; fast-check
 * properties of the tree (every app appears exactly once, under its parent).
 */
import test from 'ava';
import fc from 'fast-check';
import { withAppDefaults } from './app-defaults.ts';
import { expandDependencies, groupIdsOf, groupTree, isUnder, parentOf, pathConflicts, resolvePath, type GroupNode } from './app-groups.ts';
import type { App } from './schemas.ts';

const app = (id: string, dependencies: string[] = [], version = '2026-01-01T00:00:00.000Z'): App => withAppDefaults({ id, cmd: 'x', dependencies }, { version });

test('resolvePath: absolute kept, relative against the group, . and .. resolved; above the root stays invalid', (t) => {
  t.is(resolvePath('/a/b', '/x'), '/a/b');
  t.is(resolvePath('b', '/a'), '/a/b');
  t.is(resolvePath('b', '/'), '/b');
  t.is(resolvePath('../c', '/a/b'), '/a/c');
  t.is(resolvePath('./c/../d', '/a'), '/a/d');
  t.is(resolvePath('../../x', '/a'), '/../../../x');
  t.is(parentOf('/a/b'), '/a');
  t.is(parentOf('/a'), '/');
});

test('groupTree: apps and sub-groups by level, shared outside dependencies, newest version', (t) => {
  const apps = [
    app('/p/db/pg', [], '2026-01-01T00:00:00.000Z'),
    app('/p/api/a', ['/p/db', '/ext'], '2026-01-03T00:00:00.000Z'),
    app('/p/api/b', ['/p/db'], '2026-01-02T00:00:00.000Z'),
    app('/top'),
  ];
  const root = groupTree(apps, '/')!;
  t.deepEqual(root.apps.map((a) => a.id), ['/top']);
  t.deepEqual(root.groups.map((g) => g.id), ['/p']);
  const api = groupTree(apps, '/p/api')!;
  t.deepEqual(api.dependencies, ['/p/db'], 'what every app of the group depends on outside it');
  t.is(api.version, '2026-01-03T00:00:00.000Z');
  t.deepEqual(groupTree(apps, '/p')!.dependencies, [], '/p/db is inside /p');
  t.is(groupTree(apps, '/nothing'), undefined);
  t.deepEqual(groupTree([], '/')!.apps, [], 'the root always exists');
  t.deepEqual(groupIdsOf(apps.map((a) => a.id)), ['/', '/p', '/p/api', '/p/db']);
});

test('pathConflicts and expandDependencies', (t) => {
  t.deepEqual(pathConflicts(['/a', '/a/b', '/c/d']), [['/a', '/a/b']]);
  const ids = new Set(['/db/pg', '/db/redis', '/web', '/dbx']);
  t.deepEqual(expandDependencies({ id: '/web', dependencies: ['/db', '/missing', '/web'] }, ids), ['/db/pg', '/db/redis'], 'a group stands for its apps; /dbx is not under /db');
  t.true(isUnder('/a/b', '/'));
  t.false(isUnder('/ab', '/a'));
});

const segment = fc.constantFrom('a', 'b', 'c', 'web', 'db');
const appIds = fc.uniqueArray(fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`), { maxLength: 25 });

test('property: the tree of any app set holds each app exactly once, directly in its parent group', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(appIds, (ids) => {
      const clean = ids.filter((id) => !pathConflicts(ids).some(([a]) => a === id));
      const root = groupTree(clean.map((id) => app(id)), '/')!;
      const seen: string[] = [];
      const walk = (g: GroupNode): void => {
        for (const a of g.apps) {
          if (parentOf(a.id) !== g.id) throw new Error(`${a.id} listed in ${g.id}`);
          seen.push(a.id);
        }
        for (const sub of g.groups) {
          if (parentOf(sub.id) !== g.id) throw new Error(`${sub.id} nested in ${g.id}`);
          walk(sub);
        }
      };
      walk(root);
      return seen.sort().join() === [...clean].sort().join();
    }),
  ));
});

test('property: resolving a relative path against a group stays under it unless it climbs with ..', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.array(segment, { minLength: 1, maxLength: 3 }), (base, rel) => {
      const group = `/${base.join('/')}`;
      return isUnder(resolvePath(rel.join('/'), group), group) && resolvePath(`/${rel.join('/')}`, group) === `/${rel.join('/')}`;
    }),
  ));
});

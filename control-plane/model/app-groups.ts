/**
 * Marathon's application groups (`/v2/groups`), derived from app ids. A
 * group is every path that is a proper prefix of some stored app id:
 * `/prod/web` and `/prod/db` make the groups `/` (the root) and `/prod`.
 * Strata stores no group record (see README.md, "Groups are derived"), so
 * these functions are pure: paths, the tree of a group, and the dependency
 * expansion the deployment planner uses.
 *
 * Paths follow Marathon's `PathId.canonicalPath(base)`: an absolute path is
 * kept; a relative one is resolved against `base`, with `.` (this group) and
 * `..` (the parent) elements. A path that climbs above the root is returned
 * as it is written (`/../x`), so the id patterns refuse it with its field
 * named.
 */
import type { App } from './schemas.ts';

export const ROOT_GROUP = '/';

/** `/prod/web` → `/prod`; `/web` → `/`. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? ROOT_GROUP : path.slice(0, i);
}

/** Marathon's `canonicalPath`: `path` resolved against the group `base` (absolute paths are kept, `.`/`..` resolved). */
export function resolvePath(path: string, base: string): string {
  const start = path.startsWith('/') ? [] : base.split('/').filter((e) => e !== '');
  const out = [...start];
  for (const element of path.split('/')) {
    if (element === '' || element === '.') continue;
    if (element === '..') {
      // Above the root: left unresolved, so the id patterns refuse it.
      if (out.length === 0) return `/../${path.replace(/^\/+/, '')}`;
      out.pop();
      continue;
    }
    out.push(element);
  }
  return `/${out.join('/')}`;
}

/** True if `id` lies under the group `group` (the root holds everything). */
export function isUnder(id: string, group: string): boolean {
  return group === ROOT_GROUP ? id !== ROOT_GROUP : id.startsWith(`${group}/`);
}

/** Every group the apps make (proper prefixes of their ids, and the root), sorted. */
export function groupIdsOf(appIds: Iterable<string>): string[] {
  const groups = new Set<string>([ROOT_GROUP]);
  for (const id of appIds) for (let g = parentOf(id); g !== ROOT_GROUP; g = parentOf(g)) groups.add(g);
  return [...groups].sort();
}

/**
 * Ids that would be both an app and a group (`/a` and `/a/b`): Marathon
 * refuses such a tree. Returns `[app, appUnderIt]` pairs.
 */
export function pathConflicts(appIds: Iterable<string>): [string, string][] {
  const ids = [...appIds].sort();
  const set = new Set(ids);
  const out: [string, string][] = [];
  for (const id of ids) {
    for (let g = parentOf(id); g !== ROOT_GROUP; g = parentOf(g)) if (set.has(g)) out.push([g, id]);
  }
  return out;
}

/**
 * An app's dependencies as app ids: a dependency naming an app is kept; one
 * naming a group stands for every app under it (Marathon allows both).
 * Dependencies on nothing that exists, and on the app itself, are left out.
 */
export function expandDependencies(app: Pick<App, 'id' | 'dependencies'>, appIds: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const d of app.dependencies) {
    if (appIds.has(d)) out.add(d);
    else for (const id of appIds) if (isUnder(id, d)) out.add(id);
  }
  out.delete(app.id);
  return [...out].sort();
}

/** A group as derived from the apps: its apps, its direct sub-groups, its dependencies and version. */
export interface GroupNode {
  readonly id: string;
  /** Apps directly in the group, sorted by id. */
  readonly apps: readonly App[];
  readonly groups: readonly GroupNode[];
  /**
   * The group's dependencies: those every app under it shares that point
   * outside it (what a group-level `dependencies` was expanded into).
   */
  readonly dependencies: readonly string[];
  /** The newest version of an app under it (the epoch for an empty root). */
  readonly version: string;
}

const EPOCH = '1970-01-01T00:00:00.000Z';

/** The tree of `groupId` over `apps`, or `undefined` when no app lies under it (the root always exists). */
export function groupTree(apps: readonly App[], groupId: string): GroupNode | undefined {
  const under = apps.filter((a) => isUnder(a.id, groupId)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (under.length === 0 && groupId !== ROOT_GROUP) return undefined;
  const build = (id: string, members: readonly App[]): GroupNode => {
    const direct = members.filter((a) => parentOf(a.id) === id);
    const childIds = [...new Set(members.filter((a) => parentOf(a.id) !== id).map((a) => childOf(id, a.id)))].sort();
    const groups = childIds.map((c) => build(c, members.filter((a) => isUnder(a.id, c))));
    let shared: string[] | undefined;
    for (const a of members) {
      const outside = a.dependencies.filter((d) => d !== id && !isUnder(d, id));
      shared = shared === undefined ? outside : shared.filter((d) => outside.includes(d));
    }
    const version = members.reduce((v, a) => (a.version > v ? a.version : v), EPOCH);
    return { id, apps: direct, groups, dependencies: id === ROOT_GROUP ? [] : [...(shared ?? [])].sort(), version };
  };
  return build(groupId, under);
}

/** The direct child of `group` on the way to `id` (`/a`, `/a/b/c` → `/a/b`). */
function childOf(group: string, id: string): string {
  const rest = id.slice(group === ROOT_GROUP ? 1 : group.length + 1);
  const first = rest.split('/')[0]!;
  return group === ROOT_GROUP ? `/${first}` : `${group}/${first}`;
}

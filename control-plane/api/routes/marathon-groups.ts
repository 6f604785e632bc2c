/**
 * Marathon's `/v2/groups` (shared/reference/scheduler.md §2.1; Marathon's
 * `GroupsResource`), over groups derived from app ids
 * (`control-plane/model/app-groups.ts`; why: control-plane/model/README.md).
 *
 * - `GET /v2/groups[/<id>]` answers the group as Marathon's JSON
 *   `{id, version, dependencies, apps, groups, pods, enforceRole}`.
 *   `embed` as Marathon: `group.apps`, `group.groups`, `group.pods` (all
 *   three when none is given), and for the apps `group.apps.counts`,
 *   `group.apps.deployments`, `group.apps.tasks`, `group.apps.readiness`.
 *   Only apps the caller may read are shown (read on the app's path or on
 *   one of its groups'); a group with none of them is 404, the root never.
 * - `GET /v2/groups/<id>/versions`: every stored version of an app under
 *   the group, newest first.
 * - `POST /v2/groups` creates a group (`{id, apps, groups, dependencies}`;
 *   ids relative to the enclosing group); 409 `GROUP_EXISTS` if it exists.
 * - `PUT /v2/groups[/<id>]` changes it (and creates it when absent; the
 *   body's `id`, resolved against the path's group, may name a group under
 *   it, as `PUT /v2/groups {"id": "/product", ...}` does): a list
 *   given (`apps`, `groups`) replaces that level's apps or sub-groups (apps
 *   and sub-groups not listed are removed); a list left out keeps them.
 *   `dependencies` replaces the group's dependencies on every app under it.
 *   `{"scaleBy": f}` sets each app under the group to `ceil(instances × f)`;
 *   `{"version": V}` rolls every app under the group back to its
 *   definition at the group version V.
 *   `?dryRun=true` answers `{steps}` (Marathon's dry run): the deployment
 *   the change would start, nothing written.
 * - `DELETE /v2/groups/<id>` removes every app under it.
 *
 * Every write is one deployment through `changeApps` (one transaction,
 * dependency-ordered steps, 409 `APP_LOCKED` when an affected app is
 * locked unless `?force=true`). A group's `dependencies` are stored on the
 * apps under it (each app depends on them), which is what Marathon's
 * deployment order does with them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { allows } from '../../../security/iam.ts';
import { groupTree, isUnder, parentOf, pathConflicts, resolvePath, ROOT_GROUP, type GroupNode } from '../../model/app-groups.ts';
import { idProblem, prefix } from '../../model/keys.ts';
import { decodeEntry } from '../../model/records.ts';
import { APP_ID_MAX_LENGTH, AppDefinition, AppVersionTimestamp, PATH_INPUT_PATTERN, type App, type AppVersion, type Deployment, type Principal, type Task } from '../../model/schemas.ts';
import { validateRecord } from '../../model/validate.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { isChange, planDeployment } from '../../../scheduler/deployments/plan.ts';
import { definitionOf, deploymentReply, marathonApp, marathonErrors, marathonTask, refuseReserved, v2Invalid } from './marathon-apps.ts';
import { DeadlineQuery, MARATHON_GATE_RID, appRid, assertCallerMay, changeApps, deadlineOf, readState, type AppChange, type DeadlineOption, type MarathonState } from './marathon-store.ts';

/** How deep `groups` may nest in one request body. */
export const MAX_GROUP_NESTING = 8;

const GroupPath = Type.String({ pattern: PATH_INPUT_PATTERN, maxLength: APP_ID_MAX_LENGTH });

/** Marathon's GroupUpdate, nested up to {@link MAX_GROUP_NESTING} levels. */
function groupInput(depth: number, top: boolean): TSchema {
  return Type.Object(
    {
      id: Type.Optional(GroupPath),
      apps: Type.Optional(Type.Array(AppDefinition)),
      groups: Type.Optional(depth > 0 ? Type.Array(groupInput(depth - 1, false)) : Type.Array(Type.Object({}), { maxItems: 0, description: `groups nest at most ${MAX_GROUP_NESTING} levels` })),
      dependencies: Type.Optional(Type.Array(GroupPath, { uniqueItems: true })),
      /** Marathon shows `pods: []`; Strata runs no pods, so only an empty list is accepted back. */
      pods: Type.Optional(Type.Array(Type.Object({}), { maxItems: 0, description: 'pods are not supported' })),
      ...(top
        ? {
            scaleBy: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'multiply the instances of every app under the group (rounded up)' })),
            version: Type.Optional(AppVersionTimestamp),
          }
        : {}),
    },
    { additionalProperties: false },
  );
}

export const GroupUpdate = groupInput(MAX_GROUP_NESTING, true);

export interface GroupInput {
  readonly id?: string;
  readonly apps?: readonly AppDefinition[];
  readonly groups?: readonly GroupInput[];
  readonly dependencies?: readonly string[];
  readonly pods?: readonly unknown[];
  readonly scaleBy?: number;
  readonly version?: string;
}

const EMBEDS = ['group.apps', 'group.groups', 'group.pods', 'group.apps.counts', 'group.apps.deployments', 'group.apps.tasks', 'group.apps.readiness', 'group.apps.lastTaskFailure', 'group.apps.taskStats'] as const;
const Embed = Type.Array(Type.String({ maxLength: 64 }), { description: EMBEDS.join(', ') });
const Wildcard = Type.Object({ '*': Type.String({ maxLength: 512 }) });
const ForceQuery = Type.Object({ force: Type.Optional(Type.Boolean({ default: false, description: 'override the lock of a running deployment (it is cancelled)' })), ...DeadlineQuery });

/** The group path a wildcard names (`prod/versions` → `{id: '/prod', versions: true}`), refused with `RECORD_ID_INVALID` when invalid. */
export function parseGroupPath(rest: string): { id: string; versions: boolean } {
  const parts = rest.split('/').filter((p) => p !== '');
  const versions = parts[parts.length - 1] === 'versions';
  const id = `/${(versions ? parts.slice(0, -1) : parts).join('/')}`;
  if (id !== ROOT_GROUP) {
    const problem = idProblem('app', id);
    if (problem !== undefined) throw new StrataError('RECORD_ID_INVALID', `group id ${JSON.stringify(id.slice(0, 80))} is invalid: ${problem}`);
  }
  return { id, versions };
}

const groupParam = (request: FastifyRequest): string => (request.params as { '*'?: string })['*'] ?? '';
const groupRidOf = (request: FastifyRequest): string => {
  try {
    return appRid(parseGroupPath(groupParam(request)).id);
  } catch {
    return appRid(ROOT_GROUP);
  }
};

/** Whether `principal` holds `action` on the path or on one of the groups above it (DC/OS grants a group's permission to what it holds). */
export function mayOnPath(principal: Principal, path: string, action: 'read' | 'update' | 'delete' | 'create'): boolean {
  for (let p = path; ; p = parentOf(p)) {
    if (allows(principal, appRid(p), action)) return true;
    if (p === ROOT_GROUP) return false;
  }
}

/** The result of flattening a group body: each app under it (absolute id → definition), and every problem found, with its body path. */
export interface FlatGroup {
  readonly apps: Map<string, Omit<App, 'version'>>;
  /** Groups the body lists (absolute ids), with their `apps`/`groups` lists given or not. */
  readonly groups: Map<string, { readonly appsGiven: boolean; readonly groupsGiven: boolean; readonly dependencies?: readonly string[] }>;
  readonly issues: { path: string; errors: string[] }[];
}

/**
 * Pure: the apps a group body defines, ids and dependencies resolved
 * (relative ids against the enclosing group; a group's `dependencies`
 * against the group itself, and added to every app under it).
 */
export function flattenGroup(body: GroupInput, groupId: string, inherited: readonly string[] = []): FlatGroup {
  const out: FlatGroup = { apps: new Map(), groups: new Map(), issues: [] };
  const problem = (path: string, error: string): void => {
    const found = out.issues.find((i) => i.path === path);
    if (found) found.errors.push(error);
    else out.issues.push({ path, errors: [error] });
  };
  const walk = (node: GroupInput, id: string, at: string, deps: readonly string[]): void => {
    const own = node.dependencies?.map((d) => resolvePath(d, id));
    own?.forEach((d, i) => {
      if (idProblem('app', d) !== undefined) problem(`${at}/dependencies/${i}`, `${d} is no valid path (it climbs above the root)`);
      else if (d === id || isUnder(d, id)) problem(`${at}/dependencies/${i}`, `a group cannot depend on itself or what it holds (${d})`);
    });
    const all = [...new Set([...deps, ...(own ?? [])])];
    out.groups.set(id, { appsGiven: node.apps !== undefined, groupsGiven: node.groups !== undefined, ...(own ? { dependencies: own } : {}) });
    node.apps?.forEach((def, i) => {
      const appId = resolvePath(def.id, id);
      const path = `${at}/apps/${i}`;
      if (idProblem('app', appId) !== undefined) return problem(`${path}/id`, `${appId} is no valid app id`);
      if (!isUnder(appId, id)) return problem(`${path}/id`, `${appId} is not in the group ${id}`);
      if (out.apps.has(appId)) return problem(`${path}/id`, `${appId} is defined twice`);
      const app = definitionOf({ ...def, id: appId, dependencies: (def.dependencies ?? []).map((d) => resolvePath(d, parentOf(appId))) });
      const withDeps = { ...app, dependencies: [...new Set([...app.dependencies, ...all.filter((d) => d !== appId && !isUnder(appId, d))])] };
      for (const issue of validateRecord('app', { ...withDeps, version: '1970-01-01T00:00:00.000Z' })) problem(`${path}${issue.path}`, issue.message);
      out.apps.set(appId, withDeps);
    });
    node.groups?.forEach((g, i) => {
      const path = `${at}/groups/${i}`;
      if (g.id === undefined) return problem(`${path}/id`, 'is required for a nested group');
      const childId = resolvePath(g.id, id);
      if (idProblem('app', childId) !== undefined) return problem(`${path}/id`, `${childId} is no valid group id`);
      if (!isUnder(childId, id)) return problem(`${path}/id`, `${childId} is not in the group ${id}`);
      if (out.groups.has(childId)) return problem(`${path}/id`, `${childId} is defined twice`);
      walk(g, childId, path, all);
    });
  };
  walk(body, groupId, '', inherited);
  for (const [app, below] of pathConflicts(out.apps.keys())) problem('/apps', `${app} cannot be an app and a group at once (${below} is under it)`);
  return out;
}

const versionless = (app: App): Omit<App, 'version'> => {
  const { version: _v, ...rest } = app;
  return rest;
};

/**
 * Pure: the changes a group update makes to the current apps (see the
 * module comment for the rules): changed or new apps with their new
 * definitions, removed apps with `undefined`.
 */
export function groupUpdateChanges(current: readonly App[], groupId: string, body: GroupInput): AppChange[] {
  const existing = new Map(current.map((a) => [a.id, a]));
  const currentTree = groupTree(current, groupId);
  const inherited = currentTree?.dependencies ?? [];
  const flat = flattenGroup(body, groupId, body.dependencies === undefined ? inherited : []);
  if (flat.issues.length > 0) throw new StrataError('API_BAD_REQUEST', `the group definition is invalid: ${flat.issues.map((i) => `${i.path || '/'} ${i.errors.join(', ')}`).join('; ')}`, { details: flat.issues });
  const next = new Map<string, Omit<App, 'version'> | undefined>();
  // Apps under the group that the body does not define: kept or removed by the level that holds them.
  for (const app of current.filter((a) => isUnder(a.id, groupId))) {
    if (flat.apps.has(app.id)) continue;
    let removed = false;
    let keptDeps = app.dependencies;
    for (let g = parentOf(app.id); ; g = parentOf(g)) {
      const listed = flat.groups.get(g);
      if (listed) {
        // The nearest listed group decides: its apps list (for a direct app) or its groups list (for a deeper one).
        removed = g === parentOf(app.id) ? listed.appsGiven : listed.groupsGiven;
        break;
      }
      if (g === ROOT_GROUP || g === groupId) break;
    }
    if (removed) {
      next.set(app.id, undefined);
      continue;
    }
    // New group dependencies on the apps kept under the group.
    if (body.dependencies !== undefined) {
      const own = flat.groups.get(groupId)?.dependencies ?? [];
      keptDeps = [...new Set([...app.dependencies.filter((d) => !inherited.includes(d)), ...own.filter((d) => !isUnder(app.id, d))])];
    }
    if (keptDeps.join('\n') !== app.dependencies.join('\n')) next.set(app.id, { ...versionless(app), dependencies: keptDeps });
  }
  for (const [id, app] of flat.apps) next.set(id, app);
  const final = new Set([...existing.keys()].filter((id) => !next.has(id) || next.get(id) !== undefined));
  for (const id of flat.apps.keys()) final.add(id);
  const hit = pathConflicts(final).find(([app, below]) => next.has(app) || next.has(below));
  if (hit) throw new StrataError('API_BAD_REQUEST', `${hit[0]} cannot be an app and a group at once (${hit[1]} is under it)`, { details: [{ path: '/id', errors: [`${hit[0]} is an app and would hold ${hit[1]}`] }] });
  return unchangedDropped(current, [...next].map(([id, n]) => ({ id, next: n })));
}

/** The changes without those that leave an app as it is (no new version, no lock taken for them). */
function unchangedDropped(current: readonly App[], changes: AppChange[]): AppChange[] {
  const byId = new Map(current.map((a) => [a.id, a]));
  return changes.filter((c) => {
    const before = byId.get(c.id);
    if (c.next === undefined) return before !== undefined;
    return before === undefined || isChange(before, c.next);
  });
}

/** Pure: `ceil(instances × factor)` for every app under the group. */
export function scaleChanges(current: readonly App[], groupId: string, factor: number): AppChange[] {
  return unchangedDropped(current, current
    .filter((a) => isUnder(a.id, groupId))
    .map((a) => ({ id: a.id, next: { ...versionless(a), instances: Math.ceil(a.instances * factor - 1e-9) } })));
}

/**
 * Pure: a group rolled back to `version`: each app under it now is set to
 * its newest stored definition at or before `version`, and removed if it
 * had none then (it was created later). Apps deleted since are not brought
 * back (their deletion time is not stored; README.md).
 */
export function rollbackChanges(current: readonly App[], versions: readonly AppVersion[], groupId: string, version: string): AppChange[] {
  const at = Date.parse(version);
  const changes: AppChange[] = [];
  for (const app of current.filter((a) => isUnder(a.id, groupId))) {
    const then = versions.filter((v) => v.id === app.id && Date.parse(v.version) <= at).sort((a, b) => Date.parse(b.version) - Date.parse(a.version))[0];
    changes.push({ id: app.id, next: then ? versionless(then) : undefined });
  }
  return unchangedDropped(current, changes);
}

/** Every stored app version under the group (all of them for the root). */
async function versionsUnder(ctx: ApiContext, groupId: string): Promise<AppVersion[]> {
  const { entries } = await ctx.store.list(groupId === ROOT_GROUP ? prefix('appVersion') : `${prefix('appVersion')}${groupId.slice(1)}/`);
  const out: AppVersion[] = [];
  for (const entry of entries) {
    const d = decodeEntry('appVersion', entry);
    if (d.ok && isUnder(d.record.value.id, groupId)) out.push(d.record.value);
  }
  return out;
}

interface GroupView {
  readonly embeds: ReadonlySet<string>;
  readonly deployments: readonly Deployment[];
  readonly tasks: readonly Task[];
}

/** Marathon's JSON for a derived group. */
export function marathonGroup(node: GroupNode, view: GroupView): Record<string, unknown> {
  const { embeds } = view;
  const app = (a: App): Record<string, unknown> => {
    const full = marathonApp(a, view.deployments, view.tasks, false);
    const own = view.tasks.filter((t) => t.appId === a.id);
    const { deployments, tasksStaged, tasksRunning, tasksHealthy, tasksUnhealthy, tasks: _t, ...definition } = full;
    return {
      ...definition,
      ...(embeds.has('group.apps.counts') ? { tasksStaged, tasksRunning, tasksHealthy, tasksUnhealthy } : {}),
      ...(embeds.has('group.apps.deployments') ? { deployments } : {}),
      ...(embeds.has('group.apps.tasks') ? { tasks: own.map(marathonTask) } : {}),
      ...(embeds.has('group.apps.readiness') ? { readinessCheckResults: view.deployments.flatMap((d) => d.currentActions.filter((c) => c.app === a.id).flatMap((c) => c.readinessCheckResults)) } : {}),
    };
  };
  return {
    id: node.id,
    version: node.version,
    dependencies: node.dependencies,
    enforceRole: false,
    ...(embeds.has('group.apps') ? { apps: node.apps.map(app) } : {}),
    ...(embeds.has('group.groups') ? { groups: node.groups.map((g) => marathonGroup(g, view)) } : {}),
    ...(embeds.has('group.pods') ? { pods: [] } : {}),
  };
}

function embedsOf(embed: readonly string[] | undefined): Set<string> {
  const given = new Set(embed ?? []);
  if (given.size === 0) return new Set(['group.apps', 'group.groups', 'group.pods']);
  // Marathon: an app embed implies the apps.
  for (const e of given) if (e.startsWith('group.apps.')) given.add('group.apps');
  return given;
}

export function marathonGroupRoutes(app: ApiInstance, ctx: ApiContext): void {
  const read = async (request: FastifyRequest<{ Querystring: { embed?: string[] } }>, groupId: string, versions: boolean): Promise<unknown> => {
    const [{ records: apps }, principal] = await Promise.all([ctx.records.list('app'), ctx.iam.getPrincipal(request.principalUid ?? '')]);
    const visible = principal ? apps.map((r) => r.value).filter((a) => mayOnPath(principal, a.id, 'read')) : [];
    const node = groupTree(visible, groupId);
    if (!node) throw new StrataError('RECORD_NOT_FOUND', `Group '${groupId}' does not exist`);
    if (versions) {
      const all = await versionsUnder(ctx, groupId);
      const seen = principal ? all.filter((v) => mayOnPath(principal, v.id, 'read')) : [];
      return [...new Set(seen.map((v) => v.version))].sort((a, b) => Date.parse(b) - Date.parse(a));
    }
    const [deployments, tasks] = await Promise.all([ctx.records.list('deployment'), ctx.records.list('task')]);
    return marathonGroup(node, { embeds: embedsOf(request.query.embed), deployments: deployments.records.map((d) => d.value), tasks: tasks.records.map((t) => t.value) });
  };

  app.get('/v2/groups', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: { summary: 'The root group: every app the caller may read, as Marathon\'s group tree (GET /v2/groups)', querystring: Type.Object({ embed: Type.Optional(Embed) }) },
  }, async (request) => read(request, ROOT_GROUP, false));

  app.get('/v2/groups/*', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'One group (/v2/groups/<id>) or its versions (/v2/groups/<id>/versions), with the apps the caller may read',
      params: Wildcard,
      querystring: Type.Object({ embed: Type.Optional(Embed) }),
    },
  }, async (request) => {
    const path = parseGroupPath(request.params['*']);
    return read(request, path.id, path.versions);
  });

  /** The changes a group write makes to `state` (throws what the write would refuse). */
  const decide = (groupId: string, body: GroupInput, create: boolean, versions: readonly AppVersion[]) => (state: MarathonState): AppChange[] => {
    const current = [...state.apps.values()].map((r) => r.value);
    const exists = current.some((a) => isUnder(a.id, groupId));
    if (create && exists) throw new StrataError('GROUP_EXISTS', `Group ${groupId} is already created. Use PUT to change this group.`);
    if (create && state.apps.has(groupId)) throw new StrataError('APP_EXISTS', `An app with the path ${groupId} already exists.`);
    if (!create && !exists && (body.scaleBy !== undefined || body.version !== undefined)) throw new StrataError('RECORD_NOT_FOUND', `Group '${groupId}' does not exist`);
    if (body.scaleBy !== undefined) return scaleChanges(current, groupId, body.scaleBy);
    if (body.version !== undefined) return rollbackChanges(current, versions, groupId, body.version);
    return groupUpdateChanges(current, groupId, body);
  };

  const write = async (groupId: string, body: GroupInput, force: boolean, create: boolean, deadline: DeadlineOption | undefined, dryRun = false) => {
    if (groupId !== ROOT_GROUP) refuseReserved(groupId);
    if (body.scaleBy !== undefined || body.version !== undefined) {
      const others = Object.keys(body).filter((k) => k !== 'id' && k !== 'scaleBy' && k !== 'version');
      if (body.scaleBy !== undefined && body.version !== undefined) throw new StrataError('API_BAD_REQUEST', 'scaleBy and version cannot be combined', { details: [{ path: '/scaleBy', errors: ['cannot be combined with version'] }] });
      if (others.length > 0) throw new StrataError('API_BAD_REQUEST', `${body.scaleBy !== undefined ? 'scaleBy' : 'version'} cannot be combined with ${others.join(', ')}`, { details: others.map((k) => ({ path: `/${k}`, errors: [`cannot be combined with ${body.scaleBy !== undefined ? 'scaleBy' : 'version'}`] })) });
    }
    const versions = body.version === undefined ? [] : await versionsUnder(ctx, groupId);
    if (body.version !== undefined && !versions.some((v) => v.version === body.version)) throw new StrataError('RECORD_NOT_FOUND', `Group '${groupId}' has no version ${body.version}`);
    if (dryRun) {
      // Marathon's ?dryRun=true: the steps the change would take, nothing written.
      const state = await readState(ctx);
      const changes = decide(groupId, body, create, versions)(state);
      const current = [...state.apps.values()].map((r) => r.value);
      const changed = new Set(changes.map((c) => c.id));
      const version = new Date().toISOString();
      const target = [...current.filter((a) => !changed.has(a.id)), ...changes.flatMap((c) => (c.next ? [{ ...c.next, id: c.id, version } as App] : []))];
      return { dryRun: planDeployment(current, target, { version }) };
    }
    return { result: await changeApps(ctx, decide(groupId, body, create, versions), { force, deadline, groupId }) };
  };

  app.post('/v2/groups', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Create a group with its apps and nested groups (Marathon POST /v2/groups): 201 {version, deploymentId}; 409 if it exists',
      description: 'Also needs create on dcos:service:marathon:marathon:services:<group id>. Apps start in dependency order (an app after the apps it depends on are healthy).',
      querystring: ForceQuery,
      body: GroupUpdate,
    },
    errorHandler: v2Invalid(false),
    preValidation: async (request) => {
      const id = (request.body as { id?: unknown } | undefined)?.id;
      if (typeof id === 'string' && new RegExp(PATH_INPUT_PATTERN).test(id)) await assertCallerMay(ctx, request, appRid(resolvePath(id, ROOT_GROUP)), 'create');
    },
  }, async (request, reply) =>
    marathonErrors(reply, async () => {
      const body = request.body as GroupInput;
      if (body.id === undefined) throw new StrataError('API_BAD_REQUEST', 'a new group needs an id', { details: [{ path: '/id', errors: ['is required'] }] });
      if (body.scaleBy !== undefined || body.version !== undefined) throw new StrataError('API_BAD_REQUEST', 'scaleBy and version only apply to an existing group (PUT)', { details: [{ path: body.scaleBy !== undefined ? '/scaleBy' : '/version', errors: ['only with PUT'] }] });
      const groupId = resolvePath(body.id, ROOT_GROUP);
      if (idProblem('app', groupId) !== undefined) throw new StrataError('API_BAD_REQUEST', `${groupId} is no valid group id`, { details: [{ path: '/id', errors: ['is no valid group id'] }] });
      const { result } = await write(groupId, body, request.query.force ?? false, true, deadlineOf(request.query));
      return deploymentReply(reply, result!, true, `/v2/groups${groupId}`);
    }),
  );

  const put = async (request: FastifyRequest<{ Querystring: { force?: boolean; dryRun?: boolean; deadlineSeconds?: number; rollbackOnFailure?: boolean } }>, reply: FastifyReply) =>
    marathonErrors(reply, async () => {
      const path = parseGroupPath(groupParam(request));
      if (path.versions) throw new StrataError('API_NOT_FOUND', `no route for PUT ${request.url.split('?')[0] ?? ''}`);
      const body = request.body as GroupInput;
      // Marathon: the body's id is resolved against the path's group, and names it or a group under it.
      const groupId = body.id === undefined ? path.id : resolvePath(body.id, path.id);
      if (groupId !== path.id && !isUnder(groupId, path.id)) {
        throw new StrataError('API_BAD_REQUEST', `the body's id ${body.id} names ${groupId}, which is not ${path.id} or under it`, { details: [{ path: '/id', errors: [`must name ${path.id} or a group under it`] }] });
      }
      if (groupId !== ROOT_GROUP && idProblem('app', groupId) !== undefined) throw new StrataError('API_BAD_REQUEST', `${groupId} is no valid group id`, { details: [{ path: '/id', errors: ['is no valid group id'] }] });
      const { result, dryRun } = await write(groupId, body, request.query.force ?? false, false, deadlineOf(request.query), request.query.dryRun ?? false);
      if (dryRun) return reply.code(200).send({ steps: dryRun.steps });
      return deploymentReply(reply, result!, false);
    });
  const putSchema = {
    description: 'Needs update on the group in the path (the root for PUT /v2/groups); the body\'s id, resolved against it, may name a group under it. Creates the group when absent. 409 while a deployment locks an affected app unless ?force=true.',
    querystring: Type.Object({ ...ForceQuery.properties, dryRun: Type.Optional(Type.Boolean({ default: false, description: 'only answer {steps}: the deployment the change would start (nothing written)' })) }),
    body: GroupUpdate,
  };

  app.put('/v2/groups', {
    config: { permission: requires(groupRidOf, 'update') },
    schema: { summary: 'Change the group the body names (Marathon PUT /v2/groups: the root, or {"id": "/product", ...}): apps, groups, dependencies, scaleBy, version', ...putSchema },
    errorHandler: v2Invalid(false),
  }, put);

  app.put('/v2/groups/*', {
    config: { permission: requires(groupRidOf, 'update') },
    schema: { summary: 'Change (or create) a group (Marathon PUT /v2/groups/<id>): apps, groups, dependencies; or {"scaleBy": f}; or {"version": V} to roll back', params: Wildcard, ...putSchema },
    errorHandler: v2Invalid(false),
  }, put);

  app.delete('/v2/groups/*', {
    config: { permission: requires(groupRidOf, 'delete') },
    schema: {
      summary: 'Remove a group: a deployment stops every app under it (Marathon DELETE /v2/groups/<id>)',
      description: '409 while a deployment locks an affected app unless ?force=true.',
      params: Wildcard,
      querystring: ForceQuery,
    },
  }, async (request, reply) =>
    marathonErrors(reply, async () => {
      const path = parseGroupPath(request.params['*']);
      if (path.versions || path.id === ROOT_GROUP) throw new StrataError('API_NOT_FOUND', `no route for DELETE ${request.url.split('?')[0] ?? ''}`);
      const result = await changeApps(ctx, (state) => {
        const under = [...state.apps.keys()].filter((id) => isUnder(id, path.id));
        if (under.length === 0) throw new StrataError('RECORD_NOT_FOUND', `Group '${path.id}' does not exist`);
        return under.map((id) => ({ id, next: undefined }));
      }, { force: request.query.force ?? false, deadline: deadlineOf(request.query), groupId: path.id });
      return deploymentReply(reply, result, false);
    }),
  );
}

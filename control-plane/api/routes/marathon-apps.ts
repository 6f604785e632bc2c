/**
 * Marathon's `/v2/apps` (shared/reference/scheduler.md §1, §2.1), in
 * Marathon's JSON shapes and status codes, so existing app definitions and
 * scripts work unchanged.
 *
 * Permissions (DC/OS): a single app's routes need the action on
 * `dcos:service:marathon:marathon:services:<app id>` (GET read, PUT/PATCH
 * update, plus create when PUT creates the app, DELETE delete). The list and
 * POST need `full` on `dcos:adminrouter:service:marathon` (Admin Router's
 * gate to Marathon); the list then shows only the apps the caller may read,
 * and POST, whose app id is only in the body, checks create on that app in
 * a preValidation step (after the auth hook, before the body is validated).
 *
 * App ids hold slashes, so the single-app routes are wildcards whose suffix
 * is parsed: `/v2/apps/<id>`, `/v2/apps/<id>/versions`,
 * `/v2/apps/<id>/versions/<version>`. Apps whose id ends in one of
 * {@link RESERVED_ELEMENTS} are refused, so a path means one thing.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { StrataError, isStrataError } from '../../../common/errors.ts';
import { allows } from '../../../security/iam.ts';
import { absoluteAppId, withAppDefaults } from '../../model/app-defaults.ts';
import { appVersionPrefix, idProblem, parseAppVersionId } from '../../model/keys.ts';
import { decodeEntry } from '../../model/records.ts';
import { APP_ID_INPUT_PATTERN, AppDefinition, AppVersionTimestamp, TERMINAL_TASK_STATES, VERSION_PATTERN, type App, type Deployment, type Task } from '../../model/schemas.ts';
import { checkApp } from '../../model/checks.ts';
import type { Issue } from '../../model/validate.ts';
import { validationDetails } from '../errors.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { DeadlineQuery, MARATHON_GATE_RID, appRid, assertCallerMay, callerMay, changeApps, deadlineOf, killTasks, readState, type AppChange, type ChangeResult } from './marathon-store.ts';

/** Last path elements that name a sub-resource of an app, never an app. */
export const RESERVED_ELEMENTS: readonly string[] = ['versions', 'tasks', 'restart'];

/** Fields Marathon shows that Strata computes rather than stores. */
export interface MarathonApp extends App {
  deployments: { id: string }[];
  tasksStaged: number;
  tasksRunning: number;
  tasksHealthy: number;
  tasksUnhealthy: number;
  tasks?: unknown[];
}

/** What a wildcard path under /v2/apps names. */
export interface AppPath {
  readonly appId: string;
  readonly sub?: 'versions' | 'tasks' | 'restart';
  readonly version?: string;
  /** `<id>/tasks/<task id>` (DELETE kills that task). */
  readonly taskId?: string;
}

/** Task ids hold an underscore (`group_web.instance-…`) or capitals, which app path elements never do, so `<id>/tasks/<task id>` cannot name an app. */
const TASK_ELEMENT = /^(?![a-z0-9.-]+$)[A-Za-z0-9_.-]+$/;

/** `group/web/versions/2015-…Z` → `{appId: '/group/web', sub: 'versions', version: '2015-…Z'}`. */
export function parseAppPath(rest: string): AppPath {
  const parts = rest.split('/').filter((p) => p !== '');
  const last = parts[parts.length - 1];
  if (parts.length >= 2 && last === 'restart') return { appId: `/${parts.slice(0, -1).join('/')}`, sub: 'restart' };
  if (parts.length >= 3 && parts[parts.length - 2] === 'tasks' && last !== undefined && TASK_ELEMENT.test(last)) {
    return { appId: `/${parts.slice(0, -2).join('/')}`, sub: 'tasks', taskId: last };
  }
  if (parts.length >= 2 && last === 'tasks') return { appId: `/${parts.slice(0, -1).join('/')}`, sub: 'tasks' };
  if (parts.length >= 2 && last === 'versions') return { appId: `/${parts.slice(0, -1).join('/')}`, sub: 'versions' };
  if (parts.length >= 3 && parts[parts.length - 2] === 'versions' && last !== undefined && !/^[a-z0-9.-]+$/.test(last)) {
    return { appId: `/${parts.slice(0, -2).join('/')}`, sub: 'versions', version: last };
  }
  return { appId: `/${parts.join('/')}` };
}

const pathOf = (request: FastifyRequest): AppPath => parseAppPath((request.params as { '*'?: string })['*'] ?? '');

/** The app id a path names, refused with `RECORD_ID_INVALID` (400) if it is no valid id. */
function appIdOf(request: FastifyRequest): AppPath {
  const path = pathOf(request);
  const problem = idProblem('app', path.appId);
  if (problem !== undefined) throw new StrataError('RECORD_ID_INVALID', `app id ${JSON.stringify(path.appId.slice(0, 80))} is invalid: ${problem}`);
  return path;
}
const ridOf = (request: FastifyRequest): string => appRid(pathOf(request).appId);

/** Marathon's task JSON for a stored task. */
export function marathonTask(task: Task): Record<string, unknown> {
  return {
    id: task.id,
    appId: task.appId,
    host: task.host,
    slaveId: task.agentId,
    state: `TASK_${task.state}`,
    stagedAt: task.stagedAt,
    ...(task.startedAt === undefined ? {} : { startedAt: task.startedAt }),
    version: task.version,
    ports: task.ports,
    servicePorts: task.servicePorts,
    ipAddresses: task.ipAddresses,
    healthCheckResults: task.healthCheckResults,
    ...(task.readinessCheckResults === undefined ? {} : { readinessCheckResults: task.readinessCheckResults }),
  };
}

/** An app as Marathon shows it: the stored definition plus its deployments and task counts (and tasks, when asked). */
export function marathonApp(app: App, deployments: readonly Deployment[], tasks: readonly Task[], withTasks: boolean): MarathonApp {
  const own = tasks.filter((t) => t.appId === app.id);
  const running = own.filter((t) => t.state === 'RUNNING');
  return {
    ...app,
    deployments: deployments.filter((d) => d.affectedApps.includes(app.id)).map((d) => ({ id: d.id })),
    tasksStaged: own.filter((t) => t.state === 'STAGING' || t.state === 'STARTING').length,
    tasksRunning: running.length,
    tasksHealthy: running.filter((t) => t.healthCheckResults.length > 0 && t.healthCheckResults.every((h) => h.alive)).length,
    tasksUnhealthy: running.filter((t) => t.healthCheckResults.some((h) => !h.alive)).length,
    ...(withTasks ? { tasks: own.map(marathonTask) } : {}),
  };
}

const EMBED = Type.Array(Type.String({ maxLength: 64 }), { description: 'apps.tasks, apps.counts, apps.deployments, apps.readiness, apps.lastTaskFailure, apps.taskStats (counts and deployments are always shown)' });
const ListQuery = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 255, description: 'only apps whose id contains this text' })),
  cmd: Type.Optional(Type.String({ maxLength: 1024, description: 'only apps whose cmd contains this text' })),
  label: Type.Optional(Type.String({ maxLength: 1024, description: 'only apps with this label (`key`) or label value (`key==value`)' })),
  embed: Type.Optional(EMBED),
});
const WriteQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'override the lock of a running deployment (it is cancelled)' })),
  ...DeadlineQuery,
});
const PutQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false })),
  ...DeadlineQuery,
  partialUpdate: Type.Optional(Type.Boolean({ default: true, description: 'merge the body into the current definition (true, like PATCH) or replace it (false)' })),
});
const DeleteQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'override the lock of a running deployment (it is cancelled)' })),
  ...DeadlineQuery,
  scale: Type.Optional(Type.Boolean({ default: false, description: 'killing tasks (/v2/apps/<id>/tasks[/<task id>]): also lower the app\'s instances, so they are not replaced' })),
  wipe: Type.Optional(Type.Boolean({ default: false, description: 'killing tasks: also expunge their records as soon as they are terminal (not with scale)' })),
  host: Type.Optional(Type.String({ minLength: 1, maxLength: 253, description: 'killing an app\'s tasks (/v2/apps/<id>/tasks): only those on this agent host name (`*` = all)' })),
});
const GetQuery = Type.Object({ embed: Type.Optional(EMBED) });
const Wildcard = Type.Object({ '*': Type.String({ maxLength: 512 }) });

/**
 * A copy of a JSON schema without `default` keywords. The API's validator
 * fills defaults in (`useDefaults`); a partial update must not, or every
 * field it leaves out would be reset to Marathon's default.
 */
export function withoutDefaults<T>(schema: T): T {
  const walk = (node: unknown, isMap: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => walk(n, false));
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (!isMap && k === 'default') continue;
      out[k] = walk(v, !isMap && (k === 'properties' || k === 'patternProperties'));
    }
    return out;
  };
  return walk(schema, false) as T;
}

/** PUT/PATCH body: an app definition whose id may be left out (the path gives it), or `{version}` to go back to a stored version. */
export const AppUpdate = withoutDefaults(Type.Object(
  {
    ...AppDefinition.properties,
    id: Type.Optional(Type.String({ pattern: APP_ID_INPUT_PATTERN, maxLength: 255 })),
    version: Type.Optional(AppVersionTimestamp),
  },
  { additionalProperties: false, description: 'A Marathon app update: fields to change, or {"version": "<stored version>"} to roll back to it.' },
));
type AppUpdate = Static<typeof AppUpdate>;

const DeploymentRef = Type.Object({ deploymentId: Type.String(), version: Type.String() });

export function refuseReserved(appId: string): void {
  const last = appId.slice(appId.lastIndexOf('/') + 1);
  if (RESERVED_ELEMENTS.includes(last)) {
    throw new StrataError('RECORD_ID_INVALID', `app id ${appId} is invalid: its last element must not be ${RESERVED_ELEMENTS.map((r) => `"${r}"`).join(', ')} (they name parts of an app in /v2/apps paths)`);
  }
}

/** The stored form of a definition: Marathon's defaults applied (the write stamps the version). */
export function definitionOf(def: AppDefinition): Omit<App, 'version'> {
  const { version: _v, ...app } = withAppDefaults(def, { version: '1970-01-01T00:00:00.000Z' });
  return app;
}

/**
 * Errors in Marathon's shapes: APP_LOCKED with `deployments` at the top
 * level of the body; invalid app JSON (RECORD_INVALID, or a bad request
 * with field details) as Marathon's 422 `{message: 'Object is not valid',
 * details: [{path, errors}]}`.
 */
export async function marathonErrors<T>(reply: FastifyReply, run: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await run();
  } catch (err) {
    if (isStrataError(err, 'APP_LOCKED')) {
      const { deployments } = err.details as { deployments: { id: string }[] };
      return reply.code(409).type('application/json').send({ ...err.toJSON(), deployments });
    }
    if (isStrataError(err, 'API_BAD_REQUEST') && Array.isArray(err.details)) return invalidApp(reply, err.code, err.details as { path: string; errors: string[] }[]);
    if (isStrataError(err, 'RECORD_INVALID') && Array.isArray(err.details)) {
      const byPath = new Map<string, string[]>();
      for (const issue of err.details as Issue[]) byPath.set(issue.path || '/', [...(byPath.get(issue.path || '/') ?? []), issue.message]);
      return invalidApp(reply, err.code, [...byPath].map(([path, errors]) => ({ path, errors })));
    }
    throw err;
  }
}

/** Marathon's 422 body for invalid app JSON: `{code, message: 'Object is not valid', details: [{path, errors}]}`. */
export function invalidApp(reply: FastifyReply, code: string, details: readonly { path: string; errors: readonly string[] }[]): FastifyReply {
  return reply.code(422).type('application/json').send({ code, message: 'Object is not valid', details });
}

/** Merge `extra` issues into `{path, errors}` details, one entry per path. */
function mergeDetails(details: { path: string; errors: string[] }[], extra: readonly Issue[]): { path: string; errors: string[] }[] {
  const byPath = new Map(details.map((d) => [d.path, [...d.errors]]));
  for (const issue of extra) {
    const path = issue.path || '/';
    const list = byPath.get(path) ?? [];
    if (!list.includes(issue.message)) list.push(issue.message);
    byPath.set(path, list);
  }
  return [...byPath].map(([path, errors]) => ({ path, errors }));
}

/** The cross-field rules' issues for a body whose shape may be wrong (best effort: rules that cannot run are skipped). */
function crossFieldIssues(body: unknown): Issue[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [];
  try {
    const def = { ...(body as Record<string, unknown>) };
    if (typeof def['id'] !== 'string') def['id'] = '/x';
    return checkApp(withAppDefaults(def as AppDefinition, { version: '1970-01-01T00:00:00.000Z' }));
  } catch {
    return [];
  }
}

/**
 * Route error handler of the /v2 app writes: a body that fails the schema
 * answers Marathon's 422 listing every problem, the schema's and (for a
 * whole definition) the model's cross-field rules'. Other errors go to the
 * API's handler.
 */
export const v2Invalid = (wholeDefinition: boolean) =>
  (error: FastifyError & { validationContext?: string }, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (!error.validation || (error.validationContext !== undefined && error.validationContext !== 'body')) throw error;
    const details = validationDetails(error.validation as Parameters<typeof validationDetails>[0], error.validationContext);
    return invalidApp(reply, 'API_BAD_REQUEST', wholeDefinition ? mergeDetails(details, crossFieldIssues(request.body)) : details);
  };

export function deploymentReply(reply: FastifyReply, result: ChangeResult, created: boolean, location?: string): FastifyReply {
  reply.header('marathon-deployment-id', result.deploymentId);
  if (created && location) reply.header('location', location);
  return reply.code(created ? 201 : 200).send({ deploymentId: result.deploymentId, version: result.version });
}

export async function listVersions(ctx: ApiContext, appId: string): Promise<App[]> {
  const { entries } = await ctx.store.list(appVersionPrefix(appId));
  const versions: App[] = [];
  for (const entry of entries) {
    const d = decodeEntry('appVersion', entry);
    if (d.ok && parseAppVersionId(d.record.id)?.appId === appId) versions.push(d.record.value);
  }
  return versions.sort((a, b) => Date.parse(b.version) - Date.parse(a.version));
}

async function storedVersion(ctx: ApiContext, appId: string, version: string): Promise<App> {
  if (!new RegExp(VERSION_PATTERN).test(version)) throw new StrataError('RECORD_NOT_FOUND', `app ${appId} has no version ${JSON.stringify(version)}`);
  const found = await ctx.records.get('appVersion', `${appId}@${version}`);
  if (!found) throw new StrataError('RECORD_NOT_FOUND', `app ${appId} has no version ${version}`);
  return found.value;
}

export function marathonAppRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/v2/apps', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: { summary: 'Every app the caller may read (Marathon GET /v2/apps)', querystring: ListQuery },
  }, async (request) => {
    const [{ apps, deployments }, tasks, principal] = await Promise.all([
      readState(ctx),
      ctx.records.list('task'),
      ctx.iam.getPrincipal(request.principalUid ?? ''),
    ]);
    const { id, cmd, label, embed = [] } = request.query;
    const withTasks = embed.includes('apps.tasks');
    const [labelKey, labelValue] = label === undefined ? [] : label.split('==');
    // Tasks and deployments grouped by app once: each app then reads only its own (not every task per app).
    const tasksByApp = new Map<string, Task[]>();
    for (const { value: t } of tasks.records) {
      const list = tasksByApp.get(t.appId);
      if (list) list.push(t);
      else tasksByApp.set(t.appId, [t]);
    }
    const deploymentsByApp = new Map<string, Deployment[]>();
    for (const { value: d } of deployments) {
      for (const appId of new Set(d.affectedApps)) {
        const list = deploymentsByApp.get(appId);
        if (list) list.push(d);
        else deploymentsByApp.set(appId, [d]);
      }
    }
    const visible: MarathonApp[] = [];
    for (const { value: a } of apps.values()) {
      if (id !== undefined && !a.id.includes(id)) continue;
      if (cmd !== undefined && !(a.cmd ?? '').includes(cmd)) continue;
      if (labelKey !== undefined && (!(labelKey in a.labels) || (labelValue !== undefined && a.labels[labelKey] !== labelValue))) continue;
      if (!principal || !allows(principal, appRid(a.id), 'read')) continue;
      visible.push(marathonApp(a, deploymentsByApp.get(a.id) ?? [], tasksByApp.get(a.id) ?? [], withTasks));
    }
    return { apps: visible };
  });

  app.post('/v2/apps', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Create an app (Marathon POST /v2/apps): 201 with the app and its deployment; 409 if it exists',
      description: 'Also needs create on dcos:service:marathon:marathon:services:<app id>. The deployment controller then places the instances.',
      querystring: WriteQuery,
      body: AppDefinition,
    },
    errorHandler: v2Invalid(true),
    // The app id is only in the body: authorise it once the body is parsed, before it is validated.
    preValidation: async (request) => {
      const id = (request.body as { id?: unknown } | undefined)?.id;
      if (typeof id === 'string' && new RegExp(APP_ID_INPUT_PATTERN).test(id)) await assertCallerMay(ctx, request, appRid(absoluteAppId(id)), 'create');
    },
  }, async (request, reply) =>
    marathonErrors(reply, async () => {
      const def = request.body;
      const id = absoluteAppId(def.id);
      refuseReserved(id);
      const next = definitionOf(def);
      const result = await changeApps(ctx, (state) => {
        if (state.apps.has(id)) throw new StrataError('APP_EXISTS', `An app with id [${id}] already exists.`);
        return [{ id, next }];
      }, { force: request.query.force ?? false, deadline: deadlineOf(request.query) });
      const stored = result.apps.get(id)!;
      reply.header('location', `/v2/apps${id}`).header('marathon-deployment-id', result.deploymentId);
      return reply.code(201).send({ ...marathonApp(stored, result.deployment ? [result.deployment] : [], [], true) });
    }),
  );

  app.get('/v2/apps/*', {
    config: { permission: requires(ridOf, 'read') },
    schema: {
      summary: 'One app (/v2/apps/<id>), its tasks (/v2/apps/<id>/tasks), its versions (/v2/apps/<id>/versions) or one version (/v2/apps/<id>/versions/<version>)',
      params: Wildcard,
      querystring: GetQuery,
    },
  }, async (request) => {
    const path = appIdOf(request);
    const current = await ctx.records.get('app', path.appId);
    if (!current) throw new StrataError('RECORD_NOT_FOUND', `App '${path.appId}' does not exist`);
    if (path.sub === 'tasks') {
      const tasks = await ctx.records.list('task');
      return { tasks: tasks.records.map((t) => t.value).filter((t) => t.appId === path.appId).map(marathonTask) };
    }
    if (path.sub === 'versions') {
      if (path.version !== undefined) return storedVersion(ctx, path.appId, path.version);
      return { versions: (await listVersions(ctx, path.appId)).map((v) => v.version) };
    }
    const [deployments, tasks] = await Promise.all([ctx.records.list('deployment'), ctx.records.list('task')]);
    return { app: marathonApp(current.value, deployments.records.map((d) => d.value), tasks.records.map((t) => t.value), true) };
  });

  const update = (partialDefault: boolean) =>
    async (request: FastifyRequest<{ Params: { '*': string }; Querystring: { force?: boolean; partialUpdate?: boolean; deadlineSeconds?: number; rollbackOnFailure?: boolean }; Body: AppUpdate }>, reply: FastifyReply) =>
      marathonErrors(reply, async () => {
        const path = appIdOf(request);
        if (path.sub !== undefined) throw new StrataError('API_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`);
        const id = path.appId;
        refuseReserved(id);
        const body = request.body;
        if (body.id !== undefined && absoluteAppId(body.id) !== id) {
          throw new StrataError('API_BAD_REQUEST', `the body's id ${body.id} differs from the path's ${id}`, { details: [{ path: '/id', errors: ['must match the app id in the path'] }] });
        }
        const partial = request.query.partialUpdate ?? partialDefault;
        const { version: restore, ...fields } = body;
        if (restore !== undefined && Object.keys(fields).some((k) => k !== 'id')) {
          throw new StrataError('API_BAD_REQUEST', 'version cannot be combined with other fields: send {"version": "<stored version>"} to roll back', { details: [{ path: '/version', errors: ['cannot be combined with other fields'] }] });
        }
        const restored = restore === undefined ? undefined : await storedVersion(ctx, id, restore);
        let mayCreate: boolean | undefined;
        const result = await changeApps(ctx, async (state): Promise<AppChange[]> => {
          const prev = state.apps.get(id)?.value;
          if (!prev) {
            if (restored) throw new StrataError('RECORD_NOT_FOUND', `App '${id}' does not exist`);
            mayCreate ??= await callerMay(ctx, request, appRid(id), 'create');
            if (!mayCreate) throw new StrataError('API_FORBIDDEN', `${request.principalUid ?? 'the caller'} lacks create on ${appRid(id)}`, { details: { rid: appRid(id), action: 'create' } });
          }
          if (restored) {
            const { version: _v, ...old } = restored;
            return [{ id, next: old }];
          }
          const { version: _pv, ...base } = prev ?? ({} as Partial<App>);
          const def = { ...(partial ? base : {}), ...fields, id } as AppDefinition;
          return [{ id, next: definitionOf(def) }];
        }, { force: request.query.force ?? false, deadline: deadlineOf(request.query) });
        return deploymentReply(reply, result, !result.existed.get(id), `/v2/apps${id}`);
      });

  app.put('/v2/apps/*', {
    config: { permission: requires(ridOf, 'update') },
    schema: {
      summary: 'Create or change an app (Marathon PUT /v2/apps/<id>); partialUpdate defaults to true, like PATCH',
      description: 'Creating also needs create on the app. {"version": V} rolls back to stored version V. 409 while a deployment locks the app unless ?force=true. The deployment controller then replaces, starts or kills tasks.',
      params: Wildcard,
      querystring: PutQuery,
      body: AppUpdate,
      response: { 200: DeploymentRef, 201: DeploymentRef },
    },
    errorHandler: v2Invalid(false),
  }, update(true));

  app.patch('/v2/apps/*', {
    config: { permission: requires(ridOf, 'update') },
    schema: {
      summary: 'Change some fields of an app (Marathon PATCH /v2/apps/<id>)',
      params: Wildcard,
      querystring: WriteQuery,
      body: AppUpdate,
      response: { 200: DeploymentRef, 201: DeploymentRef },
    },
    errorHandler: v2Invalid(false),
  }, update(true));

  app.post('/v2/apps/*', {
    config: { permission: requires(ridOf, 'update') },
    schema: {
      summary: 'Restart an app (Marathon POST /v2/apps/<id>/restart): a deployment with a RestartApplication step replaces every task',
      description: 'The app is written again at a new version (its definition unchanged). 409 while a deployment locks the app unless ?force=true.',
      params: Wildcard,
      querystring: WriteQuery,
      response: { 200: DeploymentRef },
    },
  }, async (request, reply) =>
    marathonErrors(reply, async () => {
      const path = appIdOf(request);
      if (path.sub !== 'restart') throw new StrataError('API_NOT_FOUND', `no route for POST ${request.url.split('?')[0] ?? ''}`);
      const id = path.appId;
      const result = await changeApps(ctx, (state) => {
        const app = state.apps.get(id)?.value;
        if (!app) throw new StrataError('RECORD_NOT_FOUND', `App '${id}' does not exist`);
        const { version: _v, ...definition } = app;
        return [{ id, next: definition }];
      }, { force: request.query.force ?? false, restart: [id], deadline: deadlineOf(request.query) });
      return deploymentReply(reply, result, false);
    }),
  );

  app.delete('/v2/apps/*', {
    // Marathon: removing an app needs delete on it; killing its tasks needs update.
    config: { permission: requires(ridOf, (request) => (pathOf(request).sub === 'tasks' ? 'update' : 'delete')) },
    schema: {
      summary: 'Remove an app (Marathon DELETE /v2/apps/<id>): a deployment stops it; or kill its tasks (DELETE /v2/apps/<id>/tasks[?host=&scale=&wipe=]) or one task (DELETE /v2/apps/<id>/tasks/<task id>[?scale=&wipe=])',
      description:
        'Removing needs delete on the app, killing tasks needs update (as Marathon). 409 while a deployment locks the app unless ?force=true. ' +
        'The deployment controller then kills its tasks. Killing sets tasks KILLING and answers {task} (one) or {tasks} (all, or those on ?host=); ' +
        'the controller replaces them, unless ?scale=true lowers instances (then {deploymentId, version}); ?wipe=true also expunges their records once terminal (400 with scale).',
      params: Wildcard,
      querystring: DeleteQuery,
    },
  }, async (request, reply) =>
    marathonErrors(reply, async () => {
      const path = appIdOf(request);
      const killOptions = { scale: request.query.scale ?? false, force: request.query.force ?? false, wipe: request.query.wipe ?? false };
      if (path.sub === 'tasks' && path.taskId !== undefined) {
        const taskId = path.taskId;
        const { tasks, change } = await killTasks(ctx, [taskId], {
          ...killOptions,
          authorize: async (appId) => {
            if (appId !== path.appId) throw new StrataError('RECORD_NOT_FOUND', `Task '${taskId}' does not exist in app '${path.appId}'`);
          },
        });
        if (change) return deploymentReply(reply, change, false);
        return reply.code(200).send({ task: marathonTask(tasks[0]!) });
      }
      if (path.sub === 'tasks') {
        if (!(await ctx.records.get('app', path.appId))) throw new StrataError('RECORD_NOT_FOUND', `App '${path.appId}' does not exist`);
        const host = request.query.host;
        const own = (await ctx.records.list('task')).records
          .map((r) => r.value)
          .filter((t) => t.appId === path.appId && !TERMINAL_TASK_STATES.has(t.state) && t.state !== 'KILLING' && (host === undefined || host === '*' || t.host === host));
        if (own.length === 0) {
          if (killOptions.scale && killOptions.wipe) throw new StrataError('API_BAD_REQUEST', 'You cannot use scale and wipe at the same time.');
          return reply.code(200).send({ tasks: [] });
        }
        const { tasks, change } = await killTasks(ctx, own.map((t) => t.id), {
          ...killOptions,
          authorize: async (appId) => {
            if (appId !== path.appId) throw new StrataError('RECORD_NOT_FOUND', `a task of another app than '${path.appId}' was selected`);
          },
        });
        if (change) return deploymentReply(reply, change, false);
        return reply.code(200).send({ tasks: tasks.map(marathonTask) });
      }
      if (path.sub !== undefined) throw new StrataError('API_NOT_FOUND', `no route for DELETE ${request.url.split('?')[0] ?? ''}`);
      const id = path.appId;
      const result = await changeApps(ctx, (state) => {
        if (!state.apps.has(id)) throw new StrataError('RECORD_NOT_FOUND', `App '${id}' does not exist`);
        return [{ id, next: undefined }];
      }, { force: request.query.force ?? false, deadline: deadlineOf(request.query) });
      return deploymentReply(reply, result, false);
    }),
  );
}


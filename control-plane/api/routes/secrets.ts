/**
 * Secrets (DC/OS `/secrets/v1`, store `default`):
 *
 * - `PUT /secrets/v1/secret/{store}/{path}` `{value, description?}` creates
 *   (201; 409 `SECRET_EXISTS`), `PATCH` replaces the value (204), `GET`
 *   answers `{value}` (plus description, author, times), `DELETE` (204);
 *   `GET .../{path}?list=true` answers `{array: [paths under it]}`.
 *   Permissions as DC/OS: `dcos:secrets:default:/<path>` with create, read,
 *   update, delete (a grant on a parent path covers the secrets under it),
 *   listing `read` on `dcos:secrets:list:default:/<path>`.
 * - `POST /secrets/v1/rotate-key` (superuser): a new key-encryption key
 *   version (`{generate: false}` adopts one put in the KEK file instead),
 *   then every data key is re-wrapped in the background; `GET` the same
 *   path for its progress.
 * - `GET /v1/agents/{agentId}/tasks/{taskId}/secrets` (the agent, as for the
 *   task's app: `update` on `dcos:mesos:master:agent`): the values of the
 *   task's app's `secrets`, only while the task is being launched (STAGING
 *   or STARTING) on that agent, each secret inside the app's space
 *   (`SECRET_NOT_ALLOWED` otherwise). The values go to the agent's executor
 *   and nowhere else: never stored with the app, the task or a log.
 *
 * Every answer holding a value is `cache-control: no-store`. Values are
 * never logged (fastify logs no bodies) and never part of an error message.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { appVersionId } from '../../model/keys.ts';
import { AgentId, TaskId } from '../../model/schemas.ts';
import { SUPERUSER_RID, type Action } from '../../../security/iam.ts';
import { DEFAULT_SECRET_STORE, normalizeSecretPath, secretListRid, secretRid, secretSpaceProblem, type SecretVault } from '../../../security/secrets/vault.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { AGENT_RID } from './agents.ts';

/** Values up to 1 MiB of text (the body limit applies first). */
const MAX_VALUE_LENGTH = 1024 * 1024;
const LAUNCHING = new Set(['STAGING', 'STARTING']);

const Params = Type.Object({ store: Type.String({ maxLength: 64 }), '*': Type.String({ maxLength: 1024 }) });
const Body = Type.Object(
  {
    value: Type.String({ maxLength: MAX_VALUE_LENGTH }),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    /** Accepted for DC/OS clients; the author recorded is the caller. */
    author: Type.Optional(Type.String({ maxLength: 96 })),
    labels: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object({ list: Type.Optional(Type.Boolean({ description: 'list the secret paths under this path instead of reading one' })) });

/** The wildcard path as the permission check sees it (validated by the handler, after authentication). */
const rawPath = (request: { params: unknown }): string => String((request.params as Record<string, unknown>)['*'] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
const isList = (request: { query: unknown }): boolean => {
  const list = (request.query as Record<string, unknown> | undefined)?.['list'];
  return list === true || list === 'true';
};

const ACTIONS: Record<string, Action> = { GET: 'read', PUT: 'create', PATCH: 'update', DELETE: 'delete' };

export function secretRoutes(app: ApiInstance, ctx: ApiContext): void {
  const vault = (store: string): SecretVault => {
    if (store !== DEFAULT_SECRET_STORE) throw new StrataError('SECRET_STORE_NOT_FOUND', `no secret store ${JSON.stringify(store.slice(0, 64))}; the store is "${DEFAULT_SECRET_STORE}"`);
    if (!ctx.secrets) throw new StrataError('SECRET_STORE_NOT_FOUND', 'this API has no secret store');
    return ctx.secrets;
  };

  const permission = requires(
    (request) => (request.method === 'GET' && isList(request) ? secretListRid(rawPath(request)) : secretRid(rawPath(request))),
    (request) => ACTIONS[request.method] ?? 'full',
  );
  const description = 'Needs create/read/update/delete on dcos:secrets:default:/<path> (or a parent path); listing needs read on dcos:secrets:list:default:/<path>.';

  app.route({
    method: ['GET', 'DELETE'],
    url: '/secrets/v1/secret/:store/*',
    config: { permission },
    schema: {
      summary: 'GET: the secret ({value}); GET ?list=true: the paths under this one ({array}); DELETE: remove it',
      description,
      params: Params,
      querystring: ListQuery,
    },
    handler: async (request, reply) => {
      const store = vault(request.params.store);
      const raw = request.params['*'];
      if (request.method === 'GET' && request.query.list === true) {
        const under = raw.replace(/^\/+|\/+$/g, '') === '' ? '' : normalizeSecretPath(raw);
        return { array: await store.list(under) };
      }
      const path = normalizeSecretPath(raw);
      if (request.method === 'DELETE') {
        await store.delete(path);
        return reply.code(204).send();
      }
      const { value, metadata: meta } = await store.readWithMetadata(path);
      reply.header('cache-control', 'no-store');
      return {
        value: value.toString('utf8'),
        ...(meta.description === undefined ? {} : { description: meta.description }),
        ...(meta.author === undefined ? {} : { author: meta.author }),
        created: meta.createdAt,
        updated: meta.updatedAt,
      };
    },
  });

  app.route({
    method: ['PUT', 'PATCH'],
    url: '/secrets/v1/secret/:store/*',
    config: { permission },
    schema: {
      summary: 'PUT: create the secret ({value, description?}; 201, 409 if it exists); PATCH: replace its value (204)',
      description,
      params: Params,
      body: Body,
    },
    handler: async (request, reply) => {
      const store = vault(request.params.store);
      const path = normalizeSecretPath(request.params['*']);
      const { value, description: text } = request.body;
      const author = request.principalUid;
      const write = { value: Buffer.from(value, 'utf8'), ...(text === undefined ? {} : { description: text }), ...(author === undefined ? {} : { author }) };
      if (request.method === 'PUT') {
        await store.create(path, write);
        return reply.code(201).send();
      }
      await store.update(path, write);
      return reply.code(204).send();
    },
  });

  const RotationStatus = Type.Object({
    kekVersion: Type.Integer(),
    kekVersions: Type.Array(Type.Integer()),
    running: Type.Boolean(),
    total: Type.Integer(),
    pending: Type.Integer(),
    rewrapped: Type.Integer(),
    failed: Type.Integer(),
    lastError: Type.Optional(Type.String()),
  });

  app.post('/secrets/v1/rotate-key', {
    config: { permission: requires(SUPERUSER_RID, 'full') },
    schema: {
      summary: 'Rotate the key-encryption key: a new version (or, with generate=false, the newest in the KEK file) becomes current and every data key is re-wrapped in the background; reads keep working throughout',
      body: Type.Optional(Type.Object({ generate: Type.Optional(Type.Boolean({ default: true })) }, { additionalProperties: false })),
      response: { 202: RotationStatus },
    },
  }, async (request, reply) => {
    const status = await vault(DEFAULT_SECRET_STORE).rotate({ generate: request.body?.generate !== false });
    return reply.code(202).send(status);
  });

  app.get('/secrets/v1/rotate-key', {
    config: { permission: requires(SUPERUSER_RID, 'full') },
    schema: { summary: 'The key-encryption key versions and the progress of the re-wrap', response: { 200: RotationStatus } },
  }, async () => vault(DEFAULT_SECRET_STORE).status());

  app.get('/v1/agents/:agentId/tasks/:taskId/secrets', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'The values of a launching task\'s secrets (by the app\'s secret names), for the agent that launches it',
      params: Type.Object({ agentId: AgentId, taskId: TaskId }),
      response: { 200: Type.Object({ secrets: Type.Record(Type.String(), Type.String()) }) },
    },
  }, async (request, reply) => {
    const { agentId, taskId } = request.params;
    const task = await ctx.records.get('task', taskId);
    if (!task || task.value.agentId !== agentId) throw new StrataError('RECORD_NOT_FOUND', `agent ${agentId} has no task ${JSON.stringify(taskId)}`);
    if (!LAUNCHING.has(task.value.state)) throw new StrataError('SECRET_NOT_ALLOWED', `task ${taskId} is ${task.value.state}: secrets are handed out only while a task is launched (STAGING, STARTING)`);
    const version = await ctx.records.get('appVersion', appVersionId(task.value.appId, task.value.version));
    if (!version) throw new StrataError('RECORD_NOT_FOUND', `app ${task.value.appId} at version ${task.value.version} is no longer stored`);
    const store = vault(DEFAULT_SECRET_STORE);
    const secrets: Record<string, string> = {};
    for (const [name, { source }] of Object.entries(version.value.secrets ?? {})) {
      let path: string;
      try {
        path = normalizeSecretPath(source, `secrets.${name}.source`);
      } catch (err) {
        throw new StrataError('SECRET_NOT_ALLOWED', `app ${task.value.appId}: ${(err as Error).message}`);
      }
      const problem = secretSpaceProblem(task.value.appId, path);
      if (problem !== undefined) throw new StrataError('SECRET_NOT_ALLOWED', `app ${task.value.appId}, secret ${name}: ${problem}`);
      secrets[name] = (await store.read(path)).toString('utf8');
    }
    reply.header('cache-control', 'no-store');
    return { secrets };
  });
}

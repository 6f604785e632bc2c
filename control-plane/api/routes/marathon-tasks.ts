/**
 * Marathon's `GET /v2/tasks`: every task of the apps the caller may read, in
 * Marathon's task JSON, optionally filtered by `?status=` (Marathon's
 * `running`, `staging`, `killing`, …, i.e. the Mesos state without `TASK_`,
 * case-insensitive; repeatable). `GET /v2/apps/{id}/tasks` lives in
 * `marathon-apps.ts` (the wildcard route of single apps).
 *
 * `POST /v2/tasks/delete` (`{ids: [...]}`) kills tasks: each is set to
 * KILLING (the agent kills it); the controller replaces them unless
 * `?scale=true` lowers their apps' instances in one deployment. Needs
 * update on every app whose task is killed.
 */
import { Type } from 'typebox';
import { allows } from '../../../security/iam.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { marathonTask } from './marathon-apps.ts';
import { MARATHON_GATE_RID, appRid, assertCallerMay, killTasks, lockedError } from './marathon-store.ts';
import { isStrataError } from '../../../common/errors.ts';

const Query = Type.Object({
  status: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z_]{1,32}$' }), { description: 'only tasks in these states (e.g. running, staging)' })),
});

const DeleteBody = Type.Object({ ids: Type.Array(Type.String({ minLength: 1, maxLength: 400 }), { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false });
const DeleteQuery = Type.Object({
  scale: Type.Optional(Type.Boolean({ default: false, description: 'also lower the apps\' instances, so the tasks are not replaced' })),
  force: Type.Optional(Type.Boolean({ default: false, description: 'with scale: override the lock of a running deployment' })),
  wipe: Type.Optional(Type.Boolean({ default: false, description: 'also expunge the tasks\' records as soon as they are terminal (not with scale)' })),
});

export function marathonTaskRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.post('/v2/tasks/delete', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Kill tasks (Marathon POST /v2/tasks/delete {ids}): {tasks} set KILLING, or with ?scale=true {deploymentId, version} of the scale-down',
      querystring: DeleteQuery,
      body: DeleteBody,
    },
  }, async (request, reply) => {
    try {
      const { tasks, change } = await killTasks(ctx, request.body.ids, {
        scale: request.query.scale ?? false,
        force: request.query.force ?? false,
        wipe: request.query.wipe ?? false,
        authorize: (appId) => assertCallerMay(ctx, request, appRid(appId), 'update'),
      });
      if (change) {
        reply.header('marathon-deployment-id', change.deploymentId);
        return { deploymentId: change.deploymentId, version: change.version };
      }
      return { tasks: tasks.map(marathonTask) };
    } catch (err) {
      if (isStrataError(err, 'APP_LOCKED')) {
        const { deployments } = err.details as { deployments: { id: string }[] };
        return reply.code(409).type('application/json').send({ ...lockedError(deployments).toJSON(), deployments });
      }
      throw err;
    }
  });

  app.get('/v2/tasks', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: { summary: 'Every task of the apps the caller may read (Marathon GET /v2/tasks), optionally by ?status=running', querystring: Query },
  }, async (request) => {
    const [tasks, principal] = await Promise.all([ctx.records.list('task'), ctx.iam.getPrincipal(request.principalUid ?? '')]);
    if (!principal) return { tasks: [] };
    const wanted = request.query.status?.map((s) => s.toUpperCase().replace(/^TASK_/, ''));
    return {
      tasks: tasks.records
        .map((r) => r.value)
        .filter((t) => (wanted === undefined || wanted.includes(t.state)) && allows(principal, appRid(t.appId), 'read'))
        .map(marathonTask),
    };
  });
}

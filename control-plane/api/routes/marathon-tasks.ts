/**
 * Marathon's `GET /v2/tasks`: every task of the apps the caller may read, in
 * Marathon's task JSON, optionally filtered by `?status=` (Marathon's
 * `running`, `staging`, `killing`, …, i.e. the Mesos state without `TASK_`,
 * case-insensitive; repeatable). `GET /v2/apps/{id}/tasks` lives in
 * `marathon-apps.ts` (the wildcard route of single apps).
 */
import { Type } from 'typebox';
import { allows } from '../../../security/iam.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { marathonTask } from './marathon-apps.ts';
import { MARATHON_GATE_RID, appRid } from './marathon-store.ts';

const Query = Type.Object({
  status: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z_]{1,32}$' }), { description: 'only tasks in these states (e.g. running, staging)' })),
});

export function marathonTaskRoutes(app: ApiInstance, ctx: ApiContext): void {
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

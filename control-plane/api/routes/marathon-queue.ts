/**
 * Marathon's `GET /v2/queue`: the apps with instances still to launch, as
 * `{queue: [{app, count, delay: {timeLeftSeconds, overdue}, since}]}`
 * (`scheduler/monitor/queue.ts` decides it from the stored apps, tasks and
 * agents). Only apps the caller may read are listed.
 *
 * The restart backoff is kept in the leading controller's memory and not
 * readable from here, so `delay` is always `{timeLeftSeconds: 0, overdue:
 * true}` for now; `processedOffersSummary` and `lastUnusedOffers` (offer
 * statistics) do not exist in Strata and are left out.
 */
import { Type } from 'typebox';
import { allows } from '../../../security/iam.ts';
import { launchQueue } from '../../../scheduler/monitor/queue.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { marathonApp } from './marathon-apps.ts';
import { MARATHON_GATE_RID, appRid } from './marathon-store.ts';

const Query = Type.Object({
  embed: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { description: 'accepted for Marathon compatibility (lastUnusedOffers is never shown)' })),
});

export function marathonQueueRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/v2/queue', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Apps waiting for instances to launch (Marathon GET /v2/queue)',
      description:
        'count = instances minus active (non-terminal, not inactive-unreachable) tasks of any version. ' +
        'The restart backoff lives in the leading controller\'s memory and is not exposed yet: delay is always {timeLeftSeconds: 0, overdue: true}.',
      querystring: Query,
    },
  }, async (request) => {
    const [apps, tasks, agents, deployments, principal] = await Promise.all([
      ctx.records.list('app'),
      ctx.records.list('task'),
      ctx.records.list('agent'),
      ctx.records.list('deployment'),
      ctx.iam.getPrincipal(request.principalUid ?? ''),
    ]);
    const taskValues = tasks.records.map((r) => r.value);
    const entries = launchQueue(apps.records.map((r) => r.value), taskValues, agents.records.map((r) => r.value), Date.now());
    return {
      queue: entries
        .filter((e) => principal !== undefined && allows(principal, appRid(e.app.id), 'read'))
        .map((e) => ({
          count: e.count,
          delay: e.delay,
          since: e.since,
          app: marathonApp(e.app, deployments.records.map((d) => d.value), taskValues, false),
        })),
    };
  });
}

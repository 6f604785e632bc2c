/**
 * Marathon's `GET /v2/queue`: the apps with instances still to launch, as
 * `{queue: [{app, count, delay: {timeLeftSeconds, overdue}, since}]}`
 * (`scheduler/monitor/queue.ts` decides it from the stored apps, tasks,
 * agents and launch delays). Only apps the caller may read are listed.
 * `delay` is the app's restart backoff, which the leading deployment
 * controller keeps in the store (`launchDelay` records), so it is the same
 * on every master and survives a leader failover.
 *
 * `DELETE /v2/queue/{appId}/delay` resets an app's backoff (Marathon's
 * "reset the launch delay"): its record is rewritten with no failures and
 * no delay (check-and-set), and the controller launches at once. 204; 404
 * for an unknown app. Needs update on the app.
 *
 * `processedOffersSummary` and `lastUnusedOffers` (offer statistics) do not
 * exist in Strata and are left out.
 */
import type { FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { allows } from '../../../security/iam.ts';
import { launchQueue } from '../../../scheduler/monitor/queue.ts';
import { idProblem } from '../../model/keys.ts';
import type { LaunchDelay } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { marathonApp } from './marathon-apps.ts';
import { MARATHON_GATE_RID, appRid } from './marathon-store.ts';

const Query = Type.Object({
  embed: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { description: 'accepted for Marathon compatibility (lastUnusedOffers is never shown)' })),
});
const Wildcard = Type.Object({ '*': Type.String({ maxLength: 512 }) });

/** `group/web/delay` → `/group/web` (undefined when the path does not end in `/delay`). */
function delayAppId(request: FastifyRequest): string | undefined {
  const parts = ((request.params as { '*'?: string })['*'] ?? '').split('/').filter((p) => p !== '');
  if (parts.length < 2 || parts[parts.length - 1] !== 'delay') return undefined;
  return `/${parts.slice(0, -1).join('/')}`;
}

const resetCounters = new WeakMap<Registry, Counter>();
function resetCounter(registry: Registry): Counter {
  let c = resetCounters.get(registry);
  if (!c) {
    c = new Counter({ name: 'strata_scheduler_launch_delay_resets_total', help: 'Launch delays reset through DELETE /v2/queue/{id}/delay', registers: [registry] });
    resetCounters.set(registry, c);
  }
  return c;
}

export function marathonQueueRoutes(app: ApiInstance, ctx: ApiContext): void {
  const resets = resetCounter(ctx.metrics.registry);
  app.get('/v2/queue', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Apps waiting for instances to launch (Marathon GET /v2/queue), with their launch delay',
      description:
        'count = instances minus active (non-terminal, not inactive-unreachable) tasks of any version. ' +
        'delay = the app\'s restart backoff as the leading controller stored it: {timeLeftSeconds, overdue}.',
      querystring: Query,
    },
  }, async (request) => {
    const [apps, tasks, agents, deployments, delays, principal] = await Promise.all([
      ctx.records.list('app'),
      ctx.records.list('task'),
      ctx.records.list('agent'),
      ctx.records.list('deployment'),
      ctx.records.list('launchDelay'),
      ctx.iam.getPrincipal(request.principalUid ?? ''),
    ]);
    const taskValues = tasks.records.map((r) => r.value);
    const entries = launchQueue(apps.records.map((r) => r.value), taskValues, agents.records.map((r) => r.value), Date.now(), new Map(delays.records.map((r) => [r.id, r.value])));
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

  app.delete('/v2/queue/*', {
    config: { permission: requires((request) => appRid(delayAppId(request) ?? '/'), 'update') },
    schema: {
      summary: 'Reset an app\'s launch delay (Marathon DELETE /v2/queue/<app id>/delay): 204; the controller launches at once',
      params: Wildcard,
    },
  }, async (request, reply) => {
    const appId = delayAppId(request);
    if (appId === undefined) throw new StrataError('API_NOT_FOUND', `no route for DELETE ${request.url.split('?')[0] ?? ''} (use /v2/queue/<app id>/delay)`);
    const problem = idProblem('app', appId);
    if (problem !== undefined) throw new StrataError('RECORD_ID_INVALID', `app id ${JSON.stringify(appId.slice(0, 80))} is invalid: ${problem}`);
    for (let attempt = 0; attempt < 5; attempt++) {
      const [stored, current] = await Promise.all([ctx.records.get('app', appId), ctx.records.get('launchDelay', appId)]);
      if (!stored) throw new StrataError('RECORD_NOT_FOUND', `App '${appId}' does not exist`);
      const now = new Date().toISOString();
      const before = current?.value;
      // Failures up to now are forgiven: lastFailureAt moves to now, so they are not counted again.
      const last = before && before.lastFailureAt > now ? before.lastFailureAt : now;
      const reset: LaunchDelay = { appId, version: stored.value.version, failures: 0, lastFailureAt: last, delayUntil: new Date(0).toISOString() };
      const written = await ctx.records.put('launchDelay', reset, { casIndex: current?.modifyIndex ?? 0 });
      if (written.ok) {
        resets.inc();
        return reply.code(204).send();
      }
    }
    throw new StrataError('RECORD_CONFLICT', `the launch delay of ${appId} changed concurrently five times; retry`);
  });
}

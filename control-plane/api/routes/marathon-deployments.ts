/**
 * Marathon's `/v2/deployments`, `/v2/info` and `/ping`, and the one route
 * module that registers every Marathon route ({@link marathonRoutes}).
 *
 * Deployments are stored and listed, and lock their apps; the deployment
 * controller (`scheduler/controller/`) executes them and deletes each when
 * its apps run as defined.
 */
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { allows } from '../../../security/iam.ts';
import { Deployment } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { STRATA_VERSION } from './system.ts';
import { marathonAppRoutes } from './marathon-apps.ts';
import { marathonGroupRoutes } from './marathon-groups.ts';
import { MARATHON_GATE_RID, appRid, assertCallerMay, changeApps, lockedError, type AppChange } from './marathon-store.ts';

/** The Marathon API level Strata serves (clients check `/v2/info`'s `version`). */
export const MARATHON_API_VERSION = '1.11.0';

const DEPLOYMENT_LIFECYCLE = 'Deployments lock their apps while the deployment controller (leader) executes them: "pending" until it starts, then "running" with currentStep; removed once every affected app runs exactly its instances at its version.';

export function marathonDeploymentRoutes(app: ApiInstance, ctx: ApiContext): void {
  app.get('/v2/deployments', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Deployments not yet finished (Marathon GET /v2/deployments), those touching an app the caller may read',
      description: DEPLOYMENT_LIFECYCLE,
      response: { 200: Type.Array(Deployment) },
    },
  }, async (request) => {
    const [{ records }, principal] = await Promise.all([ctx.records.list('deployment'), ctx.iam.getPrincipal(request.principalUid ?? '')]);
    if (!principal) return [];
    return records
      .map((r) => r.value)
      .filter((d) => d.affectedApps.some((a) => allows(principal, appRid(a), 'read')))
      .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
  });

  app.delete('/v2/deployments/:deploymentId', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: {
      summary: 'Roll a deployment back (a new deployment to the previous versions, 200), or with ?force=true only remove it (202)',
      description: `Needs update on every app the deployment affects. ${DEPLOYMENT_LIFECYCLE}`,
      params: Type.Object({ deploymentId: Type.String({ minLength: 1, maxLength: 128 }) }),
      querystring: Type.Object({ force: Type.Optional(Type.Boolean({ default: false })) }),
    },
  }, async (request, reply) => {
    const id = request.params.deploymentId;
    const found = await ctx.records.get('deployment', id).catch((err: unknown) => {
      if (err instanceof StrataError && err.code === 'RECORD_ID_INVALID') return undefined;
      throw err;
    });
    if (!found) throw new StrataError('RECORD_NOT_FOUND', `DeploymentPlan ${id} does not exist`);
    for (const a of found.value.affectedApps) await assertCallerMay(ctx, request, appRid(a), 'update');
    if (request.query.force) {
      const removed = await ctx.records.delete('deployment', id, { casIndex: found.modifyIndex });
      if (!removed.ok) throw new StrataError('RECORD_CONFLICT', `deployment ${id} changed while it was being removed; retry`);
      return reply.code(202).send();
    }
    const previous = found.value.previous;
    try {
      const result = await changeApps(ctx, async (state): Promise<AppChange[]> => {
        const changes: AppChange[] = [];
        for (const p of previous) {
          if (p.version === undefined) {
            if (state.apps.has(p.app)) changes.push({ id: p.app, next: undefined });
            continue;
          }
          const old = await ctx.records.get('appVersion', `${p.app}@${p.version}`);
          if (!old) throw new StrataError('RECORD_NOT_FOUND', `cannot roll back ${p.app}: its version ${p.version} is no longer stored`);
          const { version: _v, ...definition } = old.value;
          changes.push({ id: p.app, next: definition });
        }
        return changes;
      }, { force: false, replaces: id });
      reply.header('marathon-deployment-id', result.deploymentId);
      return { deploymentId: result.deploymentId, version: result.version };
    } catch (err) {
      if (err instanceof StrataError && err.code === 'APP_LOCKED') {
        const { deployments } = err.details as { deployments: { id: string }[] };
        return reply.code(409).type('application/json').send({ ...lockedError(deployments).toJSON(), deployments });
      }
      throw err;
    }
  });

  app.get('/v2/info', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: { summary: 'Marathon-style information about this scheduler (GET /v2/info)' },
  }, async () => {
    const leader = await ctx.leader().catch(() => undefined);
    return {
      name: 'marathon',
      version: MARATHON_API_VERSION,
      strata_version: STRATA_VERSION,
      buildref: 'strata',
      elected: ctx.role() === 'leader',
      leader: leader ? new URL(leader.apiUrl).host : null,
      frameworkId: null,
      marathon_config: { master: 'strata', mesos_role: '*', max_running_deployments: 100, framework_name: 'marathon' },
      http_config: { http_port: ctx.config.api.port },
    };
  });

  app.get('/ping', {
    config: { permission: requires(MARATHON_GATE_RID, 'full') },
    schema: { summary: 'Marathon liveness (GET /ping): "pong"' },
  }, async (_request, reply) => reply.type('text/plain').send('pong'));
}

/** Every Marathon route (`/v2/apps`, `/v2/groups`, `/v2/deployments`, `/v2/info`, `/ping`). */
export function marathonRoutes(app: ApiInstance, ctx: ApiContext): void {
  marathonAppRoutes(app, ctx);
  marathonDeploymentRoutes(app, ctx);
  marathonGroupRoutes(app, ctx);
}

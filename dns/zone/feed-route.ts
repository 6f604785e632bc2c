/**
 * `GET /v1/dns/cluster-state?epoch=E&index=N&wait=S` on every master: the
 * state the DNS zones are built from, for agents' DNS servers
 * (`http-feed.ts`), as a blocking query over one shared store watch
 * (`feed-hub.ts`). Needs read on the agent resource, which agents hold.
 */
import { Type } from 'typebox';
import type { ApiContext, ApiInstance, RouteModule } from '../../control-plane/api/context.ts';
import { requires } from '../../control-plane/api/permissions.ts';
import { AGENT_RID } from '../../control-plane/api/routes/agents.ts';
import { ClusterFeedHub } from './feed-hub.ts';
import { StoreClusterFeed } from './store-feed.ts';

const DEFAULT_WAIT_SECONDS = 30;
const MAX_WAIT_SECONDS = 60;

const Query = Type.Object({
  epoch: Type.Optional(Type.String({ maxLength: 64, description: 'the epoch of the previous reply (absent: the whole state)' })),
  index: Type.Optional(Type.Integer({ minimum: 0, description: 'the index of the previous reply' })),
  wait: Type.Optional(Type.Number({ minimum: 0, description: `longest wait for changes, seconds (default ${DEFAULT_WAIT_SECONDS}, at most ${MAX_WAIT_SECONDS})` })),
});

export function clusterStateRoutes(): RouteModule {
  return (app: ApiInstance, ctx: ApiContext) => {
    let hub: ClusterFeedHub | undefined;
    const get = (): ClusterFeedHub => {
      hub ??= new ClusterFeedHub(new StoreClusterFeed(ctx.records, { onError: (err) => app.log.error({ err }, 'dns cluster-state view listener failed') }));
      return hub;
    };
    app.addHook('onClose', async () => hub?.close());
    app.get('/v1/dns/cluster-state', {
      config: { permission: requires(AGENT_RID, 'read') },
      schema: { summary: 'The state DNS zones are built from (tasks, apps, agents, frameworks, VIPs, leader): the whole state, or the changes after ?index within ?epoch (a blocking query)', querystring: Query },
    }, async (request, reply) => {
      const stop = new AbortController();
      const onClose = (): void => stop.abort();
      reply.raw.once('close', onClose);
      try {
        const waitMs = Math.min(request.query.wait ?? DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS) * 1000;
        return await get().read(request.query.epoch, request.query.index ?? 0, waitMs, stop.signal);
      } finally {
        reply.raw.off('close', onClose);
      }
    });
  };
}

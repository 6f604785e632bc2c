/**
 * Builds the control-plane API (fastify) without listening, so tests use
 * `app.inject()` and processes call `listen()` themselves.
 *
 * Every route is schema-first (TypeBox schemas, validated by Ajv with
 * allErrors so a bad body lists every wrong field), declares the permission
 * it needs, and answers errors with a stable code (`errors.ts`).
 */
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type Ajv as AjvInstance } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { mesosDnsRoutes } from '../../dns/zone/http-api.ts';
import { installAuth } from './auth.ts';
import type { ApiContext, ApiInstance, RouteModule } from './context.ts';
import { installErrorHandling } from './errors.ts';
import { instrumentHttp } from './metrics.ts';
import { agentTaskRoutes } from './routes/agent-tasks.ts';
import { agentRoutes } from './routes/agents.ts';
import { authRoutes } from './routes/auth.ts';
import { caRoutes } from './routes/ca.ts';
import { iamRoutes } from './routes/iam.ts';
import { idpRoutes } from './routes/idp.ts';
import { marathonRoutes } from './routes/marathon-deployments.ts';
import { marathonTaskRoutes } from './routes/marathon-tasks.ts';
import { marathonQueueRoutes } from './routes/marathon-queue.ts';
import { marathonEventRoutes } from './routes/marathon-events.ts';
import { STRATA_VERSION, systemRoutes } from './routes/system.ts';
import { vipRoutes } from './routes/vips.ts';
import { clusterStateRoutes } from '../../dns/zone/feed-route.ts';
import { networkRoutes } from './routes/networks.ts';
import { policyRoutes } from './routes/policies.ts';
import { taskLogRoutes } from './routes/task-logs.ts';
import { overlayRoutes } from './routes/overlay.ts';
import { secretRoutes } from './routes/secrets.ts';
import { mtlsRoutes } from './routes/mtls.ts';
import { uiRoutes } from './routes/ui.ts';

export type { ApiContext, ApiInstance, LeaderInfo, RouteModule } from './context.ts';

/** The route modules of the foundation; later components append theirs. */
export const ROUTE_MODULES: readonly RouteModule[] = [
  systemRoutes,
  authRoutes,
  iamRoutes,
  idpRoutes,
  caRoutes,
  agentRoutes,
  marathonRoutes,
  agentTaskRoutes,
  marathonTaskRoutes,
  marathonQueueRoutes,
  marathonEventRoutes,
  taskLogRoutes,
  vipRoutes,
  networkRoutes,
  policyRoutes,
  mesosDnsRoutes(),
  clusterStateRoutes(),
  overlayRoutes,
  secretRoutes,
  mtlsRoutes,
  uiRoutes,
];

export interface BuildApiOptions {
  readonly logger?: FastifyBaseLogger | false;
  readonly routes?: readonly RouteModule[];
}

/**
 * Two validators: bodies are JSON and must already have the right types (a
 * number where a string belongs is an error, as in Marathon); path, query and
 * header values are text, so they are coerced to the schema's types. Both
 * report every wrong field (allErrors) and never drop unknown fields silently.
 */
function installValidators(app: ApiInstance): void {
  const make = (coerceTypes: false | 'array'): AjvInstance => {
    const ajv = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes, strict: false });
    addFormats.default(ajv as never);
    return ajv;
  };
  const bodies = make(false);
  const text = make('array');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : text).compile(schema));
}

export async function buildApi(ctx: ApiContext, options: BuildApiOptions = {}): Promise<ApiInstance> {
  // On close, every connection is destroyed, busy ones too: a blocking query (an agent's task
  // listing, a /v2/events stream) would otherwise hold the close until it answers and its
  // keep-alive times out (strata up took ~70 s to stop when one was in flight).
  const base = { bodyLimit: ctx.config.api.bodyLimitBytes, forceCloseConnections: true };
  const app = (options.logger
    ? Fastify({ ...base, loggerInstance: options.logger })
    : Fastify({ ...base, logger: false })
  ).withTypeProvider<TypeBoxTypeProvider>() as unknown as ApiInstance;
  installValidators(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Strata API', version: STRATA_VERSION, description: 'Strata control plane (DC/OS-compatible paths)' },
      components: {
        securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'Authorization', description: '"token=<jwt>" or "Bearer <jwt>"' } },
      },
      security: [{ token: [] }],
    },
  });
  installErrorHandling(app);
  installAuth(app, ctx);
  instrumentHttp(app, ctx.metrics);
  for (const routes of options.routes ?? ROUTE_MODULES) routes(app, ctx);
  return app;
}

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
import addFormats from 'ajv-formats';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { installAuth } from './auth.ts';
import type { ApiContext, ApiInstance, RouteModule } from './context.ts';
import { installErrorHandling } from './errors.ts';
import { instrumentHttp } from './metrics.ts';
import { agentRoutes } from './routes/agents.ts';
import { authRoutes } from './routes/auth.ts';
import { STRATA_VERSION, systemRoutes } from './routes/system.ts';

export type { ApiContext, ApiInstance, LeaderInfo, RouteModule } from './context.ts';

/** The route modules of the foundation; later components append theirs. */
export const ROUTE_MODULES: readonly RouteModule[] = [systemRoutes, authRoutes, agentRoutes];

export interface BuildApiOptions {
  readonly logger?: FastifyBaseLogger | false;
  readonly routes?: readonly RouteModule[];
}

export async function buildApi(ctx: ApiContext, options: BuildApiOptions = {}): Promise<ApiInstance> {
  const common = {
    bodyLimit: ctx.config.api.bodyLimitBytes,
    ajv: {
      customOptions: { allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes: 'array' as const },
      plugins: [addFormats.default as never],
    },
  };
  const app = (options.logger ? Fastify({ ...common, loggerInstance: options.logger }) : Fastify({ ...common, logger: false }))
    .withTypeProvider<TypeBoxTypeProvider>() as unknown as ApiInstance;

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

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
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import type { StrataConfig } from '../config/schema.ts';
import type { Records } from '../model/records.ts';
import type { LeaderInfo } from '../model/schemas.ts';
import type { StateStore } from '../store/port.ts';
import type { Iam } from '../../security/iam.ts';
import type { TokenService } from '../../security/tokens.ts';
import { installAuth } from './auth.ts';
import { installErrorHandling } from './errors.ts';
import { instrumentHttp, type ApiMetrics } from './metrics.ts';
import { agentRoutes } from './routes/agents.ts';
import { authRoutes } from './routes/auth.ts';
import { STRATA_VERSION, systemRoutes } from './routes/system.ts';

export type { LeaderInfo } from '../model/schemas.ts';

/** What routes may use. Owned by the process that builds the app. */
export interface ApiContext {
  readonly config: Readonly<StrataConfig>;
  readonly store: StateStore;
  readonly records: Records;
  readonly tokens: TokenService;
  readonly iam: Iam;
  readonly metrics: ApiMetrics;
  role(): 'leader' | 'standby';
  /** The current leader; throws `RECORD_NOT_FOUND` while there is none. */
  leader(): Promise<LeaderInfo>;
}

export type ApiInstance = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** A group of routes: registered in order by {@link buildApi}. */
export type RouteModule = (app: ApiInstance, ctx: ApiContext) => void;

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

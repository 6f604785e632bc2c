/**
 * What each route needs. Every route declares `config.permission`; the app
 * refuses to start with a route that does not (see `auth.ts`), so the route
 * walk test covers every route there is.
 */
import type { FastifyRequest } from 'fastify';
import type { Action } from '../../security/iam.ts';

export type RoutePermission =
  | { readonly public: true }
  | {
      readonly public?: false;
      /** DC/OS resource id, or a function of the request (e.g. an app id path). */
      readonly rid: string | ((request: FastifyRequest) => string);
      /** The action, or a function of the request (one wildcard route serving several operations). */
      readonly action: Action | ((request: FastifyRequest) => Action);
    };

export const PUBLIC: RoutePermission = { public: true };

export function requires(rid: string | ((request: FastifyRequest) => string), action: Action | ((request: FastifyRequest) => Action)): RoutePermission {
  return { rid, action };
}

/** A registered route, as the auth hook saw it (for the route walk and docs). */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly permission: RoutePermission;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered on this app, with its permission. */
    strataRoutes: RegisteredRoute[];
  }
  interface FastifyContextConfig {
    permission?: RoutePermission;
  }
  interface FastifyRequest {
    /** The authenticated caller's uid, set by the auth hook on non-public routes. */
    principalUid?: string;
  }
}

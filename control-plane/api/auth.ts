/**
 * Authentication and authorisation for every route.
 * - At registration: a route without `config.permission` is refused, so no
 *   route is accidentally open.
 * - Per request (onRequest, before the body is read): public routes pass;
 *   others need a valid token as `Authorization: token=<jwt>`,
 *   `Authorization: Bearer <jwt>` or the `dcos-acs-auth-cookie` cookie
 *   (401 `API_UNAUTHENTICATED` with `WWW-Authenticate: oauthjwt`, as Admin
 *   Router), a token not revoked (401 `AUTH_TOKEN_REVOKED`: logout, or its
 *   principal deleted, disabled or revoked; decided from the IAM's watched
 *   views), then the route's (rid, action) with the principal's groups'
 *   permissions folded in (403 `API_FORBIDDEN`).
 * - A state change (not GET/HEAD/OPTIONS) authenticated by the cookie alone
 *   must come from this origin (403 `API_CSRF_REFUSED`; `csrf.ts`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StrataError } from '../../common/errors.ts';
import { allows, type Iam } from '../../security/iam.ts';
import type { TokenService, VerifiedToken } from '../../security/tokens.ts';
import { cookieCsrfProblem } from './csrf.ts';
import { send } from './errors.ts';
import type { RegisteredRoute } from './permissions.ts';

export const AUTH_COOKIE = 'dcos-acs-auth-cookie';

export function extractToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const m = /^(?:token=|Bearer\s+)(\S+)\s*$/i.exec(header);
    return m?.[1] ?? '';
  }
  const cookie = request.headers.cookie;
  if (cookie) {
    for (const part of cookie.split(';')) {
      const [name, ...rest] = part.trim().split('=');
      if (name === AUTH_COOKIE) return rest.join('=');
    }
  }
  return undefined;
}

function unauthenticated(reply: FastifyReply, message: string): FastifyReply {
  reply.header('www-authenticate', 'oauthjwt');
  return send(reply, new StrataError('API_UNAUTHENTICATED', message));
}

export function installAuth(app: FastifyInstance, deps: { tokens: TokenService; iam: Iam }): void {
  const routes: RegisteredRoute[] = [];
  app.decorate('strataRoutes', routes);
  app.addHook('onRoute', (route) => {
    const permission = route.config?.permission;
    if (!permission) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no config.permission`);
    }
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, permission });
  });

  app.addHook('onRequest', async (request, reply) => {
    const permission = request.routeOptions.config.permission;
    if (!permission) return; // the 404 handler: nothing to protect
    if (permission.public) return;
    const token = extractToken(request);
    if (token === undefined) return unauthenticated(reply, 'this route needs a token: send "Authorization: token=<jwt>"');
    if (request.headers.authorization === undefined) {
      // The cookie alone: a state change must come from this origin (csrf.ts).
      const csrf = cookieCsrfProblem(request.method, request.headers);
      if (csrf !== undefined) return send(reply, new StrataError('API_CSRF_REFUSED', csrf));
    }
    let verified: VerifiedToken;
    try {
      verified = await deps.tokens.verify(token);
    } catch (err) {
      // A bad token is the caller's problem (401); a store outage is not (503 via the error handler).
      if (err instanceof StrataError && err.code !== 'AUTH_TOKEN_INVALID') throw err;
      return unauthenticated(reply, err instanceof StrataError ? err.message : 'token rejected');
    }
    const uid = verified.uid;
    // From the IAM's watched views: no store read per request.
    const problem = await deps.iam.tokenProblem(verified);
    if (problem !== undefined) {
      reply.header('www-authenticate', 'oauthjwt');
      return send(reply, new StrataError('AUTH_TOKEN_REVOKED', `token rejected: ${problem}`));
    }
    const principal = (await deps.iam.getPrincipal(uid))!;
    const rid = typeof permission.rid === 'function' ? permission.rid(request) : permission.rid;
    const action = typeof permission.action === 'function' ? permission.action(request) : permission.action;
    if (!allows(principal, rid, action)) {
      return send(reply, new StrataError('API_FORBIDDEN', `${uid} lacks ${action} on ${rid}`, { details: { rid, action } }));
    }
    request.principalUid = uid;
    return undefined;
  });
}

/**
 * DC/OS-compatible login, logout and key publication at /acs/api/v1/auth.
 * - `POST /login` takes `{uid, password}` (a user) or `{uid, token}` (a
 *   service account's RS256/ES256 login token: at most 10 minutes, single use)
 *   and returns `{token}`; the caller cannot choose the lifetime. It also sets
 *   the `dcos-acs-auth-cookie` cookie (the web UI's session: HttpOnly,
 *   SameSite=Strict, Secure over HTTPS); a login carrying another origin's
 *   `Origin` is refused (403 `API_CSRF_REFUSED`).
 * - `POST /logout` revokes the presented token until it expires (public, as in
 *   Admin Router: a missing or bad token just clears the cookie).
 */
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { AUTH_COOKIE, extractToken } from '../auth.ts';
import { cookieCsrfProblem, loginOriginProblem } from '../csrf.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC } from '../permissions.ts';

const LoginBody = Type.Object(
  {
    uid: Type.String({ minLength: 1, maxLength: 256 }),
    /** A user's password. */
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    /** A service account's login token (a JWT it signed). */
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 16384 })),
  },
  // Without a token, a password is required (reported as "/password is required" beside any other wrong field).
  { additionalProperties: false, if: { not: { required: ['token'] } }, then: { required: ['password'] } },
);

export function authRoutes(app: ApiInstance, ctx: ApiContext): void {
  const logins = new Counter({
    name: 'strata_iam_logins_total',
    help: 'Logins at /acs/api/v1/auth/login, by method (password, service) and result (ok, or the error code)',
    labelNames: ['method', 'result'],
    registers: [ctx.metrics.registry],
  });
  const logouts = new Counter({ name: 'strata_iam_logouts_total', help: 'Tokens revoked by POST /acs/api/v1/auth/logout', registers: [ctx.metrics.registry] });

  app.post('/acs/api/v1/auth/login', {
    config: { permission: PUBLIC },
    schema: {
      summary: 'Log in with {uid, password} or, for a service account, {uid, token} (a login token it signed); returns an auth token (JWT)',
      body: LoginBody,
      response: { 200: Type.Object({ token: Type.String() }) },
    },
  }, async (request, reply) => {
    const { uid, password, token } = request.body;
    // Login CSRF: a foreign page must not log the browser in as someone else (tools send no Origin).
    const foreign = loginOriginProblem(request.headers);
    if (foreign !== undefined) throw new StrataError('API_CSRF_REFUSED', foreign);
    if ((password === undefined) === (token === undefined)) {
      throw new StrataError('API_BAD_REQUEST', 'Object is not valid', {
        details: [{ path: password === undefined ? '/password' : '/token', errors: [password === undefined ? 'is required (or "token" for a service account)' : 'must not be given together with "password"'] }],
      });
    }
    const method = password !== undefined ? 'password' : 'service';
    try {
      const principal = password !== undefined ? await ctx.iam.login(uid, password) : await ctx.iam.serviceLogin(uid, token!);
      const issued = await ctx.tokens.issue(principal.value.uid, { principalIndex: principal.createIndex });
      logins.inc({ method, result: 'ok' });
      // The web UI's session: HttpOnly, SameSite=Strict, Secure when the browser came over HTTPS (the gateway sets its own).
      const maxAge = Math.max(0, issued.expiresAtSeconds - Math.floor(Date.now() / 1000));
      const https = request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';
      reply.header('set-cookie', `${AUTH_COOKIE}=${issued.token}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${https ? '; Secure' : ''}`);
      reply.header('cache-control', 'no-store');
      return { token: issued.token };
    } catch (err) {
      logins.inc({ method, result: err instanceof StrataError ? err.code : 'error' });
      throw err;
    }
  });

  app.post('/acs/api/v1/auth/logout', {
    config: { permission: PUBLIC },
    schema: { summary: 'Revoke the presented token until it expires, and clear the auth cookie' },
  }, async (request, reply) => {
    // A cross-origin logout does not ride the cookie (csrf.ts); the cookie is still cleared.
    const cookieOnly = request.headers.authorization === undefined;
    const token = cookieOnly && cookieCsrfProblem(request.method, request.headers) !== undefined ? undefined : extractToken(request);
    if (token) {
      const verified = await ctx.tokens.verify(token).catch((err: unknown) => {
        if (err instanceof StrataError && err.code === 'AUTH_TOKEN_INVALID') return undefined;
        throw err;
      });
      if (verified) {
        await ctx.iam.revokeToken(verified);
        logouts.inc();
      }
    }
    reply.header('set-cookie', `${AUTH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict`);
    return reply.code(204).send();
  });

  app.get('/acs/api/v1/auth/jwks', {
    config: { permission: PUBLIC },
    schema: { summary: 'Public keys that verify auth tokens (RFC 7517)' },
  }, async () => ctx.tokens.jwks());
}

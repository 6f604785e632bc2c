/**
 * Who is asking and may they: the gateway's authentication and
 * authorisation, decided from the request headers and the IAM's watched
 * views (no store read per request).
 *
 * - Credentials: `Authorization: token=<jwt>` or `Bearer <jwt>`; without an
 *   Authorization header, the `dcos-acs-auth-cookie` cookie (Admin Router's
 *   order).
 * - CSRF (documented choice: a same-origin check, no extra header): a
 *   request authenticated by the cookie alone whose method changes state
 *   (anything but GET, HEAD, OPTIONS) must carry an `Origin` (or, without
 *   one, a `Referer`) whose host is the `Host` it was sent to, over https.
 *   Browsers always send `Origin` on cross-site POSTs, so a foreign page can
 *   ride the cookie only for safe methods; the cookie is also
 *   `SameSite=Strict`. Token-header requests are not affected (a browser
 *   never adds that header by itself).
 */
import { StrataError } from '../common/errors.ts';
import type { IncomingHttpHeaders } from 'node:http';
import { allows, type Action, type Iam } from '../security/iam.ts';
import type { TokenService } from '../security/tokens.ts';
import type { Principal } from '../control-plane/model/schemas.ts';

export const AUTH_COOKIE = 'dcos-acs-auth-cookie';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type Credentials =
  | { readonly via: 'none' }
  | { readonly via: 'header' | 'cookie'; readonly token: string };

/** Pure: the token a request presents and how. A malformed Authorization header presents an empty token (rejected). */
export function credentialsOf(headers: IncomingHttpHeaders): Credentials {
  const header = headers.authorization;
  if (header !== undefined) {
    const m = /^(?:token=|Bearer\s+)(\S+)\s*$/i.exec(header);
    return { via: 'header', token: m?.[1] ?? '' };
  }
  const token = cookieValue(headers.cookie, AUTH_COOKIE);
  return token === undefined ? { via: 'none' } : { via: 'cookie', token };
}

export function cookieValue(cookie: string | undefined, name: string): string | undefined {
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Cookie header without the auth cookie (`undefined` when nothing is left). */
export function withoutAuthCookie(cookie: string | undefined): string | undefined {
  if (!cookie) return undefined;
  const kept = cookie.split(';').filter((part) => part.split('=')[0]!.trim() !== AUTH_COOKIE).map((p) => p.trim()).filter((p) => p.length > 0);
  return kept.length > 0 ? kept.join('; ') : undefined;
}

/**
 * Pure: why a cookie-authenticated request must be refused as a possible
 * cross-site forgery, or `undefined`. Only call it for `via: 'cookie'`.
 */
export function csrfProblem(method: string, headers: IncomingHttpHeaders): string | undefined {
  if (SAFE_METHODS.has(method.toUpperCase())) return undefined;
  const host = headers.host;
  if (!host) return 'the request has no Host header';
  const source = headers.origin ?? headers.referer;
  if (source === undefined || source === 'null') {
    return `a ${method} authenticated by the ${AUTH_COOKIE} cookie needs an Origin (or Referer) of https://${host}; none was sent`;
  }
  let origin: URL;
  try {
    origin = new URL(source);
  } catch {
    return `the Origin ${JSON.stringify(source)} is not a URL`;
  }
  if (origin.protocol !== 'https:' || origin.host.toLowerCase() !== host.toLowerCase()) {
    return `a ${method} authenticated by the ${AUTH_COOKIE} cookie came from ${origin.origin}, not from https://${host}`;
  }
  return undefined;
}

/** Who the token belongs to, or why it is refused (401). */
export type Authentication =
  | { readonly ok: true; readonly uid: string; readonly principal: Principal }
  | { readonly ok: false; readonly error: StrataError };

/** The gateway's port to identity: the token service and IAM in a master, a fake in tests. */
export interface AccessDecider {
  authenticate(token: string): Promise<Authentication>;
  allows(principal: Principal, rid: string, action: Action): boolean;
}

/** {@link AccessDecider} over the master's token service and IAM views (the same checks as the API's auth hook). */
export function iamAccess(tokens: TokenService, iam: Iam): AccessDecider {
  return {
    async authenticate(token) {
      let verified;
      try {
        verified = await tokens.verify(token);
      } catch (err) {
        if (err instanceof StrataError && err.code === 'AUTH_TOKEN_INVALID') return { ok: false, error: new StrataError('API_UNAUTHENTICATED', err.message) };
        throw err;
      }
      const problem = await iam.tokenProblem(verified);
      if (problem !== undefined) return { ok: false, error: new StrataError('AUTH_TOKEN_REVOKED', `token rejected: ${problem}`) };
      const principal = await iam.getPrincipal(verified.uid);
      if (!principal) return { ok: false, error: new StrataError('AUTH_TOKEN_REVOKED', `token rejected: principal ${JSON.stringify(verified.uid)} does not exist`) };
      return { ok: true, uid: verified.uid, principal };
    },
    allows: (principal, rid, action) => allows(principal, rid, action),
  };
}

/**
 * CSRF on the master's API (the web UI authenticates with the
 * `dcos-acs-auth-cookie` cookie): a same-origin check, as the gateway's
 * (`gateway/access.ts`), no extra header or token.
 *
 * A request authenticated by the cookie alone whose method changes state
 * (anything but GET, HEAD, OPTIONS) must carry an `Origin` (or, without
 * one, a `Referer`) naming the host it was sent to (`Host`: port included;
 * http or https, since a master's API may be plain HTTP). Browsers send
 * `Origin` on every cross-origin POST, PUT, PATCH and DELETE, and the
 * cookie is `SameSite=Strict`; a page on another port of the same host (an
 * app's task, say) is same-site but not same-origin, so only this check
 * stops it. Requests with an `Authorization` header are not affected (a
 * browser never adds one by itself).
 */
import type { IncomingHttpHeaders } from 'node:http';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Pure: why a request from a browser must be refused as cross-origin, or `undefined` when its origin is the host it was sent to. */
export function foreignOriginProblem(headers: IncomingHttpHeaders, what: string): string | undefined {
  const host = headers.host;
  if (!host) return 'the request has no Host header';
  const source = headers.origin ?? headers.referer;
  if (source === undefined || source === 'null') return `${what} needs an Origin (or Referer) of this host (${host}); none was sent`;
  let origin: URL;
  try {
    origin = new URL(source);
  } catch {
    return `the Origin ${JSON.stringify(source)} is not a URL`;
  }
  if (!['http:', 'https:'].includes(origin.protocol) || origin.host.toLowerCase() !== host.toLowerCase()) {
    return `${what} came from ${origin.origin}, not from this host (${host})`;
  }
  return undefined;
}

/** Pure: why a cookie-authenticated request must be refused as a possible cross-site forgery, or `undefined`. Only for requests without an Authorization header. */
export function cookieCsrfProblem(method: string, headers: IncomingHttpHeaders): string | undefined {
  if (SAFE_METHODS.has(method.toUpperCase())) return undefined;
  return foreignOriginProblem(headers, `a ${method.toUpperCase()} authenticated by the dcos-acs-auth-cookie cookie`);
}

/** Pure: a login carrying a foreign `Origin` (login CSRF: a page logging the browser in as someone else); tools send none. */
export function loginOriginProblem(headers: IncomingHttpHeaders): string | undefined {
  if (headers.origin === undefined) return undefined;
  return foreignOriginProblem(headers, 'a login from a browser');
}

/**
 * The gateway's route table, as data, and the pure classification of a
 * request path against it (DC/OS Admin Router's locations).
 *
 * Each entry names a route class (the metrics label), where the request goes
 * (the control-plane API, an app's task, or the gateway itself), how the path
 * is rewritten, and what it needs: public, or `full` on an Admin Router
 * resource id (DC/OS's `dcos:adminrouter:*` rids accept only `full`). The
 * upstream API then checks its own, finer permission on the same request
 * (as Marathon behind Admin Router does), so a caller needs both.
 *
 * Paths are matched on their raw text (never decoded: `%2F` inside an ACL
 * rid stays one segment); a path with a `.`/`..` segment, also percent-
 * encoded, or a backslash is refused, so nothing can climb out of a prefix.
 */
import type { Action } from '../security/iam.ts';

export const ROUTE_CLASSES = [
  'ui', 'gateway', 'system_health', 'metadata', 'acs', 'ca', 'marathon', 'mesos', 'mesos_dns', 'networking', 'secrets', 'metrics', 'service',
] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export type Access =
  | { readonly public: true }
  | { readonly public: false; readonly rid: string; readonly action: Action };

/** Where a classified request goes. */
export type RouteTarget =
  /** The control-plane API (Marathon /v2, IAM, CA, Mesos-DNS, networking, secrets, /v1). */
  | { readonly kind: 'api'; readonly path: string }
  /** An app's task: `rest` is what follows `/service/` (the app id is resolved against the apps). */
  | { readonly kind: 'service'; readonly rest: string; readonly query: string }
  /** Served by the gateway itself. */
  | { readonly kind: 'self'; readonly page: 'status' | 'system-health' };

export interface GatewayRoute {
  readonly routeClass: RouteClass;
  readonly target: RouteTarget;
  /** For `service` targets, decided after the app is resolved ({@link serviceRid}). */
  readonly access: Access;
  /** A login through the gateway: the answer's token is also set as the auth cookie. */
  readonly login?: true;
}

export const PUBLIC_ACCESS: Access = { public: true };
const full = (rid: string): Access => ({ public: false, rid, action: 'full' });

interface TableEntry {
  readonly pattern: RegExp;
  readonly routeClass: RouteClass;
  readonly access: Access;
  /** The upstream path from the matched path (default: unchanged). */
  readonly rewrite?: (path: string) => string;
  readonly self?: 'status' | 'system-health';
  readonly login?: true;
}

/**
 * First match wins. Public paths are those of the reference (Admin Router's
 * open locations) plus the CA's public parts the API also leaves open.
 */
export const ROUTE_TABLE: readonly TableEntry[] = [
  // The web UI (ui/, served by the master's API): its page and its flat folder of modules; the pages then call the API paths below.
  { pattern: /^\/$/, routeClass: 'ui', access: PUBLIC_ACCESS },
  { pattern: /^\/ui\/[^/]+$/, routeClass: 'ui', access: PUBLIC_ACCESS },
  { pattern: /^\/gateway\/v1\/status$/, routeClass: 'gateway', access: full('dcos:adminrouter:ops:gateway'), self: 'status' },
  { pattern: /^\/system\/health\/v1(\/.*)?$/, routeClass: 'system_health', access: full('dcos:adminrouter:ops:system-health'), self: 'system-health' },
  { pattern: /^\/dcos-metadata\/(dcos-version|ui-config)\.json$/, routeClass: 'metadata', access: PUBLIC_ACCESS },
  { pattern: /^\/openapi\.json$/, routeClass: 'metadata', access: PUBLIC_ACCESS },
  { pattern: /^\/acs\/api\/v1\/auth\/login$/, routeClass: 'acs', access: PUBLIC_ACCESS, login: true },
  { pattern: /^\/acs\/api\/v1\/auth\/(logout|jwks|providers(\/.*)?|oidc\/(callback|providers)(\/.*)?|saml\/providers(\/.*)?)$/, routeClass: 'acs', access: PUBLIC_ACCESS },
  { pattern: /^\/acs\/api\/v1(\/.*)?$/, routeClass: 'acs', access: full('dcos:adminrouter:acs') },
  { pattern: /^\/ca\/(dcos-ca\.crt|cacerts\.jks|api\/v2\/info|api\/v2\/crl)$/, routeClass: 'ca', access: PUBLIC_ACCESS },
  { pattern: /^\/ca\/api\/v2\/certificates$/, routeClass: 'ca', access: full('dcos:adminrouter:ops:ca:ro') },
  { pattern: /^\/ca(\/.*)?$/, routeClass: 'ca', access: full('dcos:adminrouter:ops:ca:rw') },
  { pattern: /^\/marathon(\/.*)?$/, routeClass: 'marathon', access: full('dcos:adminrouter:service:marathon'), rewrite: (p) => p.slice('/marathon'.length) || '/' },
  { pattern: /^\/(v2(\/.*)?|ping)$/, routeClass: 'marathon', access: full('dcos:adminrouter:service:marathon') },
  // DC/OS also serves Marathon as the service "marathon" (so an app named /marathon is not reachable at /service/marathon).
  { pattern: /^\/service\/marathon(\/.*)?$/, routeClass: 'marathon', access: full('dcos:adminrouter:service:marathon'), rewrite: (p) => p.slice('/service/marathon'.length) || '/' },
  { pattern: /^\/mesos_dns\/v1(\/.*)?$/, routeClass: 'mesos_dns', access: full('dcos:adminrouter:ops:mesos-dns') },
  { pattern: /^\/networking\/api\/v1(\/.*)?$/, routeClass: 'networking', access: full('dcos:adminrouter:ops:networking') },
  { pattern: /^\/secrets\/v1(\/.*)?$/, routeClass: 'secrets', access: full('dcos:adminrouter:secrets') },
  { pattern: /^\/v1(\/.*)?$/, routeClass: 'mesos', access: full('dcos:adminrouter:ops:mesos') },
  { pattern: /^\/metrics$/, routeClass: 'metrics', access: full('dcos:adminrouter:ops:metrics') },
];

const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/** Why a raw path is refused before classification, or undefined. */
export function pathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'the path must start with /';
  if (path.includes('\\')) return 'the path may not contain a backslash';
  // Nothing percent-encoded (the usual case): the segments are as sent, one scan suffices.
  if (!path.includes('%')) {
    if (DOT_SEGMENT.test(path)) return 'the path may not contain "." or ".." segments';
    return path.includes('\0') ? 'the path may not contain NUL' : undefined;
  }
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return `the path segment ${JSON.stringify(segment)} is not valid percent-encoding`;
    }
    if (decoded === '.' || decoded === '..') return 'the path may not contain "." or ".." segments';
    if (decoded.includes('\0')) return 'the path may not contain NUL';
    if (decoded.includes('\\')) return 'the path may not contain a backslash (also encoded)';
  }
  return undefined;
}

/**
 * Pure: the route for a request URL (path and query as sent), `undefined`
 * when the gateway serves no such path, or a problem for a refused path.
 */
export function classify(url: string): GatewayRoute | { readonly problem: string } | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  const problem = pathProblem(path);
  if (problem) return { problem };
  for (const entry of ROUTE_TABLE) {
    if (!entry.pattern.test(path)) continue;
    const target: RouteTarget = entry.self ? { kind: 'self', page: entry.self } : { kind: 'api', path: `${entry.rewrite ? entry.rewrite(path) : path}${query}` };
    return { routeClass: entry.routeClass, target, access: entry.access, ...(entry.login ? { login: true as const } : {}) };
  }
  const service = /^\/service\/(.+)$/.exec(path);
  if (service) {
    // The rid names the app, so it is decided once the app is known.
    return { routeClass: 'service', target: { kind: 'service', rest: service[1]!, query }, access: full('dcos:adminrouter:service:') };
  }
  return undefined;
}

/** DC/OS: `dcos:adminrouter:service:<service>`; an app in groups is named by its path without the leading slash (`shop/web`). Groups do not inherit (as in DC/OS). */
export function serviceRid(appId: string): string {
  return `dcos:adminrouter:service:${appId.replace(/^\//, '')}`;
}

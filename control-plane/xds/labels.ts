/**
 * The app labels that shape an app's mesh traffic (documented in README.md).
 * Pure parsing: a label that does not parse gives an issue naming it and is
 * ignored, never an exception (the translator must always produce a
 * snapshot).
 */
import type { App } from '../model/schemas.ts';

export const MESH_LABELS = {
  /** `tcp` (default: TCP proxy for Envoy), `http`, `http2` or `grpc` (HTTP connection manager with routes). */
  protocol: 'STRATA_MESH_PROTOCOL',
  /** JSON array of routes, tried in order before the default route to the app's own VIP. */
  routes: 'STRATA_MESH_ROUTES',
  /** Default timeout of every route, in milliseconds (0 = none). */
  timeoutMs: 'STRATA_MESH_TIMEOUT_MS',
  /** Default retries of every route (0-10). */
  retries: 'STRATA_MESH_RETRIES',
  /** Default retry conditions (Envoy `retry_on`, comma-separated). */
  retryOn: 'STRATA_MESH_RETRY_ON',
} as const;

export type MeshProtocol = 'tcp' | 'http' | 'http2' | 'grpc';

export type HeaderMatch =
  | { readonly name: string; readonly exact: string; readonly invert?: boolean }
  | { readonly name: string; readonly prefix: string; readonly invert?: boolean }
  | { readonly name: string; readonly suffix: string; readonly invert?: boolean }
  | { readonly name: string; readonly regex: string; readonly invert?: boolean }
  | { readonly name: string; readonly present: boolean; readonly invert?: boolean };

export interface MeshRoute {
  /** Exactly one path matcher; none = every path. */
  readonly prefix?: string;
  readonly path?: string;
  readonly regex?: string;
  readonly caseSensitive?: boolean;
  readonly headers: readonly HeaderMatch[];
  /** Destination VIP names (`/web-canary`) and their weights; one entry = a single cluster. */
  readonly weights: readonly { readonly vip: string; readonly weight: number }[];
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly retryOn?: string;
}

export interface MeshConfig {
  readonly protocol: MeshProtocol;
  readonly routes: readonly MeshRoute[];
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly retryOn?: string;
}

export interface LabelIssue {
  readonly appId: string;
  readonly label: string;
  readonly message: string;
}

const PROTOCOLS: readonly MeshProtocol[] = ['tcp', 'http', 'http2', 'grpc'];
const MAX_ROUTES = 100;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
const RETRY_ON = /^[a-z0-9-]+(,[a-z0-9-]+)*$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
}

function validRegex(source: string): boolean {
  try {
    new RegExp(source);
    return source.length <= 1024;
  } catch {
    return false;
  }
}

function parseHeader(h: unknown, where: string): HeaderMatch | string {
  if (!isRecord(h) || typeof h['name'] !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z:-]{1,256}$/.test(h['name'])) return `${where}: needs a header "name"`;
  const name = h['name'].toLowerCase();
  const invert = h['invert'] === true ? { invert: true } : {};
  const kinds = ['exact', 'prefix', 'suffix', 'regex', 'present'].filter((k) => k in h);
  if (kinds.length !== 1) return `${where}: needs exactly one of exact, prefix, suffix, regex, present`;
  const kind = kinds[0]!;
  const v = h[kind];
  if (kind === 'present') return typeof v === 'boolean' ? { name, present: v, ...invert } : `${where}/present: must be a boolean`;
  if (typeof v !== 'string') return `${where}/${kind}: must be a string`;
  if (kind === 'regex' && !validRegex(v)) return `${where}/regex: not a valid regular expression`;
  return { name, [kind]: v, ...invert } as HeaderMatch;
}

function parseRoute(r: unknown, where: string, selfVip: string | undefined): MeshRoute | string {
  if (!isRecord(r)) return `${where}: must be an object`;
  const known = new Set(['prefix', 'path', 'regex', 'caseSensitive', 'headers', 'to', 'weights', 'timeoutMs', 'retries', 'retryOn']);
  const unknown = Object.keys(r).find((k) => !known.has(k));
  if (unknown) return `${where}: unknown field "${unknown}"`;
  const paths = ['prefix', 'path', 'regex'].filter((k) => k in r);
  if (paths.length > 1) return `${where}: at most one of prefix, path, regex`;
  for (const k of paths) if (typeof r[k] !== 'string') return `${where}/${k}: must be a string`;
  if (typeof r['regex'] === 'string' && !validRegex(r['regex'])) return `${where}/regex: not a valid regular expression`;
  if ('caseSensitive' in r && typeof r['caseSensitive'] !== 'boolean') return `${where}/caseSensitive: must be a boolean`;
  const headers: HeaderMatch[] = [];
  if ('headers' in r) {
    if (!Array.isArray(r['headers'])) return `${where}/headers: must be an array`;
    for (const [i, h] of r['headers'].entries()) {
      const parsed = parseHeader(h, `${where}/headers/${i}`);
      if (typeof parsed === 'string') return parsed;
      headers.push(parsed);
    }
  }
  let weights: { vip: string; weight: number }[];
  if ('to' in r && 'weights' in r) return `${where}: give "to" or "weights", not both`;
  if (typeof r['to'] === 'string') weights = [{ vip: r['to'], weight: 1 }];
  else if ('to' in r) return `${where}/to: must be a VIP name such as "/web"`;
  else if (isRecord(r['weights'])) {
    weights = [];
    for (const [vip, w] of Object.entries(r['weights'])) {
      const weight = intIn(w, 0, 1_000_000);
      if (weight === undefined) return `${where}/weights/${vip}: must be an integer from 0 to 1000000`;
      weights.push({ vip, weight });
    }
    if (weights.length === 0 || weights.every((w) => w.weight === 0)) return `${where}/weights: needs at least one weight above 0`;
  } else if ('weights' in r) return `${where}/weights: must be an object of VIP name to weight`;
  else if (selfVip !== undefined) weights = [{ vip: selfVip, weight: 1 }];
  else return `${where}: needs "to" or "weights"`;
  const out: { -readonly [K in keyof MeshRoute]: MeshRoute[K] } = { headers, weights };
  if (typeof r['prefix'] === 'string') out.prefix = r['prefix'];
  if (typeof r['path'] === 'string') out.path = r['path'];
  if (typeof r['regex'] === 'string') out.regex = r['regex'];
  if (typeof r['caseSensitive'] === 'boolean') out.caseSensitive = r['caseSensitive'];
  if ('timeoutMs' in r) {
    const t = intIn(r['timeoutMs'], 0, MAX_TIMEOUT_MS);
    if (t === undefined) return `${where}/timeoutMs: must be an integer from 0 to ${MAX_TIMEOUT_MS}`;
    out.timeoutMs = t;
  }
  if ('retries' in r) {
    const n = intIn(r['retries'], 0, 10);
    if (n === undefined) return `${where}/retries: must be an integer from 0 to 10`;
    out.retries = n;
  }
  if ('retryOn' in r) {
    if (typeof r['retryOn'] !== 'string' || !RETRY_ON.test(r['retryOn'])) return `${where}/retryOn: must be comma-separated conditions such as "5xx,reset"`;
    out.retryOn = r['retryOn'];
  }
  return out;
}

/** The mesh settings of an app; `selfVip` is the VIP a route without `to`/`weights` goes to. */
export function meshConfig(app: App, selfVip?: string): { config: MeshConfig; issues: LabelIssue[] } {
  const labels = app.labels;
  const issues: LabelIssue[] = [];
  const issue = (label: string, message: string): void => void issues.push({ appId: app.id, label, message });
  let protocol: MeshProtocol = 'tcp';
  const p = labels[MESH_LABELS.protocol];
  if (p !== undefined) {
    if ((PROTOCOLS as readonly string[]).includes(p.toLowerCase())) protocol = p.toLowerCase() as MeshProtocol;
    else issue(MESH_LABELS.protocol, `must be one of ${PROTOCOLS.join(', ')}, not ${JSON.stringify(p)}`);
  }
  const config: { -readonly [K in keyof MeshConfig]: MeshConfig[K] } = { protocol, routes: [] };
  const t = labels[MESH_LABELS.timeoutMs];
  if (t !== undefined) {
    const v = intIn(t, 0, MAX_TIMEOUT_MS);
    if (v === undefined) issue(MESH_LABELS.timeoutMs, `must be an integer from 0 to ${MAX_TIMEOUT_MS}`);
    else config.timeoutMs = v;
  }
  const n = labels[MESH_LABELS.retries];
  if (n !== undefined) {
    const v = intIn(n, 0, 10);
    if (v === undefined) issue(MESH_LABELS.retries, 'must be an integer from 0 to 10');
    else config.retries = v;
  }
  const on = labels[MESH_LABELS.retryOn];
  if (on !== undefined) {
    if (RETRY_ON.test(on)) config.retryOn = on;
    else issue(MESH_LABELS.retryOn, 'must be comma-separated conditions such as "5xx,reset"');
  }
  const raw = labels[MESH_LABELS.routes];
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
      issue(MESH_LABELS.routes, 'is not JSON');
    }
    if (parsed !== undefined) {
      if (!Array.isArray(parsed) || parsed.length > MAX_ROUTES) issue(MESH_LABELS.routes, `must be a JSON array of at most ${MAX_ROUTES} routes`);
      else {
        const routes: MeshRoute[] = [];
        for (const [i, r] of parsed.entries()) {
          const route = parseRoute(r, `/${i}`, selfVip);
          if (typeof route === 'string') issue(MESH_LABELS.routes, `${route} (route skipped)`);
          else routes.push(route);
        }
        config.routes = routes;
      }
    }
  }
  return { config, issues };
}

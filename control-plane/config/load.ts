/**
 * Loads the configuration once at start: defaults, then a JSON file, then the
 * environment, then flags; validates the result against {@link ConfigSchema}
 * and deep-freezes it. Any bad value is one `CONFIG_INVALID` error whose
 * message names the field, where it came from, and why.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { StrataError } from '../../common/errors.ts';
import { parseCidr } from '../../common/ip.ts';
import { ConfigSchema, type StrataConfig } from './schema.ts';

interface Leaf {
  readonly path: readonly string[];
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
}

type JsonSchemaNode = { type?: string; properties?: Record<string, JsonSchemaNode>; anyOf?: JsonSchemaNode[]; const?: unknown };

function leaves(node: JsonSchemaNode, path: string[] = []): Leaf[] {
  if (node.type === 'object' && node.properties) {
    return Object.entries(node.properties).flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  const type = node.type ?? (node.anyOf ? typeof node.anyOf[0]?.const : 'string');
  return [{ path, type: type as Leaf['type'] }];
}

const LEAVES = leaves(ConfigSchema as unknown as JsonSchemaNode);

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

/** `--api-port` for ['api','port']. */
export const flagName = (path: readonly string[]): string => path.map(kebab).join('-');
/** `STRATA_API_PORT` for ['api','port']. */
export const envName = (path: readonly string[]): string => `STRATA_${path.map(snake).join('_')}`;

/** Every flag the configuration accepts, with its dotted path (for --help). */
export function configFlags(): { flag: string; env: string; path: string; type: string }[] {
  return LEAVES.map((l) => ({ flag: `--${flagName(l.path)}`, env: envName(l.path), path: l.path.join('.'), type: l.type }));
}

const FLAG_TO_LEAF = new Map(LEAVES.map((l) => [flagName(l.path), l]));

export function isConfigFlag(name: string): boolean {
  return FLAG_TO_LEAF.has(name) || name === 'config';
}

function invalid(field: string, source: string, why: string): StrataError {
  return new StrataError('CONFIG_INVALID', `config: ${field} (from ${source}) ${why}`, { details: { field, source } });
}

function parseScalar(leaf: Leaf, raw: string, source: string): unknown {
  const field = leaf.path.join('.');
  switch (leaf.type) {
    case 'integer':
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw invalid(field, source, `must be a number, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw invalid(field, source, `must be true or false, got ${JSON.stringify(raw)}`);
    case 'array':
      if (raw.trim().startsWith('[')) {
        try {
          return JSON.parse(raw) as unknown;
        } catch {
          throw invalid(field, source, `must be a JSON array or a comma-separated list, got ${JSON.stringify(raw)}`);
        }
      }
      return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    case 'object': {
      // Maps such as dns.forwardZones: JSON only.
      let value: unknown;
      try {
        value = JSON.parse(raw) as unknown;
      } catch {
        throw invalid(field, source, `must be a JSON object, got ${JSON.stringify(raw)}`);
      }
      return value;
    }
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile<StrataConfig>(ConfigSchema);

/** Where a field came from; an array item or map entry (`dns.upstreams.1`) came with its parent. */
function sourceOf(sources: Map<string, string>, field: string): string {
  for (let path = field; path.length > 0; path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '') {
    const source = sources.get(path);
    if (source) return source;
  }
  return 'config file';
}

function describeError(err: ErrorObject, sources: Map<string, string>): StrataError {
  const segments = err.instancePath.split('/').filter(Boolean);
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    const field = [...segments, extra].join('.');
    return invalid(field, sourceOf(sources, field), 'is not a known setting');
  }
  if (err.keyword === 'anyOf' || err.keyword === 'const') {
    const field = segments.join('.');
    const leaf = LEAVES.find((l) => l.path.join('.') === field);
    const node = leaf && leaf.path.reduce<JsonSchemaNode | undefined>((n, k) => n?.properties?.[k], ConfigSchema as unknown as JsonSchemaNode);
    const allowed = node?.anyOf?.map((a) => JSON.stringify(a.const)).join(', ');
    return invalid(field, sourceOf(sources, field), allowed ? `must be one of ${allowed}` : 'has a value that is not allowed');
  }
  const field = segments.join('.') || '(root)';
  return invalid(field, sourceOf(sources, field), err.message ?? 'is invalid');
}

export interface ConfigInputs {
  /** Config flags without the leading dashes, e.g. `{ 'api-port': '0' }`. */
  readonly flags?: Readonly<Record<string, string>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Overrides applied after flags (used by `strata up` and tests). */
  readonly overrides?: Readonly<Record<string, unknown>>;
  /** Directory relative paths are resolved against (default: process.cwd()). */
  readonly cwd?: string;
}

/** Validate and freeze. Throws `CONFIG_INVALID` naming the first bad field. */
export function loadConfig(inputs: ConfigInputs = {}): Readonly<StrataConfig> {
  const env = inputs.env ?? {};
  const flags = inputs.flags ?? {};
  const cwd = inputs.cwd ?? process.cwd();
  const sources = new Map<string, string>();
  let raw: Record<string, unknown> = {};

  const file = flags.config ?? env.STRATA_CONFIG;
  if (file !== undefined) {
    const source = flags.config !== undefined ? '--config' : 'STRATA_CONFIG';
    let text: string;
    try {
      text = readFileSync(resolve(cwd, file), 'utf8');
    } catch (err) {
      throw invalid('config', source, `cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw invalid('config', source, `file ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('config', source, `file ${file} must hold a JSON object`);
  }

  for (const leaf of LEAVES) {
    const name = envName(leaf.path);
    const value = env[name];
    if (value !== undefined) {
      setPath(raw, leaf.path, parseScalar(leaf, value, name));
      sources.set(leaf.path.join('.'), name);
    }
  }
  for (const [name, value] of Object.entries(flags)) {
    if (name === 'config') continue;
    const leaf = FLAG_TO_LEAF.get(name);
    if (!leaf) throw invalid(name, `--${name}`, 'is not a known flag');
    setPath(raw, leaf.path, parseScalar(leaf, value, `--${name}`));
    sources.set(leaf.path.join('.'), `--${name}`);
  }
  for (const [path, value] of Object.entries(inputs.overrides ?? {})) {
    setPath(raw, path.split('.'), value);
    sources.set(path, 'override');
  }

  let candidate: unknown;
  try {
    candidate = structuredClone(raw);
  } catch (err) {
    throw invalid('config', 'config file', `cannot be read as configuration: ${(err as Error).message}`);
  }
  if (!validate(candidate)) {
    throw describeError(validate.errors![0]!, sources);
  }
  const config = candidate as StrataConfig;
  for (const [field, family] of [['vips.ipv4Range', 4], ['vips.ipv6Range', 6]] as const) {
    const value = field === 'vips.ipv4Range' ? config.vips.ipv4Range : config.vips.ipv6Range;
    if (parseCidr(value)?.family !== family) {
      throw invalid(field, sources.get(field) ?? 'the config file', `must be an IPv${family} CIDR such as ${family === 4 ? '11.0.0.0/8' : 'fd01:c::/64'} (got ${JSON.stringify(value)})`);
    }
  }
  config.dataDir = isAbsolute(config.dataDir) ? config.dataDir : resolve(cwd, config.dataDir);
  return deepFreeze(config);
}

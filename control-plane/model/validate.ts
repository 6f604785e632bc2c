/**
 * Record validation: the schemas of `schemas.ts` compiled with Ajv, plus the
 * cross-field rules of `checks.ts`, reported as one list of
 * `{path, message}` issues (JSON Pointer paths into the record).
 *
 * Why Ajv (the same Ajv 8 that fastify's validator compiler uses) rather
 * than TypeBox's compiler:
 * - Routes will validate request bodies against these very schemas with
 *   fastify's Ajv; judging stored records with the same engine means a
 *   pattern, format or bound can never pass in one place and fail in the
 *   other.
 * - Ajv in strict mode refuses any keyword that is not plain JSON Schema, so
 *   compiling every schema here at load time proves the schemas are what
 *   fastify can reuse (TypeBox's compiler would accept TypeBox-only forms).
 * - `allErrors` reports every failing field with its `instancePath`, which
 *   `RECORD_INVALID` needs. (fastify turns `allErrors` off for untrusted
 *   request bodies; records are our own data of bounded size.)
 * - `ajv-formats` gives `date-time`, `ipv4`, `ipv6`, `uri` exactly as
 *   fastify's default compiler has them.
 * The validator never coerces, removes fields or applies defaults: the
 * stored form must already be explicit.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { StrataError } from '../../common/errors.ts';
import { RECORD_CHECKS, type Issue } from './checks.ts';
import { AppDefinition, RECORD_KINDS, RECORD_SCHEMAS, type RecordKind, type RecordTypes } from './schemas.ts';

export type { Issue };

// ajv and ajv-formats are CommonJS; their ESM default export is module.exports.
const Ajv = AjvModule.default;
const addFormats = formatsModule.default;

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, coerceTypes: false, useDefaults: false, removeAdditional: false });
addFormats(ajv);

const validators = new Map<RecordKind, ValidateFunction>(RECORD_KINDS.map((kind) => [kind, ajv.compile(RECORD_SCHEMAS[kind])]));
const appDefinitionValidator = ajv.compile(AppDefinition);

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function issueOf(error: ErrorObject): Issue {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: `${error.instancePath}/${escapePointer(String(params.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return { path: `${error.instancePath}/${escapePointer(String(params.additionalProperty))}`, message: 'is not an allowed field' };
    case 'enum':
      return { path: error.instancePath, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path: error.instancePath, message: `must be ${JSON.stringify(params.allowedValue)}` };
    default:
      return { path: error.instancePath, message: error.message ?? `fails ${error.keyword}` };
  }
}

function describeSchema(schema: unknown): string {
  if (typeof schema !== 'object' || schema === null) return 'a value';
  const s = schema as { const?: unknown; type?: unknown };
  if (s.const !== undefined) return JSON.stringify(s.const);
  return typeof s.type === 'string' ? `a${/^[aeiou]/.test(s.type) ? 'n' : ''} ${s.type}` : 'a value';
}

/**
 * The error for a value that fits no alternative of a union. Objects told
 * apart by a `const` field (a discriminator such as `kind`) get the error on
 * that field; other unions list the alternatives.
 */
function unionError(union: ErrorObject): ErrorObject {
  const branches = union.schema as { properties?: Record<string, { const?: unknown }> }[];
  const data = union.data as Record<string, unknown> | null;
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
    const first = branches[0]?.properties ?? {};
    const tag = Object.keys(first).find((k) => branches.every((b) => b.properties?.[k]?.const !== undefined));
    if (tag !== undefined) {
      const allowed = branches.map((b) => b.properties![tag]!.const);
      return {
        ...union,
        keyword: 'enum',
        instancePath: `${union.instancePath}/${escapePointer(tag)}`,
        params: { allowedValues: allowed },
      };
    }
  }
  return { ...union, message: `must be ${[...new Set(branches.map(describeSchema))].join(' or ')}` };
}

/**
 * Ajv reports a failed `anyOf` as the errors of every branch plus the anyOf
 * itself. Keep what a person needs: if some branch has the value's shape
 * (it did not fail on the value's own type, or on a `const` of the value or
 * of one of its direct fields, i.e. a discriminator), report only that
 * branch's errors; otherwise say which alternatives were allowed.
 */
function simplify(errors: readonly ErrorObject[]): ErrorObject[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  if (anyOfs.length === 0) return [...errors];
  const drop = new Set<ErrorObject>();
  const replace = new Map<ErrorObject, ErrorObject>();
  // Innermost first, so an inner union is settled before the outer one looks at it.
  for (const union of [...anyOfs].sort((a, b) => b.schemaPath.length - a.schemaPath.length)) {
    const within = (e: ErrorObject): boolean => e.instancePath === union.instancePath || e.instancePath.startsWith(`${union.instancePath}/`);
    const branches = (union.schema as unknown[]).map((_, i) =>
      errors.filter((e) => !drop.has(e) && within(e) && e.schemaPath.startsWith(`${union.schemaPath}/${i}/`)),
    );
    const shapeMismatch = (branchErrors: readonly ErrorObject[]): boolean =>
      branchErrors.some(
        (e) =>
          (e.instancePath === union.instancePath && (e.keyword === 'type' || e.keyword === 'const')) ||
          (e.keyword === 'const' && e.instancePath.startsWith(`${union.instancePath}/`) && !e.instancePath.slice(union.instancePath.length + 1).includes('/')),
      );
    const fitting = branches.findIndex((b) => b.length > 0 && !shapeMismatch(b));
    branches.forEach((b, i) => {
      if (i !== fitting) for (const e of b) drop.add(e);
    });
    if (fitting >= 0) {
      drop.add(union);
    } else {
      replace.set(union, unionError(union));
    }
  }
  return errors.filter((e) => !drop.has(e)).map((e) => replace.get(e) ?? e);
}

function schemaIssues(validator: ValidateFunction, value: unknown): Issue[] {
  if (validator(value)) return [];
  const seen = new Set<string>();
  const issues: Issue[] = [];
  for (const issue of simplify(validator.errors ?? []).map(issueOf)) {
    const id = `${issue.path}\n${issue.message}`;
    if (!seen.has(id)) {
      seen.add(id);
      issues.push(issue);
    }
  }
  return issues;
}

/**
 * Every problem with `value` as a stored record of `kind`: schema errors
 * first; the cross-field rules run once the shape is right (they assume it).
 */
export function validateRecord(kind: RecordKind, value: unknown): Issue[] {
  const validator = validators.get(kind);
  if (!validator) throw new TypeError(`unknown record kind ${JSON.stringify(kind)}`);
  const issues = schemaIssues(validator, value);
  if (issues.length > 0) return issues;
  const check = RECORD_CHECKS[kind] as (record: RecordTypes[typeof kind]) => Issue[];
  return check(value as RecordTypes[typeof kind]);
}

/** Problems with a client's app definition (the input form, before defaults). */
export function validateAppDefinition(value: unknown): Issue[] {
  return schemaIssues(appDefinitionValidator, value);
}

/** One line per issue, for messages: `/cpus must be >= 0; /id is required`. */
export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => `${i.path === '' ? '(record)' : i.path} ${i.message}`).join('; ');
}

/** Throws `RECORD_INVALID` listing every wrong field (details: the issues) unless `value` is a valid `kind` record. */
export function assertRecord<K extends RecordKind>(kind: K, value: unknown): asserts value is RecordTypes[K] {
  const issues = validateRecord(kind, value);
  if (issues.length > 0) {
    throw new StrataError('RECORD_INVALID', `${kind} record is invalid: ${formatIssues(issues)}`, { details: issues });
  }
}

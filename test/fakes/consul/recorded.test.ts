/**
 * Replays the request/response exchanges in recorded/*.json — each taken from
 * a sample request and sample response (or the stated behaviour) of Consul's
 * HTTP API documentation, and citing its section — against a fresh fake
 * Consul, and checks the fake answers with the documented shape: the status,
 * the headers that matter, the same JSON keys with the same JSON types.
 * Values the docs make up (indexes, session IDs) are matched by type; values
 * the exchange's own setup determines are listed under `exact` and matched
 * exactly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { startFakeConsul, type FakeConsul } from './fake-consul.ts';

interface Step {
  readonly method: string;
  readonly path: string;
  /** JSON request body. */
  readonly body?: unknown;
  /** Raw request body (KV values). */
  readonly rawBody?: string;
  /** Variables to take from the response: `body.<path>` or `header.<name>`. */
  readonly capture?: Readonly<Record<string, string>>;
}

interface Exchange {
  readonly source: { readonly repo: string; readonly file: string; readonly commit: string; readonly section: string; readonly url: string };
  readonly notes?: string;
  readonly setup: readonly Step[];
  readonly request: Step;
  /** Requests sent while `request` is waiting (blocking queries). */
  readonly during?: readonly (Step & { readonly afterMs: number })[];
  readonly response: { readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body: unknown };
  /** Paths that may be null where the documented sample shows another type. */
  readonly nullable?: readonly string[];
  /** Paths whose value must be a Consul UUID (api-structure.mdx "UUID Format"). */
  readonly uuid?: readonly string[];
  /** Paths whose value is known exactly (after `{{variable}}` substitution; `{{=path}}` names another value of the response). */
  readonly exact?: Readonly<Record<string, unknown>>;
  readonly capture?: Readonly<Record<string, string>>;
  readonly headerGreaterThan?: Readonly<Record<string, string>>;
  readonly durationMs?: { readonly min: number; readonly max: number };
  /** A follow-up request checking the effect. */
  readonly after?: Step & { readonly status?: number; readonly exact?: Readonly<Record<string, unknown>> };
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: unknown;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/u;
const dir = join(import.meta.dirname, 'recorded');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

type Vars = Map<string, unknown>;

function substitute(text: string, vars: Vars): string {
  return text.replace(/\{\{(\w+)\}\}/gu, (_, name: string) => {
    if (!vars.has(name)) throw new Error(`no variable ${name}`);
    return String(vars.get(name));
  });
}

function at(value: unknown, path: string): unknown {
  if (path === '') return value;
  let here = value;
  for (const part of path.split('.')) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<string, unknown>)[part];
  }
  return here;
}

/** A whole-string `{{var}}` keeps the variable's type; `{{=path}}` is a value of the actual response. */
function resolve(expected: unknown, vars: Vars, actual: unknown): unknown {
  if (typeof expected === 'string') {
    const whole = /^\{\{(=?)([\w.]+)\}\}$/u.exec(expected);
    if (whole) return whole[1] === '=' ? at(actual, whole[2] ?? '') : vars.get(whole[2] ?? '');
    return substitute(expected, vars);
  }
  if (Array.isArray(expected)) return expected.map((e) => resolve(e, vars, actual));
  if (expected !== null && typeof expected === 'object') {
    return Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, resolve(v, vars, actual)]));
  }
  return expected;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Same keys, same JSON types, same array lengths as the documented sample. */
function sameShape(t: ExecutionContext, sample: unknown, actual: unknown, path: string, nullable: ReadonlySet<string>): void {
  if (nullable.has(path) && actual === null) return;
  const where = path === '' ? 'body' : path;
  t.is(jsonType(actual), jsonType(sample), `${where}: JSON type`);
  if (Array.isArray(sample) && Array.isArray(actual)) {
    t.is(actual.length, sample.length, `${where}: array length`);
    sample.forEach((s, i) => sameShape(t, s, actual[i], path === '' ? String(i) : `${path}.${i}`, nullable));
  } else if (jsonType(sample) === 'object' && jsonType(actual) === 'object') {
    const s = sample as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    t.deepEqual(Object.keys(a).sort(), Object.keys(s).sort(), `${where}: keys`);
    for (const key of Object.keys(s)) sameShape(t, s[key], a[key], path === '' ? key : `${path}.${key}`, nullable);
  }
}

async function send(fake: FakeConsul, step: Step, vars: Vars): Promise<Answer> {
  const init: RequestInit = { method: step.method };
  if (step.rawBody !== undefined) init.body = substitute(step.rawBody, vars);
  else if (step.body !== undefined) init.body = JSON.stringify(resolve(step.body, vars, undefined));
  const res = await fetch(`${fake.url}${substitute(step.path, vars)}`, init);
  const text = await res.text();
  let json: unknown = null;
  if (text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  const answer = { status: res.status, headers: res.headers, text, json };
  capture(step.capture, answer, vars);
  return answer;
}

function capture(spec: Readonly<Record<string, string>> | undefined, answer: Answer, vars: Vars): void {
  for (const [name, from] of Object.entries(spec ?? {})) {
    const value = from.startsWith('header.') ? answer.headers.get(from.slice('header.'.length)) : at(answer.json, from.slice('body.'.length));
    if (value === undefined || value === null) throw new Error(`capture ${name}: nothing at ${from}`);
    vars.set(name, value);
  }
}

for (const file of files) {
  const exchange = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Exchange;
  test(`recorded ${file}: ${exchange.request.method} ${exchange.request.path} (${exchange.source.file} › ${exchange.source.section.split(' (')[0]})`, async (t) => {
    const { source } = exchange;
    t.is(source.repo, 'hashicorp/consul');
    t.regex(source.file, /^website\/content\/api-docs\/[\w/-]+\.mdx$/u, 'cites a page of the API docs');
    t.regex(source.commit, /^[0-9a-f]{40}$/u);
    t.true(source.section.length > 0);
    t.regex(source.url, /^https:\/\/developer\.hashicorp\.com\/consul\/api-docs\//u);

    const fake = await startFakeConsul();
    t.teardown(() => fake.close());
    const vars: Vars = new Map();
    for (const step of exchange.setup) {
      const answer = await send(fake, step, vars);
      t.true(answer.status < 300, `setup ${step.method} ${step.path}: ${answer.status} ${answer.text}`);
    }

    const started = Date.now();
    const during = (exchange.during ?? []).map(
      (step) => new Promise<void>((resolveDuring, reject) => setTimeout(() => send(fake, step, vars).then(() => resolveDuring(), reject), step.afterMs)),
    );
    const answer = await send(fake, exchange.request, vars);
    const took = Date.now() - started;
    await Promise.all(during);
    const { response } = exchange;

    t.is(answer.status, response.status, `status (body: ${answer.text})`);
    for (const [name, expected] of Object.entries(response.headers ?? {})) {
      const actual = answer.headers.get(name);
      t.not(actual, null, `header ${name} present`);
      if (expected === '<number>') t.regex(actual ?? '', /^\d+$/u, `header ${name} is a number`);
      else if (name === 'content-type') t.is((actual ?? '').split(';')[0]?.trim(), expected, 'content-type');
      else t.is(actual, substitute(expected, vars), `header ${name}`);
    }
    for (const [name, than] of Object.entries(exchange.headerGreaterThan ?? {})) {
      t.true(Number(answer.headers.get(name)) > Number(substitute(than, vars)), `header ${name} moved past ${substitute(than, vars)}`);
    }

    if (response.body === null) {
      t.is(answer.text, '', 'no body');
    } else {
      t.not(answer.json, undefined, `body is JSON: ${answer.text}`);
      sameShape(t, response.body, answer.json, '', new Set(exchange.nullable ?? []));
    }
    for (const path of exchange.uuid ?? []) t.regex(String(at(answer.json, path)), UUID_RE, `${path} is a UUID`);
    for (const [path, expected] of Object.entries(exchange.exact ?? {})) {
      t.deepEqual(at(answer.json, path), resolve(expected, vars, answer.json), `${path === '' ? 'body' : path} exactly`);
    }
    if (exchange.durationMs) {
      t.true(took >= exchange.durationMs.min, `held at least ${exchange.durationMs.min} ms (took ${took})`);
      t.true(took <= exchange.durationMs.max, `answered within ${exchange.durationMs.max} ms (took ${took})`);
    }

    capture(exchange.capture, answer, vars);
    if (exchange.after) {
      const after = await send(fake, exchange.after, vars);
      t.is(after.status, exchange.after.status ?? 200, `follow-up ${exchange.after.method} ${exchange.after.path}: ${after.text}`);
      for (const [path, expected] of Object.entries(exchange.after.exact ?? {})) {
        t.deepEqual(at(after.json, path), resolve(expected, vars, after.json), `follow-up ${path === '' ? 'body' : path}`);
      }
    }
  });
}

test('recorded: every exchange file was loaded', (t) => {
  t.true(files.length >= 15, `${files.length} exchanges`);
});

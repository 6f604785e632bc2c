/**
 * V8 flags for `strata`'s long-running processes (`strata up`, `strata
 * master`, `strata agent`), which serve DNS among the rest.
 *
 * The young generation: V8 grows its semi-spaces to 16 MB each under a
 * DNS load (short-lived objects per query), ~40 MB of RSS; 2 MB cost no
 * measurable CPU per query (docs/benchmarks.md, DNS memory) and keep a DNS
 * server with 100,000 names under the 150 MB. The size is a
 * start-up flag: `v8.setFlagsFromString('--max-semi-space-size=2')` once the
 * process runs leaves the heap as it was configured (measured: the new
 * space stays at 32 MB), so bin/strata.mjs re-executes itself in place
 * (`process.execve`, same pid, no parent left waiting) with the flag for
 * those verbs only. `STRATA_NODE_SEMI_SPACE_MB` sets the size (1-64; 0
 * leaves V8's default); a `--max-semi-space-size` already given (command
 * line or `NODE_OPTIONS`) wins. The same re-execution adds `--expose-gc`
 * ({@link EXPOSE_GC}).
 */

/** The semi-space size `strata` gives its server processes unless told otherwise. */
export const DEFAULT_SEMI_SPACE_MB = 2;

const SERVER_VERBS = new Set(['up', 'master', 'agent']);

/** True for the verbs that run servers (`strata agent`, not `strata agent list`). */
export function isServerVerb(args: readonly string[]): boolean {
  const [verb, next] = args;
  return verb !== undefined && SERVER_VERBS.has(verb) && (next === undefined || next.startsWith('-'));
}

/** The V8 flags for a server process; throws naming `STRATA_NODE_SEMI_SPACE_MB` when it is not 0-64. */
export function semiSpaceFlags(env: NodeJS.ProcessEnv): string[] {
  const raw = env.STRATA_NODE_SEMI_SPACE_MB;
  let mb = DEFAULT_SEMI_SPACE_MB;
  if (raw !== undefined && raw !== '') {
    mb = Number(raw);
    if (!Number.isInteger(mb) || mb < 0 || mb > 64) throw new Error(`STRATA_NODE_SEMI_SPACE_MB must be an integer from 0 (V8's default) to 64 (MB), got ${JSON.stringify(raw)}`);
  }
  return mb === 0 ? [] : [`--max-semi-space-size=${mb}`];
}

/**
 * `--expose-gc`, so the DNS zones can collect the garbage of a large first
 * build at once (dns/zone/authority.ts); nothing else in Strata calls `gc`.
 */
export const EXPOSE_GC = '--expose-gc';

/**
 * The flags to re-execute with, or `undefined` to run as we are: not a
 * server verb, a semi-space size already given, or nothing to add.
 */
export function reexecFlags(input: { readonly args: readonly string[]; readonly execArgv: readonly string[]; readonly env: NodeJS.ProcessEnv }): string[] | undefined {
  if (!isServerVerb(input.args)) return undefined;
  const given = (s: string | undefined, flag: RegExp): boolean => s !== undefined && flag.test(s);
  const flags: string[] = [];
  const semiSpace = /--max[-_]semi[-_]space[-_]size/;
  if (!input.execArgv.some((a) => given(a, semiSpace)) && !given(input.env.NODE_OPTIONS, semiSpace)) flags.push(...semiSpaceFlags(input.env));
  const exposeGc = /--expose[-_]gc/;
  if (!input.execArgv.some((a) => given(a, exposeGc)) && !given(input.env.NODE_OPTIONS, exposeGc)) flags.push(EXPOSE_GC);
  return flags.length > 0 ? flags : undefined;
}

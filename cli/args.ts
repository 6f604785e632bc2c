/**
 * Command-line parsing for `strata`: verb words first, then `--name value`,
 * `--name=value` or bare `--flag` for the verb's boolean flags. Pure: no I/O.
 */
export interface ParsedArgs {
  readonly words: string[];
  readonly values: Record<string, string>;
  readonly booleans: Set<string>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], booleanFlags: ReadonlySet<string>): ParsedArgs {
  const words: string[] = [];
  const values: Record<string, string> = {};
  const booleans = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h') {
      booleans.add('help');
      continue;
    }
    if (!arg.startsWith('--')) {
      words.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (name.length === 0) throw new UsageError(`"${arg}" is not a flag`);
    if (booleanFlags.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      booleans.add(name);
      continue;
    }
    if (eq !== -1) {
      values[name] = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      values[name] = next;
      i++;
    }
  }
  return { words, values, booleans };
}

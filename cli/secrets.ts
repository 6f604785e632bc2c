/**
 * `strata secret create|get|update|delete|list|rotate-key`: the secret store
 * (/secrets/v1, store `default`) from the command line. Values are read from
 * a file or standard input (`--value-file -`), or `STRATA_SECRET_VALUE`,
 * never from an argument (arguments show in process listings).
 */
import { readFile } from 'node:fs/promises';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

const STORE = 'default';
/** The path in the URL: each name escaped, `/` kept (the API takes the path as the rest of the URL). */
const urlPath = (path: string): string => path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The value: --value-file FILE (- = stdin; one trailing newline dropped) or STRATA_SECRET_VALUE. */
async function valueOf(args: ParsedArgs): Promise<string> {
  const file = args.values['value-file'];
  if (file !== undefined) {
    const text = file === '-' ? await readStdin() : await readFile(file, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --value-file ${file}: ${err.message}`);
    });
    return text.replace(/\r?\n$/, '');
  }
  const env = process.env.STRATA_SECRET_VALUE;
  if (env !== undefined) return env;
  throw new UsageError('no value given: use --value-file FILE (- reads standard input) or STRATA_SECRET_VALUE (never an argument: those show in ps)');
}

export async function secretCreate(args: ParsedArgs): Promise<number> {
  const path = args.words[2]!;
  const value = await valueOf(args);
  const description = args.values.description;
  await apiRequest(await loggedIn(), 'PUT', `/secrets/v1/secret/${STORE}/${urlPath(path)}`, { value, ...(description === undefined ? {} : { description }) });
  console.log(`Created secret ${path}`);
  return 0;
}

export async function secretUpdate(args: ParsedArgs): Promise<number> {
  const path = args.words[2]!;
  const value = await valueOf(args);
  const description = args.values.description;
  await apiRequest(await loggedIn(), 'PATCH', `/secrets/v1/secret/${STORE}/${urlPath(path)}`, { value, ...(description === undefined ? {} : { description }) });
  console.log(`Updated secret ${path}`);
  return 0;
}

export async function secretGet(args: ParsedArgs): Promise<number> {
  const path = args.words[2]!;
  const secret = await apiRequest<{ value: string; description?: string; author?: string; created: string; updated: string }>(await loggedIn(), 'GET', `/secrets/v1/secret/${STORE}/${urlPath(path)}`);
  if (args.booleans.has('json')) console.log(JSON.stringify(secret, null, 2));
  else process.stdout.write(`${secret.value}\n`);
  return 0;
}

export async function secretDelete(args: ParsedArgs): Promise<number> {
  const path = args.words[2]!;
  await apiRequest(await loggedIn(), 'DELETE', `/secrets/v1/secret/${STORE}/${urlPath(path)}`);
  console.log(`Deleted secret ${path}`);
  return 0;
}

export async function secretList(args: ParsedArgs): Promise<number> {
  const under = args.words[2] ?? '';
  const { array } = await apiRequest<{ array: string[] }>(await loggedIn(), 'GET', `/secrets/v1/secret/${STORE}/${urlPath(under)}?list=true`);
  if (args.booleans.has('json')) console.log(JSON.stringify(array, null, 2));
  else if (array.length > 0) console.log(array.join('\n'));
  return 0;
}

interface RotationStatus { kekVersion: number; kekVersions: number[]; running: boolean; total: number; pending: number; rewrapped: number; failed: number; lastError?: string }

function describeRotation(s: RotationStatus): string {
  const state = s.running ? `re-wrapping: ${s.pending} of ${s.total} left` : s.failed > 0 ? `done with ${s.failed} failures (last: ${s.lastError ?? '?'})` : 'every data key is wrapped by the current version';
  return table(['KEK VERSION', 'VERSIONS KEPT', 'SECRETS', 'RE-WRAPPED', 'STATE'], [[String(s.kekVersion), s.kekVersions.join(','), String(s.total), String(s.rewrapped), state]]);
}

/** A new KEK version (or, --from-file, the newest one in the KEK file), then the background re-wrap; --wait follows it to the end. */
export async function secretRotateKey(args: ParsedArgs): Promise<number> {
  const state = await loggedIn();
  if (args.booleans.has('status')) {
    const s = await apiRequest<RotationStatus>(state, 'GET', '/secrets/v1/rotate-key');
    console.log(args.booleans.has('json') ? JSON.stringify(s, null, 2) : describeRotation(s));
    return 0;
  }
  let s = await apiRequest<RotationStatus>(state, 'POST', '/secrets/v1/rotate-key', { generate: !args.booleans.has('from-file') });
  if (!args.booleans.has('json')) console.log(`Key-encryption key version ${s.kekVersion} is current; data keys are re-wrapped in the background (reads keep working)`);
  if (args.booleans.has('wait')) {
    while (s.running) {
      await new Promise((r) => setTimeout(r, 500));
      s = await apiRequest<RotationStatus>(state, 'GET', '/secrets/v1/rotate-key');
    }
  }
  console.log(args.booleans.has('json') ? JSON.stringify(s, null, 2) : describeRotation(s));
  return s.failed > 0 && !s.running ? 1 : 0;
}

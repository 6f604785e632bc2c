/**
 * `strata auth login|logout`: gets a token from `POST /acs/api/v1/auth/login`
 * and keeps it, with the API address, in the CLI state file
 * (`~/.strata/cli.json`, or `STRATA_CLI_CONFIG`), readable only by the user.
 * A service account logs in with `--service-account UID --private-key FILE`:
 * the CLI signs a login token `{uid, exp}` (5 minutes, RS256 or ES256 by key
 * type) and exchanges it; `logout` revokes the token on the server too.
 */
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { clusterCaForLogin, trustKeptCa } from './trust.ts';

export interface CliState {
  readonly url: string;
  readonly uid: string;
  readonly token: string;
  /** The cluster root CA trusted for an https (gateway) URL. */
  readonly caFile?: string;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export function cliStatePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.STRATA_CLI_CONFIG ?? join(homedir(), '.strata', 'cli.json');
}

export async function readCliState(path = cliStatePath()): Promise<CliState | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as CliState;
  } catch {
    return undefined;
  }
}

export async function writeCliState(path: string, state: CliState): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}-${randomUUID()}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(tmp, path);
}

/** A password file is either the password itself or a bootstrap credentials JSON `{uid, password}`. */
async function readPasswordFile(file: string): Promise<{ uid?: string; password: string }> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read --password-file ${file}: ${err.message}`);
  });
  try {
    const parsed = JSON.parse(text) as { uid?: unknown; password?: unknown };
    if (typeof parsed.password === 'string') return { ...(typeof parsed.uid === 'string' ? { uid: parsed.uid } : {}), password: parsed.password };
  } catch {
    // not JSON: the file holds the password itself
  }
  return { password: text.replace(/\r?\n$/, '') };
}

/** Ask for a password on the terminal without echoing it. */
async function prompt(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) throw new UsageError('no password given: use --password-file or STRATA_PASSWORD');
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: string): void => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            resolve(text);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            reject(new UsageError('cancelled'));
            return;
          }
          text = ch === '\u007f' || ch === '\b' ? text.slice(0, -1) : text + ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}

/** A service login token: `{uid, exp}` signed with the account's private key (DC/OS's service login). */
export async function serviceLoginToken(uid: string, privateKeyPem: string, lifetimeSeconds = 300): Promise<string> {
  let key;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch {
    throw new UsageError('--private-key is not a readable PEM private key');
  }
  const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' ? 'ES256' : undefined;
  if (!alg) throw new UsageError(`--private-key is ${key.asymmetricKeyType ?? 'unknown'}; service accounts use RSA or EC P-256 keys`);
  return new SignJWT({ uid }).setProtectedHeader({ alg, typ: 'JWT' }).setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds).sign(key);
}

export async function authLogin(args: ParsedArgs): Promise<number> {
  const statePath = cliStatePath();
  const previous = await readCliState(statePath);
  const url = (args.values.url ?? previous?.url ?? DEFAULT_API_URL).replace(/\/+$/, '');
  let uid: string | undefined;
  let body: { uid: string; password: string } | { uid: string; token: string };
  const account = args.values['service-account'];
  if (account !== undefined || args.values['private-key'] !== undefined) {
    const keyFile = args.values['private-key'];
    if (account === undefined || keyFile === undefined) throw new UsageError('a service account login needs both --service-account UID and --private-key FILE');
    const pem = await readFile(keyFile, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --private-key ${keyFile}: ${err.message}`);
    });
    uid = account;
    body = { uid, token: await serviceLoginToken(uid, pem) };
  } else {
    const fromFile = args.values['password-file'] ? await readPasswordFile(args.values['password-file']) : undefined;
    uid = args.values.uid ?? fromFile?.uid ?? previous?.uid;
    if (!uid) throw new UsageError('no uid given: use --uid');
    const password = fromFile?.password ?? process.env.STRATA_PASSWORD ?? (await prompt(`password for ${uid}: `));
    body = { uid, password };
  }
  const caFile = await clusterCaForLogin(url, args, statePath, previous);
  let response: Response;
  try {
    response = await fetch(`${url}/acs/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    console.error(`strata: cannot reach ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    return 1;
  }
  const answer = (await response.json().catch(() => ({}))) as { token?: string; message?: string; code?: string };
  if (!response.ok || typeof answer.token !== 'string') {
    console.error(`strata: login failed (${response.status} ${answer.code ?? ''}): ${answer.message ?? 'no message'}`);
    return 1;
  }
  await writeCliState(statePath, { url, uid, token: answer.token, ...(caFile ? { caFile } : {}) });
  console.log(`Logged in to ${url} as ${uid}; token kept in ${statePath}`);
  return 0;
}

/** Revoke the kept token on the server (best effort: an unreachable server still lets the CLI forget it), then forget it. */
export async function authLogout(): Promise<number> {
  const path = cliStatePath();
  const state = await readCliState(path);
  let revoked = false;
  if (state) {
    await trustKeptCa(state).catch(() => undefined);
    const response = await fetch(`${state.url}/acs/api/v1/auth/logout`, { method: 'POST', headers: { authorization: `token=${state.token}` }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    revoked = response?.status === 204;
    if (!revoked) console.error(`strata: could not revoke the token at ${state.url}; it stays valid until it expires`);
  }
  await rm(path, { force: true });
  console.log(`${revoked ? 'Revoked and forgot' : 'Forgot'} the token in ${path}`);
  return 0;
}

/** Print the kept token (e.g. to hand an agent a token file). */
export async function authToken(): Promise<number> {
  const state = await readCliState();
  if (!state) throw new UsageError('not logged in: run `strata auth login` first');
  console.log(state.token);
  return 0;
}

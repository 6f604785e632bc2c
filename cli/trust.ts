/**
 * Trusting the cluster CA for `https://` URLs (the gateway).
 *
 * `strata auth login --url https://...` takes the cluster root from
 * `--ca-file`, or fetches `/ca/dcos-ca.crt` from that address without
 * verification and keeps it only if its SHA-256 fingerprint equals
 * `--ca-fingerprint` (printed by `strata up` and `strata master`); then the
 * login itself runs over verified TLS. The root is kept beside the CLI state
 * (`cluster-ca.pem`) and added to this process's trusted CAs by every later
 * command, so all verbs work through the gateway.
 */
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { dirname, join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';

/** What of the CLI state trust needs (the state lives in auth.ts). */
export interface KeptTrust {
  readonly url: string;
  readonly caFile?: string;
}

/** `AB:CD:...` upper case, as `strata up` prints it and openssl shows it; accepts lower case and no colons. */
export function normaliseFingerprint(text: string): string {
  const hex = text.replace(/^sha256[:=]/i, '').replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new UsageError(`--ca-fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), got ${JSON.stringify(text)}`);
  return hex.match(/../g)!.join(':');
}

let trusted: string | undefined;

/** Add the cluster root to the CAs this process trusts (fetch and https), once. */
export function trustCa(pem: string): void {
  if (trusted === pem) return;
  setDefaultCACertificates([...getCACertificates('default'), pem]);
  trusted = pem;
}

/** Trust the CA file a login kept, if any. */
export async function trustKeptCa(state: KeptTrust): Promise<void> {
  if (!state.caFile) return;
  const pem = await readFile(state.caFile, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read the cluster CA ${state.caFile} kept at login: ${err.message} (log in again with --ca-file or --ca-fingerprint)`);
  });
  trustCa(pem);
}

/** The root certificate at `<url>/ca/dcos-ca.crt`, read without verifying the server (checked by fingerprint after). */
function fetchUnverified(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(`${url}/ca/dcos-ca.crt`, { rejectUnauthorized: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /ca/dcos-ca.crt answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
  });
}

/**
 * Decide which CA file an https login trusts, trust it, and return its path
 * (kept in the CLI state). Plain http URLs need none.
 */
export async function clusterCaForLogin(url: string, args: ParsedArgs, statePath: string, previous: KeptTrust | undefined): Promise<string | undefined> {
  if (!url.startsWith('https://')) return undefined;
  const caFile = args.values['ca-file'];
  const fingerprint = args.values['ca-fingerprint'];
  if (caFile !== undefined) {
    const pem = await readFile(caFile, 'utf8').catch((err: Error) => {
      throw new UsageError(`cannot read --ca-file ${caFile}: ${err.message}`);
    });
    if (fingerprint !== undefined && new X509Certificate(pem).fingerprint256 !== normaliseFingerprint(fingerprint)) {
      throw new UsageError(`--ca-file ${caFile} does not have the fingerprint --ca-fingerprint names`);
    }
    trustCa(pem);
    return caFile;
  }
  if (fingerprint === undefined) {
    if (previous?.url === url && previous.caFile) {
      await trustKeptCa(previous);
      return previous.caFile;
    }
    throw new UsageError(`${url} is https: trust the cluster CA with --ca-file FILE, or --ca-fingerprint SHA256 (strata up prints it; \`openssl x509 -noout -fingerprint -sha256\` on the CA shows it)`);
  }
  const wanted = normaliseFingerprint(fingerprint);
  let pem: string;
  try {
    pem = await fetchUnverified(url);
  } catch (err) {
    throw new UsageError(`cannot read the cluster CA from ${url}/ca/dcos-ca.crt: ${(err as Error).message}`);
  }
  let got: string;
  try {
    got = new X509Certificate(pem).fingerprint256;
  } catch {
    throw new UsageError(`${url}/ca/dcos-ca.crt is not a certificate`);
  }
  if (got !== wanted) throw new UsageError(`the CA at ${url} has fingerprint ${got}, not ${wanted}: not trusted (a different cluster, or someone in between)`);
  const kept = join(dirname(statePath), 'cluster-ca.pem');
  await mkdir(dirname(kept), { recursive: true, mode: 0o700 });
  await writeFile(kept, pem, { mode: 0o644 });
  trustCa(pem);
  return kept;
}


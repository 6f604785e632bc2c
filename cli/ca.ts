/**
 * `strata ca info|cert|sign|revoke|list|root-key export`: the cluster CA
 * (/ca/api/v2) from the command line. Keys are written 0600 and never
 * overwrite an existing file.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface Envelope<T> { success: boolean; result: T }
interface Leaf {
  certificate: string; certificate_chain: string; issuing_ca: string; ca: string; serial_number: string; spiffe_id: string;
  not_before: string; not_after: string; renewal: { start: string; end: string }; private_key?: string;
}

function ttl(args: ParsedArgs): { ttl_seconds?: number } {
  const raw = args.values.ttl;
  if (raw === undefined) return {};
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--ttl must be a whole number of seconds, not "${raw}"`);
  return { ttl_seconds: n };
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  await writeFile(path, text, { mode, flag: 'wx' }).catch((err: Error) => {
    throw new UsageError(`cannot write ${path}: ${err.message}`);
  });
}

function describe(leaf: Leaf): string {
  return [
    `Certificate ${leaf.serial_number} for ${leaf.spiffe_id}`,
    `  valid:  ${leaf.not_before} .. ${leaf.not_after}`,
    `  renew:  between ${leaf.renewal.start} and ${leaf.renewal.end}`,
  ].join('\n');
}

async function writeLeaf(dir: string, leaf: Leaf): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (leaf.private_key) await writeNew(join(dir, 'key.pem'), leaf.private_key, 0o600);
  await writeNew(join(dir, 'cert.pem'), leaf.certificate, 0o644);
  await writeNew(join(dir, 'chain.pem'), leaf.certificate_chain, 0o644);
  await writeNew(join(dir, 'ca.pem'), leaf.ca, 0o644);
}

export async function caInfo(args: ParsedArgs): Promise<number> {
  const { result } = await apiRequest<Envelope<{ certificate: string; usages: string[]; expiry: string; trust_domain: string }>>(await loggedIn(), 'POST', '/ca/api/v2/info', {});
  if (args.booleans.has('json')) console.log(JSON.stringify(result, null, 2));
  else console.log(`Trust domain: ${result.trust_domain}\nLeaf usages:  ${result.usages.join(', ')}\nLongest leaf: ${result.expiry}\n\n${result.certificate.trimEnd()}`);
  return 0;
}

/** A key pair and certificate for the logged-in principal, made by the CA (newcert), into --out-dir. */
export async function caCert(args: ParsedArgs): Promise<number> {
  const dir = args.values['out-dir'];
  if (!dir) throw new UsageError('--out-dir DIR is required (key.pem, cert.pem, chain.pem and ca.pem are written there)');
  const algo = args.values.key ?? 'ecdsa';
  if (algo !== 'ecdsa' && algo !== 'rsa') throw new UsageError(`--key must be ecdsa or rsa, not "${algo}"`);
  const { result } = await apiRequest<Envelope<Leaf>>(await loggedIn(), 'POST', '/ca/api/v2/newcert', { request: { key: { algo, size: algo === 'ecdsa' ? 256 : 2048 } }, ...ttl(args) });
  await writeLeaf(dir, result);
  console.log(`${describe(result)}\n  files:  ${join(dir, 'key.pem')} (0600), cert.pem, chain.pem, ca.pem`);
  return 0;
}

/** Sign a CSR made elsewhere (e.g. `openssl req`); the certificate names the logged-in principal only. */
export async function caSign(args: ParsedArgs): Promise<number> {
  const file = args.words[2]!;
  const csr = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message}`);
  });
  const { result } = await apiRequest<Envelope<Leaf>>(await loggedIn(), 'POST', '/ca/api/v2/sign', { certificate_request: csr, ...ttl(args) });
  const out = args.values.out;
  if (out) {
    await writeNew(out, result.certificate_chain, 0o644);
    console.log(`${describe(result)}\n  chain written to ${out}`);
  } else process.stdout.write(result.certificate_chain);
  return 0;
}

export async function caRevoke(args: ParsedArgs): Promise<number> {
  const serial = args.words[2]!;
  const reason = args.values.reason;
  const { result } = await apiRequest<Envelope<{ serial_number: string; revoked_at: string; reason: string }>>(await loggedIn(), 'POST', '/ca/api/v2/revoke', { serial, ...(reason ? { reason } : {}) });
  console.log(`Revoked ${result.serial_number} at ${result.revoked_at} (${result.reason}); it is on the CRL until it expires`);
  return 0;
}

export async function caList(args: ParsedArgs): Promise<number> {
  const body = args.booleans.has('expired') ? { expired_ok: true } : {};
  const { result } = await apiRequest<Envelope<{ serial_number: string; spiffe_id: string; not_after: string; status: string }[]>>(await loggedIn(), 'POST', '/ca/api/v2/certificates', body);
  if (args.booleans.has('json')) console.log(JSON.stringify(result, null, 2));
  else console.log(table(['SERIAL', 'SPIFFE ID', 'NOT AFTER', 'STATUS'], result.map((c) => [c.serial_number, c.spiffe_id, c.not_after, c.status])));
  return 0;
}

export async function caRootKeyExport(args: ParsedArgs): Promise<number> {
  const out = args.values.out;
  if (!out) throw new UsageError('--out FILE is required');
  const { result } = await apiRequest<Envelope<{ encrypted_private_key: string }>>(await loggedIn(), 'POST', '/ca/api/v2/root/offline', {});
  await writeNew(out, result.encrypted_private_key, 0o600);
  console.log(`The root key (encrypted) is in ${out} and no longer in the cluster. Its passphrase is in ca-root-passphrase in the data directory of the master that created the CA: keep both offline.`);
  return 0;
}

/**
 * `strata mtls status|renew|cert show`: component mTLS from the command line.
 * `status` and `renew` ask a master (`GET /v1/security/mtls`,
 * `POST /v1/security/mtls/renew`); `cert show` reads the certificate a node
 * keeps in its data directory (`<data dir>/tls/cert.pem`, written by the
 * agent at every renewal) and says whom it names and when it renews.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renewalWindow } from '../security/ca/authority.ts';
import { pemBlocks } from '../security/ca/x509.ts';
import { CERT_FILE } from '../security/mtls/certificate.ts';
import type { ParsedArgs } from './args.ts';
import { UsageError } from './args.ts';
import { apiRequest, loggedIn, table } from './client.ts';

interface Status {
  mode: string;
  trust_domain: string;
  master?: { spiffe_id: string; serial_number: string; not_before: string; not_after: string; renew_at: string };
  crl_loaded_at?: string;
  components: { spiffe_id: string; serial_number: string; not_after: string; revoked_at?: string }[];
}

export async function mtlsStatus(args: ParsedArgs): Promise<number> {
  const status = await apiRequest<Status>(await loggedIn(), 'GET', '/v1/security/mtls');
  if (args.booleans.has('json')) {
    console.log(JSON.stringify(status, null, 2));
    return 0;
  }
  const lines = [`mTLS between components: ${status.mode} (trust domain ${status.trust_domain})`];
  if (status.master) {
    lines.push(`this master: ${status.master.spiffe_id} serial ${status.master.serial_number}`, `  valid ${status.master.not_before} .. ${status.master.not_after}, renews at ${status.master.renew_at}`, `  CRL loaded at ${status.crl_loaded_at ?? '?'}`);
  }
  lines.push('', table(['SPIFFE ID', 'SERIAL', 'NOT AFTER', 'STATUS'], status.components.map((c) => [c.spiffe_id, c.serial_number, c.not_after, c.revoked_at ? `revoked ${c.revoked_at}` : 'valid'])));
  console.log(lines.join('\n'));
  return 0;
}

export async function mtlsRenew(): Promise<number> {
  const renewed = await apiRequest<{ spiffe_id: string; serial_number: string; not_after: string; renew_at: string }>(await loggedIn(), 'POST', '/v1/security/mtls/renew', {});
  console.log(`Renewed ${renewed.spiffe_id}: serial ${renewed.serial_number}, valid until ${renewed.not_after}, next renewal at ${renewed.renew_at}`);
  return 0;
}

/** Pure: what `cert show` prints about a certificate chain (PEM, leaf first). */
export function describeChain(chainPem: string, now = new Date()): string {
  const blocks = pemBlocks(chainPem, 'CERTIFICATE');
  if (blocks.length === 0) throw new UsageError('no -----BEGIN CERTIFICATE----- block in the file');
  const leaf = new X509Certificate(blocks[0]!);
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  const window = renewalWindow(from, to);
  const leftSeconds = Math.round((to.getTime() - now.getTime()) / 1000);
  return [
    `Certificate ${leaf.serialNumber.toLowerCase()} for ${leaf.subjectAltName?.replace(/^URI:/, '') ?? '(no SAN)'}`,
    `  issuer: ${leaf.issuer.replace(/\n/g, ', ')}`,
    `  valid:  ${from.toISOString()} .. ${to.toISOString()} (${leftSeconds > 0 ? `${leftSeconds} s left` : 'EXPIRED'})`,
    `  renew:  between ${window.start.toISOString()} and ${window.end.toISOString()}`,
    `  chain:  ${blocks.length} certificate(s)`,
  ].join('\n');
}

export async function mtlsCertShow(args: ParsedArgs): Promise<number> {
  const file = args.values.file ?? join(args.values.dir ?? join('.strata', 'tls'), CERT_FILE);
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${file}: ${err.message} (agents write their certificate to <data dir>/tls/${CERT_FILE} when security.mtls is on)`);
  });
  console.log(describeChain(text));
  return 0;
}

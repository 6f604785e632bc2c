/**
 * Test harness: throwaway PKI made with the openssl CLI in a test's temp
 * directory (a CA, a server certificate with an IP SAN, a self-signed
 * signing certificate for a SAML IdP).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** A CA and, when `serverIp` is given, a server certificate for it (files in `dir`). */
export function makeTestCa(dir: string, name: string, serverIp?: string): void {
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-ca.key`, '-out', `${name}-ca.crt`, '-days', '2', '-subj', `/CN=${name} test CA`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  if (serverIp === undefined) return;
  writeFileSync(join(dir, `${name}-server.ext`), `subjectAltName=IP:${serverIp}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-server.key`, '-out', `${name}-server.csr`, '-subj', `/CN=${serverIp}`], dir);
  run('openssl', ['x509', '-req', '-in', `${name}-server.csr`, '-CA', `${name}-ca.crt`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-out', `${name}-server.crt`, '-days', '2', '-extfile', `${name}-server.ext`], dir);
}


/** A self-signed RSA key pair and certificate (PEMs), e.g. a SAML IdP's signing key. */
export function makeSigningCert(dir: string, name: string): { keyPem: string; certPem: string } {
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
  return { keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'), certPem: readFileSync(join(dir, `${name}.crt`), 'utf8') };
}

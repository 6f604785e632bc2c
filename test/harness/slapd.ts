/**
 * Test harness: a real OpenLDAP slapd of its own (Debian `slapd`), on
 * 127.0.0.1 with a plain (StartTLS-capable) and an ldaps port, a temp config
 * and database, a test CA and a server certificate with an IP SAN, and a small
 * directory under `dc=example,dc=test`:
 * - `cn=admin,dc=example,dc=test` / `adminpw` (the lookup account),
 * - users `uid=alice` / `alicepw`, `uid=bob` / `bobpw`, `uid=mallory` / `mallorypw`
 *   under `ou=people`,
 * - groups `cn=ops` (groupOfNames: alice, bob) and `cn=devs` (posixGroup: memberUid mallory)
 *   under `ou=groups`.
 * `close()` kills it and removes the directory. `slapdUnavailable()` says why it cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa, run } from './pki.ts';

export const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
export const LDAP_SUFFIX = 'dc=example,dc=test';

export interface Slapd {
  readonly ldapPort: number;
  readonly ldapsPort: number;
  /** PEM of the CA that signed the server certificate. */
  readonly caPem: string;
  /** PEM of a CA that signed nothing here (an untrusted CA). */
  readonly otherCaPem: string;
  close(): Promise<void>;
}

export function slapdUnavailable(): string | undefined {
  if (!existsSync(SLAPD) || !existsSync(SLAPADD)) return 'slapd is not installed (scripts/install-test-deps.sh installs slapd)';
  if (spawnSync('openssl', ['version']).status !== 0) return 'openssl is not installed';
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}


function ldif(): string {
  const person = (uid: string, cn: string): string => `dn: uid=${uid},ou=people,${LDAP_SUFFIX}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${cn}\nsn: ${cn}\nmail: ${uid}@example.test\nuserPassword: ${uid}pw\n`;
  return [
    `dn: ${LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n`,
    `dn: ou=people,${LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ou=groups,${LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n`,
    person('alice', 'Alice Liddell'),
    person('bob', 'Bob Builder'),
    person('mallory', 'Mallory Mal'),
    `dn: cn=ops,ou=groups,${LDAP_SUFFIX}\nobjectClass: groupOfNames\ncn: ops\nmember: uid=alice,ou=people,${LDAP_SUFFIX}\nmember: uid=bob,ou=people,${LDAP_SUFFIX}\n`,
    `dn: cn=devs,ou=groups,${LDAP_SUFFIX}\nobjectClass: posixGroup\ncn: devs\ngidNumber: 5000\nmemberUid: mallory\n`,
  ].join('\n');
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`slapd exited (${child.exitCode}): ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`slapd did not listen on ${port}: ${stderr()}`);
}

export async function startSlapd(): Promise<Slapd> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-slapd-'));
  let child: ChildProcess | undefined;
  try {
    makeTestCa(dir, 'ldap', '127.0.0.1');
    makeTestCa(dir, 'other');
    await mkdir(join(dir, 'db'));
    const conf = [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `pidfile ${dir}/slapd.pid`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      `TLSCACertificateFile ${dir}/ldap-ca.crt`,
      `TLSCertificateFile ${dir}/ldap-server.crt`,
      `TLSCertificateKeyFile ${dir}/ldap-server.key`,
      'database mdb',
      'maxsize 10485760',
      `suffix "${LDAP_SUFFIX}"`,
      `rootdn "cn=admin,${LDAP_SUFFIX}"`,
      'rootpw adminpw',
      `directory ${dir}/db`,
      'access to attrs=userPassword by anonymous auth by self read by * none',
      'access to * by * read',
      '',
    ].join('\n');
    await writeFile(join(dir, 'slapd.conf'), conf);
    await writeFile(join(dir, 'data.ldif'), ldif());
    run(SLAPADD, ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'data.ldif')], dir);
    const ldapPort = await freePort();
    const ldapsPort = await freePort();
    let err = '';
    child = spawn(SLAPD, ['-f', join(dir, 'slapd.conf'), '-h', `ldap://127.0.0.1:${ldapPort}/ ldaps://127.0.0.1:${ldapsPort}/`, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-4000);
    });
    await waitForPort(ldapPort, child, () => err);
    await waitForPort(ldapsPort, child, () => err);
    const caPem = await readFile(join(dir, 'ldap-ca.crt'), 'utf8');
    const otherCaPem = await readFile(join(dir, 'other-ca.crt'), 'utf8');
    const proc = child;
    return {
      ldapPort,
      ldapsPort,
      caPem,
      otherCaPem,
      async close() {
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM');
          await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
          if (proc.exitCode === null) proc.kill('SIGKILL');
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The gateway's server certificate, from the cluster CA: issued at start for
 * the names clients dial (localhost, 127.0.0.1, ::1, this host's name, the
 * listen host, `gateway.certificateNames`), renewed at a jittered point in
 * 60-90 % of its life and swapped into the running server without a restart
 * (`setSecureContext`: connections already open keep their session).
 */
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { IssuedLeaf } from '../security/ca/authority.ts';
import { renewAt } from '../security/ca/authority.ts';

/** The port the gateway needs from the CA (a `ClusterCa`, or a fake). */
export interface ComponentCertificateIssuer {
  issueComponentCertificate(component: string, options: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] }): Promise<IssuedLeaf & { privateKey: string }>;
  readonly rootPem: string;
}

/** Pure: the certificate's DNS names and IP addresses (wildcard listen addresses are left out). */
export function certificateNames(listenHost: string, extra: readonly string[], hostName: string = hostname()): { dnsNames: string[]; ipAddresses: string[] } {
  const all = new Set(['localhost', '127.0.0.1', '::1', hostName, listenHost, ...extra].map((n) => n.replace(/^\[|\]$/g, '').toLowerCase()));
  all.delete('0.0.0.0');
  all.delete('::');
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const n of all) (isIP(n) ? ipAddresses : dnsNames).push(n);
  return { dnsNames, ipAddresses };
}

export interface ServingCertificate {
  readonly cert: string;
  readonly key: string;
  readonly serial: string;
  readonly notAfter: Date;
  readonly renewAt: Date;
  readonly names: readonly string[];
}

export async function issueServingCertificate(ca: ComponentCertificateIssuer, names: { dnsNames: string[]; ipAddresses: string[] }): Promise<ServingCertificate> {
  const leaf = await ca.issueComponentCertificate('gateway', names);
  return {
    cert: leaf.certificateChain,
    key: leaf.privateKey,
    serial: leaf.serial,
    notAfter: leaf.notAfter,
    renewAt: renewAt(leaf.notBefore, leaf.notAfter),
    names: [...names.dnsNames, ...names.ipAddresses],
  };
}

/**
 * Renew before expiry, forever, until `signal` aborts: `apply` installs each
 * new certificate; a failed issuance is retried a minute later (the current
 * certificate stays in use meanwhile).
 */
export function keepRenewed(
  ca: ComponentCertificateIssuer,
  names: { dnsNames: string[]; ipAddresses: string[] },
  first: ServingCertificate,
  options: { readonly signal: AbortSignal; readonly apply: (c: ServingCertificate) => void; readonly onError: (err: unknown) => void },
): void {
  const schedule = (at: Date): void => {
    if (options.signal.aborted) return;
    // setTimeout holds at most ~24.8 days; longer waits are taken in steps.
    const delayMs = Math.min(Math.max(at.getTime() - Date.now(), 1000), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      if (Date.now() < at.getTime() - 1000) return schedule(at);
      issueServingCertificate(ca, names).then(
        (next) => {
          options.apply(next);
          schedule(next.renewAt);
        },
        (err: unknown) => {
          options.onError(err);
          schedule(new Date(Date.now() + 60_000));
        },
      );
    }, delayMs);
    timer.unref();
    options.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  };
  schedule(first.renewAt);
}

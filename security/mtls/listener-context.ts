/**
 * The mTLS listener context of a component that holds only its own
 * certificate (an agent): it presents that certificate (renewed), trusts the
 * cluster root that came with its enrolment, and names peers in the trust
 * domain of its own SPIFFE id. It has no CRL (agents hold no CA state), so
 * `isRevoked` is always false here; see security/README.md "Not yet".
 */
import { X509Certificate } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { ComponentCertificate, HeldCertificate } from './certificate.ts';
import { peerIdentity, type PeerIdentity } from './identity.ts';
import type { MtlsListenerContext } from './server.ts';

/** `spiffe://<td>/...` → `<td>` ('' when it is no SPIFFE id). */
export function trustDomainOf(spiffeId: string): string {
  return /^spiffe:\/\/([^/]+)\//.exec(spiffeId)?.[1] ?? '';
}

/** The PEM certificates in a chain, in order. */
function pemBlocks(chain: string): string[] {
  return chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function componentListenerContext(certificate: ComponentCertificate): MtlsListenerContext {
  const held = (): HeldCertificate => certificate.current;
  const intermediate = pemBlocks(held().certificateChain)[1];
  return {
    // The leaf's issuer (the cluster intermediate) when the chain carries it; used only to label refusals.
    intermediateSubject: intermediate ? new X509Certificate(intermediate).subject : new X509Certificate(held().certificateChain).issuer,
    secureContextOptions(): SecureContextOptions {
      const h = held();
      return { key: h.keyPem, cert: h.certificateChain, ca: h.rootCa };
    },
    isRevoked: () => false,
    onChange: (listener) => certificate.onChange(() => listener()),
    identityOf: (subjectaltname): PeerIdentity | { readonly problem: string } => peerIdentity(subjectaltname, trustDomainOf(held().spiffeId)),
  };
}

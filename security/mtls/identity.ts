/**
 * Pure decisions of component mTLS: who a verified peer certificate names,
 * and why a handshake was refused (for the `reason` label of
 * `strata_mtls_handshake_failures_total`).
 *
 * A peer is accepted only when OpenSSL verified its chain to the cluster
 * root (with the CRLs of the root and the intermediate, the `ssl_client`
 * purpose, so a serverAuth-only leaf fails, and key usage, so a leaf that
 * signed another certificate fails) and its certificate names exactly one
 * URI SAN, a SPIFFE id of this cluster's trust domain (SPIFFE X509-SVID:
 * "exactly one URI SAN"; Node compares no SPIFFE ids itself).
 */

export type ComponentKind = 'agent' | 'master' | 'user' | 'sa';

export interface PeerIdentity {
  readonly spiffeId: string;
  readonly kind: ComponentKind;
  /** Agent id, master id, or principal uid. */
  readonly name: string;
}

const KINDS: ReadonlySet<string> = new Set(['agent', 'master', 'user', 'sa']);

/** The URI SANs in Node's `subjectaltname` text (`URI:spiffe://a/b, DNS:x`). */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  return subjectaltname.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

/**
 * The identity a certificate's SANs name in `trustDomain`, or a reason it
 * names none: more or fewer than one URI SAN, another trust domain, or a
 * path that is not `/<agent|master|user|sa>/<name>`.
 */
export function peerIdentity(subjectaltname: string | undefined, trustDomain: string): PeerIdentity | { readonly problem: string } {
  const uris = uriSans(subjectaltname);
  if (uris.length !== 1) return { problem: `the certificate has ${uris.length} URI SANs; exactly one SPIFFE id is required` };
  const spiffeId = uris[0]!;
  const m = /^spiffe:\/\/([^/]+)\/([a-z]+)\/([A-Za-z0-9][A-Za-z0-9@._-]{0,127})$/.exec(spiffeId);
  if (!m) return { problem: `${spiffeId} is not a SPIFFE id of the form spiffe://<trust domain>/<kind>/<name>` };
  if (m[1] !== trustDomain) return { problem: `${spiffeId} is of trust domain ${m[1]}, not ${trustDomain}` };
  if (!KINDS.has(m[2]!)) return { problem: `${spiffeId} names a ${m[2]}, not an agent, master, user or service account` };
  return { spiffeId, kind: m[2] as ComponentKind, name: m[3]! };
}

export type HandshakeFailure =
  | 'no_certificate'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'unknown_ca'
  | 'self_signed'
  | 'purpose'
  | 'not_a_ca'
  | 'crl'
  | 'protocol_version'
  | 'identity'
  | 'other';

export const HANDSHAKE_FAILURES: readonly HandshakeFailure[] = ['no_certificate', 'expired', 'not_yet_valid', 'revoked', 'unknown_ca', 'self_signed', 'purpose', 'not_a_ca', 'crl', 'protocol_version', 'identity', 'other'];

/** OpenSSL verification codes as Node reports them (`authorizationError`, error `code`s) → reason. */
const REASONS: Readonly<Record<string, HandshakeFailure>> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  CERT_REVOKED: 'revoked',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'self_signed',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self_signed',
  INVALID_PURPOSE: 'purpose',
  INVALID_CA: 'not_a_ca',
  KEYUSAGE_NO_CERTSIGN: 'not_a_ca',
  PATH_LENGTH_EXCEEDED: 'not_a_ca',
  UNABLE_TO_GET_CRL: 'crl',
  CRL_HAS_EXPIRED: 'crl',
  CRL_NOT_YET_VALID: 'crl',
  CRL_SIGNATURE_FAILURE: 'crl',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'protocol_version',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'protocol_version',
  ERR_SSL_WRONG_VERSION_NUMBER: 'protocol_version',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_certificate',
};

/**
 * Why a connection was refused: `hasCertificate` false means the peer sent
 * none (OpenSSL then reports a missing issuer); otherwise the verification
 * or TLS error code decides. OpenSSL reports the last of its errors, and with
 * CRL checking on, a chain that never reached a trusted CA ends with "unable
 * to get CRL" (there is none for an unknown issuer): `selfIssued` then tells
 * a self-signed certificate from one of a foreign CA; `nonCaIssuer` (a
 * certificate above the leaf in the presented chain is not a CA) names a
 * leaf that signed another certificate.
 */
export function handshakeFailure(code: string | undefined, hasCertificate = true, chain: { readonly selfIssued?: boolean; readonly nonCaIssuer?: boolean } = {}): HandshakeFailure {
  if (!hasCertificate) return 'no_certificate';
  // A certificate in the presented chain signed another but is no CA: OpenSSL's last error is then often "unspecified".
  if (chain.nonCaIssuer) return 'not_a_ca';
  const reason = (code !== undefined ? REASONS[code] : undefined) ?? 'other';
  if (reason === 'crl' && code === 'UNABLE_TO_GET_CRL') return chain.selfIssued ? 'self_signed' : 'unknown_ca';
  return reason;
}

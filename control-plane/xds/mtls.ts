/**
 * The xDS server's mTLS port (istiod's 15012): gRPC server credentials over
 * the master's {@link MtlsServerContext} (its certificate, the cluster root
 * as the only trust anchor, the CRLs), re-read whenever they change, so
 * rotation and revocation need no restart. OpenSSL verifies the client's
 * chain, CRL, `ssl_client` purpose and key usage during the handshake, and
 * refuses TLS below 1.2.
 *
 * A node on this port is who its certificate says: a workload certificate
 * (`spiffe://<td>/user/<uid>` or `.../sa/<uid>`, as SDS hands out) is that
 * principal, and a token, if also sent, must name the same one. Component
 * certificates (agents, masters) carry no principal; those streams still
 * authenticate with a token.
 */
import * as grpc from '@grpc/grpc-js';
import { StrataError, isStrataError } from '../../common/errors.ts';
import type { Iam } from '../../security/iam.ts';
import { peerIdentity } from '../../security/mtls/identity.ts';
import { MIN_TLS_VERSION, type MtlsServerContext } from '../../security/mtls/server.ts';
import type { TokenService } from '../../security/tokens.ts';
import { bearerToken, identityOf, type NodeIdentity } from './identity.ts';

export class MtlsServerCredentials extends grpc.ServerCredentials {
  readonly #unsubscribe: () => void;

  constructor(context: MtlsServerContext) {
    super({ requestCert: true, rejectUnauthorized: true, minVersion: MIN_TLS_VERSION }, context.secureContextOptions());
    this.#unsubscribe = context.onChange(() => this.updateSecureContextOptions(context.secureContextOptions()));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** What the server knows of a stream's transport: the verified client certificate's SANs, when there is one. */
export interface StreamPeer {
  readonly subjectaltname?: string;
}

/**
 * Authenticate a stream by its verified client certificate (when it names a
 * principal) and/or its token. Throws `XDS_UNAUTHENTICATED` saying why.
 */
export function certificateAuthenticator(deps: { tokens: TokenService; iam: Iam; trustDomain: string }): (authorization: string | undefined, peer?: StreamPeer) => Promise<NodeIdentity> {
  const byToken = async (authorization: string | undefined): Promise<string> => {
    const token = bearerToken(authorization);
    if (token === undefined) throw new StrataError('XDS_UNAUTHENTICATED', 'xDS streams need a token (metadata "authorization: Bearer <jwt>") or, on the mTLS port, a workload certificate');
    try {
      return (await deps.tokens.verify(token)).uid;
    } catch (err) {
      if (isStrataError(err, 'AUTH_TOKEN_INVALID')) throw new StrataError('XDS_UNAUTHENTICATED', err.message, { cause: err });
      throw err;
    }
  };
  return async (authorization, peer) => {
    let uid: string | undefined;
    let kind: 'user' | 'service' | undefined;
    if (peer?.subjectaltname !== undefined) {
      const id = peerIdentity(peer.subjectaltname, deps.trustDomain);
      if ('problem' in id) throw new StrataError('XDS_UNAUTHENTICATED', `client certificate refused: ${id.problem}`);
      if (id.kind === 'user' || id.kind === 'sa') {
        uid = id.name;
        kind = id.kind === 'sa' ? 'service' : 'user';
      }
    }
    if (uid === undefined) uid = await byToken(authorization);
    else if (bearerToken(authorization) !== undefined) {
      const tokenUid = await byToken(authorization);
      if (tokenUid !== uid) throw new StrataError('XDS_UNAUTHENTICATED', `the token names ${JSON.stringify(tokenUid)} but the client certificate names ${JSON.stringify(uid)}`);
    }
    const principal = await deps.iam.getPrincipal(uid);
    if (!principal || principal.disabled) throw new StrataError('XDS_UNAUTHENTICATED', `principal ${JSON.stringify(uid)} does not exist or is disabled`);
    if (kind !== undefined && principal.kind !== kind) throw new StrataError('XDS_UNAUTHENTICATED', `the client certificate names a ${kind === 'service' ? 'service account' : 'user'}, but ${JSON.stringify(uid)} is not one`);
    return identityOf(principal);
  };
}

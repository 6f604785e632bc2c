/**
 * Who an xDS node is, and what it may see.
 *
 * A node authenticates its stream with a Strata JWT in the call metadata
 * (`authorization: Bearer <jwt>` or `token=<jwt>`, as the API accepts;
 * Envoy sends it as the ADS service's `initial_metadata`), or, for gRPC
 * clients, which cannot add metadata to their ADS stream, in the first
 * request's `node.metadata.STRATA_TOKEN` (server.ts reads it). It is
 * verified by the TokenService like any API token. The principal is read
 * once, when the stream opens (a changed permission applies on the next
 * connect).
 *
 * Rule: a node sees a service's resources when its principal holds `read`
 * on the app's Marathon resource id, `dcos:service:marathon:marathon:services:<app id>`,
 * or on a group above it (`...:services:/shop` covers `/shop/web`), or is a
 * superuser. That is the permission that lets it read the app through the
 * Marathon API, so a sidecar's service account is scoped the same way a
 * user is. On the mTLS port a workload certificate is a second way to
 * authenticate, mapping to the same principals (`mtls.ts`).
 */
import { StrataError, isStrataError } from '../../common/errors.ts';
import { allows, SUPERUSER_RID, type Iam } from '../../security/iam.ts';
import type { TokenService } from '../../security/tokens.ts';
import type { Principal } from '../model/schemas.ts';

export interface NodeIdentity {
  readonly uid: string;
  /** The principal's kind: its workload certificate is `spiffe://<td>/user/<uid>` or `.../sa/<uid>`. */
  readonly kind: 'user' | 'service';
  /** Sees every resource (superuser). */
  readonly all: boolean;
  mayRead(appId: string): boolean;
}

/**
 * Verifies the token a stream presents (and, on the mTLS port, its verified
 * client certificate's SANs); throws `XDS_UNAUTHENTICATED` saying why.
 */
export type XdsAuthenticator = (authorization: string | undefined, peer?: { readonly subjectaltname?: string }) => Promise<NodeIdentity>;

export const APP_RID_PREFIX = 'dcos:service:marathon:marathon:services:';

/** The rids that grant read on an app: its own and each enclosing group's. */
export function appReadRids(appId: string): string[] {
  const parts = appId.split('/').filter(Boolean);
  const rids: string[] = [];
  for (let i = parts.length; i >= 1; i--) rids.push(`${APP_RID_PREFIX}/${parts.slice(0, i).join('/')}`);
  return rids;
}

export function identityOf(principal: Principal): NodeIdentity {
  const all = !principal.disabled && principal.permissions.some((p) => p.rid === SUPERUSER_RID);
  const cache = new Map<string, boolean>();
  return {
    uid: principal.uid,
    kind: principal.kind,
    all,
    mayRead(appId: string): boolean {
      if (all) return true;
      let v = cache.get(appId);
      if (v === undefined) {
        v = appReadRids(appId).some((rid) => allows(principal, rid, 'read'));
        cache.set(appId, v);
      }
      return v;
    },
  };
}

/** One key per node identity (`user/alice`, `service/web-sidecar`): secrets are held per key. */
export function identityKey(identity: Pick<NodeIdentity, 'uid' | 'kind'>): string {
  return `${identity.kind}/${identity.uid}`;
}

export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return /^(?:token=|Bearer\s+)(\S+)\s*$/i.exec(authorization)?.[1];
}

export function tokenAuthenticator(deps: { tokens: TokenService; iam: Iam }): XdsAuthenticator {
  return async (authorization) => {
    const token = bearerToken(authorization);
    if (token === undefined) throw new StrataError('XDS_UNAUTHENTICATED', 'xDS streams need a token: send metadata "authorization: Bearer <jwt>"');
    let uid: string;
    try {
      uid = (await deps.tokens.verify(token)).uid;
    } catch (err) {
      if (isStrataError(err, 'AUTH_TOKEN_INVALID')) throw new StrataError('XDS_UNAUTHENTICATED', err.message, { cause: err });
      throw err;
    }
    const principal = await deps.iam.getPrincipal(uid);
    if (!principal || principal.disabled) throw new StrataError('XDS_UNAUTHENTICATED', `token rejected: principal ${JSON.stringify(uid)} does not exist or is disabled`);
    return identityOf(principal);
  };
}

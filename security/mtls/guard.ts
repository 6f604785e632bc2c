/**
 * Which API routes are internal (called by agents, not users) and the pure
 * decision whether a request may use one, given the mTLS mode and the
 * verified peer of its connection.
 *
 * - `off`, `permissive`: plain connections are served; a request that did
 *   come over mTLS must still match its certificate.
 * - `strict`: internal routes take only mTLS connections.
 * - On an internal route naming an agent (`:agentId`), the certificate must
 *   be that agent's (`spiffe://<td>/agent/<id>`); on the other internal
 *   routes (the DNS feed) an agent's or a master's.
 * The bootstrap route (`POST /v1/agents/:agentId/certificate`) is not
 * internal: an agent without a certificate enrols there with its token.
 */

import type { PeerIdentity } from './identity.ts';

export type MtlsMode = 'off' | 'permissive' | 'strict';

/** `METHOD url` of every internal route (fastify route URLs). */
export const INTERNAL_ROUTES: ReadonlySet<string> = new Set([
  'PUT /v1/agents/:agentId',
  'GET /v1/agents/:agentId/tasks',
  'GET /v1/agents/:agentId/tasks/:taskId/app',
  'PUT /v1/agents/:agentId/tasks/:taskId/status',
  'GET /v1/dns/cluster-state',
  'GET /networking/api/v1/agents/:agentId/overlay',
  'PUT /networking/api/v1/agents/:agentId/overlay',
  'POST /networking/api/v1/agents/:agentId/overlay/addresses',
]);

export type GuardVerdict = { readonly ok: true } | { readonly ok: false; readonly code: 'MTLS_REQUIRED' | 'MTLS_IDENTITY_MISMATCH'; readonly message: string };

const OK: GuardVerdict = { ok: true };

export function guardRequest(request: { readonly method: string; readonly routeUrl: string | undefined; readonly agentId?: string | undefined }, mode: MtlsMode, peer: PeerIdentity | undefined): GuardVerdict {
  const internal = request.routeUrl !== undefined && INTERNAL_ROUTES.has(`${request.method} ${request.routeUrl}`);
  if (!internal) return OK;
  if (!peer) {
    if (mode !== 'strict') return OK;
    return { ok: false, code: 'MTLS_REQUIRED', message: `${request.method} ${request.routeUrl} is internal and security.mtls is strict: connect with mTLS using a certificate from the cluster CA (agents enrol at POST /v1/agents/{id}/certificate)` };
  }
  if (request.agentId !== undefined) {
    if (peer.kind === 'agent' && peer.name === request.agentId) return OK;
    return { ok: false, code: 'MTLS_IDENTITY_MISMATCH', message: `the client certificate names ${peer.spiffeId}, but the request is for agent ${JSON.stringify(request.agentId)}` };
  }
  if (peer.kind === 'agent' || peer.kind === 'master') return OK;
  return { ok: false, code: 'MTLS_IDENTITY_MISMATCH', message: `the client certificate names ${peer.spiffeId}; this internal route serves agents and masters` };
}

/**
 * An agent's endpoints that only masters call (the sandbox log endpoint,
 * `scheduler/agent/sandbox-logs.ts`): in `strict` they take only mTLS; over
 * mTLS, in every mode, the certificate must name a master. The master's
 * grant JWT is still checked after this (defence in depth).
 */
export function guardAgentEndpoint(mode: MtlsMode, peer: PeerIdentity | undefined): GuardVerdict {
  if (!peer) {
    if (mode !== 'strict') return OK;
    return { ok: false, code: 'MTLS_REQUIRED', message: 'security.mtls is strict: this agent endpoint takes only mTLS connections from a master (spiffe://<td>/master/<id>)' };
  }
  if (peer.kind === 'master') return OK;
  return { ok: false, code: 'MTLS_IDENTITY_MISMATCH', message: `the client certificate names ${peer.spiffeId}; only masters may call this agent endpoint` };
}

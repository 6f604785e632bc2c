/**
 * Component mTLS on the API (`security/mtls`):
 * - the route guard: an `onRequest` hook applying `guardRequest` (strict
 *   mode: internal routes only over mTLS; over mTLS, the certificate must be
 *   the agent the path names);
 * - `POST /v1/agents/{agentId}/certificate`: an agent enrols (at join and at
 *   every renewal) with its token, sending a CSR; the CA signs
 *   `spiffe://<td>/agent/<agentId>` (clientAuth+serverAuth, CA:false) for
 *   `security.componentCertTtlSeconds`. Needs `update` on the agent
 *   resource, as registration does. Not internal: an agent without a
 *   certificate must reach it;
 * - `GET /v1/security/mtls`: the mode, this master's certificate and CRL
 *   age, and the component certificates issued (`read` on the CA);
 * - `POST /v1/security/mtls/renew`: renew this master's certificate now
 *   (`full` on the CA).
 */
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { guardRequest } from '../../../security/mtls/guard.ts';
import { peerOf } from '../../../security/mtls/server.ts';
import { AgentId } from '../../model/schemas.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { requires } from '../permissions.ts';
import { AGENT_RID } from './agents.ts';
import { CA_RO_RID, CA_RW_RID } from './ca.ts';

const Certificate = Type.Object({
  certificate_chain: Type.String(),
  ca: Type.String(),
  serial_number: Type.String(),
  spiffe_id: Type.String(),
  not_before: Type.String(),
  not_after: Type.String(),
});

export function mtlsRoutes(app: ApiInstance, ctx: ApiContext): void {
  const enrolled = new Counter({ name: 'strata_mtls_enrolments_total', help: 'Component certificates this master issued to agents (join and renewals)', registers: [ctx.metrics.registry] });
  const mode = ctx.config.security.mtls;

  app.addHook('onRequest', async (request) => {
    const peer = peerOf(request.raw.socket);
    if (!peer && mode !== 'strict') return;
    const params = request.params as Record<string, string | undefined> | undefined;
    const verdict = guardRequest({ method: request.method, routeUrl: request.routeOptions.url, agentId: params?.['agentId'] }, mode, peer);
    if (!verdict.ok) throw new StrataError(verdict.code, verdict.message);
  });

  app.post('/v1/agents/:agentId/certificate', {
    config: { permission: requires(AGENT_RID, 'update') },
    schema: {
      summary: 'Enrol an agent: sign its CSR as spiffe://<trust domain>/agent/<agentId> for mTLS with the masters',
      params: Type.Object({ agentId: AgentId }),
      body: Type.Object({ certificate_request: Type.String({ minLength: 1, maxLength: 16384 }) }, { additionalProperties: false }),
      response: { 200: Certificate },
    },
  }, async (request) => {
    if (mode === 'off') throw new StrataError('MTLS_OFF', 'this master has security.mtls=off: it enrols no components');
    if (!ctx.ca) throw new StrataError('CA_NOT_READY', 'this API has no cluster CA');
    const ttlSeconds = Math.min(ctx.config.security.componentCertTtlSeconds, ctx.config.ca.maxLeafTtlSeconds);
    const leaf = await ctx.ca.sign({ uid: request.params.agentId, kind: 'agent' }, request.body.certificate_request, { ttlSeconds });
    enrolled.inc();
    return {
      certificate_chain: leaf.certificateChain, ca: leaf.rootCa, serial_number: leaf.serial, spiffe_id: leaf.spiffeId,
      not_before: leaf.notBefore.toISOString(), not_after: leaf.notAfter.toISOString(),
    };
  });

  app.get('/v1/security/mtls', {
    config: { permission: requires(CA_RO_RID, 'read') },
    schema: { summary: 'mTLS between components: the mode, this master\'s certificate, the CRL in use and the component certificates issued' },
  }, async () => {
    const held = ctx.mtls?.certificate.current;
    const now = Date.now();
    const components = ctx.ca
      ? (await ctx.ca.list())
          .filter((c) => /^spiffe:\/\/[^/]+\/(agent|master)\//.test(c.spiffeId) && Date.parse(c.notAfter) > now)
          .map((c) => ({ spiffe_id: c.spiffeId, serial_number: c.serial, not_before: c.notBefore, not_after: c.notAfter, ...(c.revokedAt ? { revoked_at: c.revokedAt } : {}) }))
      : [];
    return {
      mode,
      trust_domain: ctx.config.ca.trustDomain,
      ...(held && ctx.mtls
        ? {
            master: { spiffe_id: held.spiffeId, serial_number: held.serial, not_before: held.notBefore.toISOString(), not_after: held.notAfter.toISOString(), renew_at: held.renewAt.toISOString() },
            crl_loaded_at: new Date(ctx.mtls.crlLoadedAtMs).toISOString(),
          }
        : {}),
      components,
    };
  });

  app.post('/v1/security/mtls/renew', {
    config: { permission: requires(CA_RW_RID, 'full') },
    schema: { summary: 'Renew this master\'s mTLS certificate now' },
  }, async () => {
    if (!ctx.mtls) throw new StrataError('MTLS_OFF', 'this master has security.mtls=off');
    await ctx.mtls.certificate.renew();
    const held = ctx.mtls.certificate.current;
    return { spiffe_id: held.spiffeId, serial_number: held.serial, not_after: held.notAfter.toISOString(), renew_at: held.renewAt.toISOString() };
  });
}

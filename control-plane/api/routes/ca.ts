/**
 * The cluster CA at /ca (DC/OS's CFSSL front): `GET /ca/dcos-ca.crt` and
 * `POST /ca/api/v2/info` (public: the root certificate), `GET /ca/api/v2/crl`
 * (public: the intermediate's CRL as DER, or with `?format=pem` both CRLs,
 * the root's included, as Node's `crl` option and `-crl_check_all` need), and
 * `POST /ca/api/v2/sign|newcert|revoke|certificates`.
 *
 * Successful answers use CFSSL's envelope `{success, result, errors, messages}`;
 * errors use Strata's `{code, message, details}` like every other route.
 *
 * Permissions (the DC/OS sources disagree; chosen deliberately): issuing and
 * revoking need `full` on `dcos:adminrouter:ops:ca:rw` (the permissions
 * reference); listing issued certificates needs `read` on
 * `dcos:adminrouter:ops:ca:ro`. Issuing for yourself is safe to grant widely:
 * a certificate only ever names its authenticated caller.
 */
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import { StrataError } from '../../../common/errors.ts';
import { REVOCATION_REASONS } from '../../model/schemas.ts';
import type { CertificateCaller, ClusterCa, IssuedLeaf } from '../../../security/ca/authority.ts';
import { toPem } from '../../../security/ca/x509.ts';
import type { ApiContext, ApiInstance } from '../context.ts';
import { PUBLIC, requires } from '../permissions.ts';

export const CA_RW_RID = 'dcos:adminrouter:ops:ca:rw';
export const CA_RO_RID = 'dcos:adminrouter:ops:ca:ro';

const envelope = <T>(result: T): { success: true; result: T; errors: never[]; messages: never[] } => ({ success: true, result, errors: [], messages: [] });

const TtlSeconds = Type.Integer({ minimum: 1, description: 'Strata: the lifetime asked for (at most the CA\'s maximum, 72 h by default)' });
const Hosts = Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 16, description: 'CFSSL override of the SANs; may only repeat the caller\'s SPIFFE id' });
const Profile = Type.String({ maxLength: 128 });

function leafView(leaf: IssuedLeaf): Record<string, unknown> {
  return {
    certificate: leaf.certificate,
    certificate_chain: leaf.certificateChain,
    issuing_ca: leaf.issuingCa,
    ca: leaf.rootCa,
    serial_number: leaf.serial,
    spiffe_id: leaf.spiffeId,
    not_before: leaf.notBefore.toISOString(),
    not_after: leaf.notAfter.toISOString(),
    /** Renew at a jittered point of this window (60-90 % of the lifetime). */
    renewal: { start: leaf.renewal.start.toISOString(), end: leaf.renewal.end.toISOString() },
  };
}

export function caRoutes(app: ApiInstance, ctx: ApiContext): void {
  const issued = new Counter({ name: 'strata_ca_certificates_issued_total', help: 'Leaf certificates the cluster CA issued, by route', labelNames: ['route'], registers: [ctx.metrics.registry] });
  const refused = new Counter({ name: 'strata_ca_requests_refused_total', help: 'Certificate requests the cluster CA refused, by error code', labelNames: ['code'], registers: [ctx.metrics.registry] });
  const revoked = new Counter({ name: 'strata_ca_certificates_revoked_total', help: 'Certificates revoked', registers: [ctx.metrics.registry] });

  const ca = (): ClusterCa => {
    if (!ctx.ca) throw new StrataError('CA_NOT_READY', 'this API has no cluster CA');
    return ctx.ca;
  };
  const caller = async (uid: string | undefined): Promise<CertificateCaller> => {
    const p = uid === undefined ? undefined : await ctx.iam.getPrincipal(uid);
    if (!p) throw new StrataError('API_UNAUTHENTICATED', 'the caller is not a known principal');
    return { uid: p.uid, kind: p.kind };
  };
  const counted = async <T>(route: string, run: () => Promise<T>): Promise<T> => {
    try {
      const out = await run();
      issued.inc({ route });
      return out;
    } catch (err) {
      refused.inc({ code: err instanceof StrataError ? err.code : 'error' });
      throw err;
    }
  };

  app.get('/ca/dcos-ca.crt', {
    config: { permission: PUBLIC },
    schema: { summary: 'The cluster root CA certificate (PEM): the trust anchor for every cluster certificate' },
  }, async (_request, reply) => reply.type('application/x-x509-ca-cert').send(ca().rootPem));

  app.post('/ca/api/v2/info', {
    config: { permission: PUBLIC },
    schema: {
      summary: 'CFSSL info: the root certificate, leaf usages and the longest leaf lifetime',
      body: Type.Optional(Type.Object({ profile: Type.Optional(Profile), label: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false })),
    },
  }, async () => envelope(ca().info()));

  app.get('/ca/api/v2/crl', {
    config: { permission: PUBLIC },
    schema: {
      summary: 'Revocation lists: DER = the intermediate\'s CRL (the leaves); ?format=pem = that and the root\'s CRL (the intermediate), for verifiers that check every level',
      querystring: Type.Object({ format: Type.Optional(Type.Enum(['der', 'pem'])) }, { additionalProperties: false }),
    },
  }, async (request, reply) => {
    const der = await ca().crl();
    return request.query.format === 'pem' ? reply.type('application/x-pem-file').send(`${toPem(der, 'X509 CRL')}${ca().rootCrlPem}`) : reply.type('application/pkix-crl').send(der);
  });

  app.post('/ca/api/v2/sign', {
    config: { permission: requires(CA_RW_RID, 'full') },
    schema: {
      summary: 'Sign a CSR for the caller: one URI SAN spiffe://<trust domain>/<user|sa>/<uid>, CA:false, serverAuth+clientAuth, at most the maximum lifetime',
      body: Type.Object(
        {
          certificate_request: Type.String({ minLength: 1, maxLength: 65536 }),
          hosts: Type.Optional(Hosts),
          profile: Type.Optional(Profile),
          label: Type.Optional(Type.String({ maxLength: 128 })),
          /** Accepted for CFSSL clients and ignored: the certificate's subject is empty, its identity is the SAN. */
          subject: Type.Optional(Type.Object({}, { additionalProperties: true })),
          ttl_seconds: Type.Optional(TtlSeconds),
        },
        { additionalProperties: false },
      ),
    },
  }, async (request) => counted('sign', async () => {
    const b = request.body;
    const leaf = await ca().sign(await caller(request.principalUid), b.certificate_request, { ...(b.hosts ? { hosts: b.hosts } : {}), ...(b.ttl_seconds === undefined ? {} : { ttlSeconds: b.ttl_seconds }) });
    return envelope(leafView(leaf));
  }));

  app.post('/ca/api/v2/newcert', {
    config: { permission: requires(CA_RW_RID, 'full') },
    schema: {
      summary: 'Make a key pair and CSR here and sign it for the caller (CFSSL newcert); returns the private key once',
      body: Type.Object(
        {
          request: Type.Object(
            {
              hosts: Type.Optional(Hosts),
              CN: Type.Optional(Type.String({ maxLength: 256 })),
              names: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 16 })),
              key: Type.Optional(Type.Object({ algo: Type.Enum(['ecdsa', 'rsa']), size: Type.Integer() }, { additionalProperties: false })),
            },
            { additionalProperties: false },
          ),
          profile: Type.Optional(Profile),
          label: Type.Optional(Type.String({ maxLength: 128 })),
          ttl_seconds: Type.Optional(TtlSeconds),
        },
        { additionalProperties: false },
      ),
    },
  }, async (request) => counted('newcert', async () => {
    const b = request.body;
    const key = b.request.key ?? { algo: 'ecdsa' as const, size: 256 };
    const leaf = await ca().newcert(await caller(request.principalUid), key, { ...(b.request.hosts ? { hosts: b.request.hosts } : {}), ...(b.ttl_seconds === undefined ? {} : { ttlSeconds: b.ttl_seconds }) });
    return envelope({ ...leafView(leaf), private_key: leaf.privateKey, certificate_request: leaf.certificateRequest });
  }));

  app.post('/ca/api/v2/revoke', {
    config: { permission: requires(CA_RW_RID, 'full') },
    schema: {
      summary: 'Revoke a certificate by serial (hex); it is on the CRL until it expires',
      body: Type.Object(
        { serial: Type.String({ pattern: '^[0-9a-fA-F:]{1,64}$' }), authority_key_id: Type.Optional(Type.String({ maxLength: 128 })), reason: Type.Optional(Type.Enum(REVOCATION_REASONS)) },
        { additionalProperties: false },
      ),
    },
  }, async (request) => {
    const serial = request.body.serial.replace(/:/g, '').toLowerCase().padStart(32, '0');
    const record = await ca().revoke(serial, request.body.reason ?? 'unspecified');
    revoked.inc();
    return envelope({ serial_number: record.serial, revoked_at: record.revokedAt, reason: record.revocationReason });
  });

  app.post('/ca/api/v2/root/offline', {
    config: { permission: requires('dcos:superuser', 'full') },
    schema: { summary: 'Take the root key offline: returns it (PKCS#8, encrypted under the passphrase the first master wrote to ca-root-passphrase) and removes it from the store; once only' },
  }, async () => envelope({ encrypted_private_key: await ca().takeRootKeyOffline() }));

  app.post('/ca/api/v2/certificates', {
    config: { permission: requires(CA_RO_RID, 'read') },
    schema: {
      summary: 'Certificates the CA issued (not yet swept), optionally one serial; expired ones only with expired_ok',
      body: Type.Optional(Type.Object({ serial: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{1,64}$' })), expired_ok: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
    },
  }, async (request) => {
    const now = Date.now();
    const serial = request.body?.serial?.toLowerCase().padStart(32, '0');
    const all = await ca().list();
    const list = all.filter((c) => (serial === undefined || c.serial === serial) && (request.body?.expired_ok || Date.parse(c.notAfter) > now));
    return envelope(list.map((c) => ({
      serial_number: c.serial, uid: c.uid, spiffe_id: c.spiffeId, not_before: c.notBefore, not_after: c.notAfter,
      status: c.revokedAt ? 'revoked' : Date.parse(c.notAfter) <= now ? 'expired' : 'good',
      ...(c.revokedAt ? { revoked_at: c.revokedAt, reason: c.revocationReason } : {}),
    })));
  });
}

/**
 * The pure parts of component mTLS (who a certificate names, why a
 * handshake failed, which requests the guard lets through) and the renewal
 * of a component certificate, driven by a manual clock (no waiting).
 */
import test from 'ava';
import { Registry } from 'prom-client';
import { ManualClock } from './clock.ts';
import { ComponentCertificate, type Enrolment } from './certificate.ts';
import { masterCertificateProblem } from './client.ts';
import { guardAgentEndpoint, guardRequest, INTERNAL_ROUTES } from './guard.ts';
import { handshakeFailure, peerIdentity } from './identity.ts';
import { mtlsMetrics } from './metrics.ts';

const TD = 'strata.local';

test('peerIdentity: exactly one SPIFFE id of the trust domain, of a known kind', (t) => {
  t.deepEqual(peerIdentity('URI:spiffe://strata.local/agent/a1', TD), { spiffeId: 'spiffe://strata.local/agent/a1', kind: 'agent', name: 'a1' });
  t.deepEqual(peerIdentity('URI:spiffe://strata.local/sa/web', TD), { spiffeId: 'spiffe://strata.local/sa/web', kind: 'sa', name: 'web' });
  const cases: [string | undefined, RegExp][] = [
    [undefined, /0 URI SANs/],
    ['DNS:master.example', /0 URI SANs/],
    ['URI:spiffe://strata.local/agent/a1, URI:spiffe://strata.local/agent/a2', /2 URI SANs/],
    ['URI:spiffe://other.local/agent/a1', /trust domain other\.local/],
    ['URI:spiffe://strata.local/node/a1', /not an agent/],
    ['URI:https://strata.local/agent/a1', /not a SPIFFE id/],
    ['URI:spiffe://strata.local/agent/a1/extra', /not a SPIFFE id/],
  ];
  for (const [san, problem] of cases) {
    const id = peerIdentity(san, TD);
    t.true('problem' in id && problem.test(id.problem), `${san}: ${JSON.stringify(id)}`);
  }
});

test('handshakeFailure: OpenSSL codes to reasons; a chain that never reached a trusted CA is told apart by self-issue', (t) => {
  t.is(handshakeFailure(undefined, false), 'no_certificate');
  t.is(handshakeFailure('CERT_HAS_EXPIRED'), 'expired');
  t.is(handshakeFailure('CERT_REVOKED'), 'revoked');
  t.is(handshakeFailure('INVALID_PURPOSE'), 'purpose');
  t.is(handshakeFailure('ERR_SSL_UNSUPPORTED_PROTOCOL'), 'protocol_version');
  t.is(handshakeFailure('UNABLE_TO_GET_CRL', true, { selfIssued: true }), 'self_signed');
  t.is(handshakeFailure('UNABLE_TO_GET_CRL', true, { selfIssued: false }), 'unknown_ca');
  t.is(handshakeFailure('UNSPECIFIED', true, { nonCaIssuer: true }), 'not_a_ca');
  t.is(handshakeFailure('SOMETHING_NEW'), 'other');
});

test('guardRequest: strict needs mTLS on internal routes only; over mTLS the certificate must be the agent the path names', (t) => {
  const agent = { spiffeId: 'spiffe://strata.local/agent/a1', kind: 'agent' as const, name: 'a1' };
  const user = { spiffeId: 'spiffe://strata.local/user/alice', kind: 'user' as const, name: 'alice' };
  const master = { spiffeId: 'spiffe://strata.local/master/m1', kind: 'master' as const, name: 'm1' };
  const register = { method: 'PUT', routeUrl: '/v1/agents/:agentId', agentId: 'a1' };
  const feed = { method: 'GET', routeUrl: '/v1/dns/cluster-state' };
  const listApps = { method: 'GET', routeUrl: '/v2/apps' };
  const enrol = { method: 'POST', routeUrl: '/v1/agents/:agentId/certificate', agentId: 'a1' };
  t.true(guardRequest(register, 'permissive', undefined).ok);
  t.true(guardRequest(register, 'off', undefined).ok);
  t.like(guardRequest(register, 'strict', undefined), { ok: false, code: 'MTLS_REQUIRED' });
  t.true(guardRequest(listApps, 'strict', undefined).ok, 'user routes stay on plain HTTP');
  t.true(guardRequest(enrol, 'strict', undefined).ok, 'enrolment is how an agent gets its first certificate');
  t.true(guardRequest(register, 'strict', agent).ok);
  t.like(guardRequest({ ...register, agentId: 'a2' }, 'strict', agent), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' });
  t.like(guardRequest({ ...register, agentId: 'a2' }, 'permissive', agent), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' }, 'permissive checks a certificate that was presented');
  t.like(guardRequest(register, 'strict', user), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' });
  t.true(guardRequest(feed, 'strict', master).ok);
  t.like(guardRequest(feed, 'strict', user), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' });
  t.true(INTERNAL_ROUTES.has('GET /v1/agents/:agentId/tasks'));
});

test('masterCertificateProblem: agents accept only a master of their trust domain', (t) => {
  t.is(masterCertificateProblem({ subjectaltname: 'URI:spiffe://strata.local/master/m1' }, TD), undefined);
  t.regex(masterCertificateProblem({ subjectaltname: 'URI:spiffe://strata.local/agent/a1' }, TD)!, /not a master/);
  t.regex(masterCertificateProblem({ subjectaltname: 'URI:spiffe://evil.local/master/m1' }, TD)!, /trust domain/);
});

function fakeEnrol(clock: ManualClock, lifeSeconds: number): { enrol: (csr: string) => Promise<Enrolment>; calls: string[]; fail: { next: boolean } } {
  const calls: string[] = [];
  const fail = { next: false };
  return {
    calls,
    fail,
    enrol: async (csr) => {
      calls.push(csr);
      if (fail.next) {
        fail.next = false;
        throw new Error('CA unreachable');
      }
      const notBefore = new Date(clock.now());
      return { certificateChain: `chain-${calls.length}`, rootCa: 'root', serial: `s${calls.length}`, spiffeId: 'spiffe://strata.local/agent/a1', notBefore, notAfter: new Date(notBefore.getTime() + lifeSeconds * 1000) };
    },
  };
}

test('ComponentCertificate: renews at 60-90 % of the life with a new key, tells listeners, retries a failed renewal with backoff', async (t) => {
  const clock = new ManualClock(Date.now());
  const registry = new Registry();
  const ca = fakeEnrol(clock, 1000);
  const held = await ComponentCertificate.obtain({ component: 'agent', enrol: ca.enrol, clock, metrics: mtlsMetrics(registry), onError: () => undefined });
  t.teardown(() => held.close());
  t.is(held.current.serial, 's1');
  const due = clock.nextAt! - clock.now();
  t.true(due >= 600_000 && due <= 900_000, `renewal after ${due} ms of a 1000 s life`);
  const changes: string[] = [];
  held.onChange((c) => changes.push(c.serial));

  ca.fail.next = true;
  clock.fireNext();
  await new Promise((r) => setImmediate(r));
  t.is(held.current.serial, 's1', 'a failed renewal keeps the valid certificate');
  t.true(clock.nextAt! - clock.now() <= 60_000, 'and retries soon');
  clock.fireNext();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  t.is(held.current.serial, 's3');
  t.deepEqual(changes, ['s3']);
  t.not(ca.calls[2], ca.calls[0], 'each renewal has a new key (a new CSR)');
  const renewals = await registry.getSingleMetric('strata_mtls_certificate_renewals_total')!.get();
  t.deepEqual(Object.fromEntries(renewals.values.map((v) => [v.labels['result'], v.value])), { ok: 2, failed: 1 });
  const expiry = await registry.getSingleMetric('strata_mtls_certificate_expiry_seconds')!.get();
  t.true(expiry.values[0]!.value > 0);
});

test('guardAgentEndpoint: an agent\'s log endpoint takes plain only outside strict, and over mTLS only a master', (t) => {
  const master = { spiffeId: 'spiffe://strata.local/master/m1', kind: 'master' as const, name: 'm1' };
  const agent = { spiffeId: 'spiffe://strata.local/agent/a2', kind: 'agent' as const, name: 'a2' };
  const user = { spiffeId: 'spiffe://strata.local/user/alice', kind: 'user' as const, name: 'alice' };
  t.true(guardAgentEndpoint('permissive', undefined).ok);
  t.true(guardAgentEndpoint('off', undefined).ok);
  t.like(guardAgentEndpoint('strict', undefined), { ok: false, code: 'MTLS_REQUIRED' });
  for (const mode of ['off', 'permissive', 'strict'] as const) {
    t.true(guardAgentEndpoint(mode, master).ok, mode);
    t.like(guardAgentEndpoint(mode, agent), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' }, mode);
    t.like(guardAgentEndpoint(mode, user), { ok: false, code: 'MTLS_IDENTITY_MISMATCH' }, mode);
  }
});

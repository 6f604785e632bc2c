/**
 * The client side of component mTLS (agents calling masters).
 *
 * {@link MtlsClient} enrols the agent with its token (`POST
 * /v1/agents/{id}/certificate` over the plain URL: the one call that needs
 * no certificate), keeps the certificate renewed ({@link ComponentCertificate}),
 * and offers a `fetch` that sends every `http://` master URL as `https://`
 * to the same host and port (masters serve both there) presenting the
 * certificate, trusting only the cluster root, and accepting only a server
 * certificate naming a master of the trust domain (`spiffe://<td>/master/...`;
 * cluster certificates carry no host names). A connection the master drops
 * during or right after the handshake (a revoked or expired certificate)
 * triggers a renewal, at most every 30 s.
 *
 * Trust on first use: the root comes with the first enrolment, over the
 * connection the token already trusts (as DC/OS nodes fetch dcos-ca.crt).
 */
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import { StrataError } from '../../common/errors.ts';
import { ComponentCertificate, type Enrol, type Enrolment } from './certificate.ts';
import type { Clock } from './clock.ts';
import { peerIdentity } from './identity.ts';
import { trustDomainOf } from './listener-context.ts';
import type { MtlsMetrics } from './metrics.ts';
import { MIN_TLS_VERSION } from './server.ts';

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** Enrol through a master's API (what an agent does). `masterUrl()` is the master to use now. */
export function apiEnrol(options: { masterUrl: () => string; agentId: string; token: () => Promise<string>; fetch?: FetchLike }): Enrol {
  return async (csrPem) => {
    const base = options.masterUrl().replace(/\/+$/, '');
    const res = await (options.fetch ?? fetch)(`${base}/v1/agents/${encodeURIComponent(options.agentId)}/certificate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `token=${await options.token()}` },
      body: JSON.stringify({ certificate_request: csrPem }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string; certificate_chain?: string; ca?: string; serial_number?: string; spiffe_id?: string; not_before?: string; not_after?: string };
    if (!res.ok) {
      throw new StrataError(res.status === 404 || body.code === 'MTLS_OFF' ? 'MTLS_OFF' : 'API_BAD_REQUEST', `the master refused the agent's certificate request (${res.status} ${body.code ?? ''}): ${body.message ?? ''}`);
    }
    const enrolment: Enrolment = {
      certificateChain: body.certificate_chain!, rootCa: body.ca!, serial: body.serial_number!, spiffeId: body.spiffe_id!,
      notBefore: new Date(body.not_before!), notAfter: new Date(body.not_after!),
    };
    return enrolment;
  };
}

/** Pure: may this server certificate be a master of `trustDomain`? (`undefined` = yes; else why not.) */
export function masterCertificateProblem(cert: Pick<PeerCertificate, 'subjectaltname'>, trustDomain: string): string | undefined {
  const id = peerIdentity(cert.subjectaltname, trustDomain);
  if ('problem' in id) return id.problem;
  return id.kind === 'master' ? undefined : `the server presented ${id.spiffeId}, not a master's certificate`;
}

/** Pure: may this server certificate be agent `agentId` of `trustDomain`? (`undefined` = yes; else why not.) */
export function agentCertificateProblem(cert: Pick<PeerCertificate, 'subjectaltname'>, trustDomain: string, agentId: string): string | undefined {
  const id = peerIdentity(cert.subjectaltname, trustDomain);
  if ('problem' in id) return id.problem;
  return id.kind === 'agent' && id.name === agentId ? undefined : `the server presented ${id.spiffeId}, not agent ${agentId}'s certificate`;
}

/**
 * One `fetch` over `https:` with these TLS options (client certificate,
 * trust anchor, CRLs, server identity check): string or byte bodies only;
 * the response body streams.
 */
export function tlsFetch(target: URL, init: RequestInit, tls: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => (headers[k] = v));
  return new Promise<Response>((resolve, reject) => {
    const req = httpsRequest(target, { ...tls, method: init.method ?? 'GET', headers, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
      const out = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
      const status = res.statusCode ?? 502;
      const empty = status === 204 || status === 304 || init.method === 'HEAD';
      if (empty) res.resume();
      resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: out }));
    });
    req.on('error', reject);
    const body = init.body;
    if (body === undefined || body === null) req.end();
    else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
    else {
      req.destroy();
      reject(new TypeError('tlsFetch sends string or byte bodies only'));
    }
  });
}

const RENEW_ON_FAILURE_MS = 30_000;

export class MtlsClient {
  readonly certificate: ComponentCertificate;
  #agent: HttpsAgent;
  #lastFailureRenewalMs = 0;
  readonly #clock: Clock | undefined;

  private constructor(certificate: ComponentCertificate, clock: Clock | undefined) {
    this.certificate = certificate;
    this.#clock = clock;
    this.#agent = this.#makeAgent();
    certificate.onChange(() => {
      const old = this.#agent;
      this.#agent = this.#makeAgent();
      old.destroy();
    });
  }

  /** Enrol now (throws when the master refuses: `MTLS_OFF` when it has mTLS off or no enrolment route). */
  static async enrol(options: { enrol: Enrol; metrics?: MtlsMetrics; dir?: string; clock?: Clock; onError?: (err: unknown) => void }): Promise<MtlsClient> {
    const certificate = await ComponentCertificate.obtain({ component: 'agent', ...options });
    return new MtlsClient(certificate, options.clock);
  }

  #makeAgent(): HttpsAgent {
    const held = this.certificate.current;
    const trustDomain = trustDomainOf(held.spiffeId);
    return new HttpsAgent({
      keepAlive: true,
      key: held.keyPem,
      cert: held.certificateChain,
      ca: held.rootCa,
      minVersion: MIN_TLS_VERSION,
      checkServerIdentity: (_host, cert) => {
        const problem = masterCertificateProblem(cert, trustDomain);
        return problem ? new Error(`mTLS: ${problem}`) : undefined;
      },
    });
  }

  /** `fetch` over mTLS: `http://` URLs go to `https://` on the same host and port. */
  readonly fetch: FetchLike = (url, init = {}) => {
    const target = new URL(url.replace(/^http:\/\//, 'https://'));
    if (target.protocol !== 'https:') return fetch(url, init);
    return tlsFetch(target, init, { agent: this.#agent }).catch((err: Error & { code?: string }) => {
      if (err.name !== 'AbortError') this.#maybeRenew(err);
      throw err;
    });
  };

  /** The master dropped us at or right after the handshake: perhaps our certificate was revoked or expired. */
  #maybeRenew(err: Error & { code?: string }): void {
    const tlsish = err.code === 'ECONNRESET' || err.message === 'socket hang up' || (err.code ?? '').startsWith('ERR_SSL');
    const now = this.#clock?.now() ?? Date.now();
    if (!tlsish || now - this.#lastFailureRenewalMs < RENEW_ON_FAILURE_MS) return;
    this.#lastFailureRenewalMs = now;
    void this.certificate.renew().catch(() => undefined);
  }

  close(): void {
    this.certificate.close();
    this.#agent.destroy();
  }
}

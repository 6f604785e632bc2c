/**
 * Workload certificates over SDS: per authenticated node identity, a key and
 * a leaf certificate issued by the cluster CA, and the trust bundle, encoded
 * once and shared by every stream of that identity.
 *
 * - The certificate names the node's principal (`spiffe://<td>/user/<uid>`
 *   or `.../sa/<uid>`), from the identity the stream authenticated with
 *   (token or client certificate), never from anything in the request: a
 *   request only picks which of the two secret names it wants.
 * - Secret names follow Istio's: {@link WORKLOAD_SECRET} (`default`, a
 *   `tls_certificate`) and {@link TRUST_BUNDLE_SECRET} (`ROOTCA`, a
 *   `validation_context` trusting the cluster root and only SPIFFE ids of
 *   this trust domain). Any other name does not exist (the server remembers
 *   it, as it does for every type).
 * - Issued on the first request of an identity; reissued at a jittered point
 *   between 60 % and 90 % of the lifetime ({@link renewAt}), and pushed to
 *   every stream of the identity, so a node never holds an expired
 *   certificate while it is connected. An identity no stream uses any more
 *   is forgotten at its next renewal time instead of being renewed.
 *
 * Decisions are pure (`secretValues`); the CA, clock and timers are ports.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Counter, Gauge, Registry } from 'prom-client';
import { Counter as PromCounter, Gauge as PromGauge } from 'prom-client';
import { systemClock, type Clock } from '../../security/mtls/clock.ts';
import { renewAt, type CertificateCaller, type IssuedLeaf } from '../../security/ca/authority.ts';
import { buildCsr, name, toPem } from '../../security/ca/x509.ts';
import { identityKey, type NodeIdentity } from './identity.ts';
import { TYPE } from './protos.ts';
import { encodeResource, type EncodedResource } from './snapshot.ts';
import type { XdsLogger } from './server.ts';

export const WORKLOAD_SECRET = 'default';
export const TRUST_BUNDLE_SECRET = 'ROOTCA';

/** What issues workload certificates: the cluster CA (`ClusterCa` satisfies it). */
export interface WorkloadIssuer {
  readonly trustDomain: string;
  readonly rootPem: string;
  sign(caller: CertificateCaller, csrPem: string, options: { readonly ttlSeconds?: number }): Promise<IssuedLeaf>;
}

export interface SecretMetrics {
  readonly issued: Counter<'reason'>;
  readonly failures: Counter;
  readonly expirySeconds: Gauge;
  readonly identities: Gauge;
}

export function createSecretMetrics(registry: Registry): SecretMetrics {
  return {
    issued: new PromCounter({ name: 'strata_xds_workload_certificates_issued_total', help: 'Workload certificates issued for SDS, by reason (first, rotation)', labelNames: ['reason'], registers: [registry] }),
    failures: new PromCounter({ name: 'strata_xds_workload_certificate_failures_total', help: 'Workload certificate issuances that failed (retried)', registers: [registry] }),
    expirySeconds: new PromGauge({ name: 'strata_xds_workload_certificate_min_expiry_seconds', help: 'Seconds until the soonest-expiring workload certificate held for SDS expires', registers: [registry] }),
    identities: new PromGauge({ name: 'strata_xds_workload_identities', help: 'Node identities holding a workload certificate', registers: [registry] }),
  };
}

/** Pure: the two Secret messages for an issued leaf and its private key. */
export function secretValues(leaf: IssuedLeaf, privateKeyPem: string, trustDomain: string): { workload: Record<string, unknown>; bundle: Record<string, unknown> } {
  return {
    workload: {
      name: WORKLOAD_SECRET,
      tls_certificate: { certificate_chain: { inline_string: leaf.certificateChain }, private_key: { inline_string: privateKeyPem } },
    },
    bundle: {
      name: TRUST_BUNDLE_SECRET,
      validation_context: {
        trusted_ca: { inline_string: leaf.rootCa },
        match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } }],
      },
    },
  };
}

interface Held {
  readonly key: string;
  readonly caller: CertificateCaller;
  resources: ReadonlyMap<string, EncodedResource> | undefined;
  leaf: IssuedLeaf | undefined;
  issuing: boolean;
  users: number;
  timer: { cancel(): void } | undefined;
  failures: number;
}

export class WorkloadSecrets {
  readonly #issuer: WorkloadIssuer;
  readonly #ttlSeconds: number;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #metrics: SecretMetrics | undefined;
  readonly #logger: XdsLogger | undefined;
  readonly #held = new Map<string, Held>();
  #closed = false;
  /** Called with an identity key when its secrets change (the server pushes them). */
  onChange: ((key: string) => void) | undefined;

  constructor(options: { issuer: WorkloadIssuer; ttlSeconds: number; clock?: Clock; random?: () => number; metrics?: SecretMetrics; logger?: XdsLogger }) {
    this.#issuer = options.issuer;
    this.#ttlSeconds = options.ttlSeconds;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
  }

  /** The identity's secrets by name, or `undefined` while its first certificate is being issued (then `onChange` fires). */
  resourcesFor(identity: Pick<NodeIdentity, 'uid' | 'kind'>): ReadonlyMap<string, EncodedResource> | undefined {
    const held = this.#hold(identity);
    if (!held.resources && !held.issuing) this.#issue(held, 'first');
    return held.resources;
  }

  /** The leaf currently held for an identity (tests, `strata` status). */
  leafFor(identity: Pick<NodeIdentity, 'uid' | 'kind'>): IssuedLeaf | undefined {
    return this.#held.get(identityKey(identity))?.leaf;
  }

  /** A stream of this identity opened. */
  retain(identity: Pick<NodeIdentity, 'uid' | 'kind'>): void {
    this.#hold(identity).users++;
  }

  /** A stream of this identity ended. */
  release(identity: Pick<NodeIdentity, 'uid' | 'kind'>): void {
    const held = this.#held.get(identityKey(identity));
    if (!held) return;
    if (held.users > 0) held.users--;
    // Never asked for secrets: nothing to keep (one that holds a certificate waits for its renewal time).
    if (held.users === 0 && !held.leaf && !held.issuing) {
      held.timer?.cancel();
      this.#held.delete(held.key);
      this.#metrics?.identities.set(this.#held.size);
    }
  }

  close(): void {
    this.#closed = true;
    for (const h of this.#held.values()) h.timer?.cancel();
    this.#held.clear();
  }

  #hold(identity: Pick<NodeIdentity, 'uid' | 'kind'>): Held {
    const key = identityKey(identity);
    let held = this.#held.get(key);
    if (!held) {
      held = { key, caller: { uid: identity.uid, kind: identity.kind }, resources: undefined, leaf: undefined, issuing: false, users: 0, timer: undefined, failures: 0 };
      this.#held.set(key, held);
      this.#metrics?.identities.set(this.#held.size);
    }
    return held;
  }

  #issue(held: Held, reason: 'first' | 'rotation'): void {
    held.issuing = true;
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey }), 'CERTIFICATE REQUEST');
    const keyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.#issuer.sign(held.caller, csr, { ttlSeconds: this.#ttlSeconds }).then(
      (leaf) => {
        held.issuing = false;
        if (this.#closed || this.#held.get(held.key) !== held) return;
        held.failures = 0;
        const values = secretValues(leaf, keyPem, this.#issuer.trustDomain);
        held.leaf = leaf;
        held.resources = new Map([
          [WORKLOAD_SECRET, encodeResource({ typeUrl: TYPE.secret, name: WORKLOAD_SECRET, value: values.workload, owners: new Set() })],
          [TRUST_BUNDLE_SECRET, encodeResource({ typeUrl: TYPE.secret, name: TRUST_BUNDLE_SECRET, value: values.bundle, owners: new Set() })],
        ]);
        this.#metrics?.issued.inc({ reason });
        this.#updateExpiry();
        const at = renewAt(leaf.notBefore, leaf.notAfter, this.#random).getTime();
        held.timer = this.#clock.setTimer(at - this.#clock.now(), () => this.#renew(held));
        this.onChange?.(held.key);
      },
      (err: unknown) => {
        held.issuing = false;
        held.failures++;
        this.#metrics?.failures.inc();
        this.#logger?.warn({ err, identity: held.key }, 'issuing a workload certificate failed; retrying');
        if (this.#closed) return;
        held.timer = this.#clock.setTimer(Math.min(1000 * 2 ** Math.min(held.failures, 6), 60_000), () => this.#issue(held, reason));
      },
    );
  }

  #renew(held: Held): void {
    if (this.#closed || this.#held.get(held.key) !== held) return;
    if (held.users === 0) {
      // No stream uses it: forget it rather than renew (a reconnect issues a new one).
      this.#held.delete(held.key);
      this.#metrics?.identities.set(this.#held.size);
      this.#updateExpiry();
      return;
    }
    this.#issue(held, 'rotation');
  }

  #updateExpiry(): void {
    let min = Infinity;
    for (const h of this.#held.values()) if (h.leaf) min = Math.min(min, h.leaf.notAfter.getTime());
    this.#metrics?.expirySeconds.set(Number.isFinite(min) ? Math.max(0, (min - this.#clock.now()) / 1000) : 0);
  }
}

/**
 * The certificate a component (master or agent) presents in mTLS: a P-256
 * key made here, a leaf from the cluster CA (through the `enrol` port: the
 * CA itself on a master, `POST /v1/agents/{id}/certificate` on an agent),
 * renewed at a jittered point between 60 % and 90 % of its life (Consul's
 * soft expiry), with listeners told of every new one. A failed renewal is
 * retried with backoff (1 s doubling to 60 s) while the old certificate is
 * still valid.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renewAt } from '../ca/authority.ts';
import { buildCsr, name, toPem } from '../ca/x509.ts';
import { systemClock, type Clock } from './clock.ts';
import type { MtlsMetrics } from './metrics.ts';

export interface Enrolment {
  /** Leaf then intermediate (what a TLS endpoint presents). */
  readonly certificateChain: string;
  readonly rootCa: string;
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Ask the CA to sign this CSR for the component. */
export type Enrol = (csrPem: string) => Promise<Enrolment>;

export interface HeldCertificate extends Enrolment {
  readonly keyPem: string;
  /** When this component will renew it. */
  readonly renewAt: Date;
}

export interface ComponentCertificateOptions {
  readonly component: 'master' | 'agent';
  readonly enrol: Enrol;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly metrics?: MtlsMetrics;
  /** Write key.pem (0600), cert.pem (the chain) and ca.pem here after each renewal (for `strata mtls cert show`). */
  readonly dir?: string;
  readonly onError?: (err: unknown) => void;
}

export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const CA_FILE = 'ca.pem';

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

export class ComponentCertificate {
  readonly #options: ComponentCertificateOptions;
  readonly #clock: Clock;
  readonly #listeners = new Set<(held: HeldCertificate) => void>();
  #current: HeldCertificate;
  #timer: { cancel(): void } | undefined;
  #failures = 0;
  #closed = false;
  #renewing: Promise<void> | undefined;

  private constructor(options: ComponentCertificateOptions, first: HeldCertificate) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#current = first;
  }

  /** Enrol (throws when the CA refuses or cannot be reached), then keep the certificate renewed. */
  static async obtain(options: ComponentCertificateOptions): Promise<ComponentCertificate> {
    const first = await ComponentCertificate.#fetch(options);
    const held = new ComponentCertificate(options, first);
    options.metrics?.watchExpiry(options.component, () => held.#current.notAfter.getTime());
    await held.#persist();
    held.#observe();
    held.#schedule();
    return held;
  }

  static async #fetch(options: ComponentCertificateOptions): Promise<HeldCertificate> {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = toPem(buildCsr({ subject: name([]), publicKey: pair.publicKey, privateKey: pair.privateKey }), 'CERTIFICATE REQUEST');
    try {
      const enrolment = await options.enrol(csr);
      options.metrics?.renewals.inc({ component: options.component, result: 'ok' });
      return {
        ...enrolment,
        keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        renewAt: renewAt(enrolment.notBefore, enrolment.notAfter, options.random),
      };
    } catch (err) {
      options.metrics?.renewals.inc({ component: options.component, result: 'failed' });
      throw err;
    }
  }

  get current(): HeldCertificate {
    return this.#current;
  }

  /** Called with every new certificate (not with the first). */
  onChange(listener: (held: HeldCertificate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Renew now (`strata mtls cert renew`, a revoked certificate); concurrent calls share one renewal. */
  renew(): Promise<void> {
    this.#renewing ??= (async () => {
      try {
        const next = await ComponentCertificate.#fetch(this.#options);
        if (this.#closed) return;
        this.#current = next;
        this.#failures = 0;
        await this.#persist();
        this.#observe();
        this.#schedule();
        for (const l of this.#listeners) l(next);
      } finally {
        this.#renewing = undefined;
      }
    })();
    return this.#renewing;
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  #observe(): void {
    this.#options.metrics?.expirySeconds.set({ component: this.#options.component }, Math.max(0, (this.#current.notAfter.getTime() - this.#clock.now()) / 1000));
  }

  #schedule(): void {
    this.#timer?.cancel();
    if (this.#closed) return;
    const delay = this.#failures === 0 ? this.#current.renewAt.getTime() - this.#clock.now() : Math.min(1000 * 2 ** Math.min(this.#failures, 6), 60_000);
    this.#timer = this.#clock.setTimer(delay, () => {
      this.renew().catch((err: unknown) => {
        this.#failures++;
        this.#options.onError?.(err);
        this.#observe();
        this.#schedule();
      });
    });
  }

  async #persist(): Promise<void> {
    const dir = this.#options.dir;
    if (!dir) return;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAtomic(join(dir, KEY_FILE), this.#current.keyPem, 0o600);
    await writeAtomic(join(dir, CERT_FILE), this.#current.certificateChain, 0o644);
    await writeAtomic(join(dir, CA_FILE), this.#current.rootCa, 0o644);
  }
}

/**
 * The secrets' metrics (prom-client), on the registry `/metrics` serves.
 * Never a path or a value in a label: results and operations only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface SecretMetrics {
  readonly reads: Counter<'result'>;
  readonly writes: Counter<'op'>;
  readonly decryptFailures: Counter;
  readonly rewrapped: Counter;
  readonly rotationPending: Gauge;
  readonly kekVersion: Gauge;
}

const byRegistry = new WeakMap<Registry, SecretMetrics>();

export function secretMetrics(registry: Registry): SecretMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    const registers = [registry];
    m = {
      reads: new Counter({ name: 'strata_secrets_reads_total', help: 'Secret values read (API and task launches), by result', labelNames: ['result'], registers }),
      writes: new Counter({ name: 'strata_secrets_writes_total', help: 'Secret writes, by operation (create, update, delete)', labelNames: ['op'], registers }),
      decryptFailures: new Counter({ name: 'strata_secrets_decrypt_failures_total', help: 'Stored secrets that did not decrypt (altered, or a missing or wrong key-encryption key)', registers }),
      rewrapped: new Counter({ name: 'strata_secrets_rewrapped_total', help: 'Data keys re-wrapped under a new key-encryption key version', registers }),
      rotationPending: new Gauge({ name: 'strata_secrets_rotation_pending', help: 'Secrets still wrapped by an older key-encryption key version (0 when no rotation is under way)', registers }),
      kekVersion: new Gauge({ name: 'strata_secrets_kek_version', help: 'The current key-encryption key version', registers }),
    };
    byRegistry.set(registry, m);
  }
  return m;
}

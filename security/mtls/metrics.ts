/**
 * `strata_mtls_*` metrics, registered once per registry (a master and the
 * agent of `strata up` share one).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface MtlsMetrics {
  /** Seconds until the component's certificate expires (computed at every scrape from what `watchExpiry` was given). */
  readonly expirySeconds: Gauge<'component'>;
  /** Report this component's certificate expiry (ms since epoch) at every scrape. */
  watchExpiry(component: string, notAfterMs: () => number): void;
  readonly renewals: Counter<'component' | 'result'>;
  readonly handshakeFailures: Counter<'listener' | 'reason'>;
  readonly handshakes: Counter<'listener'>;
}

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

const watched = new WeakMap<object, Map<string, () => number>>();

export function mtlsMetrics(registry: Registry): MtlsMetrics {
  const expirySeconds = once(registry, 'strata_mtls_certificate_expiry_seconds', () => {
    const providers = new Map<string, () => number>();
    const gauge: Gauge<'component'> = new Gauge({
      name: 'strata_mtls_certificate_expiry_seconds', help: 'Seconds until this component\'s mTLS certificate expires (renewed at 60-90 % of its life)', labelNames: ['component'], registers: [registry],
      collect() {
        for (const [component, notAfterMs] of providers) gauge.set({ component }, Math.max(0, (notAfterMs() - Date.now()) / 1000));
      },
    });
    watched.set(gauge, providers);
    return gauge;
  });
  return {
    expirySeconds,
    watchExpiry(component, notAfterMs) {
      watched.get(expirySeconds)?.set(component, notAfterMs);
    },
    renewals: once(registry, 'strata_mtls_certificate_renewals_total', () => new Counter({ name: 'strata_mtls_certificate_renewals_total', help: 'mTLS certificates obtained by this component (first, renewal), by result', labelNames: ['component', 'result'], registers: [registry] })),
    handshakeFailures: once(registry, 'strata_mtls_handshake_failures_total', () => new Counter({ name: 'strata_mtls_handshake_failures_total', help: 'Incoming TLS connections refused, by listener (api, xds, agent) and reason (no_certificate, expired, revoked, unknown_ca, self_signed, purpose, not_a_ca, protocol_version, identity, ...)', labelNames: ['listener', 'reason'], registers: [registry] })),
    handshakes: once(registry, 'strata_mtls_handshakes_total', () => new Counter({ name: 'strata_mtls_handshakes_total', help: 'Incoming mTLS connections accepted (client certificate verified), by listener', labelNames: ['listener'], registers: [registry] })),
  };
}

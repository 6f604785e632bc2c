/**
 * DNS metrics live in the process's shared prom-client registry (see
 * control-plane/api/metrics.ts) under `strata_dns_`. The helpers return the
 * metric already registered under a name, so two DNS servers in one process
 * (tests, an agent beside a master) share counters instead of colliding.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

interface Spec<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
}

export function counter<L extends string>(registry: Registry, spec: Spec<L>): Counter<L> {
  return (registry.getSingleMetric(spec.name) as Counter<L> | undefined) ?? new Counter<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export function gauge<L extends string>(registry: Registry, spec: Spec<L>): Gauge<L> {
  return (registry.getSingleMetric(spec.name) as Gauge<L> | undefined) ?? new Gauge<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export function histogram<L extends string>(registry: Registry, spec: Spec<L> & { readonly buckets: number[] }): Histogram<L> {
  return (registry.getSingleMetric(spec.name) as Histogram<L> | undefined) ?? new Histogram<L>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export interface ServerMetrics {
  /** Replies sent, by the plugin that answered and the rcode. */
  readonly requests: Counter<'transport' | 'plugin' | 'rcode'>;
  /** Datagrams or messages answered with FORMERR/NOTIMP or dropped, by reason. */
  readonly malformed: Counter<'reason'>;
  readonly truncated: Counter<'transport'>;
  readonly tcpConnections: Gauge;
  /** Plugin errors turned into SERVFAIL. */
  readonly handlerErrors: Counter;
}

export function serverMetrics(registry: Registry): ServerMetrics {
  return {
    requests: counter(registry, { name: 'strata_dns_requests_total', help: 'DNS replies sent, by transport, answering plugin and rcode', labelNames: ['transport', 'plugin', 'rcode'] }),
    malformed: counter(registry, { name: 'strata_dns_malformed_total', help: 'DNS messages dropped or refused as malformed, by reason', labelNames: ['reason'] }),
    truncated: counter(registry, { name: 'strata_dns_truncated_total', help: 'DNS replies cut to the question with TC set', labelNames: ['transport'] }),
    tcpConnections: gauge(registry, { name: 'strata_dns_tcp_connections', help: 'Open DNS TCP client connections' }),
    handlerErrors: counter(registry, { name: 'strata_dns_handler_errors_total', help: 'DNS plugin failures answered with SERVFAIL' }),
  };
}

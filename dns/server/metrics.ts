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

/**
 * A labelled counter for the per-query hot path: `inc` bumps a number in a
 * map (prom-client hashes the label object on every `inc`, a tenth of the
 * server's own CPU per query); the prom-client counter reads the map when
 * scraped. Every server on one registry shares the same map.
 */
export interface HotCounter<L extends string> {
  inc(labels: Readonly<Record<L, string>>, key: string): void;
}

const hotCounters = new WeakMap<Registry, Map<string, Map<string, { labels: Record<string, string>; value: number }>>>();

export function hotCounter<L extends string>(registry: Registry, spec: Spec<L>): HotCounter<L> {
  let byName = hotCounters.get(registry);
  if (!byName) hotCounters.set(registry, (byName = new Map()));
  let values = byName.get(spec.name);
  if (!values) {
    const shared = new Map<string, { labels: Record<string, string>; value: number }>();
    values = shared;
    byName.set(spec.name, shared);
    new Counter<L>({
      ...spec,
      labelNames: spec.labelNames ?? [],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, value } of shared.values()) this.inc(labels as Record<L, string>, value);
      },
    });
  }
  const map = values;
  return {
    inc(labels, key) {
      const entry = map.get(key);
      if (entry) entry.value++;
      else map.set(key, { labels: { ...labels }, value: 1 });
    },
  };
}

export interface ServerMetrics {
  /** Replies sent, by the plugin that answered and the rcode; `key` is the three labels joined. */
  readonly requests: HotCounter<'transport' | 'plugin' | 'rcode'>;
  /** Datagrams or messages answered with FORMERR/NOTIMP or dropped, by reason. */
  readonly malformed: Counter<'reason'>;
  readonly truncated: Counter<'transport'>;
  readonly tcpConnections: Gauge;
  /** TCP connections closed at once because `dns.tcpMaxConnections` were open. */
  readonly tcpRefused: Counter;
  /** Plugin errors turned into SERVFAIL. */
  readonly handlerErrors: Counter;
}

export function serverMetrics(registry: Registry): ServerMetrics {
  return {
    requests: hotCounter(registry, { name: 'strata_dns_requests_total', help: 'DNS replies sent, by transport, answering plugin and rcode', labelNames: ['transport', 'plugin', 'rcode'] }),
    malformed: counter(registry, { name: 'strata_dns_malformed_total', help: 'DNS messages dropped or refused as malformed, by reason', labelNames: ['reason'] }),
    truncated: counter(registry, { name: 'strata_dns_truncated_total', help: 'DNS replies cut to the question with TC set', labelNames: ['transport'] }),
    tcpConnections: gauge(registry, { name: 'strata_dns_tcp_connections', help: 'Open DNS TCP client connections' }),
    tcpRefused: counter(registry, { name: 'strata_dns_tcp_refused_total', help: 'DNS TCP connections closed at once because the connection cap was reached' }),
    handlerErrors: counter(registry, { name: 'strata_dns_handler_errors_total', help: 'DNS plugin failures answered with SERVFAIL' }),
  };
}

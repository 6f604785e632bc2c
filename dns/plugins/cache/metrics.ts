import type { Registry } from 'prom-client';
import { counter, gauge } from '../../server/metrics.ts';

export function cacheMetrics(registry: Registry) {
  return {
    hits: counter(registry, { name: 'strata_dns_cache_hits_total', help: 'DNS queries answered from the forwarding cache' }),
    misses: counter(registry, { name: 'strata_dns_cache_misses_total', help: 'DNS queries the forwarding cache passed on' }),
    entries: gauge(registry, { name: 'strata_dns_cache_entries', help: 'DNS replies held in the forwarding cache' }),
  };
}

export type CacheMetrics = ReturnType<typeof cacheMetrics>;

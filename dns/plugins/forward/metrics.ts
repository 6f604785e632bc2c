import type { Registry } from 'prom-client';
import { counter, hotHistogram } from '../../server/metrics.ts';

export function forwardMetrics(registry: Registry) {
  return {
    /** Time from sending to an upstream to its reply, good or bad (`cell(upstream.key)`). */
    upstreamSeconds: hotHistogram(registry, {
      name: 'strata_dns_forward_upstream_duration_seconds',
      help: 'DNS upstream reply latency, by upstream',
      labelName: 'upstream',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    /** timeout, network, garbage (wrong question, not a reply), busy, SERVFAIL, REFUSED. */
    upstreamFailures: counter(registry, {
      name: 'strata_dns_forward_upstream_failures_total',
      help: 'DNS upstream attempts that failed, by upstream and reason',
      labelNames: ['upstream', 'reason'],
    }),
    /** Queries answered SERVFAIL at once because too many were being forwarded. */
    overloaded: counter(registry, {
      name: 'strata_dns_forward_overloaded_total',
      help: 'DNS queries refused with SERVFAIL because the forwarder was at its in-flight limit',
    }),
    /** Replies that matched no pending query: late, spoofed, or from the wrong address. */
    unmatched: counter(registry, {
      name: 'strata_dns_forward_unmatched_replies_total',
      help: 'DNS upstream replies dropped because no pending query matched, by reason',
      labelNames: ['reason'],
    }),
  };
}

export type ForwardMetrics = ReturnType<typeof forwardMetrics>;

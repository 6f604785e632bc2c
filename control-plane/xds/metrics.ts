/** The xDS server's Prometheus metrics, `strata_xds_*`, after Istio's pilot metrics. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface XdsMetrics {
  readonly streams: Gauge<'variant'>;
  readonly pushSeconds: Histogram;
  readonly convergenceSeconds: Histogram<'type'>;
  readonly rebuildSeconds: Histogram;
  readonly configBytes: Counter<'type'>;
  readonly snapshotBytes: Gauge;
  readonly snapshotResources: Gauge<'type'>;
  readonly nacks: Counter<'type'>;
  readonly rejected: Counter<'reason'>;
  readonly inconsistent: Counter;
  readonly translationIssues: Gauge;
}

export function createXdsMetrics(registry: Registry): XdsMetrics {
  const registers = [registry];
  return {
    streams: new Gauge({ name: 'strata_xds_connected_streams', help: 'ADS streams open now, by variant (sotw or delta)', labelNames: ['variant'], registers }),
    pushSeconds: new Histogram({ name: 'strata_xds_push_seconds', help: 'Time to hand a new snapshot to every stream (diff and write)', buckets: SECONDS, registers }),
    convergenceSeconds: new Histogram({
      name: 'strata_xds_convergence_seconds',
      help: 'From the first state change a snapshot reflects to a stream ACKing it, by type',
      labelNames: ['type'], buckets: SECONDS, registers,
    }),
    rebuildSeconds: new Histogram({ name: 'strata_xds_snapshot_build_seconds', help: 'Time to translate and encode a snapshot', buckets: SECONDS, registers }),
    configBytes: new Counter({ name: 'strata_xds_config_bytes_total', help: 'Bytes of discovery responses sent, by type', labelNames: ['type'], registers }),
    snapshotBytes: new Gauge({ name: 'strata_xds_snapshot_bytes', help: 'Encoded size of every resource of the current snapshot', registers }),
    snapshotResources: new Gauge({ name: 'strata_xds_snapshot_resources', help: 'Resources in the current snapshot, by type', labelNames: ['type'], registers }),
    nacks: new Counter({ name: 'strata_xds_nacks_total', help: 'Responses a node rejected (error_detail set), by type', labelNames: ['type'], registers }),
    rejected: new Counter({
      name: 'strata_xds_requests_rejected_total',
      help: 'Requests and streams refused or ignored, by reason (unauthenticated, stream_limit, unknown_type, stale_nonce, too_many_names, invalid)',
      labelNames: ['reason'], registers,
    }),
    inconsistent: new Counter({ name: 'strata_xds_snapshot_inconsistent_total', help: 'Snapshots refused by the consistency check (the previous one stayed served)', registers }),
    translationIssues: new Gauge({ name: 'strata_xds_translation_issues', help: 'Issues (bad mesh labels, skipped routes) in the current snapshot', registers }),
  };
}

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
  /** The cell behind one label set: `cell(...).value++` counts without even the map lookup. */
  cell(labels: Readonly<Record<L, string>>, key: string): { value: number };
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
  const cell = (labels: Readonly<Record<L, string>>, key: string): { labels: Record<string, string>; value: number } => {
    let entry = map.get(key);
    if (!entry) map.set(key, (entry = { labels: { ...labels }, value: 0 }));
    return entry;
  };
  return {
    inc(labels, key) {
      const entry = map.get(key);
      if (entry) entry.value++;
      else map.set(key, { labels: { ...labels }, value: 1 });
    },
    cell,
  };
}

/**
 * A histogram with one label for the per-query hot path. prom-client's
 * `Histogram.observe` builds a closure, validates and hashes the label
 * object on every call (a tenth of the forwarder's own CPU per query); here
 * each label value gets its cell once (`cell(value)`), and an observation is
 * a bucket search and three additions. The registry reads it as a normal
 * Prometheus histogram (`_bucket{le}`, `_sum`, `_count`).
 */
export interface HotHistogramCell {
  observe(value: number): void;
}

export interface HotHistogram {
  cell(labelValue: string): HotHistogramCell;
}

interface HistogramCellState extends HotHistogramCell {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export function hotHistogram(registry: Registry, spec: { name: string; help: string; labelName: string; buckets: readonly number[] }): HotHistogram {
  const existing = registry.getSingleMetric(spec.name) as unknown as { hot?: HotHistogram } | undefined;
  if (existing?.hot) return existing.hot;
  const bounds = [...spec.buckets].sort((a, b) => a - b);
  const cells = new Map<string, HistogramCellState>();
  const hot: HotHistogram = {
    cell(labelValue) {
      let cell = cells.get(labelValue);
      if (!cell) {
        const counts = new Float64Array(bounds.length);
        const state: HistogramCellState = {
          counts,
          sum: 0,
          count: 0,
          observe(value) {
            state.sum += value;
            state.count++;
            for (let i = 0; i < bounds.length; i++) {
              if (value <= bounds[i]!) {
                counts[i]!++;
                break;
              }
            }
          },
        };
        cells.set(labelValue, (cell = state));
      }
      return cell;
    },
  };
  const metric = {
    name: spec.name,
    help: spec.help,
    type: 'histogram',
    aggregator: 'sum',
    hot,
    get() {
      const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
      for (const [labelValue, cell] of cells) {
        let cumulative = 0;
        for (let i = 0; i < bounds.length; i++) {
          cumulative += cell.counts[i]!;
          values.push({ labels: { [spec.labelName]: labelValue, le: bounds[i]! }, value: cumulative, metricName: `${spec.name}_bucket` });
        }
        values.push({ labels: { [spec.labelName]: labelValue, le: '+Inf' }, value: cell.count, metricName: `${spec.name}_bucket` });
        values.push({ labels: { [spec.labelName]: labelValue }, value: cell.sum, metricName: `${spec.name}_sum` });
        values.push({ labels: { [spec.labelName]: labelValue }, value: cell.count, metricName: `${spec.name}_count` });
      }
      return { name: spec.name, help: spec.help, type: 'histogram', aggregator: 'sum', values };
    },
    reset() {
      cells.clear();
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  return hot;
}

/** What the answer cache's metrics read at scrape time. */
export interface AnswerCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
}

const answerCaches = new WeakMap<Registry, Set<WeakRef<AnswerCacheStats>>>();

/**
 * `strata_dns_answer_cache_*`, summed over every server's cache on the
 * registry; read when scraped. Held weakly: a closed server's cache goes.
 */
function answerCacheMetrics(registry: Registry): Set<WeakRef<AnswerCacheStats>> {
  let caches = answerCaches.get(registry);
  if (caches) return caches;
  const all = (caches = new Set());
  answerCaches.set(registry, all);
  const sum = (pick: (c: AnswerCacheStats) => number): number => {
    let n = 0;
    for (const ref of all) {
      const cache = ref.deref();
      if (cache) n += pick(cache);
      else all.delete(ref);
    }
    return n;
  };
  const registers = [registry];
  if (!registry.getSingleMetric('strata_dns_answer_cache_hits_total')) {
    new Counter({ name: 'strata_dns_answer_cache_hits_total', help: 'Internal answers sent from their kept wire bytes (ID and case patched)', registers, collect() {
      this.reset();
      this.inc(sum((c) => c.hits));
    } });
    new Counter({ name: 'strata_dns_answer_cache_misses_total', help: 'Plain queries whose answer was not kept (encoded through the chain)', registers, collect() {
      this.reset();
      this.inc(sum((c) => c.misses));
    } });
    new Gauge({ name: 'strata_dns_answer_cache_entries', help: 'Encoded internal answers kept for reuse', registers, collect() {
      this.set(sum((c) => c.size));
    } });
  }
  return all;
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
  /** Reports an answer cache's hits, misses and size under `strata_dns_answer_cache_*`. */
  trackAnswerCache(cache: AnswerCacheStats): void;
}

export function serverMetrics(registry: Registry): ServerMetrics {
  return {
    requests: hotCounter(registry, { name: 'strata_dns_requests_total', help: 'DNS replies sent, by transport, answering plugin and rcode', labelNames: ['transport', 'plugin', 'rcode'] }),
    malformed: counter(registry, { name: 'strata_dns_malformed_total', help: 'DNS messages dropped or refused as malformed, by reason', labelNames: ['reason'] }),
    truncated: counter(registry, { name: 'strata_dns_truncated_total', help: 'DNS replies cut to the question with TC set', labelNames: ['transport'] }),
    tcpConnections: gauge(registry, { name: 'strata_dns_tcp_connections', help: 'Open DNS TCP client connections' }),
    tcpRefused: counter(registry, { name: 'strata_dns_tcp_refused_total', help: 'DNS TCP connections closed at once because the connection cap was reached' }),
    handlerErrors: counter(registry, { name: 'strata_dns_handler_errors_total', help: 'DNS plugin failures answered with SERVFAIL' }),
    trackAnswerCache: (cache) => void answerCacheMetrics(registry).add(new WeakRef(cache)),
  };
}

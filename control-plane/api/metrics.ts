/**
 * Prometheus metrics of one API server, in a registry of its own (so several
 * servers in one process, as in tests or `strata up`, never collide).
 * Components add their own metrics to `registry` under `strata_<component>_`.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StateStore } from '../store/port.ts';

export interface ApiMetrics {
  readonly registry: Registry;
}

export function createMetrics(options: { store: StateStore; isLeader: () => boolean }): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'strata_' });
  new Gauge({
    name: 'strata_store_up',
    help: '1 while the state store is healthy, 0 while degraded',
    labelNames: ['backend'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ backend: options.store.backend }, options.store.health().status === 'ok' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'strata_master_is_leader',
    help: '1 while this master is the leader',
    registers: [registry],
    collect() {
      this.set(options.isLeader() ? 1 : 0);
    },
  });
  return { registry };
}

export function instrumentHttp(app: FastifyInstance, metrics: ApiMetrics): void {
  const requests = new Counter({
    name: 'strata_http_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['method', 'route', 'status'],
    registers: [metrics.registry],
  });
  const duration = new Histogram({
    name: 'strata_http_request_duration_seconds',
    help: 'Time to answer HTTP requests',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics.registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
}

/**
 * The gateway's Prometheus metrics, registered in the process's registry
 * (the master's, so `/metrics` on the API shows them): requests by route
 * class and status, upstream latency (to response headers) by route class,
 * the authentication+authorisation decision's latency by result, and the
 * keep-alive pool to the upstreams (connections opened, open by state).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RouteClass } from './routes.ts';

export interface GatewayMetrics {
  request(routeClass: RouteClass | 'unmatched', status: number): void;
  upstream(routeClass: RouteClass, seconds: number): void;
  decision(result: 'public' | 'allowed' | 'unauthenticated' | 'forbidden' | 'csrf', seconds: number): void;
  /** A new upstream connection was opened (a kept-alive one reused counts nothing). */
  upstreamConnectionOpened(): void;
}

/** The keep-alive pool to the upstreams, as the gauge reads it. */
export interface UpstreamPoolStats {
  readonly active: number;
  readonly idle: number;
}

const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const UPSTREAM_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function gatewayMetrics(registry: Registry, pool?: () => UpstreamPoolStats): GatewayMetrics {
  const requests = new Counter({
    name: 'strata_gateway_requests_total',
    help: 'Requests the gateway answered, by route class and status code',
    labelNames: ['class', 'status'],
    registers: [registry],
  });
  const upstream = new Histogram({
    name: 'strata_gateway_upstream_seconds',
    help: 'Time from sending a request upstream to its response headers, by route class',
    labelNames: ['class'],
    buckets: UPSTREAM_BUCKETS,
    registers: [registry],
  });
  const decisions = new Histogram({
    name: 'strata_gateway_auth_decision_seconds',
    help: 'Time to authenticate and authorise a request (token check, revocation, ACL), by result',
    labelNames: ['result'],
    buckets: FAST_BUCKETS,
    registers: [registry],
  });
  const opened = new Counter({
    name: 'strata_gateway_upstream_connections_opened_total',
    help: 'Connections the gateway opened to upstreams (API and tasks); far fewer than requests when keep-alive works',
    registers: [registry],
  });
  if (pool) {
    new Gauge({
      name: 'strata_gateway_upstream_connections',
      help: 'Connections from the gateway to upstreams, by state (active: carrying a request; idle: kept alive for the next)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const now = pool();
        this.set({ state: 'active' }, now.active);
        this.set({ state: 'idle' }, now.idle);
      },
    });
  }
  return {
    upstreamConnectionOpened: () => opened.inc(),
    request: (routeClass, status) => requests.inc({ class: routeClass, status: String(status) }),
    upstream: (routeClass, seconds) => upstream.observe({ class: routeClass }, seconds),
    decision: (result, seconds) => decisions.observe({ result }, seconds),
  };
}

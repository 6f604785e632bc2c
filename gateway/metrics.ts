/**
 * The gateway's Prometheus metrics, registered in the process's registry
 * (the master's, so `/metrics` on the API shows them): requests by route
 * class and status, upstream latency (to response headers) by route class,
 * and the authentication+authorisation decision's latency by result.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RouteClass } from './routes.ts';

export interface GatewayMetrics {
  request(routeClass: RouteClass | 'unmatched', status: number): void;
  upstream(routeClass: RouteClass, seconds: number): void;
  decision(result: 'public' | 'allowed' | 'unauthenticated' | 'forbidden' | 'csrf', seconds: number): void;
}

const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const UPSTREAM_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function gatewayMetrics(registry: Registry): GatewayMetrics {
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
  return {
    request: (routeClass, status) => requests.inc({ class: routeClass, status: String(status) }),
    upstream: (routeClass, seconds) => upstream.observe({ class: routeClass }, seconds),
    decision: (result, seconds) => decisions.observe({ result }, seconds),
  };
}

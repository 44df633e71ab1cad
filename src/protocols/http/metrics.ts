// Per-request metrics for HTTP targets (a connection may carry many requests). Labels are the
// target name and the status code: never a path, host header or credential.
import { Counter, Histogram } from 'prom-client';
import type { Metrics } from '../../observability/metrics.ts';

export interface HttpMetrics {
  readonly requests: Counter<'target' | 'status'>;
  readonly duration: Histogram<'target'>;
}

const byRegistry = new WeakMap<Metrics, HttpMetrics>();

export function httpMetrics(metrics: Metrics): HttpMetrics {
  let m = byRegistry.get(metrics);
  if (!m) {
    const registers = [metrics.registry];
    m = {
      requests: new Counter({ name: 'keyless_http_requests_total', help: 'HTTP requests by target and the status sent to the client', labelNames: ['target', 'status'], registers }),
      duration: new Histogram({
        name: 'keyless_http_request_duration_seconds',
        help: 'From request headers received to response headers sent (credential, upstream connect and response wait)',
        labelNames: ['target'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      }),
    };
    byRegistry.set(metrics, m);
  }
  return m;
}

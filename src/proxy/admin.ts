// The admin server, on its own port: liveness, readiness and Prometheus metrics.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface Readiness {
  /** Empty when ready; otherwise why not, one reason a line. */
  notReadyReasons(): string[];
  /** Ready but impaired (a store failing while cached credentials serve), one reason a line. */
  degradedReasons(): string[];
}

export class AdminServer {
  readonly #server: Server;
  readonly #log: Logger;

  constructor(metrics: Metrics, readiness: Readiness, log: Logger, beforeScrape?: () => void) {
    this.#log = log;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      switch (path) {
        case '/healthz':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        case '/readyz': {
          const reasons = readiness.notReadyReasons();
          const degraded = readiness.degradedReasons();
          const list = (xs: string[]): string => xs.map((r) => `- ${r}\n`).join('');
          // A failing store leaves us ready (cached credentials serve, and failing every replica
          // at once would be the outage) but says so here, in metrics and in the logs.
          const body = reasons.length > 0 ? `not ready:\n${list(reasons)}` : degraded.length > 0 ? `ready, degraded:\n${list(degraded)}` : 'ready\n';
          res.writeHead(reasons.length === 0 ? 200 : 503, { 'content-type': 'text/plain' }).end(body);
          return;
        }
        case '/metrics':
          beforeScrape?.();
          metrics.text().then(
            (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
            (err: unknown) => {
              log.error({ err }, 'metrics collection failed');
              res.writeHead(500).end();
            },
          );
          return;
        default:
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
  }

  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        this.#log.info({ listen: `${host}:${this.port}` }, 'admin listening');
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

// Builds the running proxy from a config: stores, the credential cache, targets, one listener per
// listen address, the admin server. `close()` drains: readiness fails first, listeners stop
// accepting, open connections get until the drain deadline, then are closed.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { groupByListen, type Config, type TargetConfig } from '../config/schema.ts';
import { CredentialCache } from '../credentials/cache.ts';
import { createStores } from '../credentials/registry.ts';
import type { CredentialStore } from '../credentials/types.ts';
import { KeylessError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { createHandler } from '../protocols/index.ts';
import type { ProtocolHandler, Route } from '../protocols/types.ts';
import { AdminServer } from './admin.ts';
import type { BoundTarget } from './connection.ts';
import { Listener } from './listener.ts';
import { AccessPolicy } from './policy.ts';

export class Proxy {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly listeners: Listener[] = [];
  readonly admin: AdminServer;
  readonly #log: Logger;
  readonly #stores: Map<string, CredentialStore>;
  readonly #cache: CredentialCache;
  readonly #handlers = new Map<TargetConfig['protocol'], ProtocolHandler>();
  readonly #abort = new AbortController();
  #state: 'new' | 'running' | 'draining' | 'closed' = 'new';

  constructor(config: Config, log: Logger, opts: { metrics?: Metrics } = {}) {
    this.config = config;
    this.#log = log;
    this.metrics = opts.metrics ?? new Metrics();
    this.#stores = createStores(config.stores, log);
    this.#cache = new CredentialCache(this.#stores, log, this.metrics);
    const deps = { log, metrics: this.metrics, cache: this.#cache, signal: this.#abort.signal };
    for (const [key, group] of groupByListen(config.targets)) {
      const targets = group.map(([name, t]): BoundTarget => ({ name, config: t, policy: new AccessPolicy(t.allow), active: 0 }));
      const first = targets[0]!;
      const route: Route = {
        listen: key,
        handshakeMs: Math.max(...targets.map((t) => t.config.timeouts.handshake)),
        tls: first.config.tls ? loadListenerTls(first.name, first.config.tls) : undefined,
        resolve:
          targets.length === 1
            ? () => first
            : (db) => targets.find((t) => t.config.route?.database === db),
      };
      let handler = this.#handlers.get(first.config.protocol);
      if (!handler) {
        handler = createHandler(first.config.protocol, log);
        this.#handlers.set(first.config.protocol, handler);
      }
      this.listeners.push(new Listener(first.config.listen, route, handler, deps));
    }
    this.admin = new AdminServer(this.metrics, this, log, () => this.#cache.collectAges());
  }

  notReadyReasons(): string[] {
    if (this.#state === 'draining' || this.#state === 'closed') return ['shutting down'];
    if (this.#state !== 'running') return ['starting'];
    return this.listeners.filter((l) => !l.bound).map((l) => `listener ${l.route.listen} not bound`);
  }

  async start(): Promise<void> {
    await this.admin.listen(this.config.admin.listen.host, this.config.admin.listen.port);
    await Promise.all(this.listeners.map((l) => l.listen()));
    this.#state = 'running';
  }

  /** Graceful: stop accepting, wait up to `drainMs` for open connections, then close them. */
  async close(drainMs = this.config.drainTimeout): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'draining') return;
    this.#state = 'draining';
    const open = this.listeners.reduce((n, l) => n + l.connections, 0);
    this.#log.info({ open, drainMs }, 'draining');
    const drained = Promise.all(this.listeners.map((l) => l.close()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), drainMs);
    });
    if ((await Promise.race([drained, deadline])) === 'deadline') {
      const left = this.listeners.reduce((n, l) => n + l.connections, 0);
      this.#log.warn({ open: left }, 'drain deadline passed, closing connections');
      this.#abort.abort(new KeylessError('KL_ERR_SHUTTING_DOWN', 'drain deadline passed'));
      for (const l of this.listeners) l.destroyAll();
      await drained;
    }
    clearTimeout(timer);
    await Promise.all([...this.#handlers.values()].map((h) => h.close?.()));
    this.#cache.close();
    await Promise.all([...this.#stores.values()].map((s) => s.close()));
    await this.admin.close();
    this.#state = 'closed';
    this.#log.info('closed');
  }
}

function loadListenerTls(target: string, tls: { cert: string; key: string }): SecureContext {
  try {
    return createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new KeylessError('KL_ERR_CONFIG', `targets.${target}.tls: cannot load certificate or key: ${(err as Error).message}`, { cause: err });
  }
}

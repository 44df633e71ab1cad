// Builds the running proxy from a config: stores, the credential cache, targets, one listener per
// listen address, the admin server. `close()` drains: readiness fails first, listeners stop
// accepting, open connections get until the drain deadline, then are closed.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { groupByListen, type Config, type TargetConfig } from '../config/schema.ts';
import { CredentialCache } from '../credentials/cache.ts';
import { createStore, createStores } from '../credentials/registry.ts';
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
  config: Config;
  readonly metrics: Metrics;
  readonly admin: AdminServer;
  readonly #log: Logger;
  #stores: Map<string, CredentialStore>;
  readonly #cache: CredentialCache;
  readonly #handlers = new Map<TargetConfig['protocol'], ProtocolHandler>();
  readonly #listeners = new Map<string, Listener>();
  /** Targets by name; an unchanged target keeps its object across reloads (and its connections). */
  #targets = new Map<string, BoundTarget>();
  readonly #abort = new AbortController();
  #state: 'new' | 'running' | 'draining' | 'closed' = 'new';
  #reloading: Promise<void> = Promise.resolve();

  constructor(config: Config, log: Logger, opts: { metrics?: Metrics } = {}) {
    this.config = config;
    this.#log = log;
    this.metrics = opts.metrics ?? new Metrics();
    this.#stores = createStores(config.stores, log, this.metrics);
    this.#cache = new CredentialCache(this.#stores, log, this.metrics);
    this.#targets = this.#bindTargets(config);
    for (const [key, group] of groupByListen(config.targets)) {
      const route = this.#route(key, group.map(([name]) => this.#targets.get(name)!));
      this.#listeners.set(key, this.#newListener(route));
    }
    this.admin = new AdminServer(this.metrics, this, log, () => this.#cache.collectAges());
  }

  get listeners(): Listener[] {
    return [...this.#listeners.values()];
  }

  notReadyReasons(): string[] {
    if (this.#state === 'draining' || this.#state === 'closed') return ['shutting down'];
    if (this.#state !== 'running') return ['starting'];
    return this.listeners.filter((l) => !l.bound).map((l) => `listener ${l.route.listen} not bound`);
  }

  degradedReasons(): string[] {
    return this.#cache.degraded();
  }

  async start(): Promise<void> {
    await this.admin.listen(this.config.admin.listen.host, this.config.admin.listen.port);
    await Promise.all(this.listeners.map((l) => l.listen()));
    this.#state = 'running';
  }

  /**
   * Apply a new (already validated) config without a restart. Unchanged targets keep their
   * connections; new listeners bind first (a bind failure leaves the old config running);
   * connections to removed or changed targets get `drainTimeout` to finish, then close.
   */
  reload(next: Config): Promise<void> {
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(next: Config): Promise<void> {
    if (this.#state !== 'running') throw new KeylessError('KL_ERR_SHUTTING_DOWN', 'not running');
    const log = this.#log;
    const prev = this.config;
    // Stores: keep the object of each store whose config did not change.
    const stores = new Map<string, CredentialStore>();
    const created: CredentialStore[] = [];
    for (const [name, cfg] of Object.entries(next.stores)) {
      const same = JSON.stringify(cfg) === JSON.stringify(prev.stores[name]) ? this.#stores.get(name) : undefined;
      if (same) stores.set(name, same);
      else {
        const s = createStore(name, cfg, log, this.metrics);
        stores.set(name, s);
        created.push(s);
      }
    }
    const targets = this.#bindTargets(next);
    const groups = groupByListen(next.targets);
    // New listeners first: if one cannot bind, nothing has changed yet.
    const fresh = new Map<string, Listener>();
    const replaced = new Map<string, Listener>();
    try {
      for (const [key, group] of groups) {
        const route = this.#route(key, group.map(([name]) => targets.get(name)!));
        const existing = this.#listeners.get(key);
        if (existing && existing.handler.protocol === route.targets![0]!.config.protocol) continue;
        if (existing) {
          // Same address, another protocol: the old listener must let go of the port first.
          replaced.set(key, existing);
          await existing.stopAccepting();
        }
        const l = this.#newListener(route);
        await l.listen();
        fresh.set(key, l);
      }
    } catch (err) {
      for (const l of fresh.values()) l.stopAccepting();
      for (const l of replaced.values()) await l.listen().catch(() => undefined);
      await Promise.all(created.map((s) => s.close()));
      throw new KeylessError('KL_ERR_CONFIG', `reload: cannot bind: ${(err as Error).message}`, { cause: err });
    }
    // Commit: swap stores, routes and listeners.
    const oldStores = this.#stores;
    this.#stores = stores;
    this.#cache.replaceStores(stores);
    this.#targets = targets;
    this.config = next;
    const current = new Set<object>(targets.values());
    let draining = 0;
    for (const [key, group] of groups) {
      const l = fresh.get(key) ?? this.#listeners.get(key)!;
      if (!fresh.has(key)) l.route = this.#route(key, group.map(([name]) => targets.get(name)!));
      this.#listeners.set(key, l);
    }
    // Listeners whose address went, and those replaced by another protocol's: all their
    // connections drain. The rest: only connections to targets no longer current.
    const retired = [...replaced.values()];
    for (const [key, l] of [...this.#listeners]) {
      if (groups.has(key)) draining += l.drainStale(current, next.drainTimeout);
      else {
        this.#listeners.delete(key);
        retired.push(l);
      }
    }
    for (const l of retired) {
      void l.stopAccepting();
      draining += l.drainStale(new Set(), next.drainTimeout);
      void l.close();
    }
    for (const [name, s] of oldStores) if (stores.get(name) !== s) void s.close();
    log.level = next.log.level;
    if (JSON.stringify(next.admin) !== JSON.stringify(prev.admin)) log.warn('admin.listen changes take effect at the next restart');
    log.info({ targets: [...targets.keys()], draining }, 'config reloaded');
  }

  /** Graceful: stop accepting, wait up to `drainMs` for open connections, then close them. */
  async close(drainMs = this.config.drainTimeout): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'draining') return;
    this.#state = 'draining';
    const open = this.listeners.reduce((n, l) => n + l.connections, 0);
    this.#log.info({ open, drainMs }, 'draining');
    const drained = Promise.all(this.listeners.map((l) => l.close()));
    for (const h of this.#handlers.values()) h.drain?.();
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

  /** Bound targets for a config, reusing the object of every target whose config is unchanged. */
  #bindTargets(cfg: Config): Map<string, BoundTarget> {
    const out = new Map<string, BoundTarget>();
    for (const [name, t] of Object.entries(cfg.targets)) {
      const prev = this.#targets.get(name);
      out.set(name, prev && JSON.stringify(prev.config) === JSON.stringify(t) ? prev : { name, config: t, policy: new AccessPolicy(t.allow), active: 0 });
    }
    return out;
  }

  #route(key: string, targets: BoundTarget[]): Route {
    const first = targets[0]!;
    return {
      listen: key,
      handshakeMs: Math.max(...targets.map((t) => t.config.timeouts.handshake)),
      tls: first.config.tls ? loadListenerTls(first.name, first.config.tls) : undefined,
      targets,
      resolve: targets.length === 1 ? () => first : (db) => targets.find((t) => t.config.route?.database === db),
    };
  }

  #newListener(route: Route): Listener {
    const first = route.targets![0]!;
    let handler = this.#handlers.get(first.config.protocol);
    if (!handler) {
      handler = createHandler(first.config.protocol, this.#log);
      this.#handlers.set(first.config.protocol, handler);
    }
    return new Listener(first.config.listen, route, handler, { log: this.#log, metrics: this.metrics, cache: this.#cache, signal: this.#abort.signal });
  }
}

function loadListenerTls(target: string, tls: { cert: string; key: string }): SecureContext {
  try {
    return createSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new KeylessError('KL_ERR_CONFIG', `targets.${target}.tls: cannot load certificate or key: ${(err as Error).message}`, { cause: err });
  }
}

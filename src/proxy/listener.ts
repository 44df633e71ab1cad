// One TCP listener: accepts, gives each connection an id and a context, and hands it to the
// protocol handler. An accept error never stops the listener.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { CredentialCache } from '../credentials/cache.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ProtocolHandler, Route } from '../protocols/types.ts';
import { Connection } from './connection.ts';
import { KeylessError } from '../errors.ts';

export interface ListenerDeps {
  log: Logger;
  metrics: Metrics;
  cache: CredentialCache;
  /** Aborted when open connections must go (drain deadline passed). */
  signal: AbortSignal;
}

/** After asking a connection to end, how long before its socket is destroyed regardless. */
const LINGER_MS = 5_000;

let seq = 0;
const PROCESS_TAG = randomBytes(3).toString('hex');

/** Short, unique in this process, and distinct across replicas in aggregated logs. */
function nextConnectionId(): string {
  seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
  return `${PROCESS_TAG}-${seq.toString(36)}`;
}

export class Listener {
  readonly address: { host: string; port: number };
  /** What new connections are routed by; replaced on a config reload. */
  route: Route;
  readonly handler: ProtocolHandler;
  readonly #deps: ListenerDeps;
  readonly #server: Server;
  /** Open sockets and their connection (which knows its target once routed). */
  readonly #open = new Map<Socket, Connection>();
  #bound = false;
  #idle: (() => void)[] = [];

  constructor(address: { host: string; port: number }, route: Route, handler: ProtocolHandler, deps: ListenerDeps) {
    this.address = address;
    this.route = route;
    this.handler = handler;
    this.#deps = deps;
    this.#server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }, (s) => this.#accept(s));
    this.#server.on('error', (err) => deps.log.error({ listen: route.listen, err: err.message }, 'listener error'));
  }

  get bound(): boolean {
    return this.#bound;
  }

  get connections(): number {
    return this.#open.size;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : this.address.port;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host: this.address.host, port: this.address.port, backlog: 1024 }, () => {
        this.#server.off('error', onError);
        this.#bound = true;
        this.#deps.log.info({ listen: this.route.listen, port: this.port }, 'listening');
        resolve();
      });
    });
  }

  /** Stop accepting new connections; resolves once the port is released. */
  stopAccepting(): Promise<void> {
    this.#bound = false;
    // The listening socket closes at once; close()'s own callback waits for every connection.
    if (this.#server.listening) this.#server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Stop accepting; resolves when every open connection has ended. */
  close(): Promise<void> {
    void this.stopAccepting();
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Abruptly end every open connection. */
  destroyAll(): void {
    for (const s of this.#open.keys()) s.destroy();
  }

  /**
   * After a reload: connections bound to a target that is no longer current (removed or
   * changed) get `drainMs` to finish, then are closed. Returns how many were left draining.
   */
  drainStale(current: ReadonlySet<object>, drainMs: number): number {
    const stale = [...this.#open].filter(([, conn]) => conn.target !== undefined && !current.has(conn.target));
    if (stale.length === 0) return 0;
    const timer = setTimeout(() => {
      for (const [socket, conn] of stale) {
        if (!this.#open.has(socket)) continue;
        // Let the protocol say why (its farewell), and make sure the socket goes regardless.
        conn.abort(new KeylessError('KL_ERR_TARGET_RECONFIGURED', `target ${conn.target?.name} was reconfigured or removed`));
        setTimeout(() => socket.destroy(), LINGER_MS).unref();
      }
    }, drainMs);
    timer.unref();
    return stale.length;
  }

  #accept(socket: Socket): void {
    const peer = { address: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 };
    if (!socket.remoteAddress) {
      // Already reset by the peer before we saw it.
      socket.destroy();
      return;
    }
    const conn = new Connection({
      id: nextConnectionId(),
      peer,
      label: this.route.listen,
      log: this.#deps.log,
      metrics: this.#deps.metrics,
      cache: this.#deps.cache,
      signal: this.#deps.signal,
    });
    this.#open.set(socket, conn);
    conn.log.debug({ peer: `${peer.address}:${peer.port}`, listen: this.route.listen }, 'accepted');
    this.handler
      .handle(socket, this.route, conn)
      .catch((err: unknown) => conn.log.error({ err }, 'handler threw'))
      .finally(() => {
        socket.destroy();
        conn.end();
        this.#open.delete(socket);
        if (this.#open.size === 0 && this.#idle.length > 0) {
          for (const fn of this.#idle.splice(0)) fn();
        }
      });
  }
}

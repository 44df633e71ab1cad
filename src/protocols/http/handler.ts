// HTTP targets. The core hands us each accepted socket; one node:http Server per listener parses
// requests on them (keep-alive, pipelining, 100-continue), so a connection may carry many
// requests. A connection is bound to the target of its first request: admission (allow rules,
// connection limit) and the connection metrics are that target's. In forward mode a later request
// on the same connection for a host of another target gets 421 Misdirected Request and the
// connection closes, so the client retries on a fresh one (RFC 9110 §15.5.20). Per-request
// counts and latencies are labelled with the request's target (keyless_http_requests_total).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Agent } from 'undici';
import { TLSSocket } from 'node:tls';
import type { HttpTargetConfig } from '../../config/schema.ts';
import { asKeylessError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ConnectionContext, ProtocolHandler, Route, Target } from '../types.ts';
import { handleConnect } from './connect.ts';
import { bindOnce, markRelayed, type ConnState } from './conn.ts';
import { HttpStatusError, sendProblem, statusOf } from './errors.ts';
import { exchange, type Upstream } from './exchange.ts';
import { createInjector } from './inject/index.ts';
import { httpMetrics } from './metrics.ts';
import { routeRequest, targetsOf } from './routing.ts';
import { createAgent } from './upstream.ts';
import { handleUpgrade } from './websocket.ts';

interface Front {
  server: Server;
  states: WeakMap<Duplex, ConnState>;
}

export class HttpHandler implements ProtocolHandler {
  readonly protocol = 'http' as const;
  readonly #log: Logger;
  readonly #fronts = new WeakMap<Route, Front>();
  readonly #servers = new Set<Server>();
  readonly #upstreams = new Map<HttpTargetConfig, Upstream & { close(): Promise<void> }>();
  /** Shutting down: answer what is in flight with `Connection: close`, keep nothing alive. */
  #draining = false;
  /** Every client socket being served, for drain(). */
  readonly #sockets = new Set<Socket | TLSSocket>();

  constructor(log: Logger) {
    this.#log = log;
  }

  async handle(client: Socket, route: Route, ctx: ConnectionContext): Promise<void> {
    const front = this.#front(route);
    const socket: Socket | TLSSocket = route.tls ? new TLSSocket(client, { isServer: true, secureContext: route.tls, ALPNProtocols: ['http/1.1'] }) : client;
    const closed = new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      client.once('close', () => resolve());
    });
    this.#sockets.add(socket);
    void closed.then(() => this.#sockets.delete(socket));
    // node:http drops its own error listeners from a socket handed to 'connect' or 'upgrade';
    // a reset must never become an uncaught exception.
    const onError = (err: NodeJS.ErrnoException): void => ctx.log.debug({ err: err.code ?? err.message }, 'client socket error');
    client.on('error', onError);
    if (socket !== client) socket.on('error', onError);
    const onAbort = (): void => {
      socket.destroy();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    front.states.set(socket, { ctx, raw: client, target: undefined, relayed: false });
    // node:http's own headersTimeout is only enforced for servers that listen themselves, so the
    // first request's headers (and the TLS handshake) get this timer; the 'request', 'connect' and
    // 'upgrade' handlers clear it, and from then on keep-alive's idle timeout applies.
    if (route.handshakeMs > 0) socket.setTimeout(route.handshakeMs);
    front.server.emit('connection', socket);
    await closed;
    ctx.signal.removeEventListener('abort', onAbort);
  }

  drain(): void {
    this.#draining = true;
    // server.closeIdleConnections() only tracks servers that listen themselves; these get their
    // sockets by emit('connection'), so idle and busy are told apart here.
    for (const socket of this.#sockets) {
      const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (!res || res.writableFinished) socket.end(); // an idle keep-alive connection
      else if (!res.headersSent) res.shouldKeepAlive = false; // answers with Connection: close, then ends
      else res.once('finish', () => socket.end()); // mid-body: end once this response is out
    }
  }

  async close(): Promise<void> {
    for (const s of this.#servers) s.closeAllConnections();
    await Promise.all([...this.#upstreams.values()].map(async (u) => {
      await u.injector.close?.();
      await u.close();
    }));
    this.#upstreams.clear();
    this.#log.debug('http handler closed');
  }

  #front(route: Route): Front {
    let front = this.#fronts.get(route);
    if (front) return front;
    const cfgs = targetsOf(route).map((t) => t.config as HttpTargetConfig);
    const idle = Math.max(...cfgs.map((c) => c.timeouts.idle));
    const handshake = Math.max(...cfgs.map((c) => c.timeouts.handshake));
    const server = createServer({
      keepAliveTimeout: idle,
      headersTimeout: handshake,
      // Bodies may stream for as long as they need; the upstream body timeout bounds stalls.
      requestTimeout: 0,
      noDelay: true,
      // Only WebSocket is spliced; any other Upgrade (curl --http2's h2c) is served as a plain
      // request, its Upgrade header dropped as hop-by-hop.
      shouldUpgradeCallback: (req) => String(req.headers.upgrade ?? '').toLowerCase() === 'websocket',
    });
    const states = new WeakMap<Duplex, ConnState>();
    front = { server, states };
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.#draining) res.shouldKeepAlive = false;
      const st = states.get(req.socket);
      startedRequests(req.socket, st);
      if (!st) {
        res.destroy();
        return;
      }
      void this.#request(route, st, req, res);
    });
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const st = states.get(req.socket);
      startedRequests(req.socket, st);
      if (!st) return void socket.destroy();
      void handleConnect(route, st, req, socket, head);
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const st = states.get(req.socket);
      startedRequests(req.socket, st);
      if (!st) return void socket.destroy();
      void handleUpgrade(route, st, req, socket, head, (t) => this.#upstream(t));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const st = states.get(socket);
      st?.ctx.log.debug({ err: err.code ?? err.message }, 'bad request from client');
      if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    this.#fronts.set(route, front);
    this.#servers.add(server);
    return front;
  }

  #upstream(target: Target): Upstream {
    const cfg = target.config as HttpTargetConfig;
    let u = this.#upstreams.get(cfg);
    if (!u) {
      const agent = createAgent(target.name, cfg);
      let h1: Agent | undefined = cfg.upstream.http2 ? undefined : agent;
      u = {
        agent,
        injector: createInjector(target.name, cfg),
        h1Agent: () => (h1 ??= createAgent(target.name, { ...cfg, upstream: { ...cfg.upstream, http2: false } })),
        close: async () => {
          await agent.close();
          if (h1 && h1 !== agent) await h1.close();
        },
      };
      this.#upstreams.set(cfg, u);
    }
    return u;
  }

  async #request(route: Route, st: ConnState, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { ctx } = st;
    const started = performance.now();
    const metrics = httpMetrics(ctx.metrics);
    let target: Target | undefined;
    try {
      const routed = routeRequest(route, req);
      target = routed.target;
      bindOnce(st, target);
      await exchange(req, res, {
        ctx,
        routed,
        upstream: this.#upstream(target),
        clientProto: route.tls ? 'https' : 'http',
        onResponse: (status) => {
          metrics.duration.observe({ target: routed.target.name }, (performance.now() - started) / 1000);
          metrics.requests.inc({ target: routed.target.name, status: String(status) });
          markRelayed(st);
        },
      });
      ctx.log.debug({ method: req.method, ms: Math.round(performance.now() - started) }, 'request done');
    } catch (err) {
      const e = asKeylessError(err, 'KL_ERR_UPSTREAM_ERROR', `request failed: ${(err as Error)?.message ?? String(err)}`);
      if (e.code === 'KL_ERR_CLIENT_CLOSED') {
        ctx.log.debug({ err: e.message }, 'client went away mid-request');
        res.destroy();
        return;
      }
      const name = target?.name;
      if (!st.relayed) ctx.failed(e);
      else ctx.log.warn({ code: e.code, err: e.message, cause: (e.cause as Error | undefined)?.message }, 'request failed');
      if (!res.headersSent) metrics.requests.inc({ target: name ?? route.listen, status: String(statusOf(e)) });
      // A refused or misdirected connection is closed: it must not carry further requests.
      const close = e.code === 'KL_ERR_POLICY_DENIED' || e.code === 'KL_ERR_TOO_MANY_CONNECTIONS' || e instanceof HttpStatusError;
      // Drain what is left of the request body so the connection can carry the next request.
      if (!close && !req.complete) req.resume();
      sendProblem(res, e, name, { close });
    }
  }
}

/** The first request's headers are in: the handshake timer is done. */
function startedRequests(socket: Duplex, st: ConnState | undefined): void {
  if (!st || st.started) return;
  st.started = true;
  (socket as Socket).setTimeout(0);
}

// The Vault-compatible server for the test suite: `startVaultServer()` listens over TLS (and
// optionally plain HTTP), and gives tests the knobs a real Vault cannot: an injectable clock,
// seal/unseal and standby, stop/start on the same port, request counting, and interceptors.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { ManualClock, type Clock } from './clock.ts';
import { VaultCore, type RecordedRequest, type VaultMode } from './core.ts';
import { serveHttp1, type HttpRequest, type HttpResponse } from './http1.ts';
import type { PolicyInput } from './acl.ts';
import type { Namespace } from './namespace.ts';
import type { CreateTokenOptions, Token } from './tokens.ts';
import type { Lease } from './leases.ts';

export interface VaultServerOptions {
  /** Serve HTTPS with this certificate (PEM text or files). Without it the server is plain HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer } | { certFile: string; keyFile: string };
  /** With `tls`, also serve plain HTTP on a second port (`httpAddress`). */
  plainHttp?: boolean;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Default a ManualClock at the current time (time moves only when a test advances it). */
  clock?: Clock;
  /** A fixed root token id (e.g. 'root'); default a fresh `hvs.` token. */
  rootToken?: string;
  version?: string;
  invalidTokenError?: 'modern' | 'legacy';
  /** Send `mount_type` in envelopes; default true. */
  mountType?: boolean;
  /** Enterprise namespaces via X-Vault-Namespace; default true. False = Vault CE (header ignored). */
  namespaces?: boolean;
  /** Reject requests without `X-Vault-Request: true` (412), as an Agent listener can. */
  requireRequestHeader?: boolean;
  /** Mount `secret/` as KV v2, as `vault server -dev` does. Default true. */
  devMounts?: boolean;
  /** System default and max lease TTL; seconds. Default 768h each. */
  defaultLeaseTtl?: number;
  maxLeaseTtl?: number;
}

/** What an interceptor sees of a request before the server handles it. */
export interface InterceptedRequest {
  method: string;
  /** The path after `/v1/` as sent (a namespace prefix, if any, included), without the query. */
  path: string;
  query: string;
  /** The X-Vault-Namespace header, if sent. */
  namespace: string | undefined;
  headers: ReadonlyMap<string, string>;
}

/** An interceptor's answer: a response to send instead, or `{ drop: true }` to cut the connection. */
export type InterceptReply = { status: number; body?: unknown; headers?: Record<string, string> } | { drop: true };

/** Called for each request; may await (to hold a response), answer, or return undefined to continue. */
export type Interceptor = (req: InterceptedRequest) => void | InterceptReply | Promise<void | InterceptReply>;

export interface RequestFilter {
  method?: string;
  operation?: string;
  /** Exact path (relative to the namespace, without /v1/) or a RegExp. */
  path?: string | RegExp;
  namespace?: string;
  status?: number;
}

export class RequestLog {
  readonly #entries: RecordedRequest[] = [];

  /** @internal */
  push(r: RecordedRequest): void {
    this.#entries.push(r);
  }

  all(filter: RequestFilter = {}): RecordedRequest[] {
    return this.#entries.filter(
      (r) =>
        (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
        (filter.operation === undefined || r.operation === filter.operation) &&
        (filter.namespace === undefined || r.namespace === filter.namespace) &&
        (filter.status === undefined || r.status === filter.status) &&
        (filter.path === undefined || (typeof filter.path === 'string' ? r.path === filter.path : filter.path.test(r.path))),
    );
  }

  count(filter: RequestFilter = {}): number {
    return this.all(filter).length;
  }

  /** How many reads (GET, not list) hit `path`. */
  reads(path: string | RegExp): number {
    return this.count({ operation: 'read', path });
  }

  reset(): void {
    this.#entries.length = 0;
  }
}

interface Listener {
  server: NetServer;
  port: number;
  sockets: Set<Socket>;
}

export class VaultServer {
  readonly core: VaultCore;
  readonly clock: Clock;
  readonly requests = new RequestLog();
  /** Base URL (`https://127.0.0.1:<port>` with TLS, else `http://…`). */
  readonly address: string;
  readonly port: number;
  /** The plain-HTTP URL when `plainHttp` was asked for alongside TLS. */
  readonly httpAddress: string | undefined;
  readonly #host: string;
  readonly #tls: { cert: string | Buffer; key: string | Buffer } | undefined;
  readonly #listeners: Listener[] = [];
  readonly #interceptors = new Set<Interceptor>();
  #running = false;

  /** @internal use startVaultServer() */
  constructor(core: VaultCore, host: string, tls: { cert: string | Buffer; key: string | Buffer } | undefined, listeners: Listener[]) {
    this.core = core;
    this.clock = core.clock;
    this.#host = host;
    this.#tls = tls;
    this.#listeners = listeners;
    const main = listeners[0]!;
    this.port = main.port;
    const h = host.includes(':') ? `[${host}]` : host;
    this.address = `${tls ? 'https' : 'http'}://${h}:${main.port}`;
    this.httpAddress = tls && listeners[1] ? `http://${h}:${listeners[1].port}` : undefined;
    this.#running = true;
  }

  // ------------------------------------------------------------------ identity and namespaces

  get rootToken(): string {
    return this.core.rootToken.id;
  }

  /** The root namespace (the whole server in Vault CE). */
  get root(): Namespace {
    return this.core.root;
  }

  /** The unseal key `sys/unseal` accepts. */
  get unsealKey(): string {
    return this.core.unsealKey;
  }

  /** Get or create a namespace (`team-a`, `team-a/sub`). */
  namespace(path: string): Namespace {
    return this.core.root.namespace(path);
  }

  // ------------------------------------------------------------------ root-namespace shortcuts

  setPolicy(name: string, policy: PolicyInput): void {
    this.root.setPolicy(name, policy);
  }

  createToken(opts: CreateTokenOptions = {}): Token {
    return this.root.createToken(opts);
  }

  enableKv(path: string, opts: { version?: 1 | 2 } = {}): ReturnType<Namespace['enableKv']> {
    return this.root.enableKv(path, opts);
  }

  kv1(path: string): ReturnType<Namespace['kv1']> {
    return this.root.kv1(path);
  }

  kv2(path = 'secret'): ReturnType<Namespace['kv2']> {
    return this.root.kv2(path);
  }

  enableKubernetesAuth(opts: Parameters<Namespace['enableKubernetesAuth']>[0] = {}): ReturnType<Namespace['enableKubernetesAuth']> {
    return this.root.enableKubernetesAuth(opts);
  }

  enableAppRole(opts: { path?: string } = {}): ReturnType<Namespace['enableAppRole']> {
    return this.root.enableAppRole(opts);
  }

  enableDatabase(opts: { path?: string } = {}): ReturnType<Namespace['enableDatabase']> {
    return this.root.enableDatabase(opts);
  }

  // ------------------------------------------------------------------ time

  /** Advance a ManualClock and wait until expired tokens/leases are revoked (roles dropped). */
  async advance(ms: number): Promise<void> {
    if (!(this.clock instanceof ManualClock)) throw new Error('advance() needs the server to run on a ManualClock');
    this.clock.advance(ms);
    await this.core.settle();
  }

  /** Wait for background expiry work (revocations, rotations) to finish. */
  settle(): Promise<void> {
    return this.core.settle();
  }

  /** Leases currently held (for inspection). */
  leases(): Lease[] {
    return this.core.leases.all();
  }

  /** Background failures (a revocation whose DROP ROLE failed, …). */
  get backgroundErrors(): ReadonlyArray<{ what: string; error: unknown }> {
    return this.core.backgroundErrors;
  }

  // ------------------------------------------------------------------ state

  seal(): void {
    this.core.sealed = true;
  }

  unseal(): void {
    this.core.sealed = false;
  }

  get sealed(): boolean {
    return this.core.sealed;
  }

  /** active | standby | performance-standby | dr-secondary | uninitialized | ha-unhealthy | removed (sys/health's table).
   * Non-active nodes answer other requests 503 as a standby without an active node does. */
  setMode(mode: VaultMode): void {
    this.core.mode = mode;
  }

  /** Run `fn` on every request before the server does; returns a function that removes it. */
  intercept(fn: Interceptor): () => void {
    this.#interceptors.add(fn);
    return () => this.#interceptors.delete(fn);
  }

  // ------------------------------------------------------------------ lifecycle

  get running(): boolean {
    return this.#running;
  }

  /** Stop listening and cut every open connection (clients then see ECONNREFUSED / resets). State is kept. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await Promise.all(
      this.#listeners.map(
        (l) =>
          new Promise<void>((resolve) => {
            l.server.close(() => resolve());
            for (const s of l.sockets) s.destroy();
            l.sockets.clear();
          }),
      ),
    );
  }

  /** Listen again on the same port(s). */
  async start(): Promise<void> {
    if (this.#running) return;
    for (const l of this.#listeners) await listen(l.server, l.port, this.#host);
    this.#running = true;
  }

  /** Stop for good: listeners, background timers, database connections. */
  async close(): Promise<void> {
    await this.stop();
    await this.core.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  async handle(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.target, 'http://vault.invalid');
    const intercepted: InterceptedRequest = {
      method: req.method,
      path: url.pathname.replace(/^\/v1\//, ''),
      query: url.search,
      namespace: req.headers.get('x-vault-namespace'),
      headers: req.headers,
    };
    for (const fn of [...this.#interceptors]) {
      const r = await fn(intercepted);
      if (!r) continue;
      this.requests.push({ method: req.method, operation: undefined, path: intercepted.path, namespace: intercepted.namespace ?? '', query: url.search, status: 'drop' in r ? 0 : r.status, tokenAccessor: undefined, time: this.clock.now() });
      if ('drop' in r) return { status: 0, headers: [], destroy: true };
      const headers: Array<[string, string]> = [
        ['Cache-Control', 'no-store'],
        ['Content-Type', 'application/json'],
        ...Object.entries(r.headers ?? {}),
      ];
      return { status: r.status, headers, ...(r.body === undefined ? {} : { body: typeof r.body === 'string' ? r.body : `${JSON.stringify(r.body)}\n` }) };
    }
    const { response, record } = await this.core.handle(req);
    this.requests.push(record);
    return response;
  }
}

function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

const LIMITS = { maxHeaderBytes: 1 << 20, maxBodyBytes: 32 << 20 };

/** Start a Vault-compatible server. With `tls`, `address` is https. */
export async function startVaultServer(opts: VaultServerOptions = {}): Promise<VaultServer> {
  const host = opts.host ?? '127.0.0.1';
  const core = new VaultCore({
    clock: opts.clock ?? new ManualClock(),
    ...(opts.rootToken ? { rootToken: opts.rootToken } : {}),
    version: opts.version ?? '1.17.6',
    invalidTokenError: opts.invalidTokenError ?? 'modern',
    mountType: opts.mountType ?? true,
    namespaces: opts.namespaces ?? true,
    requireRequestHeader: opts.requireRequestHeader ?? false,
    defaultLeaseTtl: opts.defaultLeaseTtl ?? 768 * 3600,
    maxLeaseTtl: opts.maxLeaseTtl ?? 768 * 3600,
  });
  if (opts.devMounts ?? true) core.root.enableKv('secret', { version: 2 });

  const tls = opts.tls ? ('certFile' in opts.tls ? { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) } : opts.tls) : undefined;
  let vault: VaultServer | undefined;
  const handler = (req: HttpRequest): Promise<HttpResponse> => vault!.handle(req);
  const listeners: Listener[] = [];
  const track = (sockets: Set<Socket>, socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveHttp1(socket, handler, LIMITS);
  };
  const make = (secure: boolean): Listener => {
    const sockets = new Set<Socket>();
    const server = secure
      ? createTlsServer({ cert: tls!.cert, key: tls!.key, ALPNProtocols: ['http/1.1'] }, (s) => track(sockets, s))
      : createNetServer((s) => track(sockets, s));
    if (secure) server.on('tlsClientError', () => {});
    return { server, port: 0, sockets };
  };
  const main = make(tls !== undefined);
  main.port = await listen(main.server, opts.port ?? 0, host);
  listeners.push(main);
  if (tls && opts.plainHttp) {
    const plain = make(false);
    plain.port = await listen(plain.server, 0, host);
    listeners.push(plain);
  }
  vault = new VaultServer(core, host, tls, listeners);
  return vault;
}

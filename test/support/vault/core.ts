// The request pipeline of the Vault double, in the order Vault applies it: path cleaning and
// /v1/ prefix, method → operation, body parsing, sys/health, seal and standby checks,
// namespace, token, ACL (before routing, so a denial hides a missing mount), then the mount.
import type { Operation } from './acl.ts';
import { isManualClock, type Clock } from './clock.ts';
import { multierror, permissionDenied, VaultHttpError } from './errors.ts';
import type { HttpRequest, HttpResponse } from './http1.ts';
import { LeaseStore } from './leases.ts';
import type { MountEnv } from './mount.ts';
import { Namespace } from './namespace.ts';
import { base62, uuid } from './random.ts';
import { buildEnvelope, type Reply } from './reply.ts';
import type { SysCore } from './sys.ts';
import { TokenStore, type Token } from './tokens.ts';
import { DatabaseMount } from './database.ts';
import { goBool, health, healthBody, sealStatus, type HealthState, type VaultMode } from './health.ts';

export type { VaultMode };

export interface CoreOptions {
  clock: Clock;
  /** Fixed root token id (dev-mode style); default a fresh `hvs.` token. */
  rootToken?: string;
  /** Reported by sys/health and sys/seal-status. Default 1.17.6. */
  version: string;
  /** `modern` (Vault ≥1.17, default): "2 errors occurred: permission denied, invalid token";
   * `legacy` (≤1.16, OpenBao): "permission denied". */
  invalidTokenError: 'modern' | 'legacy';
  /** Send `mount_type` in envelopes (recent Vault does; older Vault and OpenBao do not). */
  mountType: boolean;
  /** Enterprise-style namespaces via X-Vault-Namespace / path prefix. False = CE: header ignored. */
  namespaces: boolean;
  /** Behave like an Agent/Proxy listener with require_request_header = true. */
  requireRequestHeader: boolean;
  defaultLeaseTtl: number;
  maxLeaseTtl: number;
}

export interface RecordedRequest {
  /** The HTTP method as sent (GET, LIST, POST…). */
  method: string;
  /** Vault's operation after routing: read, list, create, update, delete, patch (undefined if refused earlier). */
  operation: Operation | undefined;
  /** The path relative to the namespace, without `/v1/` (`secret/data/app`); LIST paths end in `/`. */
  path: string;
  /** '' for root, else `team-a/`. */
  namespace: string;
  query: string;
  status: number;
  /** Accessor of the token used, if any. */
  tokenAccessor: string | undefined;
  /** Server clock time (ms). */
  time: number;
}

export interface Outcome {
  response: HttpResponse;
  record: RecordedRequest;
}

const JSON_HEADERS: Array<[string, string]> = [
  ['Cache-Control', 'no-store'],
  ['Content-Type', 'application/json'],
];

function errorBody(errors: string[]): string {
  return `${JSON.stringify({ errors })}\n`;
}

/** Go's ServeMux cleanPath: path.Clean, keeping a trailing slash. */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  const abs = p.startsWith('/') ? p : `/${p}`;
  const segs: string[] = [];
  for (const s of abs.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segs.pop();
    else segs.push(s);
  }
  let np = `/${segs.join('/')}`;
  if (abs.endsWith('/') && np !== '/') np += '/';
  return np;
}

export class VaultCore implements MountEnv, SysCore {
  readonly clock: Clock;
  readonly tokens: TokenStore;
  readonly leases: LeaseStore;
  readonly defaultLeaseTtl: number;
  readonly maxLeaseTtl: number;
  readonly options: CoreOptions;
  readonly root: Namespace;
  readonly rootToken: Token;
  readonly unsealKey = base62(44);
  readonly clusterName = `vault-cluster-${base62(8).toLowerCase()}`;
  readonly clusterId = uuid();
  readonly backgroundErrors: Array<{ what: string; error: unknown }> = [];
  sealed = false;
  mode: VaultMode = 'active';
  readonly #namespaces = new Map<string, Namespace>();
  #sweepChain: Promise<void> = Promise.resolve();
  readonly #background = new Set<Promise<void>>();
  #sweeping = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #unsubscribe: (() => void) | undefined;

  constructor(options: CoreOptions) {
    this.options = options;
    this.clock = options.clock;
    this.defaultLeaseTtl = options.defaultLeaseTtl;
    this.maxLeaseTtl = options.maxLeaseTtl;
    this.leases = new LeaseStore(this.clock);
    this.tokens = new TokenStore({
      clock: this.clock,
      defaultTtl: options.defaultLeaseTtl,
      maxTtl: options.maxLeaseTtl,
      onRevoke: async (t) => {
        for (const l of this.leases.byToken(t.id)) {
          try {
            await this.leases.revoke(l);
          } catch (e) {
            this.recordError(`revoke lease ${l.id} of token ${t.accessor}`, e);
          }
        }
      },
    });
    this.root = new Namespace(this, this, '', null);
    this.#namespaces.set('', this.root);
    this.rootToken = this.tokens.create(this.root, {
      policies: ['root'],
      noDefaultPolicy: true,
      displayName: 'root',
      path: 'auth/token/root',
      ...(options.rootToken ? { id: options.rootToken } : {}),
    });
    const clock = this.clock;
    this.#unsubscribe = isManualClock(clock) ? clock.onChange(() => void this.sweep()) : undefined;
  }

  // ------------------------------------------------------------------ SysCore / MountEnv

  registerNamespace(ns: Namespace): void {
    this.#namespaces.set(ns.path, ns);
  }

  namespaceByPath(path: string): Namespace | undefined {
    return this.#namespaces.get(path === '' || path.endsWith('/') ? path : `${path}/`);
  }

  seal(): void {
    this.sealed = true;
  }

  recordError(what: string, error: unknown): void {
    this.backgroundErrors.push({ what, error });
  }

  background(what: string, work: Promise<unknown>): void {
    const p = work.then(
      () => undefined,
      (e: unknown) => this.recordError(what, e),
    );
    this.#background.add(p);
    void p.finally(() => this.#background.delete(p));
  }

  // ------------------------------------------------------------------ expiry

  /** Revoke expired tokens and leases (dropping database roles) and rotate due static roles. */
  sweep(): Promise<void> {
    this.#sweeping++;
    const run = this.#sweepChain.then(() => this.#sweepOnce());
    this.#sweepChain = run.catch(() => {}).finally(() => this.#sweeping--);
    return run;
  }

  async #sweepOnce(): Promise<void> {
    const now = this.clock.now();
    for (const t of this.tokens.due(now)) {
      try {
        await this.tokens.revoke(t);
      } catch (e) {
        this.recordError(`expire token ${t.accessor}`, e);
      }
    }
    for (const l of this.leases.due(now)) {
      try {
        await this.leases.revoke(l);
      } catch (e) {
        this.recordError(`expire lease ${l.id}`, e);
      }
    }
    for (const m of this.root.allMounts()) if (m instanceof DatabaseMount) await m.rotateDue(now);
    this.#schedule();
  }

  #nextDue(): number | undefined {
    const cands = [this.tokens.nextExpiry(), this.leases.nextExpiry()];
    for (const m of this.root.allMounts()) if (m instanceof DatabaseMount) cands.push(m.nextRotation());
    const defined = cands.filter((x): x is number => x !== undefined);
    return defined.length === 0 ? undefined : Math.min(...defined);
  }

  /** Wait for in-flight sweeps, then sweep if anything is due. */
  async settle(): Promise<void> {
    while (this.#background.size > 0) await Promise.all([...this.#background]);
    if (this.#sweeping > 0) await this.#sweepChain;
    const next = this.#nextDue();
    if (next !== undefined && next <= this.clock.now()) await this.sweep();
  }

  /** With a real clock, expire things on a timer as Vault does. */
  #schedule(): void {
    if (this.#closed || isManualClock(this.clock)) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#nextDue();
    if (next === undefined) return;
    this.#timer = setTimeout(() => void this.sweep(), Math.min(Math.max(0, next - this.clock.now()) + 5, 2 ** 31 - 1));
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#unsubscribe?.();
    await this.settle().catch(() => {});
    for (const m of this.root.allMounts()) if (m instanceof DatabaseMount) await m.close();
  }

  // ------------------------------------------------------------------ health

  #healthState(): HealthState {
    return { mode: this.mode, sealed: this.sealed, now: this.clock.now(), version: this.options.version, enterprise: this.options.namespaces, clusterName: this.clusterName, clusterId: this.clusterId };
  }

  healthBody(): Record<string, unknown> {
    return healthBody(this.#healthState());
  }

  sealStatus(): Record<string, unknown> {
    return sealStatus(this.#healthState());
  }

  // ------------------------------------------------------------------ the pipeline

  #resolve(header: string | undefined, path: string): { ns: Namespace; rel: string } {
    let full = path;
    if (this.options.namespaces && header) {
      const h = header.replace(/^\/+|\/+$/g, '');
      if (h !== '') full = `${h}/${path}`;
    }
    let ns = this.root;
    for (;;) {
      const rest = full.slice(ns.path.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) break;
      const child = ns.children.get(rest.slice(0, slash));
      if (!child) break;
      ns = child;
    }
    return { ns, rel: full.slice(ns.path.length) };
  }

  #invalidToken(): VaultHttpError {
    return new VaultHttpError(403, [this.options.invalidTokenError === 'legacy' ? 'permission denied' : multierror(['permission denied', 'invalid token'])]);
  }

  async handle(req: HttpRequest): Promise<Outcome> {
    const record: RecordedRequest = { method: req.method, operation: undefined, path: '', namespace: '', query: '', status: 0, tokenAccessor: undefined, time: this.clock.now() };
    const respond = (status: number, body: string | undefined, headers: Array<[string, string]> = JSON_HEADERS): Outcome => {
      record.status = status;
      return { response: { status, headers, ...(body === undefined ? {} : { body }) }, record };
    };
    const fail = (e: VaultHttpError): Outcome => respond(e.status, errorBody(e.errors));

    let url: URL;
    try {
      url = new URL(req.target, 'http://vault.invalid');
    } catch {
      return respond(400, errorBody(['invalid request URL']));
    }
    record.query = url.search;
    // The WHATWG URL parser removes dot segments; Go's ServeMux sees them, so use the raw target.
    const rawPath = req.target.startsWith('/') ? req.target.split(/[?#]/)[0]! : url.pathname;
    const cleaned = cleanPath(rawPath);
    if (cleaned !== rawPath) {
      const location = `${cleaned}${url.search}`;
      const html = req.method === 'GET' || req.method === 'HEAD';
      record.path = rawPath;
      return respond(301, html ? `<a href="${location}">Moved Permanently</a>.\n\n` : undefined, [['Location', location], ...(html ? ([['Content-Type', 'text/html; charset=utf-8']] as Array<[string, string]>) : [])]);
    }
    if (!rawPath.startsWith('/v1/')) {
      record.path = rawPath;
      return respond(404, errorBody([]));
    }
    let path: string;
    try {
      path = decodeURIComponent(rawPath.slice(4));
    } catch {
      return respond(400, errorBody(['invalid URL escape']));
    }
    if (this.options.requireRequestHeader && req.headers.get('x-vault-request') !== 'true') {
      record.path = path;
      return respond(412, errorBody(['missing "X-Vault-Request" header']));
    }
    const { ns, rel: rel0 } = this.#resolve(req.headers.get('x-vault-namespace'), path);
    let rel = rel0;
    record.namespace = ns.path;
    record.path = rel;

    if (rel === 'sys/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const h = health(this.#healthState(), url.searchParams, req.method === 'HEAD');
      return respond(h.status, h.body);
    }

    // Method → operation.
    let op: Operation;
    switch (req.method) {
      case 'GET': {
        op = 'read';
        const list = url.searchParams.get('list');
        if (list !== null && list !== '') {
          const b = goBool(list);
          if (b === undefined) return respond(400, errorBody([`strconv.ParseBool: parsing "${list}": invalid syntax`]));
          if (b) op = 'list';
        }
        break;
      }
      case 'LIST':
        op = 'list';
        break;
      case 'POST':
      case 'PUT':
        op = 'update';
        break;
      case 'DELETE':
        op = 'delete';
        break;
      case 'PATCH': {
        op = 'patch';
        const ct = (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (ct === '') return respond(400, errorBody(['mime: no media type']));
        if (ct !== 'application/merge-patch+json') return respond(415, errorBody([`PATCH requires Content-Type of application/merge-patch+json, got "${ct}"`]));
        break;
      }
      default:
        return respond(405, errorBody([]));
    }
    if (op === 'list' && !rel.endsWith('/')) rel = `${rel}/`;
    record.operation = op;
    record.path = rel;

    // Body (or query parameters for reads).
    let data: Record<string, unknown> = {};
    if (op === 'read' || op === 'list') {
      for (const [k, v] of url.searchParams) if (k !== 'list' && k !== 'help') data[k] = v;
    } else if (req.body.length > 0) {
      const text = req.body.toString('utf8');
      const ct = (req.headers.get('content-type') ?? '').toLowerCase();
      const trimmed = text.trimStart();
      if (ct.startsWith('application/x-www-form-urlencoded') && !trimmed.startsWith('{') && !trimmed.startsWith('[')) {
        const form = new URLSearchParams(text);
        for (const k of new Set(form.keys())) data[k] = form.getAll(k).join(',');
      } else if (trimmed !== '') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return respond(400, errorBody(['error parsing JSON']));
        }
        if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) return respond(400, errorBody(['error parsing JSON']));
        data = (parsed ?? {}) as Record<string, unknown>;
      }
    }

    // Paths that answer while sealed.
    if (rel === 'sys/seal-status' && op === 'read') return respond(200, `${JSON.stringify(this.sealStatus())}\n`);
    if (rel === 'sys/unseal' && op === 'update') {
      if (data.reset !== true && data.key !== this.unsealKey) {
        if (typeof data.key !== 'string' || data.key === '') return respond(400, errorBody(['missing required parameter: key']));
        return respond(400, errorBody(['Unseal failed, invalid key']));
      }
      if (data.key === this.unsealKey) this.sealed = false;
      return respond(200, `${JSON.stringify(this.sealStatus())}\n`);
    }
    if (this.sealed || this.mode === 'uninitialized') return respond(503, errorBody(['Vault is sealed']));
    if (this.mode === 'standby' || this.mode === 'ha-unhealthy' || this.mode === 'dr-secondary') return respond(503, errorBody(['no active Vault instance found']));
    if (this.mode === 'removed') return respond(503, errorBody(['node has been removed from the HA cluster']));

    await this.settle();

    try {
      const mount = ns.findMount(rel);
      const mountRel = mount ? (rel.length < mount.path.length ? '' : rel.slice(mount.path.length)) : '';
      let token: Token | undefined;
      let acl;
      if (!(mount?.unauthenticated?.(mountRel) ?? false)) {
        const auth = req.headers.get('authorization');
        const tokenId = req.headers.get('x-vault-token') || (auth && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : '');
        if (!tokenId) throw new VaultHttpError(403, ['permission denied']);
        token = this.tokens.lookup(tokenId);
        if (!token || !ns.path.startsWith(token.ns.path)) throw this.#invalidToken();
        record.tokenAccessor = token.accessor;
        if (op === 'update' && mount?.exists?.(mountRel) === false) op = 'create';
        record.operation = op;
        const tokenNs = this.#namespaces.get(token.ns.path)!;
        acl = tokenNs.aclFor(token);
        if (!acl.allows(`${ns.path.slice(token.ns.path.length)}${rel}`, op)) throw permissionDenied();
      }
      if (!mount) throw new VaultHttpError(404, [`no handler for route "${rel}". route entry not found.`]);
      const reply = await mount.handle({ method: req.method, op, path: mountRel, fullPath: rel, data, query: url.searchParams, headers: req.headers, ns, token, acl });
      this.#schedule();
      return this.#render(reply, mount.type, respond);
    } catch (e) {
      if (e instanceof VaultHttpError) return fail(e);
      return fail(new VaultHttpError(500, [multierror([e instanceof Error ? e.message : String(e)])]));
    }
  }

  #render(reply: Reply, mountType: string, respond: (status: number, body: string | undefined) => Outcome): Outcome {
    switch (reply.kind) {
      case 'empty':
        return respond(reply.status, undefined);
      case 'json':
        return respond(reply.status, `${JSON.stringify(reply.body)}\n`);
      case 'envelope':
        return respond(reply.status, `${JSON.stringify(buildEnvelope(reply.envelope, mountType, this.options.mountType, []))}\n`);
    }
  }
}


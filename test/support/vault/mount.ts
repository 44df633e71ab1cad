// The interface between the request pipeline and a mounted engine or auth method, and a small
// router for the paths inside a mount.
import type { Acl, Operation } from './acl.ts';
import { unsupportedOperation, unsupportedPath } from './errors.ts';
import type { Namespace } from './namespace.ts';
import type { Reply } from './reply.ts';
import type { Token } from './tokens.ts';

export interface MountRequest {
  method: string;
  op: Operation;
  /** The path inside the mount (`data/app/db` for `secret/data/app/db`). */
  path: string;
  /** The path relative to the namespace (`secret/data/app/db`). */
  fullPath: string;
  data: Record<string, unknown>;
  query: URLSearchParams;
  headers: ReadonlyMap<string, string>;
  ns: Namespace;
  /** Absent on unauthenticated paths (logins). */
  token: Token | undefined;
  acl: Acl | undefined;
}

export interface Mount {
  /** `mount_type` in responses: kv, database, kubernetes, approle, token, system. */
  readonly type: string;
  /** Mount path with its trailing slash (`secret/`, `auth/kubernetes/`). */
  readonly path: string;
  /** Paths served without a token (logins). */
  unauthenticated?(path: string): boolean;
  /** Vault's ExistenceCheck: decides `create` versus `update` for POST/PUT. Undefined = update. */
  exists?(path: string): boolean | undefined;
  handle(req: MountRequest): Promise<Reply>;
}

export type Handler = (req: MountRequest, m: RegExpExecArray) => Promise<Reply> | Reply;

export interface Route {
  pattern: RegExp;
  read?: Handler;
  list?: Handler;
  /** create and update. */
  write?: Handler;
  delete?: Handler;
  patch?: Handler;
  exists?: (m: RegExpExecArray) => boolean;
}

export abstract class RoutedMount implements Mount {
  abstract readonly type: string;
  readonly path: string;

  constructor(path: string) {
    this.path = path.endsWith('/') ? path : `${path}/`;
  }

  protected abstract routes(): Route[];

  #match(path: string): [Route, RegExpExecArray] | undefined {
    for (const r of this.routes()) {
      const m = r.pattern.exec(path);
      if (m) return [r, m];
    }
    return undefined;
  }

  exists(path: string): boolean | undefined {
    const hit = this.#match(path);
    if (!hit || !hit[0].exists) return undefined;
    return hit[0].exists(hit[1]);
  }

  async handle(req: MountRequest): Promise<Reply> {
    const hit = this.#match(req.path);
    if (!hit) throw unsupportedPath();
    const [route, m] = hit;
    const h = req.op === 'read' ? route.read : req.op === 'list' ? route.list : req.op === 'delete' ? route.delete : req.op === 'patch' ? route.patch : route.write;
    if (!h) throw unsupportedOperation();
    return h(req, m);
  }
}

/** Vault's "Endpoint ignored these unrecognized parameters" warning, if any. */
export function ignoredParams(data: Record<string, unknown>, known: readonly string[]): string[] {
  const unknown = Object.keys(data).filter((k) => !known.includes(k)).sort();
  return unknown.length > 0 ? [`Endpoint ignored these unrecognized parameters: [${unknown.join(' ')}]`] : [];
}

/** A string list given as an array or a comma-separated string (Vault's TypeCommaStringSlice). */
export function stringList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter((x) => x !== '');
  return String(v)
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** Vault's strutil.GlobbedStringsMatch: `*` anywhere in the pattern. */
export function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(value);
}

/** What mounts need from the server. */
export interface MountEnv {
  readonly clock: import('./clock.ts').Clock;
  readonly tokens: import('./tokens.ts').TokenStore;
  readonly leases: import('./leases.ts').LeaseStore;
  /** System default and max lease TTL in seconds (768h unless configured). */
  readonly defaultLeaseTtl: number;
  readonly maxLeaseTtl: number;
  /** A background failure (a revocation that could not drop its role…), kept for tests to inspect. */
  recordError(what: string, err: unknown): void;
  /** Work that outlives its request (an async revocation); `settle()` waits for it. */
  background(what: string, work: Promise<unknown>): void;
}

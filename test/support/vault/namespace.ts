// A Vault namespace: its mounts, policies and the configuration API tests use. The root
// namespace is the server itself; `X-Vault-Namespace` (or a path prefix) routes into children.
import { Acl, DEFAULT_POLICY, parsePolicy, type Policy, type PolicyInput } from './acl.ts';
import { AppRoleMount } from './approle.ts';
import { DatabaseMount } from './database.ts';
import type { ServiceAccountIssuer } from './jwt.ts';
import { KubernetesAuthMount, type KubernetesAuthConfig } from './kubernetes.ts';
import { KvV1Mount, KvV2Mount, type KvV2Config } from './kv.ts';
import type { Mount, MountEnv } from './mount.ts';
import { base62 } from './random.ts';
import { SysMount, type SysCore } from './sys.ts';
import { TokenMount } from './token-mount.ts';
import type { CreateTokenOptions, Token, TokenNamespace } from './tokens.ts';

export type KvMount = KvV1Mount | KvV2Mount;

function mountKey(path: string): string {
  const p = path.replace(/^\/+|\/+$/g, '');
  if (p === '') throw new Error('mount path must not be empty');
  return `${p}/`;
}

export class Namespace implements TokenNamespace {
  readonly id: string;
  /** '' for root, else 'team-a/' or 'team-a/sub/'. */
  readonly path: string;
  readonly parent: Namespace | null;
  readonly children = new Map<string, Namespace>();
  readonly mounts = new Map<string, Mount>();
  readonly policies = new Map<string, Policy>();
  readonly #env: MountEnv;
  readonly #core: SysCore;

  constructor(env: MountEnv, core: SysCore, path: string, parent: Namespace | null) {
    this.#env = env;
    this.#core = core;
    this.path = path;
    this.parent = parent;
    this.id = path === '' ? 'root' : base62(5);
    this.mounts.set('sys/', new SysMount(env, core, this));
    this.mounts.set('auth/token/', new TokenMount(env, this));
    this.policies.set('default', parsePolicy('default', DEFAULT_POLICY));
  }

  // ------------------------------------------------------------------ namespaces

  /** Get or create a child namespace (`a` or nested `a/b`). */
  namespace(path: string): Namespace {
    let ns: Namespace = this;
    for (const seg of path.split('/').filter((s) => s !== '')) {
      let child = ns.children.get(seg);
      if (!child) {
        child = new Namespace(this.#env, this.#core, `${ns.path}${seg}/`, ns);
        ns.children.set(seg, child);
        this.#core.registerNamespace(child);
      }
      ns = child;
    }
    return ns;
  }

  // ------------------------------------------------------------------ policies

  /** Write an ACL policy (HCL, JSON, or `{ path: capabilities }`). */
  setPolicy(name: string, policy: PolicyInput): void {
    const n = name.toLowerCase();
    if (n === 'root') throw new Error('cannot update "root" policy');
    this.policies.set(n, parsePolicy(n, policy));
  }

  deletePolicy(name: string): void {
    const n = name.toLowerCase();
    if (n === 'default' || n === 'root') throw new Error(`cannot delete "${n}" policy`);
    this.policies.delete(n);
  }

  /** The ACL for a token whose namespace is this one. */
  aclFor(token: Token): Acl {
    if (token.policies.includes('root')) return new Acl([], true);
    const pols = token.policies.map((p) => this.policies.get(p)).filter((p): p is Policy => p !== undefined);
    return new Acl(pols);
  }

  // ------------------------------------------------------------------ tokens

  createToken(opts: CreateTokenOptions = {}): Token {
    return this.#env.tokens.create(this, opts);
  }

  // ------------------------------------------------------------------ mounts

  #add<M extends Mount>(m: M): M {
    for (const existing of this.mounts.keys()) {
      if (existing.startsWith(m.path) || m.path.startsWith(existing)) throw new Error(`path is already in use at ${existing}`);
    }
    this.mounts.set(m.path, m);
    return m;
  }

  #get<M extends Mount>(key: string, ctor: abstract new (...a: never[]) => M): M {
    const m = this.mounts.get(key);
    if (!(m instanceof ctor)) throw new Error(`no ${ctor.name} mounted at ${key} in namespace "${this.path}"`);
    return m;
  }

  enableKv(path: string, opts: { version?: 1 | 2; config?: KvV2Config } = {}): KvMount {
    const key = mountKey(path);
    if ((opts.version ?? 2) === 1) return this.#add(new KvV1Mount(key, this.#env));
    const m = this.#add(new KvV2Mount(key, this.#env));
    if (opts.config) m.configure(opts.config);
    return m;
  }

  kv1(path: string): KvV1Mount {
    return this.#get(mountKey(path), KvV1Mount);
  }

  kv2(path: string): KvV2Mount {
    return this.#get(mountKey(path), KvV2Mount);
  }

  enableKubernetesAuth(opts: { path?: string; issuer?: ServiceAccountIssuer; config?: KubernetesAuthConfig } = {}): KubernetesAuthMount {
    const key = `auth/${mountKey(opts.path ?? 'kubernetes')}`;
    return this.#add(new KubernetesAuthMount(key, this.#env, this, { ...(opts.issuer ? { issuer: opts.issuer } : {}), ...(opts.config ? { config: opts.config } : {}) }));
  }

  kubernetes(path = 'kubernetes'): KubernetesAuthMount {
    return this.#get(`auth/${mountKey(path)}`, KubernetesAuthMount);
  }

  enableAppRole(opts: { path?: string } = {}): AppRoleMount {
    return this.#add(new AppRoleMount(`auth/${mountKey(opts.path ?? 'approle')}`, this.#env, this));
  }

  approle(path = 'approle'): AppRoleMount {
    return this.#get(`auth/${mountKey(path)}`, AppRoleMount);
  }

  enableDatabase(opts: { path?: string } = {}): DatabaseMount {
    return this.#add(new DatabaseMount(mountKey(opts.path ?? 'database'), this.#env, this));
  }

  database(path = 'database'): DatabaseMount {
    return this.#get(mountKey(path), DatabaseMount);
  }

  /** Unmount (`sys/mounts/<path>` DELETE): revokes the mount's leases first. */
  async disable(path: string): Promise<void> {
    const key = path.startsWith('auth/') ? `auth/${mountKey(path.slice(5))}` : mountKey(path);
    const m = this.mounts.get(key);
    if (!m || key === 'sys/' || key === 'auth/token/') return;
    for (const l of this.#env.leases.all()) if (l.ns === this && l.path.startsWith(key)) await this.#env.leases.revoke(l);
    this.mounts.delete(key);
    if (m instanceof DatabaseMount) await m.close();
  }

  /** The mount serving `rel` (a path relative to this namespace). */
  findMount(rel: string): Mount | undefined {
    let best: Mount | undefined;
    for (const [key, m] of this.mounts) {
      if ((rel.startsWith(key) || `${rel}/` === key) && (!best || key.length > best.path.length)) best = m;
    }
    return best;
  }

  /** Every mount in this namespace and its descendants. */
  *allMounts(): Generator<Mount> {
    yield* this.mounts.values();
    for (const c of this.children.values()) yield* c.allMounts();
  }
}

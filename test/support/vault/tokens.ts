// Vault tokens: TTL, max TTL, renewal (CalculateTTL), revocation with children and leases.
import { sanitizePolicies } from './acl.ts';
import type { Clock } from './clock.ts';
import { humanDuration, rfc3339Nano } from './duration.ts';
import { badRequest } from './errors.ts';
import { base62, uuid } from './random.ts';
import type { AuthBlock } from './reply.ts';

export interface TokenNamespace {
  readonly id: string;
  /** '' for the root namespace, else 'team-a/' (with the trailing slash). */
  readonly path: string;
}

export interface Token {
  readonly id: string;
  readonly accessor: string;
  readonly ns: TokenNamespace;
  readonly policies: string[];
  readonly displayName: string;
  readonly meta: Record<string, string> | null;
  /** The path that created it: `auth/kubernetes/login`, `auth/token/create`, `auth/token/root`. */
  readonly path: string;
  readonly creationTime: number;
  readonly creationTtl: number;
  expireAt: number | null;
  readonly explicitMaxTtl: number;
  /** The effective max TTL in seconds (role or mount max, capped by explicit max); 0 for root. */
  readonly maxTtl: number;
  /** The TTL a renewal without an increment asks for (the role's token_ttl). */
  readonly defaultTtl: number;
  readonly renewable: boolean;
  readonly orphan: boolean;
  readonly parent: string | null;
  readonly children: Set<string>;
  readonly entityId: string;
  readonly type: 'service' | 'batch';
  lastRenewal: number | null;
  revoked: boolean;
}

export interface CreateTokenOptions {
  policies?: readonly string[];
  noDefaultPolicy?: boolean;
  /** Seconds; default the system default (768h). */
  ttl?: number;
  /** Seconds; the role/mount max (default the system max, 768h). */
  maxTtl?: number;
  explicitMaxTtl?: number;
  renewable?: boolean;
  displayName?: string;
  meta?: Record<string, string> | null;
  path?: string;
  parent?: Token | null;
  entityId?: string;
  /** Fix the token id (e.g. a dev root token); default a fresh `hvs.` token. */
  id?: string;
  type?: 'service' | 'batch';
}

export interface TokenStoreOptions {
  clock: Clock;
  defaultTtl: number;
  maxTtl: number;
  /** Revoke everything hanging off a token (its leases). */
  onRevoke(token: Token): Promise<void>;
}

export class TokenStore {
  readonly #byId = new Map<string, Token>();
  readonly #opts: TokenStoreOptions;

  constructor(opts: TokenStoreOptions) {
    this.#opts = opts;
  }

  create(ns: TokenNamespace, o: CreateTokenOptions): Token {
    const now = this.#opts.clock.now();
    const policies = sanitizePolicies(o.policies ?? [], !o.noDefaultPolicy);
    const isRoot = policies.includes('root') && o.ttl === undefined;
    let maxTtl = o.maxTtl && o.maxTtl > 0 ? Math.min(o.maxTtl, this.#opts.maxTtl) : this.#opts.maxTtl;
    if (o.explicitMaxTtl && o.explicitMaxTtl > 0) maxTtl = Math.min(maxTtl, o.explicitMaxTtl);
    const defaultTtl = o.ttl && o.ttl > 0 ? o.ttl : this.#opts.defaultTtl;
    const ttl = isRoot ? 0 : Math.min(defaultTtl, maxTtl);
    const suffix = ns.path === '' ? '' : `.${ns.id}`;
    const token: Token = {
      id: o.id ?? `hvs.CAESI${base62(86)}${suffix}`,
      accessor: `${base62(24)}${suffix}`,
      ns,
      policies,
      displayName: o.displayName ?? 'token',
      meta: o.meta === undefined ? null : o.meta,
      path: o.path ?? 'auth/token/create',
      creationTime: now,
      creationTtl: ttl,
      expireAt: isRoot ? null : now + ttl * 1000,
      explicitMaxTtl: o.explicitMaxTtl ?? 0,
      maxTtl: isRoot ? 0 : maxTtl,
      defaultTtl: isRoot ? 0 : defaultTtl,
      renewable: isRoot ? false : (o.renewable ?? true),
      orphan: !o.parent,
      parent: o.parent?.id ?? null,
      children: new Set(),
      entityId: o.entityId ?? '',
      type: o.type ?? 'service',
      lastRenewal: null,
      revoked: false,
    };
    this.#byId.set(token.id, token);
    o.parent?.children.add(token.id);
    return token;
  }

  /** A live token (not revoked, not expired) or undefined. */
  lookup(id: string): Token | undefined {
    const t = this.#byId.get(id);
    if (!t || t.revoked) return undefined;
    if (t.expireAt !== null && t.expireAt <= this.#opts.clock.now()) return undefined;
    return t;
  }

  byAccessor(accessor: string): Token | undefined {
    for (const t of this.#byId.values()) if (t.accessor === accessor && !t.revoked) return t;
    return undefined;
  }

  all(): Token[] {
    return [...this.#byId.values()];
  }

  /** Remaining TTL in whole seconds (0 for tokens without expiry). */
  ttl(t: Token): number {
    if (t.expireAt === null) return 0;
    return Math.max(0, Math.floor((t.expireAt - this.#opts.clock.now()) / 1000));
  }

  authBlock(t: Token): AuthBlock {
    return {
      client_token: t.id,
      accessor: t.accessor,
      policies: [...t.policies],
      token_policies: [...t.policies],
      metadata: t.meta,
      lease_duration: this.ttl(t),
      renewable: t.renewable,
      entity_id: t.entityId,
      token_type: t.type,
      orphan: t.orphan,
      mfa_requirement: null,
      num_uses: 0,
    };
  }

  /** The `data` of lookup-self / lookup. */
  lookupData(t: Token): Record<string, unknown> {
    const d: Record<string, unknown> = {
      accessor: t.accessor,
      creation_time: Math.floor(t.creationTime / 1000),
      creation_ttl: t.creationTtl,
      display_name: t.displayName,
      entity_id: t.entityId,
      expire_time: t.expireAt === null ? null : rfc3339Nano(t.expireAt),
      explicit_max_ttl: t.explicitMaxTtl,
      id: t.id,
      issue_time: rfc3339Nano(t.creationTime),
      meta: t.meta,
      num_uses: 0,
      orphan: t.orphan,
      path: t.path,
      policies: [...t.policies],
      renewable: t.renewable,
      ttl: this.ttl(t),
      type: t.type,
    };
    if (t.lastRenewal !== null) {
      d.last_renewal_time = Math.floor(t.lastRenewal / 1000);
      d.last_renewal = rfc3339Nano(t.lastRenewal);
    }
    if (t.ns.path !== '') d.namespace_path = t.ns.path;
    return d;
  }

  /** Renew (Vault's CalculateTTL): the increment or default TTL from now, capped at creation + max TTL. */
  renew(t: Token, increment: number | undefined): { warnings: string[] } {
    if (t.type === 'batch') throw badRequest('batch tokens cannot be renewed');
    if (t.expireAt === null || !t.renewable) throw badRequest('lease is not renewable');
    const now = this.#opts.clock.now();
    const ttl = increment && increment > 0 ? increment : t.defaultTtl;
    const remaining = Math.floor(t.creationTime / 1000) + t.maxTtl - Math.floor(now / 1000);
    if (remaining <= 0) throw badRequest('past the max TTL, cannot renew');
    const warnings: string[] = [];
    let granted = ttl;
    if (ttl > remaining) {
      warnings.push(`TTL of "${humanDuration(ttl)}" exceeded the effective max_ttl of "${humanDuration(remaining)}"; TTL value is capped accordingly`);
      granted = remaining;
    }
    t.expireAt = now + granted * 1000;
    t.lastRenewal = now;
    return { warnings };
  }

  /** Revoke a token, its child tokens and (through onRevoke) its leases. */
  async revoke(t: Token): Promise<void> {
    if (t.revoked) return;
    t.revoked = true;
    for (const childId of t.children) {
      const child = this.#byId.get(childId);
      if (child) await this.revoke(child);
    }
    try {
      await this.#opts.onRevoke(t);
    } finally {
      this.#byId.delete(t.id);
    }
  }

  /** Tokens whose expiry is at or before `now` (not yet revoked). */
  due(now: number): Token[] {
    return [...this.#byId.values()].filter((t) => !t.revoked && t.expireAt !== null && t.expireAt <= now);
  }

  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const t of this.#byId.values()) if (!t.revoked && t.expireAt !== null && (next === undefined || t.expireAt < next)) next = t.expireAt;
    return next;
  }

  newEntityId(): string {
    return uuid();
  }
}

// Leases on dynamic secrets: renew (from now, capped at issue + max TTL), revoke, lookup, expiry.
import type { Clock } from './clock.ts';
import { humanDuration, rfc3339Nano } from './duration.ts';
import { badRequest } from './errors.ts';
import { base62 } from './random.ts';
import type { TokenNamespace } from './tokens.ts';

export interface Lease {
  readonly id: string;
  readonly ns: TokenNamespace;
  /** The request path that created it (`database/creds/readonly`). */
  readonly path: string;
  readonly issueTime: number;
  expireAt: number;
  /** Seconds from issue time the lease may live at most. */
  readonly maxTtl: number;
  /** The TTL a renewal without an increment asks for (role default_ttl, else mount default). */
  readonly defaultTtl: number;
  readonly renewable: boolean;
  lastRenewal: number | null;
  /** The token whose revocation revokes this lease. */
  readonly tokenId: string | null;
  revoked: boolean;
}

export interface LeaseHooks {
  revoke(): Promise<void>;
  /** Extend the secret upstream (the database engine moves VALID UNTIL). */
  renew?(expireAt: number): Promise<void>;
}

export interface RegisterLease {
  ns: TokenNamespace;
  path: string;
  ttl: number;
  maxTtl: number;
  defaultTtl: number;
  renewable: boolean;
  tokenId: string | null;
  hooks: LeaseHooks;
}

export class LeaseStore {
  readonly #leases = new Map<string, { lease: Lease; hooks: LeaseHooks }>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  register(r: RegisterLease): Lease {
    const now = this.#clock.now();
    const suffix = r.ns.path === '' ? '' : `.${r.ns.id}`;
    const lease: Lease = {
      id: `${r.path}/${base62(24)}${suffix}`,
      ns: r.ns,
      path: r.path,
      issueTime: now,
      expireAt: now + r.ttl * 1000,
      maxTtl: r.maxTtl,
      defaultTtl: r.defaultTtl,
      renewable: r.renewable,
      lastRenewal: null,
      tokenId: r.tokenId,
      revoked: false,
    };
    this.#leases.set(lease.id, { lease, hooks: r.hooks });
    return lease;
  }

  get(id: string): Lease | undefined {
    return this.#leases.get(id)?.lease;
  }

  all(): Lease[] {
    return [...this.#leases.values()].map((e) => e.lease);
  }

  ttl(l: Lease): number {
    return Math.max(0, Math.floor((l.expireAt - this.#clock.now()) / 1000));
  }

  /** Renew from now by `increment` (or the default TTL), capped at issue + max TTL. */
  async renew(l: Lease, increment: number | undefined): Promise<{ ttl: number; warnings: string[] }> {
    const entry = this.#leases.get(l.id);
    if (!entry || l.revoked) throw badRequest('lease not found');
    const now = this.#clock.now();
    if (l.expireAt <= now) throw badRequest('lease expired');
    if (!l.renewable) throw badRequest('lease is not renewable');
    const ttl = increment && increment > 0 ? increment : l.defaultTtl;
    const remaining = Math.floor(l.issueTime / 1000) + l.maxTtl - Math.floor(now / 1000);
    if (remaining <= 0) throw badRequest('past the max TTL, cannot renew');
    const warnings: string[] = [];
    let granted = ttl;
    if (ttl > remaining) {
      warnings.push(`TTL of "${humanDuration(ttl)}" exceeded the effective max_ttl of "${humanDuration(remaining)}"; TTL value is capped accordingly`);
      granted = remaining;
    }
    const expireAt = now + granted * 1000;
    await entry.hooks.renew?.(expireAt);
    l.expireAt = expireAt;
    l.lastRenewal = now;
    return { ttl: granted, warnings };
  }

  /** Revoke (idempotent): run the engine's revocation, then forget the lease. */
  async revoke(l: Lease): Promise<void> {
    const entry = this.#leases.get(l.id);
    if (!entry || l.revoked) return;
    l.revoked = true;
    try {
      await entry.hooks.revoke();
    } finally {
      this.#leases.delete(l.id);
    }
  }

  lookupData(l: Lease): Record<string, unknown> {
    return {
      expire_time: rfc3339Nano(l.expireAt),
      id: l.id,
      issue_time: rfc3339Nano(l.issueTime),
      last_renewal: l.lastRenewal === null ? null : rfc3339Nano(l.lastRenewal),
      renewable: l.renewable,
      ttl: this.ttl(l),
    };
  }

  byToken(tokenId: string): Lease[] {
    return this.all().filter((l) => l.tokenId === tokenId);
  }

  due(now: number): Lease[] {
    return this.all().filter((l) => !l.revoked && l.expireAt <= now);
  }

  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const { lease } of this.#leases.values()) if (!lease.revoked && (next === undefined || lease.expireAt < next)) next = lease.expireAt;
    return next;
  }
}

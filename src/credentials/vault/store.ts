// Vault as a credential store. The response tells what the path is (spec §3, §4):
// - KV v2 (`<mount>/data/<path>`): fields from data.data, version from data.metadata.version;
//   a pinned version is read with ?version=N;
// - database dynamic credentials (`database/creds/<role>`): a lease — expiry, renewal, revocation;
// - database static credentials (`database/static-creds/<role>`): refreshed when Vault rotates;
// - KV v1: fields from data.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KeylessError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Metrics } from '../../observability/metrics.ts';
import { Secret } from '../secret.ts';
import type { Credential, CredentialRef, CredentialStore } from '../types.ts';
import { VaultClient, type VaultAuth, type VaultResponse } from './client.ts';

export interface VaultStoreConfig {
  address: string;
  namespace?: string;
  tls?: { ca?: string };
  auth: VaultAuth;
  timeout: number;
  refreshInterval: number;
  maxStale: number;
  revokeOnShutdown: boolean;
}

export class VaultStore implements CredentialStore {
  readonly kind = 'vault';
  readonly name: string;
  readonly maxStaleMs: number;
  readonly #client: VaultClient;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #revokeOnShutdown: boolean;
  readonly #refreshMs: number;
  readonly #now: () => number;
  /** Leases this process was issued and has not seen expire: revoked on shutdown when configured. */
  readonly #leases = new Map<string, number>();
  /** KV v1 has no version: a counter that moves when the content does (digest kept in memory only). */
  readonly #v1Versions = new Map<string, { digest: string; n: number }>();

  constructor(name: string, cfg: VaultStoreConfig, log: Logger, metrics: Metrics, opts: { now?: () => number } = {}) {
    this.name = name;
    this.maxStaleMs = cfg.maxStale;
    this.#log = log;
    this.#metrics = metrics;
    this.#revokeOnShutdown = cfg.revokeOnShutdown;
    this.#refreshMs = cfg.refreshInterval;
    this.#now = opts.now ?? Date.now;
    this.#client = new VaultClient({
      store: name,
      address: cfg.address,
      namespace: cfg.namespace,
      ca: cfg.tls?.ca ? readFileSync(cfg.tls.ca) : undefined,
      timeoutMs: cfg.timeout,
      auth: cfg.auth,
      log,
      metrics,
      now: this.#now,
    });
  }

  async get(ref: CredentialRef & { version?: number }): Promise<Credential> {
    const path = ref.version === undefined ? ref.path : `${ref.path}?version=${ref.version}`;
    const res = await this.#client.read(path);
    return this.#toCredential(ref, res);
  }

  #toCredential(ref: CredentialRef, res: VaultResponse): Credential {
    const now = this.#now();
    const data = res.data ?? {};
    const metadata = data.metadata as { version?: number } | undefined;
    // KV v2: { data: { data: {...}, metadata: { version } } }
    if (metadata && typeof metadata === 'object' && 'data' in data) {
      const inner = data.data as Record<string, unknown> | null;
      if (!inner) throw new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', `store ${this.name}: ${ref.path} version ${metadata.version ?? '?'} is deleted`);
      return { ref, fields: toFields(inner), version: `kv2:${metadata.version ?? 0}`, expiresAt: this.#kvExpiry(now), renewable: false, fetchedAt: now };
    }
    if (res.lease_id) {
      const ttl = res.lease_duration ?? 0;
      const expiresAt = now + ttl * 1000;
      this.#leases.set(res.lease_id, expiresAt);
      this.#pruneLeases(now);
      this.#log.info({ store: this.name, path: ref.path, lease: res.lease_id, ttl }, 'vault lease issued');
      return { ref, fields: toFields(data), version: res.lease_id, expiresAt, renewable: Boolean(res.renewable), fetchedAt: now };
    }
    // Static database credentials: rotated by Vault every rotation_period; `ttl` says when next.
    if ('last_vault_rotation' in data) {
      const ttl = Number(data.ttl ?? 0);
      const fields = toFields(Object.fromEntries(Object.entries(data).filter(([k]) => k === 'username' || k === 'password')));
      return { ref, fields, version: `static:${String(data.last_vault_rotation)}`, expiresAt: ttl > 0 ? now + ttl * 1000 : undefined, renewable: false, fetchedAt: now };
    }
    // KV v1.
    const fields = toFields(data);
    const digest = createHash('sha256').update(JSON.stringify(Object.entries(data).sort(([a], [b]) => a.localeCompare(b)))).digest('hex');
    const prev = this.#v1Versions.get(ref.path);
    const n = prev === undefined ? 1 : prev.digest === digest ? prev.n : prev.n + 1;
    this.#v1Versions.set(ref.path, { digest, n });
    return { ref, fields, version: `kv1:${n}`, expiresAt: this.#kvExpiry(now), renewable: false, fetchedAt: now };
  }

  async ping(): Promise<string> {
    return this.#client.ping();
  }

  #kvExpiry(now: number): number | undefined {
    return this.#refreshMs > 0 ? now + this.#refreshMs : undefined;
  }

  /**
   * Renew a lease. Returns the credential with its new expiry, or undefined when Vault capped the
   * renewal near the lease's max TTL or refused it — the caller then fetches fresh credentials.
   */
  async renew(cred: Credential): Promise<Credential | undefined> {
    const lifetime = (cred.expiresAt ?? cred.fetchedAt) - cred.fetchedAt;
    const increment = Math.max(1, Math.round(lifetime / 1000));
    try {
      const res = await this.#client.write('sys/leases/renew', { lease_id: cred.version, increment });
      const ttl = res.lease_duration ?? 0;
      const now = this.#now();
      this.#leases.set(cred.version, now + ttl * 1000);
      // Vault capped the renewal at the lease's max TTL: it ends soon whatever we do.
      if (ttl < increment) {
        this.#metrics.leaseRenewals.inc({ store: this.name, result: 'max_ttl' });
        this.#log.info({ store: this.name, lease: cred.version, ttl }, 'lease near its max TTL; new connections will get new credentials');
        return undefined;
      }
      this.#metrics.leaseRenewals.inc({ store: this.name, result: 'ok' });
      this.#log.debug({ store: this.name, lease: cred.version, ttl }, 'lease renewed');
      return { ...cred, expiresAt: now + ttl * 1000, fetchedAt: now };
    } catch (err) {
      // Vault refusing because the max TTL is reached is the same event as a capped renewal
      // (which one a renewal meets depends only on its timing): say it the same way.
      if (/past the max TTL/.test((err as Error).message)) {
        this.#metrics.leaseRenewals.inc({ store: this.name, result: 'max_ttl' });
        this.#log.info({ store: this.name, lease: cred.version, err: (err as Error).message }, 'lease near its max TTL; new connections will get new credentials');
        return undefined;
      }
      this.#metrics.leaseRenewals.inc({ store: this.name, result: 'error' });
      this.#log.warn({ store: this.name, lease: cred.version, err: (err as Error).message }, 'lease renewal failed; new connections will get new credentials');
      return undefined;
    }
  }

  #pruneLeases(now: number): void {
    for (const [id, exp] of this.#leases) if (exp <= now) this.#leases.delete(id);
  }

  async close(): Promise<void> {
    if (this.#revokeOnShutdown) {
      this.#pruneLeases(this.#now());
      await Promise.all([...this.#leases.keys()].map((id) => this.#client.revokeLease(id)));
      this.#leases.clear();
    }
    this.#client.close();
  }
}

function toFields(obj: Record<string, unknown>): Map<string, Secret> {
  const fields = new Map<string, Secret>();
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') fields.set(k, new Secret(v));
    else if (typeof v === 'number' || typeof v === 'boolean') fields.set(k, new Secret(String(v)));
  }
  return fields;
}

// The credential cache every store sits behind: fetch on first need, one fetch in flight per
// credential, refresh ahead of expiry, serve stale within maxStale while the store fails, and
// invalidate a version upstream rejected (only if it is still the current one).
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { KeylessError, asKeylessError } from '../errors.ts';
import { refKey, type Credential, type CredentialRef, type CredentialStore } from './types.ts';

export interface CacheOptions {
  /** Refresh when this fraction of a credential's lifetime has passed (leases: about 2/3). */
  refreshAhead?: number;
  /** How long past expiry (or since a failed refresh) a cached value may still serve. */
  maxStaleMs?: number;
  now?: () => number;
}

interface Entry {
  value?: Credential;
  inflight?: Promise<Credential>;
  /** Set when the store changed under us: the next get must refetch. */
  dirty: boolean;
  unwatch?: () => void;
  lastError?: KeylessError;
}

export class CredentialCache {
  readonly #stores: ReadonlyMap<string, CredentialStore>;
  readonly #entries = new Map<string, Entry>();
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #refreshAhead: number;
  readonly #maxStaleMs: number;
  readonly #now: () => number;

  constructor(stores: ReadonlyMap<string, CredentialStore>, log: Logger, metrics: Metrics, opts: CacheOptions = {}) {
    this.#stores = stores;
    this.#log = log;
    this.#metrics = metrics;
    this.#refreshAhead = opts.refreshAhead ?? 2 / 3;
    this.#maxStaleMs = opts.maxStaleMs ?? 0;
    this.#now = opts.now ?? Date.now;
  }

  async get(ref: CredentialRef): Promise<Credential> {
    const key = refKey(ref);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { dirty: false };
      this.#entries.set(key, entry);
      const store = this.#store(ref);
      entry.unwatch = store.watch?.(ref, () => this.#onStoreChange(ref));
    }
    const { value } = entry;
    if (value && !entry.dirty) {
      const now = this.#now();
      if (value.expiresAt === undefined || now < value.expiresAt) {
        if (this.#dueForRefresh(value, now) && !entry.inflight) {
          // Refresh ahead in the background; this caller keeps the still-valid value.
          this.#fetch(ref, entry).catch(() => undefined);
        }
        this.#metrics.credentialCache.inc({ store: ref.store, result: 'hit' });
        return value;
      }
    }
    if (entry.inflight) {
      this.#metrics.credentialCache.inc({ store: ref.store, result: 'coalesced' });
      return entry.inflight;
    }
    this.#metrics.credentialCache.inc({ store: ref.store, result: 'miss' });
    return this.#fetch(ref, entry);
  }

  /**
   * Upstream rejected `version`: drop it so the next get refetches. A version that is no longer
   * current (another connection already refetched) is left alone, so N rejected connections
   * cause one refetch, not N.
   */
  invalidate(ref: CredentialRef, version: string): void {
    const entry = this.#entries.get(refKey(ref));
    if (entry?.value && entry.value.version === version) {
      this.#log.info({ store: ref.store, path: ref.path, version }, 'credential invalidated');
      entry.dirty = true;
    }
  }

  /** Age in seconds of what is cached, for the metric; the value itself is never exposed. */
  collectAges(): void {
    const now = this.#now();
    for (const entry of this.#entries.values()) {
      if (entry.value) {
        this.#metrics.credentialAge.set({ store: entry.value.ref.store, path: entry.value.ref.path }, (now - entry.value.fetchedAt) / 1000);
      }
    }
  }

  close(): void {
    for (const e of this.#entries.values()) e.unwatch?.();
    this.#entries.clear();
  }

  #onStoreChange(ref: CredentialRef): void {
    const entry = this.#entries.get(refKey(ref));
    if (entry?.value) {
      this.#log.info({ store: ref.store, path: ref.path, version: entry.value.version }, 'credential changed in store');
      entry.dirty = true;
    }
  }

  #dueForRefresh(c: Credential, now: number): boolean {
    if (c.expiresAt === undefined) return false;
    return now >= c.fetchedAt + (c.expiresAt - c.fetchedAt) * this.#refreshAhead;
  }

  #store(ref: CredentialRef): CredentialStore {
    const store = this.#stores.get(ref.store);
    if (!store) throw new KeylessError('KL_ERR_CONFIG', `no store named ${ref.store}`);
    return store;
  }

  #fetch(ref: CredentialRef, entry: Entry): Promise<Credential> {
    const store = this.#store(ref);
    const started = this.#now();
    const p = store.get(ref).then(
      (value) => {
        this.#metrics.storeRequests.inc({ store: ref.store, result: 'ok' });
        const previous = entry.value?.version;
        entry.value = value;
        entry.dirty = false;
        entry.lastError = undefined;
        this.#log.info(
          { store: ref.store, path: ref.path, version: value.version, previous, ms: this.#now() - started },
          'credential fetched',
        );
        return value;
      },
      (err: unknown) => {
        const e = asKeylessError(err, 'KL_ERR_STORE_UNAVAILABLE', `store ${ref.store}: ${String(err)}`);
        this.#metrics.storeRequests.inc({ store: ref.store, result: e.code === 'KL_ERR_CREDENTIAL_NOT_FOUND' ? 'not_found' : 'error' });
        entry.lastError = e;
        this.#log.warn({ store: ref.store, path: ref.path, code: e.code, err: e.message }, 'credential fetch failed');
        const stale = entry.value;
        // A store outage does not take running apps down: serve the last value within maxStale,
        // unless upstream itself rejected it (dirty) — then stale is known bad.
        if (stale && !entry.dirty && e.code === 'KL_ERR_STORE_UNAVAILABLE') {
          const limit = (stale.expiresAt ?? stale.fetchedAt) + this.#maxStaleMs;
          if (stale.expiresAt === undefined || this.#now() < limit) {
            this.#metrics.credentialCache.inc({ store: ref.store, result: 'stale' });
            this.#log.warn({ store: ref.store, path: ref.path, version: stale.version }, 'serving stale credential');
            return stale;
          }
        }
        throw e;
      },
    );
    entry.inflight = p;
    const clear = (): void => {
      if (entry.inflight === p) entry.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}

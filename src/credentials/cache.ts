// The credential cache every store sits behind: fetch on first need, one fetch in flight per
// credential, renew or refresh ahead of expiry while the credential is in use, serve stale within
// the store's maxStale while the store fails, and invalidate a version upstream rejected (only if
// it is still the current one).
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { KeylessError, asKeylessError } from '../errors.ts';
import { refKey, type Credential, type CredentialRef, type CredentialStore } from './types.ts';

export interface CacheOptions {
  /** Renew or refresh when this fraction of a credential's lifetime has passed (about 2/3). */
  refreshAhead?: number;
  now?: () => number;
  /** Timers; injectable so tests can drive lease lifecycles without waiting. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

interface Entry {
  ref: CredentialRef;
  value?: Credential;
  inflight?: Promise<Credential>;
  /** Set when the store changed or upstream rejected the value: the next get must refetch. */
  dirty: boolean;
  /** Connections holding each version right now (leases are renewed while held). */
  holders: Map<string, number>;
  /** A get since the last renewal or refresh: the credential is wanted. */
  usedSinceRefresh: boolean;
  timer?: { cancel(): void };
  unwatch?: () => void;
}

const STORE_UNAVAILABLE: ReadonlySet<string> = new Set(['KL_ERR_STORE_UNAVAILABLE']);

export class CredentialCache {
  #stores: ReadonlyMap<string, CredentialStore>;
  readonly #entries = new Map<string, Entry>();
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #refreshAhead: number;
  readonly #now: () => number;
  readonly #setTimer: NonNullable<CacheOptions['setTimer']>;
  /** Stores whose last request failed, and why (shown by /readyz). */
  readonly #storeDown = new Map<string, string>();
  /** Entries whose value upstream rejected (as opposed to a store change notification). */
  readonly #rejected = new WeakSet<Entry>();
  #closed = false;

  constructor(stores: ReadonlyMap<string, CredentialStore>, log: Logger, metrics: Metrics, opts: CacheOptions = {}) {
    this.#stores = stores;
    this.#log = log;
    this.#metrics = metrics;
    this.#refreshAhead = opts.refreshAhead ?? 2 / 3;
    this.#now = opts.now ?? Date.now;
    this.#setTimer =
      opts.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, Math.min(ms, 2 ** 31 - 1));
        t.unref();
        return { cancel: () => clearTimeout(t) };
      });
    for (const name of stores.keys()) this.#metrics.storeUp.set({ store: name }, 1);
  }

  /** The credential for `ref`, counted as held until `release(ref, version)`. */
  async acquire(ref: CredentialRef): Promise<Credential> {
    const cred = await this.get(ref);
    const entry = this.#entries.get(refKey(ref));
    if (entry) entry.holders.set(cred.version, (entry.holders.get(cred.version) ?? 0) + 1);
    return cred;
  }

  release(ref: CredentialRef, version: string): void {
    const entry = this.#entries.get(refKey(ref));
    const n = entry?.holders.get(version);
    if (!entry || n === undefined) return;
    if (n <= 1) entry.holders.delete(version);
    else entry.holders.set(version, n - 1);
  }

  async get(ref: CredentialRef): Promise<Credential> {
    const key = refKey(ref);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { ref, dirty: false, holders: new Map(), usedSinceRefresh: false };
      this.#entries.set(key, entry);
      entry.unwatch = this.#store(ref).watch?.(ref, () => this.#onStoreChange(ref));
    }
    entry.usedSinceRefresh = true;
    const { value } = entry;
    if (value && !entry.dirty && (value.expiresAt === undefined || this.#now() < value.expiresAt)) {
      this.#metrics.credentialCache.inc({ store: ref.store, result: 'hit' });
      return value;
    }
    if (entry.inflight) {
      this.#metrics.credentialCache.inc({ store: ref.store, result: 'coalesced' });
      return entry.inflight;
    }
    this.#metrics.credentialCache.inc({ store: ref.store, result: 'miss' });
    return this.#fetch(entry);
  }

  /**
   * Upstream rejected `version`: drop it so the next get refetches. A version that is no longer
   * current (another connection already refetched) is left alone, so N rejected connections
   * cause one refetch, not N.
   */
  invalidate(ref: CredentialRef, version: string): void {
    const entry = this.#entries.get(refKey(ref));
    if (entry?.value && entry.value.version === version && !entry.dirty) {
      this.#log.info({ store: ref.store, path: ref.path, version }, 'credential invalidated');
      entry.dirty = true;
      this.#rejected.add(entry);
    }
  }

  /**
   * A reload replaced stores: entries of stores that changed or went are dropped (their next
   * use fetches from the new store); the rest keep their cached values.
   */
  replaceStores(stores: ReadonlyMap<string, CredentialStore>): void {
    const old = this.#stores;
    this.#stores = stores;
    for (const [key, e] of this.#entries) {
      if (old.get(e.ref.store) !== stores.get(e.ref.store)) {
        e.unwatch?.();
        e.timer?.cancel();
        this.#entries.delete(key);
      }
    }
    for (const name of old.keys()) {
      if (!stores.has(name)) {
        this.#storeDown.delete(name);
        this.#metrics.storeUp.remove({ store: name });
      }
    }
    for (const name of stores.keys()) if (old.get(name) !== stores.get(name)) this.#metrics.storeUp.set({ store: name }, 1);
  }

  /** Why each failing store is failing; empty when all answered their last request. */
  degraded(): string[] {
    return [...this.#storeDown].map(([store, why]) => `store ${store}: ${why}`);
  }

  /** Age in seconds of what is cached, for the metric; the value itself is never exposed. */
  collectAges(): void {
    const now = this.#now();
    for (const entry of this.#entries.values()) {
      if (entry.value) this.#metrics.credentialAge.set({ store: entry.ref.store, path: entry.ref.path }, (now - entry.value.fetchedAt) / 1000);
    }
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#entries.values()) {
      e.unwatch?.();
      e.timer?.cancel();
    }
    this.#entries.clear();
  }

  #onStoreChange(ref: CredentialRef): void {
    const entry = this.#entries.get(refKey(ref));
    if (entry?.value) {
      this.#log.info({ store: ref.store, path: ref.path, version: entry.value.version }, 'credential changed in store');
      entry.dirty = true;
    }
  }

  #store(ref: CredentialRef): CredentialStore {
    const store = this.#stores.get(ref.store);
    if (!store) throw new KeylessError('KL_ERR_CONFIG', `no store named ${ref.store}`);
    return store;
  }

  #fetch(entry: Entry): Promise<Credential> {
    const { ref } = entry;
    const store = this.#store(ref);
    const started = this.#now();
    const p = store.get(ref).then(
      (value) => {
        this.#storeOk(ref.store);
        const previous = entry.value?.version;
        this.#setValue(entry, value);
        this.#log.info({ store: ref.store, path: ref.path, version: value.version, previous, ms: this.#now() - started }, 'credential fetched');
        return value;
      },
      (err: unknown) => {
        const e = asKeylessError(err, 'KL_ERR_STORE_UNAVAILABLE', `store ${ref.store}: ${String(err)}`);
        this.#metrics.storeRequests.inc({ store: ref.store, result: e.code === 'KL_ERR_CREDENTIAL_NOT_FOUND' ? 'not_found' : e.code === 'KL_ERR_STORE_DENIED' ? 'denied' : 'error' });
        if (STORE_UNAVAILABLE.has(e.code)) this.#storeFailed(ref.store, e.message);
        this.#log.warn({ store: ref.store, path: ref.path, code: e.code, err: e.message }, 'credential fetch failed');
        const stale = this.#staleUsable(entry, store, e);
        if (stale) {
          this.#metrics.credentialCache.inc({ store: ref.store, result: 'stale' });
          this.#log.warn({ store: ref.store, path: ref.path, version: stale.version }, 'store unavailable: serving the cached credential');
          return stale;
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

  /**
   * A store outage does not take running apps down: the last value keeps serving for the store's
   * maxStale past its expiry (or, for values that never expire, indefinitely) — unless upstream
   * itself rejected it, which makes it known bad.
   */
  #staleUsable(entry: Entry, store: CredentialStore, e: KeylessError): Credential | undefined {
    const stale = entry.value;
    if (!stale || !STORE_UNAVAILABLE.has(e.code)) return undefined;
    if (this.#rejected.has(entry)) return undefined;
    if (stale.expiresAt === undefined) return stale;
    return this.#now() < stale.expiresAt + (store.maxStaleMs ?? 0) ? stale : undefined;
  }

  #setValue(entry: Entry, value: Credential): void {
    entry.value = value;
    entry.dirty = false;
    this.#rejected.delete(entry);
    entry.usedSinceRefresh = false;
    this.#schedule(entry, value);
  }

  /** Renew (leases) or refresh at `refreshAhead` of the value's lifetime, if it is wanted. */
  #schedule(entry: Entry, value: Credential): void {
    entry.timer?.cancel();
    entry.timer = undefined;
    if (value.expiresAt === undefined || this.#closed) return;
    const due = value.fetchedAt + (value.expiresAt - value.fetchedAt) * this.#refreshAhead;
    entry.timer = this.#setTimer(() => this.#runRefresh(entry, value), Math.max(0, due - this.#now()));
  }

  #runRefresh(entry: Entry, value: Credential): void {
    this.#refreshDue(entry, value).catch((err: unknown) => {
      this.#log.warn({ store: entry.ref.store, path: entry.ref.path, err: (err as Error).message }, 'credential refresh failed');
    }).finally(() => {
      // Still the same value and still valid: the refresh failed; try again halfway to expiry.
      if (!this.#closed && entry.value === value && value.expiresAt !== undefined) {
        const left = value.expiresAt - this.#now();
        if (left > 1000) {
          entry.timer?.cancel();
          entry.timer = this.#setTimer(() => this.#runRefresh(entry, value), left / 2);
        }
      }
    });
  }

  async #refreshDue(entry: Entry, value: Credential): Promise<void> {
    if (this.#closed || entry.value !== value) return;
    const held = (entry.holders.get(value.version) ?? 0) > 0;
    if (!held && !entry.usedSinceRefresh) {
      // Nobody wants it: let it lapse; the next connection fetches afresh.
      this.#log.debug({ store: entry.ref.store, path: entry.ref.path, version: value.version }, 'credential unused; not renewing');
      return;
    }
    const store = this.#store(entry.ref);
    if (value.renewable && store.renew) {
      const renewed = await store.renew(value).catch((err: unknown) => {
        this.#log.warn({ store: entry.ref.store, path: entry.ref.path, version: value.version, err: (err as Error).message }, 'renewal failed');
        return undefined;
      });
      if (entry.value !== value) return;
      if (renewed) {
        entry.value = renewed;
        entry.usedSinceRefresh = false;
        this.#schedule(entry, renewed);
        return;
      }
    }
    // Not renewable, or at its max TTL: new connections get fresh credentials; connections
    // holding the old ones carry on.
    if (!entry.inflight) await this.#fetch(entry);
  }

  #storeOk(store: string): void {
    this.#metrics.storeRequests.inc({ store, result: 'ok' });
    if (this.#storeDown.delete(store)) this.#log.info({ store }, 'store available again');
    this.#metrics.storeUp.set({ store }, 1);
  }

  #storeFailed(store: string, why: string): void {
    this.#storeDown.set(store, why);
    this.#metrics.storeUp.set({ store }, 0);
  }
}

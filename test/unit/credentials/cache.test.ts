import { describe, expect, it } from 'vitest';
import { CredentialCache } from '../../../src/credentials/cache.ts';
import { Secret } from '../../../src/credentials/secret.ts';
import type { Credential, CredentialRef, CredentialStore } from '../../../src/credentials/types.ts';
import { KeylessError } from '../../../src/errors.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { Metrics } from '../../../src/observability/metrics.ts';

const CANARY = 'CANARY-cache-e02f77';
const REF: CredentialRef = { store: 'fake', path: 'database/creds/orders' };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A store whose every get() and renew() is a promise the test settles by hand. */
class FakeStore implements CredentialStore {
  readonly kind = 'fake';
  readonly name = 'fake';
  maxStaleMs: number | undefined;
  readonly calls: Deferred<Credential>[] = [];
  readonly renewals: Deferred<Credential | undefined>[] = [];
  renew: ((c: Credential) => Promise<Credential | undefined>) | undefined;
  onChange: (() => void) | undefined;
  unwatched = 0;

  get(_ref: CredentialRef): Promise<Credential> {
    const d = deferred<Credential>();
    this.calls.push(d);
    return d.promise;
  }

  /** Give this store a renew() whose calls the test settles (as a Vault lease store has). */
  renewable(): void {
    this.renew = () => {
      const d = deferred<Credential | undefined>();
      this.renewals.push(d);
      return d.promise;
    };
  }

  watch(_ref: CredentialRef, onChange: () => void): () => void {
    this.onChange = onChange;
    return () => {
      this.unwatched++;
    };
  }

  /** Settle call `i` with a credential and wait until the cache has taken it. */
  async answer(i: number, c: Credential): Promise<void> {
    const d = this.call(i);
    d.resolve(c);
    await d.promise;
  }

  async fail(i: number, err: unknown): Promise<void> {
    const d = this.call(i);
    d.reject(err);
    await d.promise.catch(() => undefined);
  }

  call(i: number): Deferred<Credential> {
    const d = this.calls[i];
    if (!d) throw new Error(`store.get was called ${this.calls.length} times, not ${i + 1}`);
    return d;
  }

  async close(): Promise<void> {}
}

/** Timers the test fires by hand: no waiting, no real clock. */
class FakeTimers {
  readonly all: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  readonly set = (fn: () => void, ms: number): { cancel(): void } => {
    const t = { fn, ms, cancelled: false };
    this.all.push(t);
    return { cancel: () => void (t.cancelled = true) };
  };
  live(): { fn: () => void; ms: number; cancelled: boolean }[] {
    return this.all.filter((t) => !t.cancelled);
  }
  /** Fire the one live timer. */
  fire(): void {
    const live = this.live();
    expect(live, 'exactly one live timer').toHaveLength(1);
    live[0]!.cancelled = true;
    live[0]!.fn();
  }
}

function cred(version: string, opts: { fetchedAt?: number; expiresAt?: number; renewable?: boolean } = {}): Credential {
  return {
    ref: REF,
    fields: new Map([['username', new Secret('orders')], ['password', new Secret(`${CANARY}-${version}`)]]),
    version,
    renewable: opts.renewable ?? false,
    fetchedAt: opts.fetchedAt ?? 0,
    ...(opts.expiresAt === undefined ? {} : { expiresAt: opts.expiresAt }),
  };
}

function setup(opts: { maxStaleMs?: number; refreshAhead?: number } = {}) {
  const store = new FakeStore();
  store.maxStaleMs = opts.maxStaleMs;
  const metrics = new Metrics({ defaultMetrics: false });
  const lines: string[] = [];
  const log = createLogger({ destination: { write: (l: string) => void lines.push(l) }, level: 'debug' });
  const clock = { now: 0 };
  const timers = new FakeTimers();
  const cache = new CredentialCache(new Map([['fake', store]]), log, metrics, {
    ...(opts.refreshAhead === undefined ? {} : { refreshAhead: opts.refreshAhead }),
    now: () => clock.now,
    setTimer: timers.set,
  });
  return { store, metrics, lines, clock, timers, cache };
}

/** The value of one series of a counter or gauge in the Prometheus text output (0 when absent). */
async function sample(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  for (const line of (await metrics.text()).split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return 0;
}

const cacheCount = (metrics: Metrics, result: string): Promise<number> => sample(metrics, 'keyless_credential_cache_total', { store: 'fake', result });
const storeCount = (metrics: Metrics, result: string): Promise<number> => sample(metrics, 'keyless_store_requests_total', { store: 'fake', result });

async function rejection(p: Promise<unknown>): Promise<KeylessError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(KeylessError);
  return e as KeylessError;
}

describe('CredentialCache: single flight', () => {
  it('N concurrent gets cause one store.get and all get the same credential', async () => {
    const { store, metrics, cache } = setup();
    const gets = Array.from({ length: 25 }, () => cache.get(REF));
    expect(store.calls).toHaveLength(1);
    await store.answer(0, cred('1'));
    const got = await Promise.all(gets);
    expect(new Set(got).size).toBe(1);
    expect(got[0]!.version).toBe('1');
    expect(await cacheCount(metrics, 'miss')).toBe(1);
    expect(await cacheCount(metrics, 'coalesced')).toBe(24);
    expect(await cacheCount(metrics, 'hit')).toBe(0);
    expect(await storeCount(metrics, 'ok')).toBe(1);
  });

  it('later gets are hits with no store call', async () => {
    const { store, metrics, cache } = setup();
    const first = cache.get(REF);
    await store.answer(0, cred('1'));
    await first;
    for (let i = 0; i < 5; i++) expect((await cache.get(REF)).version).toBe('1');
    expect(store.calls).toHaveLength(1);
    expect(await cacheCount(metrics, 'hit')).toBe(5);
    expect(await cacheCount(metrics, 'miss')).toBe(1);
  });

  it('a failed fetch fails every waiter once and is not cached', async () => {
    const { store, metrics, cache } = setup();
    const gets = Array.from({ length: 5 }, () => rejection(cache.get(REF)));
    await store.fail(0, new Error('connect ECONNREFUSED 10.0.0.1:8200'));
    const errs = await Promise.all(gets);
    for (const e of errs) {
      expect(e.code).toBe('KL_ERR_STORE_UNAVAILABLE');
      expect(e.message).toContain('fake');
    }
    expect(new Set(errs).size).toBe(1);
    expect(await storeCount(metrics, 'error')).toBe(1);
    const retry = cache.get(REF);
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('1'));
    expect((await retry).version).toBe('1');
  });

  it('keeps a store\'s KeylessError as it is and counts not_found', async () => {
    const { store, metrics, cache } = setup();
    const notFound = new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', 'store fake: no credential database/creds/orders');
    const p = rejection(cache.get(REF));
    await store.fail(0, notFound);
    expect(await p).toBe(notFound);
    expect(await storeCount(metrics, 'not_found')).toBe(1);
  });

  it('keeps credentials apart by reference', async () => {
    const { store, cache } = setup();
    const a = cache.get(REF);
    const b = cache.get({ store: 'fake', path: 'other' });
    expect(store.calls).toHaveLength(2);
    await store.answer(0, cred('a'));
    await store.answer(1, cred('b'));
    expect((await a).version).toBe('a');
    expect((await b).version).toBe('b');
  });

  it('an unknown store is a KL_ERR_CONFIG error', async () => {
    const { cache } = setup();
    const e = await rejection(cache.get({ store: 'nope', path: 'x' }));
    expect(e.code).toBe('KL_ERR_CONFIG');
    expect(e.message).toContain('nope');
  });
});

describe('CredentialCache: invalidate', () => {
  async function primed(version = '1') {
    const s = setup();
    const p = s.cache.get(REF);
    await s.store.answer(0, cred(version));
    await p;
    return s;
  }

  it('invalidating the current version makes the next get refetch', async () => {
    const { store, cache } = await primed('1');
    cache.invalidate(REF, '1');
    const next = cache.get(REF);
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2'));
    expect((await next).version).toBe('2');
  });

  it('invalidating a version that is no longer current is ignored', async () => {
    const { store, cache } = await primed('1');
    cache.invalidate(REF, '1');
    const refetch = cache.get(REF);
    await store.answer(1, cred('2'));
    await refetch;
    cache.invalidate(REF, '1');
    cache.invalidate(REF, 'never-seen');
    expect((await cache.get(REF)).version).toBe('2');
    expect(store.calls).toHaveLength(2);
  });

  it('N connections rejected with the same version, all at once: one refetch', async () => {
    const { store, metrics, cache } = await primed('1');
    const retries = Array.from({ length: 20 }, () => {
      cache.invalidate(REF, '1');
      return cache.get(REF);
    });
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2'));
    for (const c of await Promise.all(retries)) expect(c.version).toBe('2');
    expect(await cacheCount(metrics, 'coalesced')).toBe(19);
  });

  it('N connections rejected with the same version, one after another: still one refetch', async () => {
    const { store, cache } = await primed('1');
    cache.invalidate(REF, '1');
    const first = cache.get(REF);
    await store.answer(1, cred('2'));
    expect((await first).version).toBe('2');
    for (let i = 0; i < 20; i++) {
      cache.invalidate(REF, '1');
      expect((await cache.get(REF)).version).toBe('2');
    }
    expect(store.calls).toHaveLength(2);
  });

  it('invalidating an unknown reference does nothing', () => {
    const { cache } = setup();
    expect(() => cache.invalidate({ store: 'fake', path: 'never-fetched' }, '1')).not.toThrow();
  });

  it('a rejected version is never served stale when the store is down', async () => {
    const { store, cache } = setup({ maxStaleMs: 60_000 });
    const p = cache.get(REF);
    await store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 100_000 }));
    await p;
    cache.invalidate(REF, '1');
    const retry = rejection(cache.get(REF));
    await store.fail(1, new Error('vault sealed'));
    expect((await retry).code).toBe('KL_ERR_STORE_UNAVAILABLE');
  });

  it('logs the invalidation with reference and version, not the value', async () => {
    const { cache, lines } = await primed('7');
    cache.invalidate(REF, '7');
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'credential invalidated');
    expect(line).toMatchObject({ store: 'fake', path: REF.path, version: '7' });
    for (const l of lines) expect(l).not.toContain(CANARY);
  });
});

describe('CredentialCache: refresh ahead of expiry', () => {
  // A lease fetched at t=0 that expires at t=3000: refresh is due at t=2000 (2/3 of its life).
  async function leased(opts: { refreshAhead?: number; maxStaleMs?: number; renewable?: boolean } = {}) {
    const s = setup(opts);
    if (opts.renewable) s.store.renewable();
    const p = s.cache.get(REF);
    await s.store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 3000, renewable: opts.renewable ?? false }));
    await p;
    return s;
  }

  it('schedules the refresh at two thirds of the lifetime', async () => {
    const { timers } = await leased();
    expect(timers.live().map((t) => t.ms)).toEqual([2000]);
  });

  it('honours a configured refreshAhead fraction and the time already passed', async () => {
    const s = setup({ refreshAhead: 0.5 });
    const p = s.cache.get(REF);
    s.clock.now = 500;
    await s.store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 3000 }));
    await p;
    expect(s.timers.live().map((t) => t.ms)).toEqual([1000]);
  });

  it('schedules nothing for a credential that never expires', async () => {
    const s = setup();
    const p = s.cache.get(REF);
    await s.store.answer(0, cred('1'));
    await p;
    expect(s.timers.live()).toHaveLength(0);
  });

  it('when due and in use, refetches in the background while callers keep the valid value', async () => {
    const { store, metrics, cache, clock, timers } = await leased();
    expect((await cache.get(REF)).version).toBe('1');
    clock.now = 2000;
    timers.fire();
    expect(store.calls).toHaveLength(2);
    clock.now = 2500;
    expect((await cache.get(REF)).version).toBe('1');
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2', { fetchedAt: 2500, expiresAt: 5500 }));
    expect((await cache.get(REF)).version).toBe('2');
    expect(store.calls).toHaveLength(2);
    expect(await cacheCount(metrics, 'hit')).toBe(3);
    // The new value gets its own refresh at 2/3 of its lifetime.
    expect(timers.live().map((t) => t.ms)).toEqual([2000]);
  });

  it('when due but nobody used or holds it, lets it lapse', async () => {
    const { store, timers, clock } = await leased();
    clock.now = 2000;
    timers.fire();
    expect(store.calls).toHaveLength(1);
  });

  it('a credential held by a connection is refreshed even without new gets', async () => {
    const s = setup();
    const p = s.cache.acquire(REF);
    await s.store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 3000 }));
    expect((await p).version).toBe('1');
    s.clock.now = 2000;
    s.timers.fire();
    expect(s.store.calls).toHaveLength(2);
  });

  it('a released credential that nobody used since is not refreshed', async () => {
    const s = setup();
    const p = s.cache.acquire(REF);
    await s.store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 3000 }));
    await p;
    s.cache.release(REF, '1');
    s.clock.now = 2000;
    s.timers.fire();
    expect(s.store.calls).toHaveLength(1);
  });

  it('a renewable lease is renewed rather than refetched', async () => {
    const { store, cache, clock, timers } = await leased({ renewable: true });
    await cache.get(REF);
    clock.now = 2000;
    timers.fire();
    expect(store.renewals).toHaveLength(1);
    expect(store.calls).toHaveLength(1);
    const renewed = cred('1', { fetchedAt: 2000, expiresAt: 5000, renewable: true });
    store.renewals[0]!.resolve(renewed);
    await store.renewals[0]!.promise;
    await new Promise<void>((resolve) => setImmediate(resolve)); // the cache's continuations
    expect(await cache.get(REF)).toBe(renewed);
    expect(timers.live().map((t) => t.ms)).toEqual([2000]);
  });

  it('a lease that cannot be renewed (max TTL) is replaced by a fetch', async () => {
    const { store, cache, clock, timers } = await leased({ renewable: true });
    await cache.get(REF);
    clock.now = 2000;
    timers.fire();
    store.renewals[0]!.resolve(undefined);
    await store.renewals[0]!.promise;
    await new Promise<void>((resolve) => setImmediate(resolve)); // the cache's continuations
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2', { fetchedAt: 2000, expiresAt: 5000 }));
    expect((await cache.get(REF)).version).toBe('2');
  });

  it('a renew() that rejects falls back to a fetch instead of an unhandled rejection', async () => {
    const { store, cache, clock, timers } = await leased({ renewable: true });
    await cache.get(REF);
    clock.now = 2000;
    timers.fire();
    const renewal = store.renewals[0]!;
    renewal.reject(new Error('vault: connection reset during renew'));
    await renewal.promise.catch(() => undefined);
    // Let every queued continuation of the cache run (no timer involved).
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(store.calls).toHaveLength(2);
  });

  it('an expired credential is refetched before it is returned', async () => {
    const { store, metrics, cache, clock } = await leased();
    clock.now = 3000;
    const p = cache.get(REF);
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2', { fetchedAt: 3000, expiresAt: 6000 }));
    expect((await p).version).toBe('2');
    expect(await cacheCount(metrics, 'miss')).toBe(2);
  });

  it('callers arriving after expiry share the refresh already in flight', async () => {
    const { store, cache, clock, timers } = await leased();
    await cache.get(REF);
    clock.now = 2000;
    timers.fire();
    clock.now = 3001;
    const late = cache.get(REF);
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2', { fetchedAt: 3001, expiresAt: 6001 }));
    expect((await late).version).toBe('2');
  });

  it('a failed background refresh keeps serving the still-valid value', async () => {
    const { store, cache, clock, timers } = await leased({ maxStaleMs: 0 });
    await cache.get(REF);
    clock.now = 2000;
    timers.fire();
    await store.fail(1, new Error('vault unreachable'));
    clock.now = 2100;
    expect((await cache.get(REF)).version).toBe('1');
  });

  it('close() cancels pending refreshes', async () => {
    const { cache, timers } = await leased();
    cache.close();
    expect(timers.live()).toHaveLength(0);
  });
});

describe('CredentialCache: stale-if-error', () => {
  async function expiredAt3000(maxStaleMs: number | undefined) {
    const s = setup({ maxStaleMs });
    const p = s.cache.get(REF);
    await s.store.answer(0, cred('1', { fetchedAt: 0, expiresAt: 3000 }));
    await p;
    return s;
  }

  it('serves the last value within the store\'s maxStaleMs past expiry when the store fails, and counts it', async () => {
    const { store, metrics, cache, clock, lines } = await expiredAt3000(1000);
    clock.now = 3999;
    const p = cache.get(REF);
    await store.fail(1, new Error('vault: 503 sealed'));
    expect((await p).version).toBe('1');
    expect(await cacheCount(metrics, 'stale')).toBe(1);
    expect(await storeCount(metrics, 'error')).toBe(1);
    const stale = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).includes('serving the cached credential'));
    expect(stale).toMatchObject({ store: 'fake', path: REF.path, version: '1' });
    for (const l of lines) expect(l).not.toContain(CANARY);
  });

  it('after maxStaleMs, fails with a clear store-unavailable error', async () => {
    const { store, cache, clock } = await expiredAt3000(1000);
    clock.now = 4000;
    const p = rejection(cache.get(REF));
    await store.fail(1, new Error('vault: 503 sealed'));
    const e = await p;
    expect(e.code).toBe('KL_ERR_STORE_UNAVAILABLE');
    expect(e.message).toContain('store fake');
    expect(e.message).toContain('503 sealed');
    expect(e.clientMessage).toBe('credential store unavailable');
    expect(e.message).not.toContain(CANARY);
  });

  it('without maxStaleMs an expired credential is never served', async () => {
    const { store, cache, clock } = await expiredAt3000(undefined);
    clock.now = 3000;
    const p = rejection(cache.get(REF));
    await store.fail(1, new Error('down'));
    expect((await p).code).toBe('KL_ERR_STORE_UNAVAILABLE');
  });

  it('a credential the store says is gone is not served stale', async () => {
    const { store, cache, clock } = await expiredAt3000(60_000);
    clock.now = 3500;
    const p = rejection(cache.get(REF));
    await store.fail(1, new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', 'gone'));
    expect((await p).code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
  });

  it('a store that denies access is not served stale and is counted as denied', async () => {
    const { store, metrics, cache, clock } = await expiredAt3000(60_000);
    clock.now = 3500;
    const p = rejection(cache.get(REF));
    await store.fail(1, new KeylessError('KL_ERR_STORE_DENIED', 'store fake: 403 permission denied'));
    expect((await p).code).toBe('KL_ERR_STORE_DENIED');
    expect(await storeCount(metrics, 'denied')).toBe(1);
  });

  it('once the store is back, the fresh value replaces the stale one', async () => {
    const { store, cache, clock } = await expiredAt3000(10_000);
    clock.now = 3500;
    const p1 = cache.get(REF);
    await store.fail(1, new Error('down'));
    expect((await p1).version).toBe('1');
    const p2 = cache.get(REF);
    expect(store.calls).toHaveLength(3);
    await store.answer(2, cred('2', { fetchedAt: 3600, expiresAt: 6600 }));
    expect((await p2).version).toBe('2');
  });

  it('a value that changed in the store (watch) still serves while the store cannot be read', async () => {
    const s = setup();
    const p = s.cache.get(REF);
    await s.store.answer(0, cred('1'));
    await p;
    s.store.onChange!();
    const again = s.cache.get(REF);
    await s.store.fail(1, new Error('EIO'));
    expect((await again).version).toBe('1');
  });

  it('degraded() and keyless_store_up show the outage, and clear when the store answers', async () => {
    const { store, metrics, cache, clock } = await expiredAt3000(10_000);
    expect(cache.degraded()).toEqual([]);
    expect(await sample(metrics, 'keyless_store_up', { store: 'fake' })).toBe(1);
    clock.now = 3500;
    const p1 = cache.get(REF);
    await store.fail(1, new Error('connect ECONNREFUSED'));
    await p1;
    expect(cache.degraded()).toHaveLength(1);
    expect(cache.degraded()[0]).toMatch(/^store fake: .*ECONNREFUSED/);
    expect(await sample(metrics, 'keyless_store_up', { store: 'fake' })).toBe(0);
    const p2 = cache.get(REF);
    await store.answer(2, cred('2', { fetchedAt: 3600, expiresAt: 6600 }));
    await p2;
    expect(cache.degraded()).toEqual([]);
    expect(await sample(metrics, 'keyless_store_up', { store: 'fake' })).toBe(1);
  });
});

describe('CredentialCache: store change notifications', () => {
  it('subscribes once per reference and refetches after a change', async () => {
    const { store, cache } = setup();
    const p = cache.get(REF);
    await store.answer(0, cred('1'));
    await p;
    expect(store.onChange).toBeTypeOf('function');
    store.onChange!();
    const next = cache.get(REF);
    expect(store.calls).toHaveLength(2);
    await store.answer(1, cred('2'));
    expect((await next).version).toBe('2');
    expect((await cache.get(REF)).version).toBe('2');
    expect(store.calls).toHaveLength(2);
  });

  it('a change before anything is cached is harmless', async () => {
    const { store, cache } = setup();
    const p = cache.get(REF);
    store.onChange!();
    await store.answer(0, cred('1'));
    expect((await p).version).toBe('1');
    expect((await cache.get(REF)).version).toBe('1');
    expect(store.calls).toHaveLength(1);
  });

  it('close() unsubscribes from the store', async () => {
    const { store, cache } = setup();
    const p = cache.get(REF);
    await store.answer(0, cred('1'));
    await p;
    cache.close();
    expect(store.unwatched).toBe(1);
  });
});

describe('CredentialCache: metrics and logs', () => {
  it('collectAges reports the age of each cached credential by store and path', async () => {
    const { store, metrics, cache, clock } = setup();
    clock.now = 1000;
    const p = cache.get(REF);
    await store.answer(0, cred('1', { fetchedAt: 1000 }));
    await p;
    clock.now = 61_000;
    cache.collectAges();
    expect(await sample(metrics, 'keyless_credential_age_seconds', { store: 'fake', path: REF.path })).toBe(60);
  });

  it('metrics and logs name the reference and version, never the value', async () => {
    const { store, metrics, cache, lines } = setup();
    const p = cache.get(REF);
    await store.answer(0, cred('3'));
    await p;
    cache.collectAges();
    const fetched = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'credential fetched');
    expect(fetched).toMatchObject({ store: 'fake', path: REF.path, version: '3' });
    for (const l of lines) expect(l).not.toContain(CANARY);
    expect(await metrics.text()).not.toContain(CANARY);
  });
});

// The Vault double's notion of "now". Token and lease expiry, TTLs, KV timestamps and the
// database engine's VALID UNTIL all read this clock, so a test moves time forward with
// `advance()` instead of sleeping.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** Wall-clock time. The server then expires tokens and leases on real timers. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. Starts at the real current time, so VALID UNTIL
 * timestamps it produces are never in PostgreSQL's past. */
export class ManualClock implements Clock {
  #now: number;
  readonly #listeners = new Set<() => void>();

  constructor(startMs: number = Date.now()) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Move forward by `ms` (never backwards) and notify listeners (the server sweeps expiries). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`ManualClock.advance: expected ms >= 0, got ${ms}`);
    this.#now += ms;
    for (const l of this.#listeners) l();
  }

  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export function isManualClock(c: Clock): c is ManualClock {
  return c instanceof ManualClock;
}

import type { Secret } from './secret.ts';

export interface CredentialRef {
  readonly store: string;
  readonly path: string;
}

/** Named secret fields (username, password, token, tls_cert…) plus metadata; never a bare string. */
export interface Credential {
  readonly ref: CredentialRef;
  readonly fields: ReadonlyMap<string, Secret>;
  /** Store-specific and safe to log: a counter, a KV version, a lease id. Never derived from the value. */
  readonly version: string;
  /** Epoch ms after which the store says the value is no longer valid (leases). */
  readonly expiresAt?: number;
  readonly renewable: boolean;
  readonly fetchedAt: number;
}

export interface CredentialStore {
  readonly kind: string;
  readonly name: string;
  get(ref: CredentialRef, signal?: AbortSignal): Promise<Credential>;
  /** How long past expiry a cached value may serve while this store fails (0 when absent). */
  readonly maxStaleMs?: number;
  /** Extend a leased credential; undefined when it cannot be (max TTL reached, refused). */
  renew?(c: Credential): Promise<Credential | undefined>;
  /** `keyless check`: reach the store itself (log in, list the directory); a line saying what worked. */
  ping?(): Promise<string>;
  /** Calls `onChange` when the stored value may have changed; returns an unsubscribe function. */
  watch?(ref: CredentialRef, onChange: () => void): () => void;
  close(): Promise<void>;
}

export function refKey(ref: CredentialRef & { version?: number }): string {
  return ref.version === undefined ? `${ref.store}:${ref.path}` : `${ref.store}:${ref.path}@${ref.version}`;
}

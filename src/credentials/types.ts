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
  /** Calls `onChange` when the stored value may have changed; returns an unsubscribe function. */
  watch?(ref: CredentialRef, onChange: () => void): () => void;
  close(): Promise<void>;
}

export function refKey(ref: CredentialRef): string {
  return `${ref.store}:${ref.path}`;
}

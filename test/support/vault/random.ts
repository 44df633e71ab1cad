// Identifiers in the shapes Vault uses (base62 strings, UUIDs).
import { randomBytes, randomUUID } from 'node:crypto';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `n` characters from `alphabet`, unbiased (rejection sampling). */
export function randomFrom(alphabet: string, n: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === n) break;
    }
  }
  return out;
}

export function base62(n: number): string {
  return randomFrom(BASE62, n);
}

export function uuid(): string {
  return randomUUID();
}

/** Vault's default database password: 20 characters of [A-Za-z0-9-] with at least one lowercase
 * letter, one uppercase letter, one digit and one dash. */
export function dbPassword(): string {
  const alphabet = `${BASE62}-`;
  for (;;) {
    const p = randomFrom(alphabet, 20);
    if (/[a-z]/.test(p) && /[A-Z]/.test(p) && /[0-9]/.test(p) && p.includes('-')) return p;
  }
}

import { describe, expect, it } from 'vitest';
import { mapFields, optionalField, requireField } from '../../../src/credentials/fields.ts';
import { Secret } from '../../../src/credentials/secret.ts';
import type { Credential } from '../../../src/credentials/types.ts';
import { KeylessError } from '../../../src/errors.ts';

const CANARY = 'CANARY-fields-b71d0e';

function cred(fields: Record<string, string>): Credential {
  return {
    ref: { store: 'vault', path: 'database/creds/orders' },
    fields: new Map(Object.entries(fields).map(([k, v]) => [k, new Secret(v)])),
    version: 'lease-17',
    renewable: false,
    fetchedAt: 0,
  };
}

function thrown(fn: () => unknown): KeylessError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeylessError);
    return e as KeylessError;
  }
  throw new Error('did not throw');
}

describe('mapFields', () => {
  it('returns the credential itself without a mapping', () => {
    const c = cred({ username: 'u' });
    expect(mapFields(c, undefined)).toBe(c);
  });

  it('renames store keys to canonical names and keeps the rest', () => {
    const c = cred({ 'db-user': 'orders', 'db-pass': CANARY, other: 'x' });
    const m = mapFields(c, { username: 'db-user', password: 'db-pass' });
    expect(m.fields.get('username')?.reveal()).toBe('orders');
    expect(m.fields.get('password')?.reveal()).toBe(CANARY);
    expect(m.fields.get('other')?.reveal()).toBe('x');
    expect(m.ref).toEqual(c.ref);
    expect(m.version).toBe(c.version);
  });

  it('does not modify the original credential', () => {
    const c = cred({ 'db-user': 'orders' });
    mapFields(c, { username: 'db-user' });
    expect([...c.fields.keys()]).toEqual(['db-user']);
  });

  it('a mapped store key that is absent removes the canonical field (no silent fallback)', () => {
    const c = cred({ password: 'stale-default', 'db-user': 'u' });
    const m = mapFields(c, { password: 'db-pass' });
    expect(m.fields.has('password')).toBe(false);
  });
});

describe('requireField', () => {
  it('returns the Secret', () => {
    expect(requireField(cred({ password: CANARY }), 'password', 'orders-db').reveal()).toBe(CANARY);
  });

  it('a missing field: KL_ERR_CREDENTIAL_INVALID naming target, field, reference and version, never a value', () => {
    const e = thrown(() => requireField(cred({ username: CANARY, token: CANARY }), 'password', 'orders-db'));
    expect(e.code).toBe('KL_ERR_CREDENTIAL_INVALID');
    expect(e.message).toContain('orders-db');
    expect(e.message).toContain('"password"');
    expect(e.message).toContain('vault:database/creds/orders');
    expect(e.message).toContain('lease-17');
    expect(e.message).not.toContain(CANARY);
    expect(e.clientMessage).not.toContain(CANARY);
  });

  it('an empty field counts as missing', () => {
    const e = thrown(() => requireField(cred({ password: '' }), 'password', 'orders-db'));
    expect(e.code).toBe('KL_ERR_CREDENTIAL_INVALID');
    expect(e.message).toContain('"password"');
  });
});

describe('optionalField', () => {
  it('returns the Secret, or undefined when missing or empty', () => {
    const c = cred({ tls_cert: 'PEM', tls_key: '' });
    expect(optionalField(c, 'tls_cert')?.reveal()).toBe('PEM');
    expect(optionalField(c, 'tls_key')).toBeUndefined();
    expect(optionalField(c, 'nope')).toBeUndefined();
  });
});

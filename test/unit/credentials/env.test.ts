import { describe, expect, it } from 'vitest';
import { EnvStore } from '../../../src/credentials/env.ts';
import { KeylessError } from '../../../src/errors.ts';

const CANARY = 'CANARY-env-51a9c3';

function reveal(fields: ReadonlyMap<string, { reveal(): string }>): Record<string, string> {
  return Object.fromEntries([...fields].map(([k, v]) => [k, v.reveal()]));
}

describe('EnvStore', () => {
  it('maps <prefix><PATH>_<FIELD> to lower-case field names', async () => {
    const env = { KEYLESS_ORDERS_DB_USERNAME: 'orders', KEYLESS_ORDERS_DB_PASSWORD: CANARY, UNRELATED: 'x' };
    const s = new EnvStore('env', { prefix: 'KEYLESS_' }, env);
    expect(s.kind).toBe('env');
    expect(s.name).toBe('env');
    const c = await s.get({ store: 'env', path: 'orders-db' });
    expect(reveal(c.fields)).toEqual({ username: 'orders', password: CANARY });
    expect(c.ref).toEqual({ store: 'env', path: 'orders-db' });
    expect(c.version).toBe('1');
    expect(c.renewable).toBe(false);
    expect(c.expiresAt).toBeUndefined();
  });

  it('upper-cases the path and turns every other character into _', async () => {
    const env = { 'DB_ORDERS_EU_WEST_1_PASSWORD': 'p', 'DB_ORDERS_EU_WEST_1_TLS_CERT': 'c' };
    const s = new EnvStore('env', { prefix: 'DB_' }, env);
    const c = await s.get({ store: 'env', path: 'orders/eu-west.1' });
    expect(reveal(c.fields)).toEqual({ password: 'p', tls_cert: 'c' });
  });

  it('works with an empty prefix', async () => {
    const s = new EnvStore('env', { prefix: '' }, { BILLING_TOKEN: 't' });
    expect(reveal((await s.get({ store: 'env', path: 'billing' })).fields)).toEqual({ token: 't' });
  });

  it('ignores a variable that is only the prefix and path', async () => {
    const s = new EnvStore('env', { prefix: '' }, { BILLING_: 'nothing', BILLING_TOKEN: 't' });
    expect([...(await s.get({ store: 'env', path: 'billing' })).fields.keys()]).toEqual(['token']);
  });

  it('keeps an empty value as an empty field (requireField rejects it later)', async () => {
    const s = new EnvStore('env', { prefix: '' }, { APP_PASSWORD: '' });
    const c = await s.get({ store: 'env', path: 'app' });
    expect(c.fields.get('password')?.length).toBe(0);
  });

  it('no matching variables: KL_ERR_CREDENTIAL_NOT_FOUND naming the variable pattern', async () => {
    const s = new EnvStore('env', { prefix: 'KEYLESS_' }, { KEYLESS_OTHER_PASSWORD: CANARY });
    const err = await s.get({ store: 'env', path: 'orders-db' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeylessError);
    expect((err as KeylessError).code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
    expect((err as KeylessError).message).toContain('KEYLESS_ORDERS_DB_');
    expect((err as KeylessError).message).not.toContain(CANARY);
  });

  it('reads process.env by default', async () => {
    const name = `KEYLESS_UNIT_${process.pid}_FIELD`;
    process.env[name] = 'from-process';
    try {
      const s = new EnvStore('env', { prefix: 'KEYLESS_UNIT_' });
      expect(reveal((await s.get({ store: 'env', path: String(process.pid) })).fields)).toEqual({ field: 'from-process' });
    } finally {
      delete process.env[name];
    }
  });
});

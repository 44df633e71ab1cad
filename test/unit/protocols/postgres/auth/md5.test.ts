// AuthenticationMD5Password: the response is "md5" + md5hex(md5hex(password || user) || salt),
// per the PostgreSQL docs. Expected values were computed outside Node with coreutils `md5sum`
// (e.g. `printf '3175bce1d3201d16594cebf9d7eb3f9d\x01\x02\x03\x04' | md5sum`), and are also
// checked against node-postgres's implementation of the same formula.
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { md5PasswordResponse } from '../../../../../src/protocols/postgres/auth/md5.ts';

const pgUtils = createRequire(import.meta.url)('pg/lib/crypto/utils.js') as {
  postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string>;
};

describe('md5PasswordResponse', () => {
  it('matches the well-known inner hash for postgres/postgres (pg_authid: md53175bce1…)', () => {
    // md5('postgres' || 'postgres') = 3175bce1d3201d16594cebf9d7eb3f9d, PostgreSQL's stored hash.
    expect(md5PasswordResponse('postgres', 'postgres', Buffer.from([1, 2, 3, 4]))).toBe('md568be9ed08db75f318087ab337aaea044');
  });

  it('treats the salt as raw bytes, including 0x00 and bytes above 0x7f', () => {
    expect(md5PasswordResponse('postgres', 'postgres', Buffer.from([0xff, 0x80, 0x00, 0x7f]))).toBe('md5065be217a1154d251ed39a50d188918a');
  });

  it('hashes user and password as UTF-8', () => {
    expect(md5PasswordResponse('ünïcode', 'pässwörd', Buffer.from([0x9a, 0x00, 0xe1, 0x10]))).toBe('md5725dc40daf258fb6fc5d58d8ee20757c');
  });

  it('puts the password before the user', () => {
    // md5('pencil' || 'orders') then the all-zero salt.
    expect(md5PasswordResponse('orders', 'pencil', Buffer.alloc(4))).toBe('md5852de75a91d109810e20d56220690661');
    expect(md5PasswordResponse('pencil', 'orders', Buffer.alloc(4))).not.toBe('md5852de75a91d109810e20d56220690661');
  });

  it('agrees with node-postgres for arbitrary users, passwords and salts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 20 }), fc.string({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), async (user, password, salt) => {
        const s = Buffer.from(salt);
        expect(md5PasswordResponse(user, password, s)).toBe(await pgUtils.postgresMd5PasswordHash(user, password, s));
      }),
      { numRuns: 300 },
    );
  });

  it('is "md5" and 32 lowercase hex digits', () => {
    expect(md5PasswordResponse('u', 'p', Buffer.from('salt'))).toMatch(/^md5[0-9a-f]{32}$/);
  });
});

// Upstream auth plugins, each checked against an independent implementation: mysql2's
// mysql_native_password and caching_sha2_password code, Node's Ed25519 (RFC 8032) and RSA-OAEP.
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, randomBytes, sign, verify } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../../../src/credentials/secret.ts';
import { KeylessError } from '../../../../src/errors.ts';
import { cachingSha2Password, sha2RsaEncrypt, sha2Scramble } from '../../../../src/protocols/mysql/auth/caching-sha2.ts';
import { clearPassword } from '../../../../src/protocols/mysql/auth/clear.ts';
import { clientEd25519, ed25519PublicKey, ed25519Sign } from '../../../../src/protocols/mysql/auth/ed25519.ts';
import { SUPPORTED_PLUGINS, createAuth, type AuthOptions } from '../../../../src/protocols/mysql/auth/index.ts';
import { nativePassword, nativeScramble } from '../../../../src/protocols/mysql/auth/native.ts';

// mysql2's package exports hide lib/; load its files by path.
const require = createRequire(import.meta.url);
const mysql2Lib = join(dirname(require.resolve('mysql2')), 'lib');
const auth41 = require(join(mysql2Lib, 'auth_41.js')) as { calculateToken(password: string, s1: Buffer, s2: Buffer): Buffer };
const sha2Plugin = require(join(mysql2Lib, 'auth_plugins/caching_sha2_password.js')) as { calculateToken(password: string, scramble: Buffer): Buffer };

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function opts(password: string, extra: Partial<AuthOptions> = {}): AuthOptions {
  return { password: new Secret(password), secure: false, serverPublicKey: undefined, fetchServerPublicKey: false, ...extra };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeylessError);
    return (err as KeylessError).code;
  }
  throw new Error('expected a throw');
}

const nonce = Buffer.from('0123456789abcdefghij');
const withNul = Buffer.concat([nonce, Buffer.from([0])]);

describe('mysql_native_password', () => {
  it('matches mysql2 for any password', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), (pw, n) => {
        const scramble = Buffer.from(n);
        expect(nativeScramble(Buffer.from(pw, 'utf8'), scramble)).toEqual(auth41.calculateToken(pw, scramble.subarray(0, 8), scramble.subarray(8)));
      }),
    );
  });

  it('answers an empty password with an empty response and ignores the trailing NUL of the nonce', () => {
    expect(nativePassword(opts('')).start(withNul).length).toBe(0);
    expect(nativePassword(opts('pw')).start(withNul)).toEqual(nativeScramble(Buffer.from('pw'), nonce));
  });
});

describe('caching_sha2_password', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }));
  const decrypt = (c: Buffer): Buffer => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, c);
  const unxor = (b: Buffer, n: Buffer): Buffer => Buffer.from(b.map((x, i) => x ^ n[i % n.length]!));

  it('scrambles like mysql2', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), (pw, n) => {
        expect(sha2Scramble(Buffer.from(pw, 'utf8'), Buffer.from(n))).toEqual(sha2Plugin.calculateToken(pw, Buffer.from(n)));
      }),
    );
  });

  it('fast path: scramble, then nothing to send after 0x03', () => {
    const x = cachingSha2Password(opts('s3cret'));
    expect(x.start(withNul)).toEqual(sha2Scramble(Buffer.from('s3cret'), nonce));
    expect(x.more(Buffer.from([0x03]))).toBeUndefined();
  });

  it('full authentication over TLS sends the password NUL-terminated', () => {
    const x = cachingSha2Password(opts('s3cret', { secure: true }));
    x.start(withNul);
    expect(x.more(Buffer.from([0x04]))).toEqual(Buffer.from('s3cret\0'));
  });

  it('full authentication without TLS encrypts under a pinned key (RSA-OAEP of password XOR nonce)', () => {
    const x = cachingSha2Password(opts('pässword', { serverPublicKey: pem }));
    x.start(withNul);
    const out = x.more(Buffer.from([0x04]))!;
    expect(out.length).toBe(256);
    expect(unxor(decrypt(out), nonce)).toEqual(Buffer.from('pässword\0', 'utf8'));
  });

  it('requests the key (0x02) only when allowed, then encrypts under it', () => {
    expect(codeOf(() => {
      const x = cachingSha2Password(opts('pw'));
      x.start(withNul);
      x.more(Buffer.from([0x04]));
    })).toBe('KL_ERR_UPSTREAM_AUTH_METHOD');
    const x = cachingSha2Password(opts('pw', { fetchServerPublicKey: true }));
    x.start(withNul);
    expect(x.more(Buffer.from([0x04]))).toEqual(Buffer.from([0x02]));
    const out = x.more(pem)!;
    expect(unxor(decrypt(out), nonce)).toEqual(Buffer.from('pw\0'));
    expect(codeOf(() => x.more(Buffer.from([0x03])))).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });

  it('rejects a fetched key that is not RSA, and unexpected AuthMoreData', () => {
    const x = cachingSha2Password(opts('pw', { fetchServerPublicKey: true }));
    x.start(withNul);
    x.more(Buffer.from([0x04]));
    expect(codeOf(() => x.more(Buffer.from('-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n')))).toBe('KL_ERR_UPSTREAM_PROTOCOL');
    const y = cachingSha2Password(opts('pw'));
    y.start(withNul);
    expect(codeOf(() => y.more(Buffer.from([0x07, 0x07])))).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });

  it('sha2RsaEncrypt rotates the nonce over passwords longer than it', () => {
    const long = 'x'.repeat(45);
    expect(unxor(decrypt(sha2RsaEncrypt(Buffer.from(long), nonce, pem)), nonce)).toEqual(Buffer.from(`${long}\0`));
  });
});

describe('client_ed25519 (MariaDB)', () => {
  it('equals RFC 8032 Ed25519 (Node) when the password is a 32-byte seed', () => {
    for (let i = 0; i < 8; i++) {
      const seed = randomBytes(32);
      const msg = randomBytes(32);
      const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
      expect(ed25519Sign(seed, msg)).toEqual(sign(null, msg, key));
      expect(ed25519PublicKey(seed)).toEqual(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32));
    }
  });

  it('signs with a key derived from a password of any length, verifiable by Node', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 80 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (pw, n) => {
        const password = Buffer.from(pw, 'utf8');
        const sig = ed25519Sign(password, Buffer.from(n));
        const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), ed25519PublicKey(password)]);
        expect(verify(null, Buffer.from(n), createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('answers a 32-byte nonce with a 64-byte signature, and rejects a short nonce', () => {
    const x = clientEd25519(opts('secret'));
    const n = randomBytes(32);
    expect(x.start(n)).toEqual(ed25519Sign(Buffer.from('secret'), n));
    expect(codeOf(() => clientEd25519(opts('secret')).start(randomBytes(20)))).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });
});

describe('mysql_clear_password', () => {
  it('sends the password only over TLS', () => {
    expect(clearPassword(opts('pw', { secure: true })).start(Buffer.alloc(0))).toEqual(Buffer.from('pw\0'));
    expect(codeOf(() => clearPassword(opts('pw')).start(Buffer.alloc(0)))).toBe('KL_ERR_UPSTREAM_AUTH_METHOD');
  });
});

describe('plugin registry', () => {
  it('knows the four plugins and nothing else', () => {
    expect([...SUPPORTED_PLUGINS].sort()).toEqual(['caching_sha2_password', 'client_ed25519', 'mysql_clear_password', 'mysql_native_password']);
    expect(createAuth('dialog', opts('x'))).toBeUndefined();
    expect(createAuth('toString', opts('x'))).toBeUndefined();
    expect(createAuth('sha256_password', opts('x'))).toBeUndefined();
  });
});

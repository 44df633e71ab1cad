// caching_sha2_password (MySQL 8): the fast path answers the nonce with
// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce). When the server's cache misses it
// asks for full authentication (AuthMoreData 0x04): over TLS the password goes as is (NUL-
// terminated); without TLS it goes RSA-OAEP-encrypted (SHA-1 MGF, as the server expects) under the
// server's public key, XORed with the nonce first. The key is pinned in config, or requested from
// the server (0x02) only when the config allows it, since an unauthenticated key lets a man in the
// middle read the password.
import { constants, createHash, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import { KeylessError } from '../../../errors.ts';
import { Plugin, Sha2 } from '../constants.ts';
import { nonce20, passwordBytes, xor, type AuthExchange, type AuthOptions } from './types.ts';

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function sha2Scramble(password: Buffer, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const stage1 = sha256(password);
  return xor(stage1, sha256(sha256(stage1), nonce));
}

/** RSA-OAEP(password + NUL XOR nonce) under the server's public key. */
export function sha2RsaEncrypt(password: Buffer, nonce: Buffer, publicKey: KeyObject | Buffer | string): Buffer {
  const plain = xor(Buffer.concat([password, Buffer.from([0])]), nonce);
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
}

function parseKey(pem: Buffer, source: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`a ${key.asymmetricKeyType} key, not RSA`);
    return key;
  } catch (err) {
    throw new KeylessError(source === 'upstream' ? 'KL_ERR_UPSTREAM_PROTOCOL' : 'KL_ERR_CONFIG', `caching_sha2_password: ${source} public key is not a usable RSA key: ${(err as Error).message}`, { cause: err });
  }
}

export function cachingSha2Password(opts: AuthOptions): AuthExchange {
  let nonce = Buffer.alloc(0);
  let step: 'scramble-sent' | 'key-requested' | 'done' = 'scramble-sent';
  const encrypt = (key: KeyObject): Buffer => {
    step = 'done';
    return sha2RsaEncrypt(passwordBytes(opts), nonce, key);
  };
  return {
    plugin: Plugin.CACHING_SHA2,
    start(data) {
      nonce = Buffer.from(nonce20(data));
      step = 'scramble-sent';
      return sha2Scramble(passwordBytes(opts), nonce);
    },
    more(data) {
      switch (step) {
        case 'scramble-sent': {
          if (data.length === 1 && data[0] === Sha2.FAST_AUTH_SUCCESS) {
            step = 'done';
            return undefined; // the OK packet follows
          }
          if (data.length !== 1 || data[0] !== Sha2.PERFORM_FULL_AUTH) {
            throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `caching_sha2_password: unexpected AuthMoreData of ${data.length} bytes after the scramble`);
          }
          if (opts.secure) {
            step = 'done';
            return Buffer.concat([passwordBytes(opts), Buffer.from([0])]);
          }
          if (opts.serverPublicKey) return encrypt(parseKey(opts.serverPublicKey, 'pinned (upstream.serverPublicKey)'));
          if (!opts.fetchServerPublicKey) {
            throw new KeylessError(
              'KL_ERR_UPSTREAM_AUTH_METHOD',
              'caching_sha2_password asked for full authentication on a connection without TLS; set upstream.tls, pin upstream.serverPublicKey, or allow upstream.fetchServerPublicKey',
            );
          }
          step = 'key-requested';
          return Buffer.from([Sha2.REQUEST_PUBLIC_KEY]);
        }
        case 'key-requested':
          return encrypt(parseKey(data, 'upstream'));
        case 'done':
          throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'caching_sha2_password: AuthMoreData after the exchange finished');
      }
    },
  };
}

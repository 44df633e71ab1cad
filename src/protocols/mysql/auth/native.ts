// mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))). An empty password
// is an empty response.
import { createHash } from 'node:crypto';
import { Plugin } from '../constants.ts';
import { nonce20, passwordBytes, xor, type AuthExchange, type AuthOptions } from './types.ts';

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function nativeScramble(password: Buffer, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const stage1 = sha1(password);
  return xor(stage1, sha1(nonce, sha1(stage1)));
}

export function nativePassword(opts: AuthOptions): AuthExchange {
  return {
    plugin: Plugin.NATIVE,
    start: (data) => nativeScramble(passwordBytes(opts), nonce20(data)),
    more: () => undefined,
  };
}

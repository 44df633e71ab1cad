// What an upstream auth plugin is to the login loop: a response to the server's nonce, then one
// answer per AuthMoreData packet. Plugins see the password only through `Secret.reveal()`, at the
// point where they hash or encrypt it.
import type { Secret } from '../../../credentials/secret.ts';

export interface AuthOptions {
  password: Secret | undefined;
  /** The upstream connection is TLS: plugins may send the password itself. */
  secure: boolean;
  /** Pinned PEM public key of the server for caching_sha2_password's RSA exchange. */
  serverPublicKey: Buffer | undefined;
  /** May the RSA public key be requested from the server over a connection without TLS? */
  fetchServerPublicKey: boolean;
}

export interface AuthExchange {
  readonly plugin: string;
  /** The response to the plugin data of the greeting or of an AuthSwitchRequest. */
  start(data: Buffer): Buffer;
  /** The answer to an AuthMoreData payload, or undefined when the next packet is to be awaited. */
  more(data: Buffer): Buffer | undefined;
}

/** The password's bytes as the C clients send them: UTF-8, no terminator. */
export function passwordBytes(opts: AuthOptions): Buffer {
  return Buffer.from(opts.password?.reveal() ?? '', 'utf8');
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/** The nonce a scramble-based plugin hashes: the first 20 bytes (servers append a NUL). */
export function nonce20(data: Buffer): Buffer {
  return data.subarray(0, 20);
}

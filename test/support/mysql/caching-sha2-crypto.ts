// The server-side arithmetic of caching_sha2_password, from the MySQL source documentation
// (page_caching_sha2_authentication_exchanges):
//   Scramble   = XOR(SHA256(password), SHA256(SHA256(SHA256(password)), Nonce))
//   Hash entry = SHA256(SHA256(password))            — what the server's cache holds per account
//   RSA path   = RSA_PKCS1_OAEP(XOR(password || NUL, Nonce repeated))   — SHA-1 OAEP, as MySQL
import { constants, createHash, generateKeyPair, privateDecrypt, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export const NONCE_LENGTH = 20;

export function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * A 20-byte nonce as MySQL makes it (generate_user_salt): 7-bit bytes, never NUL (the handshake
 * NUL-terminates part 2) and never '$' (the separator of stored authentication strings).
 */
export function generateNonce(): Buffer {
  const nonce = randomBytes(NONCE_LENGTH);
  for (let i = 0; i < nonce.length; i++) {
    let b = nonce.readUInt8(i) & 0x7f;
    if (b === 0 || b === 0x24) b += 1;
    nonce.writeUInt8(b, i);
  }
  return nonce;
}

/** The cache entry for a password: SHA256(SHA256(password)). */
export function passwordHashEntry(password: string): Buffer {
  return sha256(sha256(Buffer.from(password, 'utf8')));
}

/**
 * Fast authentication: recover SHA256(password) from the client's scramble using the cached
 * SHA256(SHA256(password)) and check that it hashes back to the cache entry.
 */
export function verifyFastScramble(clientScramble: Buffer, nonce: Buffer, hashEntry: Buffer): boolean {
  if (clientScramble.length !== 32 || hashEntry.length !== 32) return false;
  const mask = sha256(hashEntry, nonce);
  const stage1 = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) stage1.writeUInt8(clientScramble.readUInt8(i) ^ mask.readUInt8(i), i);
  return timingSafeEqual(sha256(stage1), hashEntry);
}

/** XOR with the nonce repeated over the whole length (both directions of the RSA path). */
export function xorWithNonce(data: Buffer, nonce: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out.writeUInt8(data.readUInt8(i) ^ nonce.readUInt8(i % nonce.length), i);
  return out;
}

/** Constant-time comparison of a candidate password (bytes) with the account's password. */
export function passwordMatches(candidate: Buffer, password: string): boolean {
  return timingSafeEqual(sha256(candidate), sha256(Buffer.from(password, 'utf8')));
}

/**
 * Decrypts the client's RSA-encrypted password and undoes the nonce XOR. Returns the password
 * bytes without their NUL terminator, or null when the message does not decrypt or is not
 * NUL-terminated.
 */
export function decryptRsaPassword(cipher: Buffer, privateKey: KeyObject, nonce: Buffer): Buffer | null {
  let plain: Buffer;
  try {
    plain = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cipher);
  } catch {
    return null;
  }
  const password = xorWithNonce(plain, nonce);
  if (password.length === 0 || password.readUInt8(password.length - 1) !== 0) return null;
  return password.subarray(0, password.length - 1);
}

export interface RsaKeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** SubjectPublicKeyInfo PEM, as MySQL's caching_sha2_password_public_key_path file holds. */
  publicKeyPem: string;
  /** Modulus length in bytes: the exact size of every RSA-encrypted password. */
  modulusBytes: number;
}

export async function generateRsaKeyPair(modulusLength = 2048): Promise<RsaKeyPair> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>((resolve, reject) =>
    generateKeyPair('rsa', { modulusLength }, (err, pub, priv) => (err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }))),
  );
  return { publicKey, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), modulusBytes: modulusLength / 8 };
}

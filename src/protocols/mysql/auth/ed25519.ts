// MariaDB's client_ed25519: the server sends a 32-byte nonce and the client answers with an
// Ed25519 signature of it. MariaDB's twist (plugin/auth_ed25519/ref10/sign.c) is the key: where
// RFC 8032 hashes a 32-byte seed, MariaDB hashes the password itself, of any length:
//   h = SHA-512(password); a = clamp(h[0..32]); prefix = h[32..64]; A = aB
//   r = SHA-512(prefix || M) mod L; R = rB; k = SHA-512(R || A || M) mod L; S = r + k·a mod L
// Node's crypto only signs with a 32-byte seed, so the curve arithmetic is done here with BigInt
// (extended twisted Edwards coordinates, RFC 8032 §5.1.4). For a 32-byte password the result is
// exactly RFC 8032 Ed25519 with that seed, which is what the unit tests check against Node's crypto.
// BigInt arithmetic is not constant-time; the only observer is the upstream, across a network.
import { createHash } from 'node:crypto';
import { KeylessError } from '../../../errors.ts';
import { Plugin } from '../constants.ts';
import { passwordBytes, type AuthExchange, type AuthOptions } from './types.ts';

const P = (1n << 255n) - 19n;
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
    e >>= 1n;
  }
  return result;
}

const D2 = mod(2n * mod(-121665n * pow(121666n, P - 2n)));

/** A point in extended coordinates: x = X/Z, y = Y/Z, xy = T/Z. */
type Point = readonly [bigint, bigint, bigint, bigint];

const BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BASE_Y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;
const BASE: Point = [BASE_X, BASE_Y, 1n, mod(BASE_X * BASE_Y)];
const IDENTITY: Point = [0n, 1n, 1n, 0n];

// add-2008-hwcd-3 (a = -1)
function add(p: Point, q: Point): Point {
  const [x1, y1, z1, t1] = p;
  const [x2, y2, z2, t2] = q;
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(t1 * D2 * t2);
  const d = mod(2n * z1 * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

// dbl-2008-hwcd (a = -1)
function double(p: Point): Point {
  const [x1, y1, z1] = p;
  const a = mod(x1 * x1);
  const b = mod(y1 * y1);
  const c = mod(2n * z1 * z1);
  const e = mod((x1 + y1) * (x1 + y1) - a - b);
  const g = b - a;
  const f = g - c;
  const h = -a - b;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

/**
 * Fixed-base comb with 4-bit windows: WINDOWS[i][j] = j · 16^i · B, built on first use (1,024
 * points), so a scalar multiplication is 64 additions.
 */
let windows: Point[][] | undefined;

function multiplyBase(n: bigint): Point {
  if (!windows) {
    windows = [];
    let base = BASE;
    for (let i = 0; i < 64; i++) {
      const row: Point[] = [IDENTITY, base];
      for (let j = 2; j < 16; j++) row.push(add(row[j - 1]!, base));
      windows.push(row);
      base = double(double(double(double(base))));
    }
  }
  let acc = IDENTITY;
  let k = n;
  for (let i = 0; i < 64 && k > 0n; i++, k >>= 4n) {
    const digit = Number(k & 15n);
    if (digit !== 0) acc = add(acc, windows[i]![digit]!);
  }
  return acc;
}

function encodePoint(p: Point): Buffer {
  const zInv = pow(p[2], P - 2n);
  const x = mod(p[0] * zInv);
  const y = mod(p[1] * zInv);
  const out = littleEndian(y);
  out[31]! |= Number(x & 1n) << 7;
  return out;
}

function littleEndian(n: bigint): Buffer {
  const out = Buffer.alloc(32);
  let v = n;
  for (let i = 0; i < 32; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function fromLittleEndian(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function sha512(...parts: Buffer[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

function expand(password: Buffer): { a: bigint; prefix: Buffer } {
  const h = sha512(password);
  const a = Buffer.from(h.subarray(0, 32));
  a[0]! &= 248;
  a[31]! &= 63;
  a[31]! |= 64;
  return { a: fromLittleEndian(a), prefix: h.subarray(32) };
}

/** The public key MariaDB stores for a password (base64 of it is `authentication_string`). */
export function ed25519PublicKey(password: Buffer): Buffer {
  return encodePoint(multiplyBase(expand(password).a));
}

/** MariaDB client_ed25519 signature of `message` with the key derived from `password`. */
export function ed25519Sign(password: Buffer, message: Buffer, publicKey = ed25519PublicKey(password)): Buffer {
  const { a, prefix } = expand(password);
  const r = mod(fromLittleEndian(sha512(prefix, message)), L);
  const R = encodePoint(multiplyBase(r));
  const k = mod(fromLittleEndian(sha512(R, publicKey, message)), L);
  const S = mod(r + k * a, L);
  return Buffer.concat([R, littleEndian(S)]);
}

export const ED25519_NONCE_LENGTH = 32;

/** Public keys by the Secret they derive from: a cached credential signs at half the cost. */
const publicKeys = new WeakMap<object, Buffer>();

export function clientEd25519(opts: AuthOptions): AuthExchange {
  return {
    plugin: Plugin.ED25519,
    start(data) {
      if (data.length < ED25519_NONCE_LENGTH) {
        throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `client_ed25519: nonce of ${data.length} bytes, expected ${ED25519_NONCE_LENGTH}`);
      }
      const password = passwordBytes(opts);
      let publicKey = opts.password ? publicKeys.get(opts.password) : undefined;
      if (!publicKey) {
        publicKey = ed25519PublicKey(password);
        if (opts.password) publicKeys.set(opts.password, publicKey);
      }
      return ed25519Sign(password, data.subarray(0, ED25519_NONCE_LENGTH), publicKey);
    },
    more: () => undefined,
  };
}

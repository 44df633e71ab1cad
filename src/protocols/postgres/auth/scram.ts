// SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, client side (RFC 5802, RFC 7677; channel binding
// tls-server-end-point, RFC 5929), as PostgreSQL speaks it. The server's final signature is
// always verified. PBKDF2 runs asynchronously and its result is cached per (password, salt,
// iterations), so repeat connections with the same credential skip it.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual, type X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
export const SCRAM_SHA_256_PLUS = 'SCRAM-SHA-256-PLUS';
/** A hostile or broken server could ask for any count; this bounds the work one login can cost. */
export const MAX_ITERATIONS = 10_000_000;

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/**
 * Salted passwords by a digest of (password, salt, iterations); bounded, oldest dropped first.
 * Holds the promise, so a burst of first connections computes PBKDF2 once, not once each.
 */
class SaltedPasswordCache {
  readonly #map = new Map<string, Promise<Buffer>>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
    const key = createHash('sha256').update(password, 'utf8').update('\0').update(salt).update(`\0${iterations}`).digest('base64');
    const hit = this.#map.get(key);
    if (hit) {
      this.#map.delete(key);
      this.#map.set(key, hit);
      return hit;
    }
    const salted = pbkdf2Async(password, salt, iterations, 32, 'sha256');
    this.#map.set(key, salted);
    salted.catch(() => this.#map.delete(key));
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
    return salted;
  }
  get size(): number {
    return this.#map.size;
  }
}

export const saltedPasswords = new SaltedPasswordCache(1024);

/** ClientKey, StoredKey and ServerKey depend on the salted password alone: derive them once. */
const derivedKeys = new WeakMap<Buffer, { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer }>();
function keysOf(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  let k = derivedKeys.get(salted);
  if (!k) {
    const clientKey = hmac(salted, 'Client Key');
    k = { clientKey, storedKey: createHash('sha256').update(clientKey).digest(), serverKey: hmac(salted, 'Server Key') };
    derivedKeys.set(salted, k);
  }
  return k;
}

/** Signature OIDs → the hash RFC 5929 §4.1 says to use (MD5 and SHA-1 are upgraded to SHA-256). */
const CB_HASH_BY_OID: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';
/** Hash algorithm OIDs (value bytes, hex) as they appear in RSASSA-PSS parameters. */
const HASH_BY_OID_BYTES: Record<string, string> = {
  '2b0e03021a': 'sha256', // SHA-1, upgraded as RFC 5929 says
  '608648016503040201': 'sha256',
  '608648016503040202': 'sha384',
  '608648016503040203': 'sha512',
  '608648016503040204': 'sha224',
};

/** tls-server-end-point channel binding data for the server's certificate, or undefined if none applies. */
export function tlsServerEndPoint(cert: X509Certificate): Buffer | undefined {
  const oid = (cert as X509Certificate & { signatureAlgorithmOid?: string }).signatureAlgorithmOid;
  const hash = oid === undefined ? 'sha256' : oid === RSASSA_PSS ? pssHash(cert.raw) : CB_HASH_BY_OID[oid];
  if (!hash) return undefined;
  return createHash(hash).update(cert.raw).digest();
}

/** One DER TLV: tag, and where its value starts and ends. */
function tlv(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len };
}

/**
 * The hash of an RSASSA-PSS certificate signature, from its parameters (RFC 4055): what
 * PostgreSQL binds with. Absent parameters mean SHA-1, which RFC 5929 upgrades to SHA-256.
 */
function pssHash(der: Buffer): string | undefined {
  try {
    const certificate = tlv(der, 0);
    const tbs = tlv(der, certificate.start);
    const sigAlg = tlv(der, tbs.end); // AlgorithmIdentifier { OID, RSASSA-PSS-params }
    const algOid = tlv(der, sigAlg.start);
    if (algOid.end >= sigAlg.end) return 'sha256';
    const params = tlv(der, algOid.end);
    if (params.start >= params.end) return 'sha256';
    const first = tlv(der, params.start);
    if (first.tag !== 0xa0) return 'sha256'; // no [0] hashAlgorithm: SHA-1 → SHA-256
    const hashAlg = tlv(der, first.start);
    const hashOid = tlv(der, hashAlg.start);
    return HASH_BY_OID_BYTES[der.subarray(hashOid.start, hashOid.end).toString('hex')];
  } catch {
    return undefined;
  }
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export interface ScramOptions {
  mechanism: typeof SCRAM_SHA_256 | typeof SCRAM_SHA_256_PLUS;
  /** tls-server-end-point data when the mechanism is -PLUS. */
  channelBinding?: Buffer;
  /** On TLS but the server offered no -PLUS: tell it so ('y'), which detects a downgrade. */
  clientSupportsBinding?: boolean;
  nonce?: string;
}

/** One SCRAM exchange. */
export class ScramClient {
  readonly mechanism: ScramOptions['mechanism'];
  readonly #password: string;
  readonly #nonce: string;
  readonly #gs2: string;
  readonly #cb: Buffer | undefined;
  #clientFirstBare = '';
  #serverSignature: Buffer | undefined;

  constructor(password: string, opts: ScramOptions) {
    this.mechanism = opts.mechanism;
    this.#password = password;
    this.#nonce = opts.nonce ?? randomBytes(18).toString('base64');
    if (opts.mechanism === SCRAM_SHA_256_PLUS) {
      if (!opts.channelBinding) throw new ScramError('SCRAM-SHA-256-PLUS needs channel binding data');
      this.#gs2 = 'p=tls-server-end-point,,';
      this.#cb = opts.channelBinding;
    } else {
      this.#gs2 = opts.clientSupportsBinding ? 'y,,' : 'n,,';
    }
  }

  /** client-first-message. PostgreSQL ignores the SCRAM user name (it has the startup user). */
  clientFirst(): string {
    this.#clientFirstBare = `n=*,r=${this.#nonce}`;
    return this.#gs2 + this.#clientFirstBare;
  }

  /** client-final-message for the server-first-message. */
  async clientFinal(serverFirst: string): Promise<string> {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const saltB64 = attrs.get('s');
    const iterText = attrs.get('i');
    if (attrs.has('m')) throw new ScramError('server-first-message has a mandatory extension');
    if (!nonce || !saltB64 || !iterText) throw new ScramError('server-first-message lacks r, s or i');
    if (!nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) throw new ScramError('server nonce does not extend the client nonce');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(saltB64)) throw new ScramError('salt is not base64');
    if (!/^[1-9]\d{0,9}$/.test(iterText)) throw new ScramError('iteration count is not a positive integer');
    const iterations = Number(iterText);
    if (iterations > MAX_ITERATIONS) throw new ScramError(`iteration count ${iterations} exceeds ${MAX_ITERATIONS}`);
    const salt = Buffer.from(saltB64, 'base64');
    const salted = await saltedPasswords.get(this.#password, salt, iterations);
    const cbInput = this.#cb ? Buffer.concat([Buffer.from(this.#gs2), this.#cb]) : Buffer.from(this.#gs2);
    const withoutProof = `c=${cbInput.toString('base64')},r=${nonce}`;
    const authMessage = `${this.#clientFirstBare},${serverFirst},${withoutProof}`;
    const { clientKey, storedKey, serverKey } = keysOf(salted);
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.#serverSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Check the server-final-message; throws unless the server proved it knows the password. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = parseAttributes(serverFinal);
    const err = attrs.get('e');
    if (err !== undefined) throw new ScramError(`server reported SCRAM error: ${err}`);
    const v = attrs.get('v');
    if (!v || !this.#serverSignature) throw new ScramError('server-final-message lacks a signature');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.#serverSignature.length || !timingSafeEqual(got, this.#serverSignature)) {
      throw new ScramError('server signature does not match: the server does not know the password');
    }
  }
}

function parseAttributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    if (part.length < 2 || part[1] !== '=') throw new ScramError('malformed SCRAM message');
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

// ScramClient checked against code written here from RFC 5802 (Hi, ClientKey, StoredKey,
// ServerKey, AuthMessage), which itself is first checked against the RFC 7677 test vector, and
// against node-postgres's SCRAM client as a second independent implementation.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_ITERATIONS,
  SCRAM_SHA_256,
  SCRAM_SHA_256_PLUS,
  ScramClient,
  ScramError,
  saltedPasswords,
  tlsServerEndPoint,
} from '../../../../../src/protocols/postgres/auth/scram.ts';

// ---- RFC 5802 §3, written out plainly ----------------------------------------------------------

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const b64 = (b: Buffer): string => b.toString('base64');
const H = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const HMAC = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Hi(str, salt, i): PBKDF2 with HMAC-SHA-256 and one output block, by the RFC's definition. */
function Hi(password: string, salt: Buffer, iterations: number): Buffer {
  let u = HMAC(utf8(password), Buffer.concat([salt, Buffer.from([0, 0, 0, 1])]));
  let out = u;
  for (let k = 2; k <= iterations; k++) {
    u = HMAC(utf8(password), u);
    out = xor(out, u);
  }
  return out;
}

function rfcKeys(password: string, salt: Buffer, iterations: number): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer; salted: Buffer } {
  const salted = Hi(password, salt, iterations);
  const clientKey = HMAC(salted, 'Client Key');
  return { salted, clientKey, storedKey: H(clientKey), serverKey: HMAC(salted, 'Server Key') };
}

/** ClientProof and ServerSignature for one AuthMessage. */
function rfcProof(password: string, salt: Buffer, iterations: number, authMessage: string): { proof: string; serverSignature: string } {
  const k = rfcKeys(password, salt, iterations);
  return {
    proof: b64(xor(k.clientKey, HMAC(k.storedKey, authMessage))),
    serverSignature: b64(HMAC(k.serverKey, authMessage)),
  };
}

/**
 * A SCRAM-SHA-256 server that, like PostgreSQL, keeps only StoredKey and ServerKey. It checks
 * the channel binding, the nonce and the proof, and answers with `v=` or `e=`.
 */
class RfcScramServer {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly #storedKey: Buffer;
  readonly #serverKey: Buffer;
  readonly #serverNonce: string;
  readonly #cbData: Buffer | undefined;
  #clientFirstBare = '';
  #gs2 = '';
  #serverFirst = '';
  #nonce = '';
  /** The proof checked out (set by final()). */
  proofValid = false;

  constructor(password: string, opts: { salt?: Buffer; iterations?: number; cbData?: Buffer } = {}) {
    this.salt = opts.salt ?? randomBytes(16);
    this.iterations = opts.iterations ?? 4096;
    const k = rfcKeys(password, this.salt, this.iterations);
    this.#storedKey = k.storedKey;
    this.#serverKey = k.serverKey;
    this.#serverNonce = randomBytes(18).toString('base64');
    this.#cbData = opts.cbData;
  }

  first(clientFirst: string): string {
    const m = /^(n|y|p=[A-Za-z0-9.-]+),,(n=[^,]*,r=([^,]+))$/.exec(clientFirst);
    if (!m) throw new Error(`test server: bad client-first-message ${clientFirst}`);
    this.#gs2 = `${m[1]},,`;
    this.#clientFirstBare = m[2]!;
    this.#nonce = m[3]! + this.#serverNonce;
    this.#serverFirst = `r=${this.#nonce},s=${b64(this.salt)},i=${this.iterations}`;
    return this.#serverFirst;
  }

  final(clientFinal: string): string {
    const at = clientFinal.lastIndexOf(',p=');
    const withoutProof = clientFinal.slice(0, at);
    const proof = Buffer.from(clientFinal.slice(at + 3), 'base64');
    const m = /^c=([^,]*),r=([^,]*)$/.exec(withoutProof);
    if (!m) return 'e=invalid-encoding';
    const expectedCb = this.#gs2.startsWith('p=') ? Buffer.concat([utf8(this.#gs2), this.#cbData ?? Buffer.alloc(0)]) : utf8(this.#gs2);
    if (m[1] !== b64(expectedCb)) return 'e=channel-bindings-dont-match';
    if (m[2] !== this.#nonce) return 'e=other-error';
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const clientKey = xor(proof, HMAC(this.#storedKey, authMessage));
    if (!H(clientKey).equals(this.#storedKey)) return 'e=invalid-proof';
    this.proofValid = true;
    return `v=${b64(HMAC(this.#serverKey, authMessage))}`;
  }
}

// ---- RFC 7677 §3 test vector -------------------------------------------------------------------

const RFC = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinalWithoutProof: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  iterations: 4096,
} as const;

describe('the independent RFC 5802 code used as the oracle', () => {
  it('reproduces the RFC 7677 SCRAM-SHA-256 test vector', () => {
    const authMessage = `${RFC.clientFirstBare},${RFC.serverFirst},${RFC.clientFinalWithoutProof}`;
    const { proof, serverSignature } = rfcProof(RFC.password, RFC.salt, RFC.iterations, authMessage);
    expect(proof).toBe(RFC.proof);
    expect(`v=${serverSignature}`).toBe(RFC.serverFinal);
  });

  it('the test server rejects a wrong proof (so it can tell)', () => {
    const server = new RfcScramServer('right');
    const serverFirst = server.first('n,,n=*,r=abc');
    const nonce = /r=([^,]+)/.exec(serverFirst)![1]!;
    expect(server.final(`c=biws,r=${nonce},p=${b64(Buffer.alloc(32))}`)).toBe('e=invalid-proof');
    expect(server.proofValid).toBe(false);
  });
});

describe('ScramClient against the RFC 7677 vector (with PostgreSQL\'s n=* user)', () => {
  // PostgreSQL ignores the SCRAM user name, so its clients send n=*: the AuthMessage, and so the
  // proof, differ from the RFC's n=user example; the expected values come from the oracle above.
  const bare = `n=*,r=${RFC.clientNonce}`;
  const authMessage = `${bare},${RFC.serverFirst},${RFC.clientFinalWithoutProof}`;
  const want = rfcProof(RFC.password, RFC.salt, RFC.iterations, authMessage);

  it('sends the gs2 header n,, and the bare message with the injected nonce', () => {
    const c = new ScramClient(RFC.password, { mechanism: SCRAM_SHA_256, nonce: RFC.clientNonce });
    expect(c.mechanism).toBe(SCRAM_SHA_256);
    expect(c.clientFirst()).toBe(`n,,${bare}`);
  });

  it('computes the client-final-message the RFC way', async () => {
    const c = new ScramClient(RFC.password, { mechanism: SCRAM_SHA_256, nonce: RFC.clientNonce });
    c.clientFirst();
    expect(await c.clientFinal(RFC.serverFirst)).toBe(`${RFC.clientFinalWithoutProof},p=${want.proof}`);
  });

  it('accepts the correct server signature and rejects the n=user one', async () => {
    const c = new ScramClient(RFC.password, { mechanism: SCRAM_SHA_256, nonce: RFC.clientNonce });
    c.clientFirst();
    await c.clientFinal(RFC.serverFirst);
    expect(() => c.verifyServerFinal(`v=${want.serverSignature}`)).not.toThrow();
    expect(() => c.verifyServerFinal(RFC.serverFinal)).toThrow(ScramError);
  });

  it('agrees with node-postgres\'s SCRAM client byte for byte', async () => {
    const require = createRequire(import.meta.url);
    const sasl = require('pg/lib/crypto/sasl.js') as {
      startSession(mechanisms: string[]): { clientNonce: string; response: string; serverSignature?: string };
      continueSession(session: object, password: string, serverData: string): Promise<void>;
      finalizeSession(session: object, serverData: string): void;
    };
    const session = sasl.startSession([SCRAM_SHA_256]);
    session.clientNonce = RFC.clientNonce;
    await sasl.continueSession(session, RFC.password, RFC.serverFirst);
    const c = new ScramClient(RFC.password, { mechanism: SCRAM_SHA_256, nonce: RFC.clientNonce });
    c.clientFirst();
    expect(await c.clientFinal(RFC.serverFirst)).toBe(session.response);
    expect(`v=${session.serverSignature}`).toBe(`v=${want.serverSignature}`);
  });
});

async function exchange(client: ScramClient, server: RfcScramServer): Promise<string> {
  const serverFirst = server.first(client.clientFirst());
  return server.final(await client.clientFinal(serverFirst));
}

describe('ScramClient against an RFC 5802 server verifier', () => {
  it('completes a full exchange: the server accepts the proof, the client accepts the signature', async () => {
    const password = `pw-${randomBytes(6).toString('hex')} ünïcødé`;
    const server = new RfcScramServer(password);
    const client = new ScramClient(password, { mechanism: SCRAM_SHA_256 });
    const serverFinal = await exchange(client, server);
    expect(server.proofValid).toBe(true);
    expect(serverFinal).toMatch(/^v=/);
    expect(() => client.verifyServerFinal(serverFinal)).not.toThrow();
  });

  it('a wrong password: the server refuses the proof and the client throws on its e=', async () => {
    const server = new RfcScramServer('the-right-one');
    const client = new ScramClient('a-wrong-one', { mechanism: SCRAM_SHA_256 });
    const serverFinal = await exchange(client, server);
    expect(serverFinal).toBe('e=invalid-proof');
    expect(() => client.verifyServerFinal(serverFinal)).toThrow(ScramError);
    expect(() => client.verifyServerFinal(serverFinal)).toThrow(/invalid-proof/);
  });

  it('a server that does not know the password cannot forge the signature', async () => {
    const client = new ScramClient('real', { mechanism: SCRAM_SHA_256 });
    const impostor = new RfcScramServer('guess');
    const serverFirst = impostor.first(client.clientFirst());
    const clientFinal = await client.clientFinal(serverFirst);
    // The impostor signs with its own keys, skipping the proof check.
    const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
    const forged = rfcProof('guess', impostor.salt, impostor.iterations, `${client.clientFirst().slice(3)},${serverFirst},${withoutProof}`).serverSignature;
    expect(() => client.verifyServerFinal(`v=${forged}`)).toThrow(ScramError);
  });

  it.each([
    ['an empty signature', 'v='],
    ['a truncated signature', `v=${b64(Buffer.alloc(31, 1))}`],
    ['a too-long signature', `v=${b64(Buffer.alloc(33, 1))}`],
    ['no v attribute', 'x=abc'],
    ['garbage', 'not a scram message'],
    ['an empty message', ''],
  ])('rejects a server-final-message with %s', async (_name, serverFinal) => {
    const server = new RfcScramServer('pw');
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256 });
    await exchange(client, server);
    expect(() => client.verifyServerFinal(serverFinal)).toThrow(ScramError);
  });

  it.each(['invalid-proof', 'other-error', 'channel-bindings-dont-match'])('turns e=%s into a ScramError naming it', async (e) => {
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256 });
    await exchange(client, new RfcScramServer('pw'));
    expect(() => client.verifyServerFinal(`e=${e}`)).toThrow(ScramError);
    expect(() => client.verifyServerFinal(`e=${e}`)).toThrow(e);
  });

  it('refuses to verify before the client-final-message was computed', () => {
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256 });
    client.clientFirst();
    expect(() => client.verifyServerFinal(`v=${b64(Buffer.alloc(32))}`)).toThrow(ScramError);
  });

  it('generates a fresh printable nonce per exchange', () => {
    const a = new ScramClient('pw', { mechanism: SCRAM_SHA_256 }).clientFirst();
    const b = new ScramClient('pw', { mechanism: SCRAM_SHA_256 }).clientFirst();
    const nonceOf = (m: string): string => /,r=([^,]+)$/.exec(m)![1]!;
    expect(nonceOf(a)).not.toBe(nonceOf(b));
    expect(nonceOf(a)).toMatch(/^[\x21-\x2b\x2d-\x7e]{16,}$/);
  });
});

describe('ScramClient: malformed server-first-messages', () => {
  const nonce = 'clientnonce';
  const salt = b64(Buffer.from('saltsalt'));
  const cases: [string, string][] = [
    ['a nonce that does not extend the client nonce', `r=othernonceXYZ,s=${salt},i=4096`],
    ['a nonce equal to the client nonce', `r=${nonce},s=${salt},i=4096`],
    ['a nonce that is a prefix of the client nonce', `r=client,s=${salt},i=4096`],
    ['no nonce', `s=${salt},i=4096`],
    ['no salt', `r=${nonce}XYZ,i=4096`],
    ['no iteration count', `r=${nonce}XYZ,s=${salt}`],
    ['an empty salt', `r=${nonce}XYZ,s=,i=4096`],
    ['a salt that is not base64', `r=${nonce}XYZ,s=***,i=4096`],
    ['iterations 0', `r=${nonce}XYZ,s=${salt},i=0`],
    ['negative iterations', `r=${nonce}XYZ,s=${salt},i=-1`],
    ['fractional iterations', `r=${nonce}XYZ,s=${salt},i=1.5`],
    ['non-numeric iterations', `r=${nonce}XYZ,s=${salt},i=many`],
    ['empty iterations', `r=${nonce}XYZ,s=${salt},i=`],
    ['iterations with a leading zero', `r=${nonce}XYZ,s=${salt},i=04096`],
    ['iterations with trailing junk', `r=${nonce}XYZ,s=${salt},i=4096x`],
    ['iterations above the cap', `r=${nonce}XYZ,s=${salt},i=${MAX_ITERATIONS + 1}`],
    ['absurd iterations', `r=${nonce}XYZ,s=${salt},i=99999999999`],
    ['a mandatory extension', `m=ext,r=${nonce}XYZ,s=${salt},i=4096`],
    ['an attribute without =', `r=${nonce}XYZ,s,i=4096`],
    ['an empty attribute', `r=${nonce}XYZ,,s=${salt},i=4096`],
    ['an empty message', ''],
  ];
  it.each(cases)('rejects %s', async (_name, serverFirst) => {
    const c = new ScramClient('pw', { mechanism: SCRAM_SHA_256, nonce });
    c.clientFirst();
    await expect(c.clientFinal(serverFirst)).rejects.toBeInstanceOf(ScramError);
  });

  it('accepts a valid message with the same shape (the cases above differ only in the flaw)', async () => {
    const c = new ScramClient('pw', { mechanism: SCRAM_SHA_256, nonce });
    c.clientFirst();
    await expect(c.clientFinal(`r=${nonce}XYZ,s=${salt},i=4096`)).resolves.toMatch(/^c=biws,r=clientnonceXYZ,p=/);
  });
});

describe('channel binding', () => {
  it('-PLUS needs binding data', () => {
    expect(() => new ScramClient('pw', { mechanism: SCRAM_SHA_256_PLUS })).toThrow(ScramError);
  });

  it('-PLUS sends the p=tls-server-end-point gs2 header and binds the data in c=', async () => {
    const cbData = randomBytes(32);
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256_PLUS, channelBinding: cbData, nonce: 'plusnonce' });
    expect(client.mechanism).toBe(SCRAM_SHA_256_PLUS);
    expect(client.clientFirst()).toBe('p=tls-server-end-point,,n=*,r=plusnonce');
    const server = new RfcScramServer('pw', { cbData });
    const serverFirst = server.first(client.clientFirst());
    const clientFinal = await client.clientFinal(serverFirst);
    const c = /^c=([^,]+),/.exec(clientFinal)![1]!;
    expect(Buffer.from(c, 'base64')).toEqual(Buffer.concat([utf8('p=tls-server-end-point,,'), cbData]));
    const serverFinal = server.final(clientFinal);
    expect(server.proofValid).toBe(true);
    expect(() => client.verifyServerFinal(serverFinal)).not.toThrow();
  });

  it('-PLUS with another certificate\'s binding data is refused by the server', async () => {
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256_PLUS, channelBinding: randomBytes(32) });
    const server = new RfcScramServer('pw', { cbData: randomBytes(32) });
    const serverFinal = await exchange(client, server);
    expect(serverFinal).toBe('e=channel-bindings-dont-match');
    expect(() => client.verifyServerFinal(serverFinal)).toThrow(ScramError);
  });

  it('y,, when the client supports binding but the server did not offer -PLUS', async () => {
    const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256, clientSupportsBinding: true, nonce: 'ynonce' });
    expect(client.clientFirst()).toBe('y,,n=*,r=ynonce');
    const server = new RfcScramServer('pw');
    const serverFinal = await exchange(client, server);
    expect(server.proofValid).toBe(true);
    expect(() => client.verifyServerFinal(serverFinal)).not.toThrow();
  });

  it('c= is base64 of the gs2 header alone without -PLUS (biws for n,, and eSws for y,,)', async () => {
    for (const [supports, c] of [[false, 'biws'], [true, 'eSws']] as const) {
      const client = new ScramClient('pw', { mechanism: SCRAM_SHA_256, clientSupportsBinding: supports, nonce: 'n0nce' });
      client.clientFirst();
      expect(await client.clientFinal(`r=n0nceSERVER,s=${b64(Buffer.from('salt'))},i=4096`)).toMatch(new RegExp(`^c=${c},r=n0nceSERVER,p=`));
    }
  });
});

describe('salted password cache', () => {
  it('returns the RFC Hi() value, and the same key object again without recomputing', async () => {
    const salt = randomBytes(16);
    const first = await saltedPasswords.get('cache-pw', salt, 4096);
    expect(first).toEqual(Hi('cache-pw', salt, 4096));
    const again = await saltedPasswords.get('cache-pw', Buffer.from(salt), 4096);
    expect(again).toBe(first);
  });

  it('concurrent first logins share one PBKDF2 computation', async () => {
    const salt = randomBytes(16);
    const a = saltedPasswords.get('burst-pw', salt, 4096);
    const b = saltedPasswords.get('burst-pw', Buffer.from(salt), 4096);
    expect(b).toBe(a);
    expect(await a).toEqual(Hi('burst-pw', salt, 4096));
  });

  it('a failed computation is not cached', async () => {
    const before = saltedPasswords.size;
    // PBKDF2 refuses an iteration count of 0.
    await expect(saltedPasswords.get('bad-pw', randomBytes(16), 0)).rejects.toThrow();
    expect(saltedPasswords.size).toBe(before);
  });

  it('keys on password, salt and iterations', async () => {
    const salt = randomBytes(16);
    const base = await saltedPasswords.get('k-pw', salt, 4096);
    expect(await saltedPasswords.get('k-pw2', salt, 4096)).not.toBe(base);
    expect(await saltedPasswords.get('k-pw', randomBytes(16), 4096)).not.toBe(base);
    const other = await saltedPasswords.get('k-pw', salt, 4097);
    expect(other).not.toBe(base);
    expect(other).toEqual(Hi('k-pw', salt, 4097));
  });

  it('a second exchange with the same credential adds no entry', async () => {
    const salt = randomBytes(16);
    const before = saltedPasswords.size;
    const serverFirstFor = (c: ScramClient): string => `r=${/r=([^,]+)$/.exec(c.clientFirst())![1]}srv,s=${b64(salt)},i=4096`;
    const one = new ScramClient('repeat-pw', { mechanism: SCRAM_SHA_256 });
    await one.clientFinal(serverFirstFor(one));
    expect(saltedPasswords.size).toBe(Math.min(before + 1, 1024));
    const two = new ScramClient('repeat-pw', { mechanism: SCRAM_SHA_256 });
    await two.clientFinal(serverFirstFor(two));
    expect(saltedPasswords.size).toBe(Math.min(before + 1, 1024));
  });
});

describe('tlsServerEndPoint', () => {
  const fake = (oid: string | undefined, raw: Buffer): X509Certificate =>
    ({ signatureAlgorithmOid: oid, raw }) as unknown as X509Certificate;
  const raw = Buffer.from('a certificate, DER-encoded');
  const digest = (alg: string, data: Buffer): Buffer => createHash(alg).update(data).digest();

  it.each([
    ['md5WithRSAEncryption (upgraded)', '1.2.840.113549.1.1.4', 'sha256'],
    ['sha1WithRSAEncryption (upgraded)', '1.2.840.113549.1.1.5', 'sha256'],
    ['ecdsa-with-SHA1 (upgraded)', '1.2.840.10045.4.1', 'sha256'],
    ['sha224WithRSAEncryption', '1.2.840.113549.1.1.14', 'sha224'],
    ['sha256WithRSAEncryption', '1.2.840.113549.1.1.11', 'sha256'],
    ['sha384WithRSAEncryption', '1.2.840.113549.1.1.12', 'sha384'],
    ['sha512WithRSAEncryption', '1.2.840.113549.1.1.13', 'sha512'],
    ['ecdsa-with-SHA256', '1.2.840.10045.4.3.2', 'sha256'],
    ['ecdsa-with-SHA384', '1.2.840.10045.4.3.3', 'sha384'],
    ['ecdsa-with-SHA512', '1.2.840.10045.4.3.4', 'sha512'],
  ])('%s (%s) hashes the DER with %s (RFC 5929 §4.1)', (_name, oid, alg) => {
    expect(tlsServerEndPoint(fake(oid, raw))).toEqual(digest(alg, raw));
  });

  it('gives no binding data for a signature algorithm it cannot map', () => {
    expect(tlsServerEndPoint(fake('1.3.101.113', raw))).toBeUndefined(); // Ed448
  });

  describe('with real certificates (openssl), checked against node-postgres\'s DER parser', () => {
    let dir = '';
    const certs = new Map<string, X509Certificate>();
    const openssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    };
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'keyless-scram-'));
      openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa.key');
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ec.key');
      const make = (name: string, key: string, ...extra: string[]): void => {
        openssl('req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`, ...extra);
        certs.set(name, new X509Certificate(readFileSync(join(dir, `${name}.pem`))));
      };
      make('rsa-sha256', 'rsa.key', '-sha256');
      make('rsa-sha384', 'rsa.key', '-sha384');
      make('rsa-sha512', 'rsa.key', '-sha512');
      make('ec-sha256', 'ec.key', '-sha256');
      make('ec-sha384', 'ec.key', '-sha384');
      make('rsa-pss-sha256', 'rsa.key', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32');
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const pgHash = (der: Buffer): string => {
      const require = createRequire(import.meta.url);
      const { signatureAlgorithmHashFromCertificate } = require('pg/lib/crypto/cert-signatures.js') as {
        signatureAlgorithmHashFromCertificate(der: Buffer): string;
      };
      return signatureAlgorithmHashFromCertificate(der).toLowerCase().replace('-', '');
    };

    it.each(['rsa-sha256', 'rsa-sha384', 'rsa-sha512', 'ec-sha256', 'ec-sha384'])('%s', (name) => {
      const cert = certs.get(name)!;
      const alg = pgHash(cert.raw);
      expect(alg).toBe(name.split('-')[1]);
      expect(tlsServerEndPoint(cert)).toEqual(digest(alg, cert.raw));
    });

    it('rsa-pss-sha256 binds with the PSS hash (SHA-256), as PostgreSQL does', () => {
      const cert = certs.get('rsa-pss-sha256')!;
      expect(pgHash(cert.raw)).toBe('sha256');
      expect(tlsServerEndPoint(cert)).toEqual(digest('sha256', cert.raw));
    });
  });
});

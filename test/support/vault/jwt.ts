// Kubernetes service-account JWTs for tests, signed with node:crypto (ES256 or RS256), and the
// verification the Vault double's kubernetes auth method does with its configured pem_keys.
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { uuid } from './random.ts';

export type JwtAlg = 'ES256' | 'RS256';

export interface ServiceAccountTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** The service account's uid; default a stable uuid per namespace/name for this issuer. */
  uid?: string;
  podName?: string;
  podUid?: string;
  /** Override the issuer's `iss`. */
  issuer?: string;
  /** `aud`; default the issuer URL, as a projected token has. */
  audience?: string | string[];
  /** Seconds since the epoch; default now. */
  issuedAt?: number;
  /** Seconds since the epoch; default issuedAt + ttlSeconds. */
  expiresAt?: number;
  /** Default 3600. */
  ttlSeconds?: number;
  /** Old-style secret-based token claims (`kubernetes.io/serviceaccount/...`, no exp). */
  legacy?: { secretName: string };
  /** Extra or overriding claims. */
  claims?: Record<string, unknown>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function signJwt(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject, alg: JwtAlg): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = alg === 'ES256' ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : sign('sha256', Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}

export class JwtFormatError extends Error {}

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

export function decodeJwt(jwt: string): DecodedJwt {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw new JwtFormatError('go-jose/go-jose: compact JWS format must have three parts');
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    if (!header || typeof header !== 'object' || !payload || typeof payload !== 'object') throw new Error('not an object');
    return { header: header as Record<string, unknown>, payload: payload as Record<string, unknown>, signingInput: `${parts[0]}.${parts[1]}`, signature: Buffer.from(parts[2]!, 'base64url') };
  } catch (e) {
    throw new JwtFormatError(`go-jose/go-jose: ${(e as Error).message}`);
  }
}

/** True when some key in `pemKeys` verifies the signature with the header's algorithm. */
export function verifyJwtSignature(jwt: DecodedJwt, pemKeys: readonly string[]): boolean {
  const alg = jwt.header.alg;
  if (alg !== 'ES256' && alg !== 'RS256') return false;
  for (const pem of pemKeys) {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      continue;
    }
    if (alg === 'ES256' && key.asymmetricKeyType !== 'ec') continue;
    if (alg === 'RS256' && key.asymmetricKeyType !== 'rsa') continue;
    const okSig = alg === 'ES256' ? verify('sha256', Buffer.from(jwt.signingInput), { key, dsaEncoding: 'ieee-p1363' }, jwt.signature) : verify('sha256', Buffer.from(jwt.signingInput), key, jwt.signature);
    if (okSig) return true;
  }
  return false;
}

/** A stand-in for the Kubernetes API server's service-account token signer. */
export class ServiceAccountIssuer {
  readonly alg: JwtAlg;
  readonly issuer: string;
  readonly publicKeyPem: string;
  readonly #key: KeyObject;
  readonly #kid: string;
  readonly #uids = new Map<string, string>();
  readonly #now: () => number;

  constructor(opts: { alg?: JwtAlg; issuer?: string; now?: () => number } = {}) {
    this.alg = opts.alg ?? 'ES256';
    this.issuer = opts.issuer ?? 'https://kubernetes.default.svc.cluster.local';
    this.#now = opts.now ?? Date.now;
    const { privateKey, publicKey } = this.alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.#key = privateKey;
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.#kid = uuid();
  }

  uidOf(namespace: string, serviceAccount: string): string {
    const k = `${namespace}/${serviceAccount}`;
    let u = this.#uids.get(k);
    if (!u) this.#uids.set(k, (u = uuid()));
    return u;
  }

  /** A token like the kubelet projects into a pod (`sub: system:serviceaccount:<ns>:<sa>`). */
  mint(o: ServiceAccountTokenOptions, now: number = this.#now()): string {
    const iat = o.issuedAt ?? Math.floor(now / 1000);
    const uid = o.uid ?? this.uidOf(o.namespace, o.serviceAccount);
    let payload: Record<string, unknown>;
    if (o.legacy) {
      payload = {
        iss: o.issuer ?? 'kubernetes/serviceaccount',
        'kubernetes.io/serviceaccount/namespace': o.namespace,
        'kubernetes.io/serviceaccount/secret.name': o.legacy.secretName,
        'kubernetes.io/serviceaccount/service-account.name': o.serviceAccount,
        'kubernetes.io/serviceaccount/service-account.uid': uid,
        sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
      };
    } else {
      const pod = o.podName ? { pod: { name: o.podName, uid: o.podUid ?? uuid() } } : {};
      payload = {
        aud: o.audience === undefined ? [this.issuer] : Array.isArray(o.audience) ? o.audience : [o.audience],
        exp: o.expiresAt ?? iat + (o.ttlSeconds ?? 3600),
        iat,
        iss: o.issuer ?? this.issuer,
        'kubernetes.io': { namespace: o.namespace, ...pod, serviceaccount: { name: o.serviceAccount, uid } },
        nbf: iat,
        sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
      };
    }
    return signJwt({ alg: this.alg, kid: this.#kid }, { ...payload, ...o.claims }, this.#key, this.alg);
  }
}

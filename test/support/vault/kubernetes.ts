// The kubernetes auth method (vault-plugin-auth-kubernetes): login with a service-account JWT
// against roles bound to service-account names and namespaces. The JWT is checked against the
// mount's pem_keys instead of a TokenReview (there is no API server here).
import type { Clock } from './clock.ts';
import { parseDuration } from './duration.ts';
import { badRequest, notFound, VaultHttpError } from './errors.ts';
import { decodeJwt, JwtFormatError, ServiceAccountIssuer, verifyJwtSignature, type ServiceAccountTokenOptions } from './jwt.ts';
import { globMatch, ignoredParams, RoutedMount, stringList, type MountEnv, type MountRequest, type Route } from './mount.ts';
import type { Namespace } from './namespace.ts';
import { noContent, ok, type Reply } from './reply.ts';

export interface KubernetesAuthConfig {
  kubernetes_host?: string;
  /** PEM public keys that verify service-account JWTs; default the mount's own test issuer. */
  pem_keys?: string[];
  issuer?: string;
  /** Default true, as in current Vault. */
  disable_iss_validation?: boolean;
}

export interface KubernetesRole {
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  audience: string;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_explicit_max_ttl: number;
  token_no_default_policy: boolean;
}

/** A role as Vault's API takes it (`auth/kubernetes/role/<name>`): lists as arrays or comma
 * strings, TTLs as seconds or duration strings; `policies`/`ttl`/`max_ttl` are the old aliases. */
export type KubernetesRoleInput = Record<string, unknown>;

const deny = (msg: string): VaultHttpError => new VaultHttpError(403, [msg]);

export class KubernetesAuthMount extends RoutedMount {
  readonly type = 'kubernetes';
  /** The test signer whose public key the mount trusts by default. */
  readonly issuer: ServiceAccountIssuer;
  readonly #env: MountEnv;
  readonly #ns: Namespace;
  readonly #roles = new Map<string, KubernetesRole>();
  readonly #entities = new Map<string, string>();
  #config: Required<Omit<KubernetesAuthConfig, 'issuer'>> & { issuer: string };

  constructor(path: string, env: MountEnv, ns: Namespace, opts: { issuer?: ServiceAccountIssuer; config?: KubernetesAuthConfig } = {}) {
    super(path);
    this.#env = env;
    this.#ns = ns;
    const clock: Clock = env.clock;
    this.issuer = opts.issuer ?? new ServiceAccountIssuer({ now: () => clock.now() });
    this.#config = { kubernetes_host: 'https://kubernetes.default.svc', pem_keys: [this.issuer.publicKeyPem], issuer: '', disable_iss_validation: true };
    if (opts.config) this.configure(opts.config);
  }

  configure(c: KubernetesAuthConfig): void {
    this.#config = {
      kubernetes_host: c.kubernetes_host ?? this.#config.kubernetes_host,
      pem_keys: c.pem_keys ?? this.#config.pem_keys,
      issuer: c.issuer ?? this.#config.issuer,
      disable_iss_validation: c.disable_iss_validation ?? this.#config.disable_iss_validation,
    };
  }

  /** Mint a JWT with this mount's trusted issuer, dated by the server's clock. */
  mintJwt(o: ServiceAccountTokenOptions): string {
    return this.issuer.mint(o, this.#env.clock.now());
  }

  /** Create or replace a role (throws VaultHttpError 400 on invalid input, like the API). */
  setRole(name: string, input: KubernetesRoleInput): void {
    const names = stringList(input.bound_service_account_names);
    const namespaces = stringList(input.bound_service_account_namespaces);
    if (names.length === 0) throw badRequest('"bound_service_account_names" can not be empty');
    if (namespaces.length === 0) throw badRequest('"bound_service_account_namespaces" can not be empty');
    if (names.length === 1 && names[0] === '*' && namespaces.length === 1 && namespaces[0] === '*') {
      throw badRequest('service_account_names and service_account_namespaces can not both be "*"');
    }
    const dur = (...keys: string[]): number => {
      for (const k of keys) {
        if (input[k] !== undefined) {
          try {
            return parseDuration(input[k]);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
        }
      }
      return 0;
    };
    this.#roles.set(name.toLowerCase(), {
      bound_service_account_names: names,
      bound_service_account_namespaces: namespaces,
      audience: typeof input.audience === 'string' ? input.audience : '',
      token_policies: stringList(input.token_policies ?? input.policies),
      token_ttl: dur('token_ttl', 'ttl'),
      token_max_ttl: dur('token_max_ttl', 'max_ttl'),
      token_explicit_max_ttl: dur('token_explicit_max_ttl'),
      token_no_default_policy: input.token_no_default_policy === true,
    });
  }

  deleteRole(name: string): void {
    this.#roles.delete(name.toLowerCase());
  }

  unauthenticated(path: string): boolean {
    return path === 'login';
  }

  #login(req: MountRequest): Reply {
    const warnings = ignoredParams(req.data, ['role', 'jwt']);
    const roleName = typeof req.data.role === 'string' ? req.data.role : '';
    if (roleName === '') throw badRequest('missing role');
    const jwt = typeof req.data.jwt === 'string' ? req.data.jwt : '';
    if (jwt === '') throw badRequest('missing jwt');
    const role = this.#roles.get(roleName.toLowerCase());
    if (!role) throw badRequest(`invalid role name "${roleName}"`);

    let decoded;
    try {
      decoded = decodeJwt(jwt);
    } catch (e) {
      throw deny(e instanceof JwtFormatError ? e.message : String(e));
    }
    const c = decoded.payload;
    const projected = c['kubernetes.io'] as { namespace?: string; serviceaccount?: { name?: string; uid?: string } } | undefined;
    const sa = {
      namespace: projected?.namespace ?? String(c['kubernetes.io/serviceaccount/namespace'] ?? ''),
      name: projected?.serviceaccount?.name ?? String(c['kubernetes.io/serviceaccount/service-account.name'] ?? ''),
      uid: projected?.serviceaccount?.uid ?? String(c['kubernetes.io/serviceaccount/service-account.uid'] ?? ''),
      secretName: String(c['kubernetes.io/serviceaccount/secret.name'] ?? ''),
    };
    if (!role.bound_service_account_namespaces.some((p) => globMatch(p, sa.namespace))) throw deny('namespace not authorized');
    if (!role.bound_service_account_names.some((p) => globMatch(p, sa.name))) throw deny('service account name not authorized');
    if (!verifyJwtSignature(decoded, this.#config.pem_keys)) throw deny('permission denied');
    const nowSec = Math.floor(this.#env.clock.now() / 1000);
    if (typeof c.exp === 'number' && c.exp <= nowSec) throw deny('permission denied');
    if (typeof c.nbf === 'number' && c.nbf > nowSec) throw deny('permission denied');
    if (!this.#config.disable_iss_validation && c.iss !== (this.#config.issuer || 'kubernetes/serviceaccount')) throw deny('permission denied');
    if (role.audience !== '') {
      const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
      if (!aud.includes(role.audience)) throw deny('permission denied');
    }

    const aliasKey = sa.uid;
    let entityId = this.#entities.get(aliasKey);
    if (!entityId) this.#entities.set(aliasKey, (entityId = this.#env.tokens.newEntityId()));
    const token = this.#env.tokens.create(this.#ns, {
      policies: role.token_policies,
      noDefaultPolicy: role.token_no_default_policy,
      ttl: role.token_ttl || this.#env.defaultLeaseTtl,
      maxTtl: role.token_max_ttl || this.#env.maxLeaseTtl,
      explicitMaxTtl: role.token_explicit_max_ttl,
      displayName: `kubernetes-${sa.namespace}-${sa.name}`,
      meta: {
        role: roleName,
        service_account_name: sa.name,
        service_account_namespace: sa.namespace,
        service_account_secret_name: sa.secretName,
        service_account_uid: sa.uid,
      },
      path: `${this.path}login`,
      entityId,
    });
    return ok({ auth: this.#env.tokens.authBlock(token), warnings });
  }

  protected routes(): Route[] {
    return [
      { pattern: /^login$/, write: (req) => this.#login(req) },
      {
        pattern: /^config$/,
        read: () => ok({ data: { ...this.#config } }),
        write: (req) => {
          this.configure({
            kubernetes_host: req.data.kubernetes_host as string | undefined,
            pem_keys: req.data.pem_keys === undefined ? undefined : stringList(req.data.pem_keys),
            issuer: req.data.issuer as string | undefined,
            disable_iss_validation: req.data.disable_iss_validation as boolean | undefined,
          });
          return noContent();
        },
      },
      {
        pattern: /^role\/?$/,
        list: () => {
          const keys = [...this.#roles.keys()].sort();
          if (keys.length === 0) throw notFound();
          return ok({ data: { keys } });
        },
      },
      {
        pattern: /^role\/([^/]+)$/,
        exists: (m) => this.#roles.has(m[1]!.toLowerCase()),
        read: (_req, m) => {
          const r = this.#roles.get(m[1]!.toLowerCase());
          if (!r) throw notFound();
          return ok({ data: { ...r, policies: r.token_policies, ttl: r.token_ttl, max_ttl: r.token_max_ttl } });
        },
        write: (req, m) => {
          this.setRole(m[1]!, req.data);
          return noContent();
        },
        delete: (_req, m) => {
          this.deleteRole(m[1]!);
          return noContent();
        },
      },
    ];
  }
}

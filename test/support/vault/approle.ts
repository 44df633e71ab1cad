// The AppRole auth method: role_id + secret_id login; role-id and secret-id endpoints.
import { parseDuration } from './duration.ts';
import { badRequest, notFound } from './errors.ts';
import { ignoredParams, RoutedMount, stringList, type MountEnv, type MountRequest, type Route } from './mount.ts';
import type { Namespace } from './namespace.ts';
import { uuid } from './random.ts';
import { noContent, ok, type Reply } from './reply.ts';

interface SecretId {
  accessor: string;
  created: number;
  expireAt: number | null;
  usesLeft: number | null;
  metadata: Record<string, string>;
}

export interface AppRole {
  name: string;
  role_id: string;
  bind_secret_id: boolean;
  secret_id_ttl: number;
  secret_id_num_uses: number;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_no_default_policy: boolean;
  secretIds: Map<string, SecretId>;
  entityId: string;
}

export class AppRoleMount extends RoutedMount {
  readonly type = 'approle';
  readonly #env: MountEnv;
  readonly #ns: Namespace;
  readonly #roles = new Map<string, AppRole>();

  constructor(path: string, env: MountEnv, ns: Namespace) {
    super(path);
    this.#env = env;
    this.#ns = ns;
  }

  /** Create or update a role (Vault's `auth/approle/role/<name>` fields). Returns its role_id. */
  setRole(name: string, input: Record<string, unknown> = {}): string {
    const prev = this.#roles.get(name.toLowerCase());
    const dur = (k: string, alias?: string): number => {
      const v = input[k] ?? (alias ? input[alias] : undefined);
      if (v === undefined) return (prev?.[k as keyof AppRole] as number | undefined) ?? 0;
      try {
        return parseDuration(v);
      } catch (e) {
        throw badRequest((e as Error).message);
      }
    };
    const role: AppRole = {
      name,
      role_id: typeof input.role_id === 'string' && input.role_id !== '' ? input.role_id : (prev?.role_id ?? uuid()),
      bind_secret_id: input.bind_secret_id === undefined ? (prev?.bind_secret_id ?? true) : input.bind_secret_id === true || input.bind_secret_id === 'true',
      secret_id_ttl: dur('secret_id_ttl'),
      secret_id_num_uses: input.secret_id_num_uses === undefined ? (prev?.secret_id_num_uses ?? 0) : Number(input.secret_id_num_uses),
      token_policies: input.token_policies !== undefined || input.policies !== undefined ? stringList(input.token_policies ?? input.policies) : (prev?.token_policies ?? []),
      token_ttl: dur('token_ttl', 'ttl'),
      token_max_ttl: dur('token_max_ttl', 'max_ttl'),
      token_no_default_policy: input.token_no_default_policy === true,
      secretIds: prev?.secretIds ?? new Map(),
      entityId: prev?.entityId ?? this.#env.tokens.newEntityId(),
    };
    this.#roles.set(name.toLowerCase(), role);
    return role.role_id;
  }

  roleId(name: string): string {
    const r = this.#roles.get(name.toLowerCase());
    if (!r) throw new Error(`approle: no role ${name}`);
    return r.role_id;
  }

  /** Generate a secret_id for a role (as `POST auth/approle/role/<name>/secret-id`). */
  generateSecretId(name: string, metadata: Record<string, string> = {}): { secret_id: string; secret_id_accessor: string; secret_id_ttl: number; secret_id_num_uses: number } {
    const r = this.#roles.get(name.toLowerCase());
    if (!r) throw badRequest(`role "${name}" does not exist`);
    const now = this.#env.clock.now();
    const id = uuid();
    const accessor = uuid();
    r.secretIds.set(id, {
      accessor,
      created: now,
      expireAt: r.secret_id_ttl > 0 ? now + r.secret_id_ttl * 1000 : null,
      usesLeft: r.secret_id_num_uses > 0 ? r.secret_id_num_uses : null,
      metadata,
    });
    return { secret_id: id, secret_id_accessor: accessor, secret_id_ttl: r.secret_id_ttl, secret_id_num_uses: r.secret_id_num_uses };
  }

  unauthenticated(path: string): boolean {
    return path === 'login';
  }

  #login(req: MountRequest): Reply {
    const warnings = ignoredParams(req.data, ['role_id', 'secret_id']);
    const roleId = typeof req.data.role_id === 'string' ? req.data.role_id.trim() : '';
    if (roleId === '') throw badRequest('missing role_id');
    const role = [...this.#roles.values()].find((r) => r.role_id === roleId);
    if (!role) throw badRequest('invalid role or secret ID');
    if (role.bind_secret_id) {
      const secretId = typeof req.data.secret_id === 'string' ? req.data.secret_id.trim() : '';
      if (secretId === '') throw badRequest('missing secret_id');
      const s = role.secretIds.get(secretId);
      const now = this.#env.clock.now();
      if (!s || (s.expireAt !== null && s.expireAt <= now)) {
        if (s) role.secretIds.delete(secretId);
        throw badRequest('invalid role or secret ID');
      }
      if (s.usesLeft !== null) {
        s.usesLeft--;
        if (s.usesLeft <= 0) role.secretIds.delete(secretId);
      }
    }
    const token = this.#env.tokens.create(this.#ns, {
      policies: role.token_policies,
      noDefaultPolicy: role.token_no_default_policy,
      ttl: role.token_ttl || this.#env.defaultLeaseTtl,
      maxTtl: role.token_max_ttl || this.#env.maxLeaseTtl,
      displayName: 'approle',
      meta: { role_name: role.name },
      path: `${this.path}login`,
      entityId: role.entityId,
    });
    return ok({ auth: this.#env.tokens.authBlock(token), warnings });
  }

  protected routes(): Route[] {
    const role = (m: RegExpExecArray): AppRole => {
      const r = this.#roles.get(m[1]!.toLowerCase());
      if (!r) throw notFound();
      return r;
    };
    return [
      { pattern: /^login$/, write: (req) => this.#login(req) },
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
          const r = role(m);
          return ok({ data: { bind_secret_id: r.bind_secret_id, secret_id_num_uses: r.secret_id_num_uses, secret_id_ttl: r.secret_id_ttl, token_max_ttl: r.token_max_ttl, token_policies: r.token_policies, policies: r.token_policies, token_ttl: r.token_ttl } });
        },
        write: (req, m) => {
          this.setRole(m[1]!, req.data);
          return noContent();
        },
        delete: (_req, m) => {
          this.#roles.delete(m[1]!.toLowerCase());
          return noContent();
        },
      },
      {
        pattern: /^role\/([^/]+)\/role-id$/,
        read: (_req, m) => ok({ data: { role_id: role(m).role_id } }),
        write: (req, m) => {
          const r = role(m);
          if (typeof req.data.role_id !== 'string' || req.data.role_id === '') throw badRequest('missing role_id');
          r.role_id = req.data.role_id;
          return noContent();
        },
      },
      {
        pattern: /^role\/([^/]+)\/secret-id$/,
        write: (req, m) => {
          const meta = req.data.metadata;
          let metadata: Record<string, string> = {};
          if (typeof meta === 'string' && meta !== '') {
            try {
              metadata = JSON.parse(meta) as Record<string, string>;
            } catch {
              throw badRequest('failed to parse metadata to map');
            }
          }
          if (!this.#roles.has(m[1]!.toLowerCase())) throw badRequest(`role "${m[1]}" does not exist`);
          return ok({ data: this.generateSecretId(m[1]!, metadata) });
        },
      },
    ];
  }
}

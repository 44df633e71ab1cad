// The database secrets engine with the PostgreSQL plugin, run against a real PostgreSQL through
// the `pg` package: dynamic roles (CREATE ROLE … VALID UNTIL …, dropped on revocation), static
// roles (password rotation), connection configs with allowed_roles.
import pg from 'pg';
import { parseDuration, rfc3339Nano } from './duration.ts';
import { badRequest, internalError, notFound, VaultHttpError } from './errors.ts';
import { globMatch, RoutedMount, stringList, type MountEnv, type MountRequest, type Route } from './mount.ts';
import type { Namespace } from './namespace.ts';
import { base62, dbPassword } from './random.ts';
import { noContent, ok, type Reply } from './reply.ts';

export interface DatabaseConnectionInput {
  plugin_name?: string;
  /** `postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?sslmode=disable` */
  connection_url: string;
  username?: string;
  password?: string;
  /** Roles this connection may serve; `*` globs. Vault's default is none. */
  allowed_roles?: string[] | string;
  /** Default true: connect once before saving. */
  verify_connection?: boolean;
}

interface Connection {
  name: string;
  plugin_name: string;
  connection_url: string;
  username: string;
  password: string;
  allowed_roles: string[];
  verify_connection: boolean;
  pool: pg.Pool;
}

export interface DatabaseRole {
  db_name: string;
  creation_statements: string[];
  revocation_statements: string[];
  renew_statements: string[];
  rollback_statements: string[];
  /** Seconds; 0 = the mount default. */
  default_ttl: number;
  max_ttl: number;
}

export interface StaticRole {
  db_name: string;
  username: string;
  rotation_period: number;
  rotation_statements: string[];
  password: string;
  lastRotation: number;
}

const SUPPORTED_PLUGINS = ['postgresql-database-plugin'];
const DEFAULT_RENEW = `ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';`;
const DEFAULT_ROTATION = `ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}';`;
/** Vault's plugin adds 5 s to VALID UNTIL so the role outlives its lease. */
const EXPIRATION_BUFFER_MS = 5000;

/** Go's "2006-01-02 15:04:05-0700", in UTC. */
function pgExpiration(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')}+0000`;
}

/** Vault's strutil.ParseArbitraryStringSlice(stmt, ";") over each statement, then {{…}} substitution. */
function queries(statements: readonly string[], vars: Record<string, string>): string[] {
  const out: string[] = [];
  for (const stmt of statements) {
    for (const q of stmt.split(';')) {
      const t = q.trim();
      if (t === '') continue;
      out.push(t.replace(/\{\{\s*(\w+)\s*\}\}/g, (m, k: string) => vars[k] ?? m));
    }
  }
  return out;
}

function statementList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (Array.isArray(v)) return v.map(String);
  return [String(v)];
}

function durationField(input: Record<string, unknown>, key: string): number {
  if (input[key] === undefined) return 0;
  try {
    return parseDuration(input[key]);
  } catch (e) {
    throw badRequest((e as Error).message);
  }
}

export class DatabaseMount extends RoutedMount {
  readonly type = 'database';
  readonly #env: MountEnv;
  readonly #ns: Namespace;
  readonly #connections = new Map<string, Connection>();
  readonly #roles = new Map<string, DatabaseRole>();
  readonly #static = new Map<string, StaticRole>();

  constructor(path: string, env: MountEnv, ns: Namespace) {
    super(path);
    this.#env = env;
    this.#ns = ns;
  }

  /** Configure a connection (`database/config/<name>`). Verifies it unless verify_connection is false. */
  async configure(name: string, input: DatabaseConnectionInput): Promise<void> {
    const plugin = input.plugin_name ?? '';
    if (plugin === '') throw badRequest('empty plugin name');
    if (!SUPPORTED_PLUGINS.includes(plugin)) throw badRequest(`error creating database object: invalid database version: plugin ${plugin} is not supported by this test double`);
    if (!input.connection_url) throw badRequest('error creating database object: connection_url cannot be empty');
    const username = input.username ?? '';
    const password = input.password ?? '';
    const connectionString = input.connection_url.replace(/\{\{\s*username\s*\}\}/g, encodeURIComponent(username)).replace(/\{\{\s*password\s*\}\}/g, encodeURIComponent(password));
    const pool = new pg.Pool({ connectionString, max: 3, idleTimeoutMillis: 2000, allowExitOnIdle: true });
    pool.on('error', (err) => this.#env.recordError(`database/config/${name}: idle client`, err));
    const verify = input.verify_connection ?? true;
    if (verify) {
      try {
        await pool.query('SELECT 1');
      } catch (e) {
        await pool.end().catch(() => {});
        throw badRequest(`error creating database object: error verifying connection: ${(e as Error).message}`);
      }
    }
    const old = this.#connections.get(name);
    this.#connections.set(name, {
      name,
      plugin_name: plugin,
      connection_url: input.connection_url,
      username,
      password,
      allowed_roles: stringList(input.allowed_roles),
      verify_connection: verify,
      pool,
    });
    if (old) await old.pool.end().catch(() => {});
  }

  /** Create or replace a dynamic role (`database/roles/<name>`). */
  setRole(name: string, input: Record<string, unknown>): void {
    const db = typeof input.db_name === 'string' ? input.db_name : '';
    if (db === '') throw badRequest('database name is required');
    const creation = statementList(input.creation_statements);
    if (creation.length === 0) throw badRequest('creation statements are required');
    this.#roles.set(name, {
      db_name: db,
      creation_statements: creation,
      revocation_statements: statementList(input.revocation_statements),
      renew_statements: statementList(input.renew_statements),
      rollback_statements: statementList(input.rollback_statements),
      default_ttl: durationField(input, 'default_ttl'),
      max_ttl: durationField(input, 'max_ttl'),
    });
  }

  deleteRole(name: string): void {
    this.#roles.delete(name);
  }

  /** Create or replace a static role (`database/static-roles/<name>`); rotates its password at once. */
  async setStaticRole(name: string, input: Record<string, unknown>): Promise<void> {
    const db = typeof input.db_name === 'string' ? input.db_name : '';
    if (db === '') throw badRequest('database name is required');
    const username = typeof input.username === 'string' ? input.username : '';
    if (username === '') throw badRequest('username is a required field to create a static account');
    if (input.rotation_period === undefined) throw badRequest('rotation_period is required to create static accounts');
    const period = durationField(input, 'rotation_period');
    if (period < 5) throw badRequest('rotation_period must be 5 seconds or more');
    const role: StaticRole = {
      db_name: db,
      username,
      rotation_period: period,
      rotation_statements: statementList(input.rotation_statements),
      password: '',
      lastRotation: 0,
    };
    await this.#rotate(role);
    this.#static.set(name, role);
  }

  /** Rotate a static role's password now (`database/rotate-role/<name>`). */
  async rotateStaticRole(name: string): Promise<void> {
    const role = this.#static.get(name);
    if (!role) throw badRequest(`no static role found for role name`);
    await this.#rotate(role);
  }

  async #rotate(role: StaticRole): Promise<void> {
    const conn = this.#connection(role.db_name);
    const password = dbPassword();
    const stmts = role.rotation_statements.length > 0 ? role.rotation_statements : [DEFAULT_ROTATION];
    try {
      await this.#tx(conn, queries(stmts, { name: role.username, username: role.username, password }));
    } catch (e) {
      throw internalError(`error setting credentials: ${(e as Error).message}`);
    }
    role.password = password;
    role.lastRotation = this.#env.clock.now();
  }

  /** Rotate static roles whose period has passed (called by the server's expiry sweep). */
  async rotateDue(now: number): Promise<void> {
    for (const [name, role] of this.#static) {
      if (role.lastRotation + role.rotation_period * 1000 <= now) {
        try {
          await this.#rotate(role);
        } catch (e) {
          this.#env.recordError(`${this.path}static-roles/${name}: rotation`, e);
          role.lastRotation = now; // retry after another period rather than on every sweep
        }
      }
    }
  }

  nextRotation(): number | undefined {
    let next: number | undefined;
    for (const r of this.#static.values()) {
      const at = r.lastRotation + r.rotation_period * 1000;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  async close(): Promise<void> {
    const pools = [...this.#connections.values()].map((c) => c.pool.end().catch(() => {}));
    this.#connections.clear();
    await Promise.all(pools);
  }

  #connection(name: string): Connection {
    const c = this.#connections.get(name);
    if (!c) throw internalError(`failed to find entry for connection with name: "${name}"`);
    return c;
  }

  async #tx(conn: Connection, qs: string[]): Promise<void> {
    const client = await conn.pool.connect();
    try {
      await client.query('BEGIN');
      for (const q of qs) await client.query(q);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  async #revokeUser(roleName: string, fallback: DatabaseRole, username: string): Promise<void> {
    const role = this.#roles.get(roleName) ?? fallback;
    const conn = this.#connection(role.db_name);
    if (role.revocation_statements.length > 0) {
      await this.#tx(conn, queries(role.revocation_statements, { name: username, username }));
      return;
    }
    const exists = await conn.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [username]);
    if (exists.rowCount === 0) return;
    const ident = `"${username.replace(/"/g, '""')}"`;
    await this.#tx(conn, [`REASSIGN OWNED BY ${ident} TO CURRENT_USER`, `DROP OWNED BY ${ident}`, `DROP ROLE IF EXISTS ${ident}`]);
  }

  async #creds(req: MountRequest, roleName: string): Promise<Reply> {
    const role = this.#roles.get(roleName);
    if (!role) throw badRequest(`unknown role: ${roleName}`);
    const conn = this.#connection(role.db_name);
    if (!conn.allowed_roles.some((p) => globMatch(p, roleName))) throw internalError(`"${roleName}" is not an allowed role`);
    const maxTtl = role.max_ttl > 0 ? Math.min(role.max_ttl, this.#env.maxLeaseTtl) : this.#env.maxLeaseTtl;
    const ttl = Math.min(role.default_ttl > 0 ? role.default_ttl : this.#env.defaultLeaseTtl, maxTtl);
    const now = this.#env.clock.now();
    const displayName = req.token?.displayName ?? 'token';
    const username = `v-${displayName.slice(0, 8)}-${roleName.slice(0, 8)}-${base62(20)}-${Math.floor(now / 1000)}`.slice(0, 63);
    const password = dbPassword();
    const expiration = pgExpiration(now + ttl * 1000 + EXPIRATION_BUFFER_MS);
    try {
      await this.#tx(conn, queries(role.creation_statements, { name: username, username, password, expiration }));
    } catch (e) {
      throw internalError(`failed to execute query: ${(e as Error).message}`);
    }
    const roleAtIssue = { ...role };
    const lease = this.#env.leases.register({
      ns: this.#ns,
      path: req.fullPath,
      ttl,
      maxTtl,
      defaultTtl: ttl,
      renewable: true,
      tokenId: req.token?.id ?? null,
      hooks: {
        revoke: () => this.#revokeUser(roleName, roleAtIssue, username),
        renew: async (expireAt) => {
          const r = this.#roles.get(roleName) ?? roleAtIssue;
          const c = this.#connection(r.db_name);
          const stmts = r.renew_statements.length > 0 ? r.renew_statements : [DEFAULT_RENEW];
          await this.#tx(c, queries(stmts, { name: username, username, expiration: pgExpiration(expireAt + EXPIRATION_BUFFER_MS) }));
        },
      },
    });
    return ok({ leaseId: lease.id, renewable: true, leaseDuration: ttl, data: { username, password } });
  }

  #staticCreds(name: string): Reply {
    const r = this.#static.get(name);
    if (!r) throw badRequest(`unknown role: ${name}`);
    const next = r.lastRotation + r.rotation_period * 1000;
    return ok({
      data: {
        last_vault_rotation: rfc3339Nano(r.lastRotation),
        password: r.password,
        rotation_period: r.rotation_period,
        ttl: Math.max(0, Math.round((next - this.#env.clock.now()) / 1000)),
        username: r.username,
      },
    });
  }

  protected routes(): Route[] {
    const list = (keys: Iterable<string>): Reply => {
      const k = [...keys].sort();
      if (k.length === 0) throw notFound();
      return ok({ data: { keys: k } });
    };
    const wrap400 = async (f: () => Promise<void> | void): Promise<Reply> => {
      try {
        await f();
      } catch (e) {
        if (e instanceof VaultHttpError) throw e;
        throw badRequest((e as Error).message);
      }
      return noContent();
    };
    return [
      { pattern: /^config\/?$/, list: () => list(this.#connections.keys()) },
      {
        pattern: /^config\/([^/]+)$/,
        exists: (m) => this.#connections.has(m[1]!),
        read: (_req, m) => {
          const c = this.#connections.get(m[1]!);
          if (!c) throw notFound();
          return ok({
            data: {
              allowed_roles: c.allowed_roles,
              connection_details: { connection_url: c.connection_url, username: c.username },
              password_policy: '',
              plugin_name: c.plugin_name,
              plugin_version: '',
              root_credentials_rotate_statements: [],
              verify_connection: c.verify_connection,
            },
          });
        },
        write: (req, m) => wrap400(() => this.configure(m[1]!, req.data as unknown as DatabaseConnectionInput)),
        delete: async (_req, m) => {
          const c = this.#connections.get(m[1]!);
          this.#connections.delete(m[1]!);
          await c?.pool.end().catch(() => {});
          return noContent();
        },
      },
      { pattern: /^roles\/?$/, list: () => list(this.#roles.keys()) },
      {
        pattern: /^roles\/([^/]+)$/,
        exists: (m) => this.#roles.has(m[1]!),
        read: (_req, m) => {
          const r = this.#roles.get(m[1]!);
          if (!r) throw notFound();
          return ok({ data: { ...r, credential_type: 'password' } });
        },
        write: (req, m) => wrap400(() => this.setRole(m[1]!, req.data)),
        delete: (_req, m) => {
          this.deleteRole(m[1]!);
          return noContent();
        },
      },
      { pattern: /^static-roles\/?$/, list: () => list(this.#static.keys()) },
      {
        pattern: /^static-roles\/([^/]+)$/,
        exists: (m) => this.#static.has(m[1]!),
        read: (_req, m) => {
          const r = this.#static.get(m[1]!);
          if (!r) throw notFound();
          return ok({ data: { db_name: r.db_name, username: r.username, rotation_period: r.rotation_period, rotation_statements: r.rotation_statements, last_vault_rotation: rfc3339Nano(r.lastRotation), credential_type: 'password' } });
        },
        write: (req, m) => wrap400(() => this.setStaticRole(m[1]!, req.data)),
        delete: (_req, m) => {
          this.#static.delete(m[1]!);
          return noContent();
        },
      },
      { pattern: /^creds\/([^/]+)$/, read: (req, m) => this.#creds(req, m[1]!) },
      { pattern: /^static-creds\/([^/]+)$/, read: (_req, m) => this.#staticCreds(m[1]!) },
      {
        pattern: /^rotate-role\/([^/]+)$/,
        write: async (_req, m) => {
          await this.rotateStaticRole(m[1]!);
          return noContent();
        },
      },
      {
        pattern: /^reset\/([^/]+)$/,
        write: async (_req, m) => {
          const c = this.#connection(m[1]!);
          await this.configure(c.name, { ...c, verify_connection: false });
          return noContent();
        },
      },
    ];
  }
}

// The config file format: this schema is its single source of truth. Everything else (docs,
// validation errors, defaults) derives from it. Config holds references to secrets, never values.
import { isIP } from 'node:net';
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration as milliseconds: a number (ms) or a string like `250ms`, `10s`, `5m`, `1h`. `0` disables. */
export const duration = z
  .union([z.number().nonnegative(), z.string().regex(DURATION, { error: 'expected a duration like 500ms, 10s, 5m or 1h' })], {
    error: 'expected a duration like 500ms, 10s, 5m or 1h (or a number of milliseconds)',
  })
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = DURATION.exec(v)!;
    return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
  });

/** `host:port`, `[v6]:port` or `:port`. */
export const hostPort = z.string().transform((v, ctx) => {
  const parsed = parseHostPort(v);
  if (!parsed) {
    ctx.addIssue({ code: 'custom', message: 'expected host:port, e.g. 0.0.0.0:5432' });
    return z.NEVER;
  }
  return parsed;
});

export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(v);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined && isIP(m[1]) !== 6) return undefined; // brackets are for IPv6 only
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
  error: 'expected a name of letters, digits, dot, dash or underscore (at most 63)',
});

const cidr = z.string().refine(
  (v) => {
    const [addr, bits, ...rest] = v.split('/');
    if (rest.length > 0 || !addr) return false;
    const family = isIP(addr);
    if (family === 0) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
  },
  { error: 'expected an IP address or CIDR, e.g. 10.42.0.0/16' },
);

const allowRule = z.strictObject({ cidr });

export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

const upstreamTls = z
  .strictObject({
    mode: z.enum(TLS_MODES).default('verify-full'),
    /** PEM file with the CA(s) that sign the upstream's certificate; the system roots otherwise. */
    ca: z.string().min(1).optional(),
    /** Name to verify and send as SNI when it differs from `host`. */
    servername: z.string().min(1).optional(),
  })
  .default({ mode: 'verify-full' });

/** TLS for the client-facing side of a listener. */
const listenerTls = z.strictObject({ cert: z.string().min(1), key: z.string().min(1) });

const credentialRef = z.strictObject({
  store: name,
  /** Store-specific location: a directory under a file store, a variable prefix for env, a Vault path. */
  path: z.string().min(1),
  /** Canonical field name → the store's key for it, when the store names fields differently. */
  fields: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** Vault KV v2: pin this version instead of reading the latest. */
  version: z.number().int().positive().optional(),
});

const timeouts = z
  .strictObject({
    connect: duration.default(10_000),
    handshake: duration.default(15_000),
    idle: duration.default(0),
  })
  .default({ connect: 10_000, handshake: 15_000, idle: 0 });

const targetCommon = {
  listen: hostPort,
  tls: listenerTls.optional(),
  /** On a listener shared by several targets, the database name a client asks for to reach this one. */
  route: z.strictObject({ database: z.string().min(1) }).optional(),
  credential: credentialRef,
  allow: z.array(allowRule).optional(),
  timeouts,
  maxConnections: z.number().int().positive().default(10_000),
};

const postgresTarget = z.strictObject({
  protocol: z.literal('postgres'),
  ...targetCommon,
  upstream: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(5432),
    /** Database to open upstream; the client's requested database when absent. */
    database: z.string().min(1).optional(),
    tls: upstreamTls,
  }),
});

const mysqlTarget = z.strictObject({
  protocol: z.literal('mysql'),
  ...targetCommon,
  upstream: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(3306),
    /** Schema to open upstream; the client's requested schema when absent. */
    database: z.string().min(1).optional(),
    tls: upstreamTls,
    /** PEM file with the server's RSA public key, for caching_sha2_password full authentication without TLS. */
    serverPublicKey: z.string().min(1).optional(),
    /** Without TLS and without a pinned key, may the RSA public key be requested from the server? (A man in the middle could substitute it.) */
    fetchServerPublicKey: z.boolean().default(false),
  }),
});

// HTTP targets (docs/http.md). Reverse mode: the listener is one upstream base URL. Forward mode:
// apps set HTTP_PROXY to the listener and each request goes to the target owning its host.
const HTTP_TEMPLATE = /\{\{\s*[A-Za-z0-9_.-]+\s*\}\}/g;
const httpTemplate = z
  .string()
  .min(1)
  .refine((v) => !/\{\{|\}\}/.test(v.replace(HTTP_TEMPLATE, '')), { error: 'expected text with {{ field }} placeholders, e.g. "{{ api_key }}"' });
const HTTP_FORBIDDEN_HEADERS = /^(host|connection|keep-alive|proxy-connection|proxy-authenticate|proxy-authorization|te|trailer|transfer-encoding|upgrade|expect|content-length)$/i;
const httpHeaderName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected an HTTP header name' })
  .refine((v) => !HTTP_FORBIDDEN_HEADERS.test(v), { error: 'Host, Content-Length and hop-by-hop headers cannot be injected' });
const httpHost = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, { error: 'expected a host name, optionally with :port or a leading *.' })
  .transform((v) => v.toLowerCase());
const httpUrl = z
  .url({ protocol: /^https?$/, error: 'expected an https:// URL' })
  .refine((v) => !new URL(v).search && !new URL(v).hash && !new URL(v).username && !new URL(v).password, { error: 'expected no query, fragment or user info in the URL' });

const httpInject = z.discriminatedUnion(
  'kind',
  [
    /** Authorization: Bearer <token>. */
    z.strictObject({ kind: z.literal('bearer'), token: httpTemplate.default('{{ token }}') }),
    /** Authorization: Basic base64(username:password). */
    z.strictObject({
      kind: z.literal('basic'),
      username: httpTemplate.default('{{ username }}'),
      /** May be empty (`key:` schemes such as Stripe's). */
      password: z.union([z.literal(''), httpTemplate]).default('{{ password }}'),
    }),
    /** Any headers, each a template over the credential's fields. */
    z.strictObject({
      kind: z.literal('headers'),
      headers: z.record(z.string(), httpTemplate).superRefine((h, ctx) => {
        if (Object.keys(h).length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one header' });
        for (const k of Object.keys(h)) {
          const r = httpHeaderName.safeParse(k);
          if (!r.success) ctx.addIssue({ code: 'custom', path: [k], message: r.error.issues[0]!.message });
        }
      }),
    }),
    /** Query parameters, each a template over the credential's fields. */
    z.strictObject({ kind: z.literal('query'), params: z.record(z.string().min(1), httpTemplate).refine((p) => Object.keys(p).length > 0, { error: 'expected at least one parameter' }) }),
    /** OAuth 2.0 client credentials (RFC 6749 §4.4): a token from `tokenUrl`, sent as a bearer token. */
    z.strictObject({
      kind: z.literal('oauth2'),
      tokenUrl: z.url({ protocol: /^https$/, error: 'expected an https:// token endpoint URL' }),
      clientId: httpTemplate.default('{{ client_id }}'),
      clientSecret: httpTemplate.default('{{ client_secret }}'),
      /** How the client authenticates to the token endpoint: HTTP Basic (RFC 6749 §2.3.1) or form fields. */
      clientAuth: z.enum(['basic', 'body']).default('basic'),
      scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: 'expected a scope token (no spaces or quotes)' })).optional(),
      audience: z.string().min(1).optional(),
      /** CA for the token endpoint; upstream.tls.ca when absent. */
      tls: z.strictObject({ ca: z.string().min(1).optional() }).optional(),
      /** Token lifetime when the response carries no expires_in. */
      defaultExpiry: duration.default(300_000),
    }),
    /** AWS Signature Version 4 with access_key_id, secret_access_key and (optional) session_token from the store. */
    z.strictObject({
      kind: z.literal('aws-sigv4'),
      service: z.string().regex(/^[a-z0-9-]+$/, { error: 'expected an AWS service signing name, e.g. s3, execute-api, dynamodb' }),
      region: z.string().regex(/^[a-z0-9-]+$/, { error: 'expected an AWS region, e.g. eu-west-1' }),
      /** signed: hash the body (buffered up to maxBodyBytes; 413 past it). unsigned: UNSIGNED-PAYLOAD, streamed (S3 allows it). */
      payload: z.enum(['signed', 'unsigned']).default('signed'),
      maxBodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
      /** The credential's field names. */
      fields: z
        .strictObject({
          accessKeyId: z.string().min(1).default('access_key_id'),
          secretAccessKey: z.string().min(1).default('secret_access_key'),
          sessionToken: z.string().min(1).default('session_token'),
        })
        .default({ accessKeyId: 'access_key_id', secretAccessKey: 'secret_access_key', sessionToken: 'session_token' }),
    }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? 'expected kind: bearer | basic | headers | query | oauth2 | aws-sigv4' : undefined) },
);

const httpTarget = z
  .strictObject({
    protocol: z.literal('http'),
    listen: targetCommon.listen,
    tls: targetCommon.tls,
    credential: targetCommon.credential,
    allow: targetCommon.allow,
    maxConnections: targetCommon.maxConnections,
    /** Not for http: targets sharing a listener are chosen by the request's host (`hosts`). */
    route: z.undefined({ error: 'http targets are routed by host (hosts, in forward mode), not route.database' }).optional(),
    mode: z.enum(['reverse', 'forward']).default('reverse'),
    upstream: z
      .strictObject({
        /** Reverse mode: the base URL requests go to (its path is prepended). Forward mode: optional; all this target's hosts go there. */
        url: httpUrl.optional(),
        /** verify-full by default; `disable` (plain http://) and `require` (unverified) are explicit opt-outs. */
        tls: upstreamTls,
        /** Offer HTTP/2 by ALPN; HTTP/1.1 when the upstream does not choose it. */
        http2: z.boolean().default(true),
      })
      .default({ tls: { mode: 'verify-full' }, http2: true }),
    /** Forward mode: the request hosts this target owns (`api.example.com`, `host:8443`, `*.example.com`). */
    hosts: z.array(httpHost).optional(),
    /** Forward mode: `host:port`s a CONNECT may tunnel to untouched (no credential is added). */
    passthrough: z.array(httpHost).optional(),
    inject: httpInject,
    /** Add X-Forwarded-For and X-Forwarded-Proto. */
    forwarded: z.boolean().default(false),
    timeouts: z
      .strictObject({
        /** Upstream TCP and TLS connect. */
        connect: duration.default(10_000),
        /** Client: time to send a request's headers. */
        handshake: duration.default(15_000),
        /** Client: keep-alive idle time between requests (0: no limit). */
        idle: duration.default(60_000),
        /** Upstream: time until the response headers arrive. */
        response: duration.default(60_000),
        /** Upstream: longest pause while the response body streams (0: no limit). */
        body: duration.default(300_000),
      })
      .default({ connect: 10_000, handshake: 15_000, idle: 60_000, response: 60_000, body: 300_000 }),
  })
  .superRefine((t, ctx) => {
    if (t.mode === 'reverse') {
      if (!t.upstream.url) ctx.addIssue({ code: 'custom', path: ['upstream', 'url'], message: 'required in reverse mode' });
      if (t.hosts) ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'only for mode: forward' });
      if (t.passthrough) ctx.addIssue({ code: 'custom', path: ['passthrough'], message: 'only for mode: forward' });
    } else if (!t.hosts || t.hosts.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'required in forward mode: the request hosts this target owns' });
    }
    const scheme = t.upstream.url ? new URL(t.upstream.url).protocol : undefined;
    if (scheme === 'http:' && t.upstream.tls.mode !== 'disable') {
      ctx.addIssue({ code: 'custom', path: ['upstream', 'url'], message: 'expected https:// (plain http:// needs upstream.tls.mode: disable)' });
    }
    if (scheme === 'https:' && t.upstream.tls.mode === 'disable') {
      ctx.addIssue({ code: 'custom', path: ['upstream', 'url'], message: 'expected http:// with upstream.tls.mode: disable' });
    }
    for (const [i, p] of (t.passthrough ?? []).entries()) {
      if (!/:\d+$/.test(p)) ctx.addIssue({ code: 'custom', path: ['passthrough', i], message: 'expected host:port' });
    }
  });

/** Shared-listener rules for http: forward mode only, each host owned by one target. */
function checkSharedHttp(group: [string, TargetConfig][], ctx: z.RefinementCtx): void {
  const owner = new Map<string, string>();
  for (const [tname, t] of group) {
    if (t.protocol !== 'http') continue;
    if (t.mode !== 'forward') {
      ctx.addIssue({ code: 'custom', path: ['targets', tname, 'mode'], message: 'http targets sharing a listen address must be mode: forward (routed by host)' });
    }
    for (const [i, h] of [...(t.hosts ?? []).map((h) => ['hosts', h] as const), ...(t.passthrough ?? []).map((h) => ['passthrough', h] as const)].entries()) {
      const key = `${h[0] === 'hosts' ? '' : 'CONNECT '}${h[1]}`;
      const other = owner.get(key);
      if (other) ctx.addIssue({ code: 'custom', path: ['targets', tname, h[0]], message: `"${h[1]}" (entry ${i}) is already owned by "${other}"` });
      owner.set(key, tname);
    }
  }
}

const target = z.discriminatedUnion('protocol', [postgresTarget, mysqlTarget, httpTarget], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected protocol: postgres | mysql | http' : undefined),
});

const fileStore = z.strictObject({
  kind: z.literal('file'),
  /** One sub-directory per credential, one file per field (a Secret volume or CSI mount). */
  dir: z.string().min(1),
  /** Watch for changes (the `..data` symlink swap) and drop cached values at once. */
  watch: z.boolean().default(true),
});

const envStore = z.strictObject({
  kind: z.literal('env'),
  /** Prepended to every variable name: prefix + path + '_' + FIELD. */
  prefix: z.string().default(''),
});

const vaultAuth = z.discriminatedUnion(
  'method',
  [
    z.strictObject({
      method: z.literal('kubernetes'),
      role: z.string().min(1),
      mount: z.string().min(1).default('kubernetes'),
      /** The projected ServiceAccount token; re-read at every login, as the kubelet rotates it. */
      tokenFile: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
    }),
    z.strictObject({
      method: z.literal('approle'),
      mount: z.string().min(1).default('approle'),
      roleIdFile: z.string().min(1),
      secretIdFile: z.string().min(1),
    }),
    z.strictObject({
      method: z.literal('token'),
      tokenFile: z.string().min(1).optional(),
      tokenEnv: z.string().min(1).default('VAULT_TOKEN'),
    }),
  ],
  { error: (iss) => (iss.code === 'invalid_union' ? 'expected method: kubernetes | approle | token' : undefined) },
);

const vaultStore = z.strictObject({
  kind: z.literal('vault'),
  /** https://host:port — the store is reached over verified TLS. */
  address: z
    .string()
    .regex(/^https:\/\/[^/\s]+\/?$/, { error: 'expected https://host[:port] (Vault is reached over verified TLS)' }),
  /** Vault Enterprise / HCP namespace (X-Vault-Namespace). */
  namespace: z.string().min(1).optional(),
  tls: z.strictObject({ ca: z.string().min(1).optional() }).optional(),
  auth: vaultAuth,
  timeout: duration.default(5_000),
  /** KV secrets carry no TTL: re-read them this often (a rotation is also caught by upstream rejection). */
  refreshInterval: duration.default(300_000),
  /** How long past expiry cached credentials keep serving while Vault fails. */
  maxStale: duration.default(300_000),
  /** Revoke the leases this process was issued when it shuts down (needs sys/leases/revoke). */
  revokeOnShutdown: z.boolean().default(false),
});

const store = z.discriminatedUnion('kind', [fileStore, envStore, vaultStore], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected kind: file | env | vault' : undefined),
});

export const configSchema = z
  .strictObject({
    admin: z.strictObject({ listen: hostPort }).default({ listen: { host: '127.0.0.1', port: 9090 } }),
    log: z
      .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') })
      .default({ level: 'info' }),
    /** How long a listener waits for open connections on shutdown before closing them. */
    drainTimeout: duration.default(30_000),
    stores: z.record(name, store),
    targets: z.record(name, target),
  })
  .superRefine((cfg, ctx) => {
    for (const [tname, t] of Object.entries(cfg.targets)) {
      if (!(t.credential.store in cfg.stores)) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', tname, 'credential', 'store'],
          message: `no store named "${t.credential.store}" (stores: ${Object.keys(cfg.stores).join(', ') || 'none'})`,
        });
      }
    }
    // Targets sharing a listen address form one listener that routes by database name.
    for (const group of groupByListen(cfg.targets).values()) {
      if (group.length < 2) continue;
      const first = group[0]!;
      const seen = new Map<string, string>();
      if (first[1].protocol === 'http') checkSharedHttp(group, ctx);
      for (const [tname, t] of group) {
        if (t.protocol !== first[1].protocol) {
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'protocol'], message: `shares listen address with "${first[0]}" but has another protocol` });
        }
        // HTTP targets on one listener are routed by the request's host (checkSharedHttp), not database.
        if (t.protocol === 'http') {
          if (JSON.stringify(t.tls) !== JSON.stringify(first[1].tls)) {
            ctx.addIssue({ code: 'custom', path: ['targets', tname, 'tls'], message: `must equal the tls of "${first[0]}", which shares its listen address` });
          }
          continue;
        }
        if (!t.route) {
          const other = group.find(([n]) => n !== tname)![0];
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'route'], message: `required: the listen address is shared with "${other}", so each target needs route.database` });
          continue;
        }
        const other = seen.get(t.route.database);
        if (other) ctx.addIssue({ code: 'custom', path: ['targets', tname, 'route', 'database'], message: `"${t.route.database}" is already routed to "${other}"` });
        seen.set(t.route.database, tname);
        if (JSON.stringify(t.tls) !== JSON.stringify(first[1].tls)) {
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'tls'], message: `must equal the tls of "${first[0]}", which shares its listen address` });
        }
        // A MySQL server speaks first: a shared listener greets with one upstream's handshake
        // (its version and connection id) before the client names a schema.
        if (t.protocol === 'mysql' && first[1].protocol === 'mysql') {
          const [a, b] = [t.upstream, first[1].upstream];
          if (a.host !== b.host || a.port !== b.port || JSON.stringify(a.tls) !== JSON.stringify(b.tls)) {
            ctx.addIssue({ code: 'custom', path: ['targets', tname, 'upstream'], message: `must have the host, port and tls of "${first[0]}", which shares its listen address (MySQL targets on one listener share one server)` });
          }
        }
      }
    }
  });

export function listenKey(l: { host: string; port: number }): string {
  return `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

export function groupByListen<T extends { listen: { host: string; port: number } }>(targets: Record<string, T>): Map<string, [string, T][]> {
  const groups = new Map<string, [string, T][]>();
  for (const [tname, t] of Object.entries(targets)) {
    const key = listenKey(t.listen);
    const g = groups.get(key);
    if (g) g.push([tname, t]);
    else groups.set(key, [[tname, t]]);
  }
  return groups;
}

export type Config = z.output<typeof configSchema>;
export type TargetConfig = Config['targets'][string];
export type PostgresTargetConfig = z.output<typeof postgresTarget>;
export type MysqlTargetConfig = z.output<typeof mysqlTarget>;
export type HttpTargetConfig = z.output<typeof httpTarget>;
export type StoreConfig = Config['stores'][string];
export type CredentialRefConfig = z.output<typeof credentialRef>;

// The config file format: this schema is its single source of truth. Everything else (docs,
// validation errors, defaults) derives from it. Config holds references to secrets, never values.
import { isIP } from 'node:net';
import { z } from 'zod';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration as milliseconds: a number (ms) or a string like `250ms`, `10s`, `5m`, `1h`. `0` disables. */
export const duration = z
  .union([z.number().nonnegative(), z.string().regex(DURATION, { error: 'expected a duration like 500ms, 10s, 5m or 1h' })])
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

const target = z.discriminatedUnion('protocol', [postgresTarget], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected protocol: postgres' : undefined),
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

const store = z.discriminatedUnion('kind', [fileStore, envStore], {
  error: (iss) => (iss.code === 'invalid_union' ? 'expected kind: file | env' : undefined),
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
      for (const [tname, t] of group) {
        if (t.protocol !== first[1].protocol) {
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'protocol'], message: `shares listen address with "${first[0]}" but has another protocol` });
        }
        if (!t.route) {
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'route'], message: `required: the listen address is shared with "${first[0]}", so each target needs route.database` });
          continue;
        }
        const other = seen.get(t.route.database);
        if (other) ctx.addIssue({ code: 'custom', path: ['targets', tname, 'route', 'database'], message: `"${t.route.database}" is already routed to "${other}"` });
        seen.set(t.route.database, tname);
        if (JSON.stringify(t.tls) !== JSON.stringify(first[1].tls)) {
          ctx.addIssue({ code: 'custom', path: ['targets', tname, 'tls'], message: `must equal the tls of "${first[0]}", which shares its listen address` });
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
export type StoreConfig = Config['stores'][string];
export type CredentialRefConfig = z.output<typeof credentialRef>;

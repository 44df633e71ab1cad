// KV secrets engines, version 1 and version 2 (hashicorp/vault-plugin-secrets-kv).
import { badRequest, notFound } from './errors.ts';
import { ignoredParams, RoutedMount, type MountEnv, type MountRequest, type Route } from './mount.ts';
import { noContent, ok, rawNotFound, type Reply } from './reply.ts';
import { goDuration, parseDuration, rfc3339Nano } from './duration.ts';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listKeys(paths: Iterable<string>, dir: string): string[] {
  const prefix = dir === '' || dir.endsWith('/') ? dir : `${dir}/`;
  const keys = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    const slash = rest.indexOf('/');
    keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
  }
  keys.delete('');
  return [...keys].sort();
}

// ------------------------------------------------------------------------------------ KV v1

export class KvV1Mount extends RoutedMount {
  readonly type = 'kv';
  readonly version = 1;
  readonly #env: MountEnv;
  readonly #store = new Map<string, Json>();

  constructor(path: string, env: MountEnv) {
    super(path);
    this.#env = env;
  }

  /** Write a secret directly (test seeding). */
  put(path: string, data: Json): void {
    this.#store.set(path, structuredClone(data));
  }

  get(path: string): Json | undefined {
    const v = this.#store.get(path);
    return v === undefined ? undefined : structuredClone(v);
  }

  delete(path: string): void {
    this.#store.delete(path);
  }

  protected routes(): Route[] {
    return [
      {
        pattern: /^(.*)$/,
        exists: (m) => this.#store.has(m[1]!),
        read: (_req, m) => {
          const v = this.#store.get(m[1]!);
          if (!v) throw notFound();
          let ttl = this.#env.defaultLeaseTtl;
          if (v.ttl !== undefined) {
            try {
              ttl = parseDuration(v.ttl);
            } catch {
              /* Vault ignores an unparseable ttl key here */
            }
          }
          return ok({ data: structuredClone(v), leaseDuration: ttl });
        },
        list: (_req, m) => {
          const keys = listKeys(this.#store.keys(), m[1]!);
          if (keys.length === 0) throw notFound();
          return ok({ data: { keys } });
        },
        write: (req, m) => {
          if (Object.keys(req.data).length === 0) throw badRequest('missing data fields');
          if (req.data.ttl !== undefined) {
            try {
              parseDuration(req.data.ttl);
            } catch {
              throw badRequest(`failed to parse ttl for entry: ${String(req.data.ttl)}`);
            }
          }
          this.#store.set(m[1]!, structuredClone(req.data));
          return noContent();
        },
        delete: (_req, m) => {
          this.#store.delete(m[1]!);
          return noContent();
        },
      },
    ];
  }
}

// ------------------------------------------------------------------------------------ KV v2

interface KvVersion {
  data: Json | null;
  created: number;
  deletionTime: number | null;
  destroyed: boolean;
}

interface KvMeta {
  versions: Map<number, KvVersion>;
  currentVersion: number;
  oldestVersion: number;
  created: number;
  updated: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfter: number;
  customMetadata: Record<string, string> | null;
}

export interface KvV2Config {
  max_versions?: number;
  cas_required?: boolean;
  delete_version_after?: number | string;
}

const INVALID_PATH = (cmd: string): string =>
  `Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv ${cmd}' for this operation.`;

function parseVersions(data: Json): number[] {
  const v = data.versions;
  const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split(',') : typeof v === 'number' ? [v] : [];
  const out = list.map((x) => Number(String(x).trim())).filter((n) => Number.isInteger(n) && n > 0);
  if (out.length === 0) throw badRequest('no version number provided');
  return out;
}

export class KvV2Mount extends RoutedMount {
  readonly type = 'kv';
  readonly version = 2;
  readonly #env: MountEnv;
  readonly #store = new Map<string, KvMeta>();
  readonly #config = { maxVersions: 0, casRequired: false, deleteVersionAfter: 0 };

  constructor(path: string, env: MountEnv) {
    super(path);
    this.#env = env;
  }

  #now(): number {
    return this.#env.clock.now();
  }

  #versionMeta(v: KvVersion, n: number, m: KvMeta): Json {
    return { created_time: rfc3339Nano(v.created), custom_metadata: m.customMetadata, deletion_time: v.deletionTime === null ? '' : rfc3339Nano(v.deletionTime), destroyed: v.destroyed, version: n };
  }

  #newMeta(): KvMeta {
    const now = this.#now();
    return { versions: new Map(), currentVersion: 0, oldestVersion: 0, created: now, updated: now, maxVersions: 0, casRequired: false, deleteVersionAfter: 0, customMetadata: null };
  }

  /** Write a new version directly (test seeding); returns the version number. */
  put(path: string, data: Json, opts: { cas?: number } = {}): number {
    return this.#write(path, structuredClone(data), opts.cas).version;
  }

  /** The latest (or given) version's data, or undefined when missing, deleted or destroyed. */
  get(path: string, version = 0): Json | undefined {
    const m = this.#store.get(path);
    const v = m?.versions.get(version || m.currentVersion);
    if (!v || v.destroyed || (v.deletionTime !== null && v.deletionTime <= this.#now()) || !v.data) return undefined;
    return structuredClone(v.data);
  }

  currentVersion(path: string): number {
    return this.#store.get(path)?.currentVersion ?? 0;
  }

  configure(c: KvV2Config): void {
    if (c.max_versions !== undefined) this.#config.maxVersions = Number(c.max_versions);
    if (c.cas_required !== undefined) this.#config.casRequired = Boolean(c.cas_required);
    if (c.delete_version_after !== undefined) this.#config.deleteVersionAfter = parseDuration(c.delete_version_after);
  }

  #write(path: string, data: Json, cas: number | undefined): { version: number; meta: Json } {
    const m = this.#store.get(path) ?? this.#newMeta();
    if ((m.casRequired || this.#config.casRequired) && cas === undefined) throw badRequest('check-and-set parameter required for this call');
    if (cas !== undefined && cas !== m.currentVersion) throw badRequest('check-and-set parameter did not match the current version');
    const now = this.#now();
    const n = m.currentVersion + 1;
    const dva = m.deleteVersionAfter || this.#config.deleteVersionAfter;
    const v: KvVersion = { data, created: now, deletionTime: dva > 0 ? now + dva * 1000 : null, destroyed: false };
    m.versions.set(n, v);
    m.currentVersion = n;
    m.updated = now;
    if (m.oldestVersion === 0) m.oldestVersion = n;
    const max = m.maxVersions || this.#config.maxVersions || 10;
    while (m.currentVersion - m.oldestVersion >= max) {
      m.versions.delete(m.oldestVersion);
      m.oldestVersion++;
    }
    this.#store.set(path, m);
    return { version: n, meta: this.#versionMeta(v, n, m) };
  }

  #parseCas(data: Json): number | undefined {
    const options = data.options;
    if (!isObject(options) || options.cas === undefined) return undefined;
    const n = Number(options.cas);
    if (!Number.isInteger(n) || (typeof options.cas !== 'number' && typeof options.cas !== 'string')) throw badRequest('error parsing check-and-set parameter');
    return n;
  }

  #readData(req: MountRequest, path: string): Reply {
    const m = this.#store.get(path);
    if (!m) throw notFound();
    let version = 0;
    const q = req.query.get('version') ?? (req.data.version === undefined ? undefined : String(req.data.version));
    if (q !== undefined && q !== null && q !== '') {
      version = Number(q);
      if (!Number.isInteger(version)) throw badRequest(`error converting input ${q} for field "version": strconv.ParseInt: parsing "${q}": invalid syntax`);
    }
    const n = version === 0 ? m.currentVersion : version;
    const v = m.versions.get(n);
    if (!v) throw notFound();
    const meta = this.#versionMeta(v, n, m);
    if (v.destroyed || (v.deletionTime !== null && v.deletionTime <= this.#now())) {
      return rawNotFound({ data: { data: null, metadata: meta } });
    }
    return ok({ data: { data: structuredClone(v.data), metadata: meta } });
  }

  protected routes(): Route[] {
    const exists = (m: RegExpExecArray): boolean => this.#store.has(m[1]!);
    return [
      {
        pattern: /^config$/,
        read: () => ok({ data: { cas_required: this.#config.casRequired, delete_version_after: goDuration(this.#config.deleteVersionAfter), max_versions: this.#config.maxVersions } }),
        write: (req) => {
          try {
            this.configure(req.data as KvV2Config);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
          return noContent();
        },
      },
      {
        pattern: /^data\/(.+)$/,
        exists,
        read: (req, m) => this.#readData(req, m[1]!),
        write: (req, m) => {
          const warnings = ignoredParams(req.data, ['data', 'options', 'version']);
          if (!isObject(req.data.data)) throw badRequest('no data provided');
          const cas = this.#parseCas(req.data);
          const { meta } = this.#write(m[1]!, structuredClone(req.data.data), cas);
          return ok({ data: meta, warnings });
        },
        patch: (req, m) => {
          const meta = this.#store.get(m[1]!);
          const cur = meta?.versions.get(meta.currentVersion);
          if (!meta || !cur || cur.destroyed || (cur.deletionTime !== null && cur.deletionTime <= this.#now()) || !cur.data) throw notFound();
          if (!isObject(req.data.data)) throw badRequest('no data provided');
          const cas = this.#parseCas(req.data);
          const merged = mergePatch(structuredClone(cur.data), req.data.data) as Json;
          const out = this.#write(m[1]!, merged, cas);
          return ok({ data: out.meta });
        },
        delete: (_req, m) => {
          const meta = this.#store.get(m[1]!);
          const cur = meta?.versions.get(meta.currentVersion);
          if (cur && !cur.destroyed && (cur.deletionTime === null || cur.deletionTime > this.#now())) cur.deletionTime = this.#now();
          return noContent();
        },
      },
      {
        pattern: /^metadata\/?(.*)$/,
        exists,
        read: (_req, m) => {
          const meta = this.#store.get(m[1]!);
          if (!meta || m[1] === '') throw notFound();
          const versions: Json = {};
          for (const [n, v] of meta.versions) versions[String(n)] = { created_time: rfc3339Nano(v.created), deletion_time: v.deletionTime === null ? '' : rfc3339Nano(v.deletionTime), destroyed: v.destroyed };
          return ok({
            data: {
              cas_required: meta.casRequired,
              created_time: rfc3339Nano(meta.created),
              current_version: meta.currentVersion,
              custom_metadata: meta.customMetadata,
              delete_version_after: goDuration(meta.deleteVersionAfter),
              max_versions: meta.maxVersions,
              oldest_version: meta.oldestVersion,
              updated_time: rfc3339Nano(meta.updated),
              versions,
            },
          });
        },
        list: (_req, m) => {
          const keys = listKeys(this.#store.keys(), m[1]!);
          if (keys.length === 0) throw notFound();
          return ok({ data: { keys } });
        },
        write: (req, m) => {
          if (m[1] === '') throw badRequest('missing path');
          const meta = this.#store.get(m[1]!) ?? this.#newMeta();
          const d = req.data;
          if (d.max_versions !== undefined) meta.maxVersions = Number(d.max_versions);
          if (d.cas_required !== undefined) meta.casRequired = d.cas_required === true || d.cas_required === 'true';
          if (d.delete_version_after !== undefined) {
            try {
              meta.deleteVersionAfter = parseDuration(d.delete_version_after);
            } catch (e) {
              throw badRequest((e as Error).message);
            }
          }
          if (d.custom_metadata !== undefined) meta.customMetadata = isObject(d.custom_metadata) ? (Object.fromEntries(Object.entries(d.custom_metadata).map(([k, v]) => [k, String(v)])) as Record<string, string>) : null;
          meta.updated = this.#now();
          this.#store.set(m[1]!, meta);
          return noContent();
        },
        delete: (_req, m) => {
          this.#store.delete(m[1]!);
          return noContent();
        },
      },
      {
        pattern: /^delete\/(.+)$/,
        write: (req, m) => {
          const versions = parseVersions(req.data);
          const meta = this.#store.get(m[1]!);
          for (const n of versions) {
            const v = meta?.versions.get(n);
            if (v && !v.destroyed && (v.deletionTime === null || v.deletionTime > this.#now())) v.deletionTime = this.#now();
          }
          return noContent();
        },
      },
      {
        pattern: /^undelete\/(.+)$/,
        write: (req, m) => {
          const versions = parseVersions(req.data);
          const meta = this.#store.get(m[1]!);
          for (const n of versions) {
            const v = meta?.versions.get(n);
            if (v && !v.destroyed) v.deletionTime = null;
          }
          return noContent();
        },
      },
      {
        pattern: /^destroy\/(.+)$/,
        write: (req, m) => {
          const versions = parseVersions(req.data);
          const meta = this.#store.get(m[1]!);
          for (const n of versions) {
            const v = meta?.versions.get(n);
            if (v) {
              v.destroyed = true;
              v.data = null;
            }
          }
          return noContent();
        },
      },
      {
        // Anything else is a v1-style path on a versioned mount.
        pattern: /^(.*)$/,
        read: () => rawNotFound({ warnings: [INVALID_PATH('get')] }),
        list: () => rawNotFound({ warnings: [INVALID_PATH('list')] }),
        write: () => rawNotFound({ warnings: [INVALID_PATH('put')] }),
        delete: () => rawNotFound({ warnings: [INVALID_PATH('delete')] }),
      },
    ];
  }
}

/** RFC 7396 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Json = isObject(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

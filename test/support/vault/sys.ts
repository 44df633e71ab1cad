// The system backend at sys/: leases, policies, namespaces, mounts, seal, capabilities-self.
// (sys/health, sys/seal-status and sys/unseal are answered before routing: they work sealed.)
import { CAPABILITIES, type Capability } from './acl.ts';
import { parseDuration } from './duration.ts';
import { badRequest, internalError, notFound, permissionDenied, VaultHttpError } from './errors.ts';
import type { Lease } from './leases.ts';
import { ignoredParams, RoutedMount, stringList, type MountEnv, type MountRequest, type Route } from './mount.ts';
import type { Namespace } from './namespace.ts';
import { accepted, noContent, ok, type Reply } from './reply.ts';

export interface SysCore {
  registerNamespace(ns: Namespace): void;
  seal(): void;
}

function parseBool(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v === 'boolean') return v;
  return ['1', 't', 'true', 'TRUE', 'True', 'T'].includes(String(v));
}

export class SysMount extends RoutedMount {
  readonly type = 'system';
  readonly #env: MountEnv;
  readonly #core: SysCore;
  readonly #ns: Namespace;

  constructor(env: MountEnv, core: SysCore, ns: Namespace) {
    super('sys/');
    this.#env = env;
    this.#core = core;
    this.#ns = ns;
  }

  #requireSudo(req: MountRequest): void {
    const aclPath = `${this.#ns.path.slice(req.token?.ns.path.length ?? 0)}${req.fullPath}`;
    if (!req.acl?.hasSudo(aclPath)) throw permissionDenied();
  }

  #lease(id: string): Lease | undefined {
    const l = this.#env.leases.get(id);
    return l && l.ns === this.#ns ? l : undefined;
  }

  async #renew(req: MountRequest, urlId: string | undefined): Promise<Reply> {
    const warnings = ignoredParams(req.data, ['lease_id', 'url_lease_id', 'increment']);
    const id = urlId || (typeof req.data.lease_id === 'string' ? req.data.lease_id : '');
    if (id === '') throw badRequest('lease_id must be specified');
    let increment: number | undefined;
    if (req.data.increment !== undefined) {
      try {
        increment = parseDuration(req.data.increment);
      } catch (e) {
        throw badRequest(`error converting input ${String(req.data.increment)} for field "increment": ${(e as Error).message}`);
      }
    }
    if (id.startsWith('auth/')) throw badRequest('tokens cannot be renewed through this endpoint');
    const lease = this.#lease(id);
    if (!lease) throw badRequest('lease not found');
    let out;
    try {
      out = await this.#env.leases.renew(lease, increment);
    } catch (e) {
      if (e instanceof VaultHttpError) throw e;
      throw internalError(`failed to renew entry: ${(e as Error).message}`);
    }
    return ok({ leaseId: lease.id, renewable: lease.renewable, leaseDuration: out.ttl, warnings: [...out.warnings, ...warnings] });
  }

  async #revoke(req: MountRequest, urlId: string | undefined): Promise<Reply> {
    const id = urlId || (typeof req.data.lease_id === 'string' ? req.data.lease_id : '');
    if (id === '') throw badRequest('lease_id must be specified');
    const sync = parseBool(req.data.sync, true);
    const lease = this.#lease(id);
    if (lease) {
      const p = this.#env.leases.revoke(lease);
      if (!sync) {
        this.#env.background(`revoke ${id}`, p);
        return accepted();
      }
      try {
        await p;
      } catch (e) {
        throw internalError(`failed to revoke entry: ${(e as Error).message}`);
      }
    }
    return sync ? noContent() : accepted();
  }

  protected routes(): Route[] {
    return [
      { pattern: /^(?:leases\/)?renew\/?$/, write: (req) => this.#renew(req, undefined) },
      { pattern: /^(?:leases\/)?renew\/(.+)$/, write: (req, m) => this.#renew(req, m[1]) },
      { pattern: /^(?:leases\/)?revoke\/?$/, write: (req) => this.#revoke(req, undefined) },
      { pattern: /^(?:leases\/)?revoke\/(.+)$/, write: (req, m) => this.#revoke(req, m[1]) },
      {
        pattern: /^(?:leases\/)?revoke-prefix\/(.+)$/,
        write: async (req, m) => {
          this.#requireSudo(req);
          for (const l of this.#env.leases.all()) if (l.ns === this.#ns && l.id.startsWith(m[1]!)) await this.#env.leases.revoke(l);
          return noContent();
        },
      },
      {
        pattern: /^leases\/lookup\/?$/,
        write: (req) => {
          const id = typeof req.data.lease_id === 'string' ? req.data.lease_id : '';
          if (id === '') throw badRequest('missing param: lease_id');
          const l = this.#lease(id);
          if (!l) throw badRequest('invalid lease');
          return ok({ data: this.#env.leases.lookupData(l) });
        },
        list: (req) => {
          this.#requireSudo(req);
          return ok({ data: { keys: [] } });
        },
      },
      {
        pattern: /^leases\/lookup\/(.+)$/,
        list: (req, m) => {
          this.#requireSudo(req);
          const prefix = m[1]!.endsWith('/') ? m[1]! : `${m[1]}/`;
          const keys = new Set<string>();
          for (const l of this.#env.leases.all()) {
            if (l.ns !== this.#ns || !l.id.startsWith(prefix)) continue;
            const rest = l.id.slice(prefix.length);
            const slash = rest.indexOf('/');
            keys.add(slash < 0 ? rest : rest.slice(0, slash + 1));
          }
          if (keys.size === 0) throw notFound();
          return ok({ data: { keys: [...keys].sort() } });
        },
      },
      {
        pattern: /^policies\/acl\/?$/,
        list: () => ok({ data: { keys: [...this.#ns.policies.keys(), ...(this.#ns.path === '' ? ['root'] : [])].sort(), policies: [...this.#ns.policies.keys()].sort() } }),
      },
      {
        pattern: /^policies\/acl\/([^/]+)$/,
        read: (_req, m) => {
          const p = this.#ns.policies.get(m[1]!.toLowerCase());
          if (!p) throw notFound();
          return ok({ data: { name: p.name, policy: p.text } });
        },
        write: (req, m) => {
          const text = req.data.policy;
          if (typeof text !== 'string' || text === '') throw badRequest("'policy' parameter not supplied or empty");
          try {
            this.#ns.setPolicy(m[1]!, text);
          } catch (e) {
            throw badRequest(`failed to parse policy: ${(e as Error).message}`);
          }
          return noContent();
        },
        delete: (_req, m) => {
          try {
            this.#ns.deletePolicy(m[1]!);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
          return noContent();
        },
      },
      {
        pattern: /^capabilities-self$/,
        write: (req) => {
          const paths = stringList(req.data.paths ?? req.data.path);
          if (paths.length === 0) throw badRequest('missing paths');
          const data: Record<string, Capability[] | string[]> = {};
          for (const p of paths) {
            const aclPath = `${this.#ns.path.slice(req.token?.ns.path.length ?? 0)}${p}`;
            const caps = req.acl?.root ? ['root'] : [...(req.acl?.capabilities(aclPath) ?? new Set<Capability>())].filter((c) => (CAPABILITIES as readonly string[]).includes(c)).sort();
            data[p] = caps.length === 0 ? ['deny'] : (caps as Capability[]);
          }
          if (paths.length === 1) data.capabilities = data[paths[0]!]!;
          return ok({ data });
        },
      },
      {
        pattern: /^namespaces\/?$/,
        list: () => {
          const keys = [...this.#ns.children.keys()].map((k) => `${k}/`).sort();
          if (keys.length === 0) throw notFound();
          return ok({ data: { keys } });
        },
      },
      {
        pattern: /^namespaces\/(.+?)\/?$/,
        exists: (m) => this.#ns.children.has(m[1]!),
        read: (_req, m) => {
          const c = this.#ns.children.get(m[1]!);
          if (!c) throw notFound();
          return ok({ data: { custom_metadata: {}, id: c.id, path: c.path } });
        },
        write: (_req, m) => {
          const c = this.#ns.namespace(m[1]!);
          return ok({ data: { custom_metadata: {}, id: c.id, path: c.path } });
        },
      },
      {
        pattern: /^mounts\/(.+?)\/?$/,
        write: (req, m) => {
          const type = String(req.data.type ?? '');
          const opts = (req.data.options ?? {}) as Record<string, unknown>;
          try {
            if (type === 'kv' || type === 'kv-v2' || type === 'generic') this.#ns.enableKv(m[1]!, { version: type === 'kv-v2' || String(opts.version ?? '1') === '2' ? 2 : 1 });
            else if (type === 'database') this.#ns.enableDatabase({ path: m[1]! });
            else throw new Error(`plugin not found in the catalog: ${type}`);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
          return noContent();
        },
        delete: async (_req, m) => {
          await this.#ns.disable(m[1]!);
          return noContent();
        },
      },
      {
        pattern: /^auth\/(.+?)\/?$/,
        write: (req, m) => {
          const type = String(req.data.type ?? '');
          try {
            if (type === 'kubernetes') this.#ns.enableKubernetesAuth({ path: m[1]! });
            else if (type === 'approle') this.#ns.enableAppRole({ path: m[1]! });
            else throw new Error(`plugin not found in the catalog: ${type}`);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
          return noContent();
        },
        delete: async (_req, m) => {
          await this.#ns.disable(`auth/${m[1]!}`);
          return noContent();
        },
      },
      {
        pattern: /^seal$/,
        write: (req) => {
          this.#requireSudo(req);
          this.#core.seal();
          return noContent();
        },
      },
    ];
  }
}

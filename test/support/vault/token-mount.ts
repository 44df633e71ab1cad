// The token auth method at auth/token/: lookup-self, renew-self, revoke-self, create, lookup,
// renew, revoke.
import { parseDuration } from './duration.ts';
import { badRequest, VaultHttpError } from './errors.ts';
import { ignoredParams, RoutedMount, stringList, type MountEnv, type MountRequest, type Route } from './mount.ts';
import type { Namespace } from './namespace.ts';
import { noContent, ok, type Reply } from './reply.ts';
import type { Token } from './tokens.ts';

function durationParam(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  try {
    return parseDuration(v);
  } catch (e) {
    throw badRequest(`error converting input ${String(v)} for field "${field}": ${(e as Error).message}`);
  }
}

export class TokenMount extends RoutedMount {
  readonly type = 'token';
  readonly #env: MountEnv;
  readonly #ns: Namespace;

  constructor(env: MountEnv, ns: Namespace) {
    super('auth/token/');
    this.#env = env;
    this.#ns = ns;
  }

  #self(req: MountRequest): Token {
    if (!req.token) throw new VaultHttpError(403, ['permission denied']);
    return req.token;
  }

  #byParam(req: MountRequest): Token {
    const id = typeof req.data.token === 'string' ? req.data.token : '';
    if (id === '') throw badRequest('missing token');
    const t = this.#env.tokens.lookup(id);
    if (!t) throw badRequest('bad token');
    return t;
  }

  #renew(t: Token, req: MountRequest): Reply {
    const increment = durationParam(req.data.increment, 'increment');
    const { warnings } = this.#env.tokens.renew(t, increment);
    return ok({ auth: this.#env.tokens.authBlock(t), warnings });
  }

  #create(req: MountRequest, orphan: boolean): Reply {
    const parent = this.#self(req);
    const parentRoot = parent.policies.includes('root');
    const d = req.data;
    const requested = d.policies === undefined ? parent.policies.filter((p) => p !== 'default') : stringList(d.policies);
    if (!parentRoot) {
      const bad = requested.filter((p) => p !== 'default' && !parent.policies.includes(p));
      if (bad.length > 0) throw badRequest('child policies must be subset of parent');
    }
    if (d.id !== undefined && !parentRoot) throw badRequest('root or sudo privileges required to specify token id');
    const noParent = orphan || d.no_parent === true;
    const displayName = typeof d.display_name === 'string' && d.display_name !== '' ? `token-${d.display_name.replace(/[^a-zA-Z0-9-]/g, '-')}` : 'token';
    const meta = d.meta && typeof d.meta === 'object' ? (Object.fromEntries(Object.entries(d.meta as Record<string, unknown>).map(([k, v]) => [k, String(v)])) as Record<string, string>) : null;
    const t = this.#env.tokens.create(this.#ns, {
      policies: requested,
      noDefaultPolicy: d.no_default_policy === true,
      ttl: durationParam(d.ttl, 'ttl'),
      explicitMaxTtl: durationParam(d.explicit_max_ttl, 'explicit_max_ttl'),
      renewable: d.renewable === undefined ? true : d.renewable === true || d.renewable === 'true',
      displayName,
      meta,
      path: orphan ? 'auth/token/create-orphan' : 'auth/token/create',
      parent: noParent ? null : parent,
      entityId: parent.entityId,
      ...(typeof d.id === 'string' && d.id !== '' ? { id: d.id } : {}),
      type: d.type === 'batch' ? 'batch' : 'service',
    });
    return ok({ auth: this.#env.tokens.authBlock(t) });
  }

  protected routes(): Route[] {
    return [
      { pattern: /^lookup-self$/, read: (req) => ok({ data: this.#env.tokens.lookupData(this.#self(req)) }) },
      { pattern: /^renew-self$/, write: (req) => this.#renew(this.#self(req), req) },
      {
        pattern: /^revoke-self$/,
        write: async (req) => {
          await this.#env.tokens.revoke(this.#self(req));
          return noContent();
        },
      },
      { pattern: /^create$/, write: (req) => this.#create(req, false) },
      { pattern: /^create-orphan$/, write: (req) => this.#create(req, true) },
      { pattern: /^lookup$/, write: (req) => ok({ data: this.#env.tokens.lookupData(this.#byParam(req)), warnings: ignoredParams(req.data, ['token']) }) },
      { pattern: /^renew$/, write: (req) => this.#renew(this.#byParam(req), req) },
      {
        pattern: /^revoke$/,
        write: async (req) => {
          await this.#env.tokens.revoke(this.#byParam(req));
          return noContent();
        },
      },
    ];
  }
}

// OAuth 2.0 client credentials (RFC 6749 §4.4): the client id and secret come from the store, the
// access token from the token endpoint. One token per credential version, fetched once however
// many requests wait for it, reused until shortly before it expires, and dropped when the API
// answers 401 with it (the exchange then retries once with a fresh one).
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { HttpTargetConfig } from '../../../config/schema.ts';
import { refKey, type Credential } from '../../../credentials/types.ts';
import { KeylessError } from '../../../errors.ts';
import { deleteHeader } from '../hop-by-hop.ts';
import { upstreamError } from '../upstream.ts';
import { parseTemplate } from './template.ts';
import type { InjectContext, Injector } from './types.ts';

export type OAuth2Config = Extract<HttpTargetConfig['inject'], { kind: 'oauth2' }>;

/** Token responses larger than this are not a token. */
const MAX_TOKEN_RESPONSE = 64 * 1024;
/** Refresh this long before expiry: a tenth of the lifetime, at most a minute. */
export function refreshAt(issuedAt: number, expiresInS: number): number {
  const lifetime = expiresInS * 1000;
  return issuedAt + lifetime - Math.min(60_000, lifetime / 10);
}

export interface Token {
  readonly value: string;
  readonly refreshAt: number;
}

/** Caches one token per credential (ref and version) with single-flight fetches. */
export class TokenCache {
  readonly #fetch: (cred: Credential, ctx: InjectContext) => Promise<Token>;
  readonly #now: () => number;
  readonly #tokens = new Map<string, Token>();
  readonly #inflight = new Map<string, Promise<Token>>();

  constructor(fetch: (cred: Credential, ctx: InjectContext) => Promise<Token>, now: () => number = Date.now) {
    this.#fetch = fetch;
    this.#now = now;
  }

  async get(cred: Credential, ctx: InjectContext): Promise<Token> {
    const key = `${refKey(cred.ref)}#${cred.version}`;
    const cached = this.#tokens.get(key);
    if (cached && this.#now() < cached.refreshAt) return cached;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#fetch(cred, ctx).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
      p.then(
        (t) => {
          // Only one token per credential ref: older versions' tokens go.
          for (const k of this.#tokens.keys()) if (k.startsWith(`${refKey(cred.ref)}#`)) this.#tokens.delete(k);
          this.#tokens.set(key, t);
        },
        () => undefined,
      );
    }
    return p;
  }

  /** Forget `value` if it is still the cached token (concurrent 401s drop it once). */
  drop(cred: Credential, value: string): void {
    const key = `${refKey(cred.ref)}#${cred.version}`;
    if (this.#tokens.get(key)?.value === value) this.#tokens.delete(key);
  }
}

export function oauth2(target: string, cfg: OAuth2Config, fallbackCa: string | undefined, timeouts: { connect: number; response: number }): Injector {
  const clientId = parseTemplate(cfg.clientId);
  const clientSecret = parseTemplate(cfg.clientSecret);
  const caFile = cfg.tls?.ca ?? fallbackCa;
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new KeylessError('KL_ERR_CONFIG', `targets.${target}.inject.tls.ca: cannot read ${caFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const agent = new Agent({ connect: { timeout: timeouts.connect, rejectUnauthorized: true, ...(ca ? { ca } : {}) }, headersTimeout: timeouts.response, bodyTimeout: timeouts.response });
  const tokenUrl = new URL(cfg.tokenUrl);

  async function fetchToken(cred: Credential, ctx: InjectContext): Promise<Token> {
    const used: string[] = [];
    const id = clientId.render(cred, target, used);
    const secret = clientSecret.render(cred, target, used);
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (cfg.scopes?.length) form.set('scope', cfg.scopes.join(' '));
    if (cfg.audience) form.set('audience', cfg.audience);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (cfg.clientAuth === 'basic') {
      // RFC 6749 §2.3.1: each part form-urlencoded before base64.
      headers.authorization = `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
    } else {
      form.set('client_id', id);
      form.set('client_secret', secret);
    }
    const issuedAt = Date.now();
    let res;
    try {
      res = await request(tokenUrl, { method: 'POST', headers, body: form.toString(), dispatcher: agent, signal: ctx.signal });
    } catch (err) {
      throw upstreamError(err, target, `token endpoint ${tokenUrl.origin}`);
    }
    const text = await readBounded(res.body, MAX_TOKEN_RESPONSE).catch((err: unknown) => {
      throw upstreamError(err, target, `token endpoint ${tokenUrl.origin}`);
    });
    if (res.statusCode === 400 || res.statusCode === 401) {
      // invalid_client and friends: the stored client credentials are refused. Only the error code is logged.
      throw new KeylessError('KL_ERR_UPSTREAM_AUTH', `target ${target}: token endpoint refused the client credentials (${res.statusCode} ${oauthError(text)}), credential version ${cred.version}`);
    }
    if (res.statusCode !== 200) {
      throw new KeylessError('KL_ERR_UPSTREAM_ERROR', `target ${target}: token endpoint answered ${res.statusCode}`);
    }
    let body: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `target ${target}: token endpoint answered with something other than JSON`);
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `target ${target}: token response has no access_token`);
    }
    if (typeof body.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer') {
      throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', `target ${target}: token_type ${JSON.stringify(body.token_type.slice(0, 20))} is not bearer`);
    }
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : Number(body.expires_in) > 0 ? Number(body.expires_in) : cfg.defaultExpiry / 1000;
    return { value: body.access_token, refreshAt: refreshAt(issuedAt, expiresIn) };
  }

  const tokens = new TokenCache(fetchToken);
  return {
    async apply(out, cred, ctx) {
      const token = await tokens.get(cred, ctx);
      deleteHeader(out.headers, 'authorization');
      out.headers.authorization = `Bearer ${token.value}`;
      const secrets = [token.value];
      for (const f of [...clientId.fields, ...clientSecret.fields]) {
        const v = cred.fields.get(f);
        if (v) secrets.push(v.reveal());
      }
      return secrets;
    },
    rejected(cred, applied) {
      if (applied[0]) tokens.drop(cred, applied[0]);
    },
    async close() {
      await agent.close();
    },
  };
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

/** The `error` code of an OAuth error response, when it is one of the registered short codes. */
function oauthError(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: unknown }).error;
    return typeof e === 'string' && /^[a-z_]{1,40}$/.test(e) ? e : 'no error code';
  } catch {
    return 'no error code';
  }
}

async function readBounded(body: AsyncIterable<Buffer | string>, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    n += b.length;
    if (n > max) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `token response larger than ${max} bytes`);
    parts.push(b);
  }
  return Buffer.concat(parts).toString('utf8');
}

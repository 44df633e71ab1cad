// One Vault identity: a node-vault client (one per identity, because node-vault overwrites its
// token on login), logged in with the configured auth method, its token renewed ahead of expiry
// and replaced by a new login when renewal fails or Vault calls it invalid. Only node-vault's
// `request` is used, with explicit paths (spec §7: its login helpers and shared headers are buggy).
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import { KeylessError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Metrics } from '../../observability/metrics.ts';

export type VaultAuth =
  | { method: 'kubernetes'; role: string; mount: string; tokenFile: string }
  | { method: 'approle'; mount: string; roleIdFile: string; secretIdFile: string }
  | { method: 'token'; tokenFile?: string; tokenEnv: string };

export interface VaultClientOptions {
  store: string;
  address: string;
  namespace?: string;
  ca?: Buffer;
  timeoutMs: number;
  auth: VaultAuth;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
}

/** The parts of a Vault response envelope Keyless reads (spec §1.2). */
export interface VaultResponse {
  lease_id?: string;
  renewable?: boolean;
  lease_duration?: number;
  data?: Record<string, unknown> | null;
  warnings?: string[] | null;
  auth?: { client_token: string; lease_duration: number; renewable: boolean } | null;
}

/** What node-vault rejects with: ApiResponseError (has response) or a transport error (has code). */
interface NodeVaultError extends Error {
  response?: { statusCode: number; body?: { errors?: string[]; data?: unknown } };
  code?: string;
}

interface NodeVaultClient {
  token: string;
  request(opts: { path: string; method: string; json?: unknown; timeout?: number }): Promise<VaultResponse | ''>;
}

/** Renew the token when this fraction of its TTL has passed. */
const RENEW_AT = 2 / 3;

export class VaultClient {
  readonly #opts: VaultClientOptions;
  readonly #vault: NodeVaultClient;
  readonly #now: () => number;
  #token: { expiresAt: number | undefined; renewable: boolean; ttlMs: number } | undefined;
  #login: Promise<void> | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: VaultClientOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    // No requestOptions.headers: node-vault would share and freeze them (spec §7 issue 2).
    this.#vault = nodeVault({
      endpoint: opts.address,
      namespace: opts.namespace,
      requestOptions: opts.ca ? { ca: opts.ca } : {},
      noCustomHTTPVerbs: true,
    }) as unknown as NodeVaultClient;
    this.#vault.token = '';
  }

  /** GET a path with the client's token, logging in first if needed; one re-login on an invalid token. */
  read(path: string): Promise<VaultResponse> {
    return this.#call('GET', path);
  }

  write(path: string, body: unknown): Promise<VaultResponse> {
    return this.#call('POST', path, body);
  }

  async #call(method: string, path: string, body?: unknown, retried = false): Promise<VaultResponse> {
    await this.#ensureToken();
    try {
      const res = await this.#vault.request({ path: `/${path}`, method, json: body, timeout: this.#opts.timeoutMs });
      return res === '' ? {} : res;
    } catch (err) {
      const e = err as NodeVaultError;
      if (!retried && e.response?.statusCode === 403 && isInvalidToken(e)) {
        // Our token expired or was revoked under us: log in again once.
        this.#opts.log.warn({ store: this.#opts.store, path }, 'vault token rejected; logging in again');
        this.#token = undefined;
        return this.#call(method, path, body, true);
      }
      throw toKeylessError(this.#opts.store, path, e);
    }
  }

  async #ensureToken(): Promise<void> {
    if (this.#closed) throw new KeylessError('KL_ERR_SHUTTING_DOWN', `store ${this.#opts.store}: closed`);
    const t = this.#token;
    if (t && (t.expiresAt === undefined || this.#now() < t.expiresAt)) return;
    this.#login ??= this.#doLogin().finally(() => {
      this.#login = undefined;
    });
    return this.#login;
  }

  async #doLogin(): Promise<void> {
    const { auth, store, log } = this.#opts;
    if (auth.method === 'token') {
      const token = auth.tokenFile ? (await readSecretFile(store, auth.tokenFile)).trim() : process.env[auth.tokenEnv];
      if (!token) throw new KeylessError('KL_ERR_STORE_UNAVAILABLE', `store ${store}: no Vault token in ${auth.tokenFile ?? `$${auth.tokenEnv}`}`);
      this.#vault.token = token;
      // Learn the token's TTL so it can be renewed; a root token has none.
      const self = await this.#rawRequest('GET', 'auth/token/lookup-self');
      const ttl = Number((self.data as { ttl?: number } | null)?.ttl ?? 0);
      const renewable = Boolean((self.data as { renewable?: boolean } | null)?.renewable);
      this.#setToken(token, ttl, renewable);
      log.info({ store, method: 'token', ttl }, 'vault token loaded');
      return;
    }
    let loginPath: string;
    let body: Record<string, string>;
    if (auth.method === 'kubernetes') {
      // Read each time: the projected ServiceAccount token is rotated by the kubelet.
      loginPath = `auth/${auth.mount}/login`;
      body = { role: auth.role, jwt: (await readSecretFile(store, auth.tokenFile)).trim() };
    } else {
      loginPath = `auth/${auth.mount}/login`;
      body = { role_id: (await readSecretFile(store, auth.roleIdFile)).trim(), secret_id: (await readSecretFile(store, auth.secretIdFile)).trim() };
    }
    this.#vault.token = '';
    const res = await this.#rawRequest('POST', loginPath, body);
    if (!res.auth?.client_token) throw new KeylessError('KL_ERR_STORE_UNAVAILABLE', `store ${store}: ${loginPath} returned no token`);
    this.#setToken(res.auth.client_token, res.auth.lease_duration, res.auth.renewable);
    this.#opts.metrics.vaultLogins.inc({ store, result: 'ok' });
    log.info({ store, method: auth.method, ttl: res.auth.lease_duration }, 'vault login ok');
  }

  async #rawRequest(method: string, path: string, body?: unknown): Promise<VaultResponse> {
    try {
      const res = await this.#vault.request({ path: `/${path}`, method, json: body, timeout: this.#opts.timeoutMs });
      return res === '' ? {} : res;
    } catch (err) {
      if (path.includes('/login')) this.#opts.metrics.vaultLogins.inc({ store: this.#opts.store, result: 'error' });
      throw toKeylessError(this.#opts.store, path, err as NodeVaultError);
    }
  }

  #setToken(token: string, ttlSeconds: number, renewable: boolean): void {
    this.#vault.token = token;
    const ttlMs = ttlSeconds * 1000;
    this.#token = { expiresAt: ttlSeconds > 0 ? this.#now() + ttlMs : undefined, renewable, ttlMs };
    this.#scheduleRenewal();
  }

  #scheduleRenewal(): void {
    clearTimeout(this.#renewTimer);
    const t = this.#token;
    if (!t || t.expiresAt === undefined || this.#closed) return;
    const delay = Math.max(1000, t.ttlMs * RENEW_AT - (t.ttlMs - (t.expiresAt - this.#now())));
    this.#renewTimer = setTimeout(() => void this.renewToken(), delay);
    this.#renewTimer.unref();
  }

  /** Renew the token now (normally run by the timer); on failure the next request logs in again. */
  async renewToken(): Promise<void> {
    const t = this.#token;
    if (!t) return;
    const { store, log, metrics } = this.#opts;
    if (!t.renewable) {
      // A non-renewable token is replaced by a fresh login before it lapses.
      this.#token = undefined;
      metrics.vaultTokenRenewals.inc({ store, result: 'relogin' });
      await this.#ensureToken().catch((err: unknown) => log.warn({ store, err: (err as Error).message }, 'vault re-login failed'));
      return;
    }
    try {
      const res = await this.#rawRequest('POST', 'auth/token/renew-self', {});
      const ttl = res.auth?.lease_duration ?? 0;
      // Capped near the max TTL: a new login gives a fresh token instead.
      if (ttl * 1000 < t.ttlMs * (1 - RENEW_AT)) {
        metrics.vaultTokenRenewals.inc({ store, result: 'max_ttl' });
        log.info({ store, ttl }, 'vault token near its max TTL; logging in again');
        this.#token = undefined;
        await this.#ensureToken();
        return;
      }
      this.#setToken(this.#vault.token, ttl, res.auth?.renewable ?? false);
      metrics.vaultTokenRenewals.inc({ store, result: 'ok' });
      log.debug({ store, ttl }, 'vault token renewed');
    } catch (err) {
      metrics.vaultTokenRenewals.inc({ store, result: 'error' });
      log.warn({ store, err: (err as Error).message }, 'vault token renewal failed; will log in again');
      this.#token = undefined;
      await this.#ensureToken().catch((e: unknown) => log.warn({ store, err: (e as Error).message }, 'vault re-login failed'));
    }
  }

  /** Log in (if needed) and look the token up: proves the address, TLS, auth and token work. */
  async ping(): Promise<string> {
    const self = await this.read('auth/token/lookup-self');
    const d = (self.data ?? {}) as { policies?: string[]; ttl?: number };
    return `${this.#opts.address}: logged in (${this.#opts.auth.method}), policies ${(d.policies ?? []).join(',')}, token ttl ${d.ttl ?? 0}s`;
  }

  /** Revoke a lease (shutdown). Errors are logged, not thrown. */
  async revokeLease(leaseId: string): Promise<void> {
    try {
      await this.write('sys/leases/revoke', { lease_id: leaseId });
      this.#opts.log.info({ store: this.#opts.store, lease: leaseId }, 'lease revoked');
    } catch (err) {
      this.#opts.log.warn({ store: this.#opts.store, lease: leaseId, err: (err as Error).message }, 'lease revocation failed');
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#renewTimer);
  }
}

async function readSecretFile(store: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new KeylessError('KL_ERR_STORE_UNAVAILABLE', `store ${store}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

function isInvalidToken(e: NodeVaultError): boolean {
  const errors = e.response?.body?.errors ?? [];
  // Vault >= 1.17 says "invalid token"; older Vault and OpenBao only "permission denied", which
  // is ambiguous — a policy denial looks the same — so only the explicit text triggers a re-login.
  return errors.some((m) => /invalid token|missing client token/.test(m));
}

/** Vault's answer as a KeylessError: the class for the client, Vault's own text for the log. */
export function toKeylessError(store: string, path: string, e: NodeVaultError): KeylessError {
  const status = e.response?.statusCode;
  const vaultText = (e.response?.body?.errors ?? []).map((m) => m.replace(/\s+/g, ' ').trim()).join('; ');
  const where = `store ${store}: vault ${path}`;
  if (status === undefined) {
    // Transport failure (axios): only its code and message, never the request config it carries.
    return new KeylessError('KL_ERR_STORE_UNAVAILABLE', `${where}: unreachable: ${e.code ?? ''} ${e.message}`.trim());
  }
  if (status === 403) return new KeylessError('KL_ERR_STORE_DENIED', `${where}: 403 ${vaultText || 'permission denied'}`);
  if (status === 404) {
    const deleted = e.response?.body?.data ? ' (version deleted or destroyed)' : '';
    return new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', `${where}: 404 not found${deleted}`);
  }
  if (status === 503) return new KeylessError('KL_ERR_STORE_UNAVAILABLE', `${where}: 503 ${vaultText || 'unavailable'}`);
  if (status === 400) return new KeylessError('KL_ERR_STORE_REFUSED', `${where}: 400 ${vaultText}`);
  return new KeylessError('KL_ERR_STORE_UNAVAILABLE', `${where}: ${status} ${vaultText}`);
}

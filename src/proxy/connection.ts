// One client connection as the core sees it: id, peer, logger, metrics and lazy credentials.
import { performance } from 'node:perf_hooks';
import type { CredentialCache } from '../credentials/cache.ts';
import { mapFields } from '../credentials/fields.ts';
import type { Credential } from '../credentials/types.ts';
import { KeylessError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConnectionResult, Metrics } from '../observability/metrics.ts';
import type { ConnectionContext, Target } from '../protocols/types.ts';
import type { AccessPolicy } from './policy.ts';

const RESULT_BY_CODE: Record<ErrorCode, ConnectionResult> = {
  KL_ERR_CONFIG: 'store_error',
  KL_ERR_POLICY_DENIED: 'denied',
  KL_ERR_UNKNOWN_TARGET: 'unknown_target',
  KL_ERR_PROTOCOL: 'protocol_error',
  KL_ERR_CLIENT_CLOSED: 'client_closed',
  KL_ERR_PACKET_TOO_LARGE: 'protocol_error',
  KL_ERR_UNSUPPORTED: 'protocol_error',
  KL_ERR_HANDSHAKE_TIMEOUT: 'handshake_timeout',
  KL_ERR_STORE_UNAVAILABLE: 'store_error',
  KL_ERR_STORE_DENIED: 'store_error',
  KL_ERR_STORE_REFUSED: 'store_error',
  KL_ERR_CREDENTIAL_NOT_FOUND: 'store_error',
  KL_ERR_CREDENTIAL_INVALID: 'store_error',
  KL_ERR_UPSTREAM_UNREACHABLE: 'upstream_unreachable',
  KL_ERR_UPSTREAM_TIMEOUT: 'upstream_unreachable',
  KL_ERR_UPSTREAM_TLS: 'upstream_tls',
  KL_ERR_UPSTREAM_AUTH: 'upstream_auth',
  KL_ERR_UPSTREAM_AUTH_METHOD: 'upstream_auth',
  KL_ERR_UPSTREAM_PROTOCOL: 'upstream_error',
  KL_ERR_UPSTREAM_ERROR: 'upstream_error',
  KL_ERR_UPSTREAM_CLOSED: 'upstream_error',
  KL_ERR_SHUTTING_DOWN: 'shutting_down',
  KL_ERR_TARGET_RECONFIGURED: 'shutting_down',
  KL_ERR_IDLE_TIMEOUT: 'ok',
  KL_ERR_TOO_MANY_CONNECTIONS: 'too_many_connections',
};

export function resultOf(code: ErrorCode): ConnectionResult {
  return RESULT_BY_CODE[code];
}

/** What a target brings to its connections, built once per target. */
export interface BoundTarget extends Target {
  readonly policy: AccessPolicy;
  /** Connections currently admitted to this target. */
  active: number;
}

export class Connection implements ConnectionContext {
  readonly id: string;
  readonly peer: { address: string; port: number };
  readonly signal: AbortSignal;
  readonly metrics: Metrics;
  log: Logger;
  #label: string;
  #target: BoundTarget | undefined;
  readonly #cache: CredentialCache;
  readonly #started = performance.now();
  #done = false;
  #admitted = false;
  readonly #abort = new AbortController();
  /** Credential versions this connection holds (a held lease is kept renewed). */
  readonly #held: string[] = [];
  #onEnd: (() => void) | undefined;
  #counter: { target: string; read(): { fromClient: number; fromUpstream: number } } | undefined;

  constructor(opts: { id: string; peer: { address: string; port: number }; label: string; log: Logger; metrics: Metrics; cache: CredentialCache; signal: AbortSignal }) {
    this.id = opts.id;
    this.peer = opts.peer;
    this.#label = opts.label;
    this.log = opts.log.child({ conn: opts.id });
    this.metrics = opts.metrics;
    this.#cache = opts.cache;
    // Its own signal: aborted with the proxy's (shutdown) or alone (its target was reconfigured).
    this.signal = AbortSignal.any([opts.signal, this.#abort.signal]);
    this.metrics.connectionsActive.inc({ target: this.#label });
  }

  /** End this connection from Keyless's side; the protocol tells the client `reason`. */
  abort(reason: KeylessError): void {
    this.#abort.abort(reason);
  }

  get target(): BoundTarget | undefined {
    return this.#target;
  }

  bind(target: Target): void {
    const t = target as BoundTarget;
    if (this.#target === t) return;
    this.#target = t;
    this.metrics.connectionsActive.dec({ target: this.#label });
    this.#label = t.name;
    this.metrics.connectionsActive.inc({ target: this.#label });
    this.log = this.log.child({ target: t.name });
  }

  admit(): KeylessError | undefined {
    const t = this.#target;
    if (!t) return new KeylessError('KL_ERR_UNKNOWN_TARGET', 'admit() before bind()');
    if (!t.policy.allows(this.peer.address)) {
      return new KeylessError('KL_ERR_POLICY_DENIED', `client ${this.peer.address} is not in the allow rules of target ${t.name}`);
    }
    if (t.active >= t.config.maxConnections) {
      return new KeylessError('KL_ERR_TOO_MANY_CONNECTIONS', `target ${t.name} is at its limit of ${t.config.maxConnections} connections`);
    }
    t.active++;
    this.#admitted = true;
    return undefined;
  }

  async credentials(rejected?: Credential): Promise<Credential> {
    const t = this.#target;
    if (!t) throw new Error('credentials() before bind()');
    const ref = t.config.credential;
    if (rejected) {
      this.#cache.invalidate(ref, rejected.version);
      this.#release(rejected.version);
    }
    const cred = await this.#cache.acquire(ref);
    this.#held.push(cred.version);
    return mapFields(cred, ref.fields);
  }

  #release(version: string): void {
    const i = this.#held.indexOf(version);
    if (i < 0 || !this.#target) return;
    this.#held.splice(i, 1);
    this.#cache.release(this.#target.config.credential, version);
  }

  relaying(counter: { fromClient(): number; fromUpstream(): number }): void {
    const seconds = (performance.now() - this.#started) / 1000;
    this.metrics.handshakeSeconds.observe({ target: this.#label }, seconds);
    this.#counter = { target: this.#label, read: () => ({ fromClient: counter.fromClient(), fromUpstream: counter.fromUpstream() }) };
    this.metrics.trackBytes(this.#counter);
    this.#record('ok');
    this.log.info({ ms: Math.round(seconds * 1000) }, 'relaying');
  }

  failed(err: KeylessError): void {
    const result = resultOf(err.code);
    const level = result === 'protocol_error' || result === 'denied' || result === 'unknown_target' || result === 'handshake_timeout' || result === 'client_closed' ? 'info' : 'warn';
    this.log[level]({ code: err.code, err: err.message, cause: causeText(err.cause) }, 'connection failed');
    this.#record(result);
  }

  finished(result: ConnectionResult): void {
    this.#record(result);
  }

  /** Called by the listener once the handler returned and both sockets are gone. */
  end(): void {
    if (!this.#done) this.#record('client_closed');
    if (this.#counter) this.metrics.untrackBytes(this.#counter);
    this.metrics.connectionsActive.dec({ target: this.#label });
    if (this.#admitted && this.#target) this.#target.active--;
    for (const v of [...this.#held]) this.#release(v);
    this.#onEnd?.();
  }

  onEnd(fn: () => void): void {
    this.#onEnd = fn;
  }

  #record(result: ConnectionResult): void {
    if (this.#done) return;
    this.#done = true;
    this.metrics.connectionsTotal.inc({ target: this.#label, result });
  }
}

function causeText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code ? `${(cause as NodeJS.ErrnoException).code}: ${cause.message}` : cause.message;
  return String(cause);
}

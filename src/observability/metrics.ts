// Every metric Keyless exports, declared in one place. Labels are target, store, result and reason
// names from config or from a fixed set: never a credential value, user name or client input.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ConnectionResult =
  | 'ok'
  | 'denied'
  | 'unknown_target'
  | 'protocol_error'
  | 'handshake_timeout'
  | 'client_closed'
  | 'store_error'
  | 'upstream_unreachable'
  | 'upstream_tls'
  | 'upstream_auth'
  | 'upstream_error'
  | 'cancel'
  | 'shutting_down'
  | 'too_many_connections';

export interface ByteCounter {
  readonly target: string;
  /** Bytes read from the client and from upstream so far. */
  read(): { fromClient: number; fromUpstream: number };
}

export class Metrics {
  readonly registry = new Registry();
  readonly connectionsActive: Gauge<'target'>;
  readonly connectionsTotal: Counter<'target' | 'result'>;
  readonly handshakeSeconds: Histogram<'target'>;
  readonly upstreamAuthFailures: Counter<'target' | 'reason'>;
  readonly bytes: Counter<'target' | 'direction'>;
  readonly storeRequests: Counter<'store' | 'result'>;
  readonly credentialCache: Counter<'store' | 'result'>;
  readonly credentialAge: Gauge<'store' | 'path'>;
  readonly configReloads: Counter<'result'>;
  readonly storeUp: Gauge<'store'>;
  readonly vaultLogins: Counter<'store' | 'result'>;
  readonly vaultTokenRenewals: Counter<'store' | 'result'>;
  readonly leaseRenewals: Counter<'store' | 'result'>;
  readonly #live = new Map<ByteCounter, { fromClient: number; fromUpstream: number }>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'keyless_' });
    this.connectionsActive = new Gauge({ name: 'keyless_connections_active', help: 'Open client connections', labelNames: ['target'], registers });
    this.connectionsTotal = new Counter({ name: 'keyless_connections_total', help: 'Client connections by how they ended (ok = reached the relay)', labelNames: ['target', 'result'], registers });
    this.handshakeSeconds = new Histogram({
      name: 'keyless_handshake_duration_seconds',
      help: 'From accept to the client being ready to relay (credential fetch, upstream connect and auth)',
      labelNames: ['target'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.upstreamAuthFailures = new Counter({ name: 'keyless_upstream_auth_failures_total', help: 'Upstream authentication failures', labelNames: ['target', 'reason'], registers });
    const live = this.#live;
    this.bytes = new Counter({
      name: 'keyless_bytes_total',
      help: 'Bytes relayed, by direction (client_to_upstream, upstream_to_client)',
      labelNames: ['target', 'direction'],
      registers,
      // Open connections are counted at scrape time, so the relay itself does no accounting.
      collect() {
        for (const [conn, last] of live) flushBytes(this, conn, last);
      },
    });
    this.storeRequests = new Counter({ name: 'keyless_store_requests_total', help: 'Credential store requests by result', labelNames: ['store', 'result'], registers });
    this.credentialCache = new Counter({ name: 'keyless_credential_cache_total', help: 'Credential cache lookups: hit, miss, coalesced, stale', labelNames: ['store', 'result'], registers });
    this.credentialAge = new Gauge({ name: 'keyless_credential_age_seconds', help: 'Age of the cached credential', labelNames: ['store', 'path'], registers });
    this.storeUp = new Gauge({ name: 'keyless_store_up', help: '1 when the store answered its last request, 0 when it failed', labelNames: ['store'], registers });
    this.vaultLogins = new Counter({ name: 'keyless_vault_logins_total', help: 'Vault logins by result', labelNames: ['store', 'result'], registers });
    this.vaultTokenRenewals = new Counter({ name: 'keyless_vault_token_renewals_total', help: 'Vault token renewals: ok, max_ttl (re-login), relogin, error', labelNames: ['store', 'result'], registers });
    this.leaseRenewals = new Counter({ name: 'keyless_lease_renewals_total', help: 'Lease renewals: ok, max_ttl (new credentials issued), error', labelNames: ['store', 'result'], registers });
    this.configReloads = new Counter({ name: 'keyless_config_reloads_total', help: 'Config reloads by result', labelNames: ['result'], registers });
  }

  trackBytes(conn: ByteCounter): void {
    this.#live.set(conn, { fromClient: 0, fromUpstream: 0 });
  }

  untrackBytes(conn: ByteCounter): void {
    const last = this.#live.get(conn);
    if (!last) return;
    flushBytes(this.bytes, conn, last);
    this.#live.delete(conn);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

function flushBytes(bytes: Counter<'target' | 'direction'>, conn: ByteCounter, last: { fromClient: number; fromUpstream: number }): void {
  const now = conn.read();
  const up = now.fromClient - last.fromClient;
  const down = now.fromUpstream - last.fromUpstream;
  if (up > 0) bytes.inc({ target: conn.target, direction: 'client_to_upstream' }, up);
  if (down > 0) bytes.inc({ target: conn.target, direction: 'upstream_to_client' }, down);
  last.fromClient = now.fromClient;
  last.fromUpstream = now.fromUpstream;
}

// The only things the proxy core knows about a protocol, and the only things a protocol knows
// about the core.
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { TargetConfig } from '../config/schema.ts';
import type { Credential } from '../credentials/types.ts';
import type { KeylessError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConnectionResult, Metrics } from '../observability/metrics.ts';

export interface Target {
  readonly name: string;
  readonly config: TargetConfig;
}

/** What a listener serves: one target, or several chosen by the client's database name. */
export interface Route {
  /** Listener address, for logs and the metric label of connections not yet routed. */
  readonly listen: string;
  /** The target for a requested database name, or undefined when none matches. */
  resolve(database: string | undefined): Target | undefined;
  /** How long a client has to send its startup packet (the longest of the listener's targets). */
  readonly handshakeMs: number;
  /** Client-facing TLS for this listener, if it has a certificate. */
  readonly tls: SecureContext | undefined;
  /** Every target of this listener (a protocol whose server speaks first needs one before routing). */
  readonly targets?: readonly Target[];
}

export interface ConnectionContext {
  readonly id: string;
  readonly peer: { readonly address: string; readonly port: number };
  /** Aborted when the proxy shuts down past its drain deadline. */
  readonly signal: AbortSignal;
  /** A child logger carrying the connection id (and target once bound). */
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Record which target this connection is for; re-labels its log lines and metrics. */
  bind(target: Target): void;
  /**
   * May this client use the bound target? Checks the target's `allow` rules and its connection
   * limit; returns the error to send the client when not.
   */
  admit(): KeylessError | undefined;
  /**
   * The bound target's credential, fetched on first need and shared. Pass the credential the
   * upstream just rejected to drop it and get a fresh one (once per connection).
   */
  credentials(rejected?: Credential): Promise<Credential>;
  /** Handshake done: relaying starts, the handshake histogram is observed. */
  relaying(counter: { fromClient(): number; fromUpstream(): number }): void;
  /** The connection failed before relaying; logged and counted with a result derived from the code. */
  failed(err: KeylessError): void;
  /** The connection ended without error but never relayed (e.g. a CancelRequest). */
  finished(result: ConnectionResult): void;
}

export interface ProtocolHandler {
  readonly protocol: TargetConfig['protocol'];
  /** Runs one client connection to its end. Must not throw: failures go to `ctx.failed`. */
  handle(client: Socket | TLSSocket, route: Route, ctx: ConnectionContext): Promise<void>;
  /**
   * `keyless check`: reach the target's upstream and authenticate with `cred` as a connection
   * would, then hang up. Resolves with a one-line description of what worked (never a secret);
   * rejects with a KeylessError saying what did not.
   */
  check?(target: Target, cred: Credential, signal: AbortSignal): Promise<string>;
  /**
   * Shutdown began: listeners no longer accept. Let open connections finish what they are doing
   * but take no more work on them (HTTP: close idle keep-alive connections, end the rest after
   * their current response). Byte relays have nothing to do here.
   */
  drain?(): void;
  close?(): Promise<void>;
}

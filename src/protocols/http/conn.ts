// Per-connection state between requests, and the rule that binds a connection to one target.
import type { Socket } from 'node:net';
import type { ConnectionContext, Target } from '../types.ts';
import { HttpStatusError } from './errors.ts';

export interface ConnState {
  readonly ctx: ConnectionContext;
  /** The raw TCP socket, for byte counts. */
  readonly raw: Socket;
  target: Target | undefined;
  /** Some request on this connection reached the upstream (the connection counts as relaying). */
  relayed: boolean;
  /** The first request's headers arrived (the handshake timer is off). */
  started?: boolean;
}

/**
 * Bind the connection to its first request's target and admit it (allow rules, connection
 * limit). A later request for another target gets 421 and the connection closes, so the
 * client retries on a fresh connection.
 */
export function bindOnce(st: ConnState, target: Target): void {
  if (st.target === target) return;
  if (st.target) {
    throw new HttpStatusError(
      421,
      'KL_ERR_UNKNOWN_TARGET',
      `connection is bound to target ${st.target.name}; a request for ${target.name} needs its own connection`,
      '(this connection serves another target; retry on a new connection)',
    );
  }
  st.ctx.bind(target);
  const refused = st.ctx.admit();
  if (refused) throw refused;
  st.target = target;
}

/** The first response on a connection marks it as relaying (connection metrics count it ok). */
export function markRelayed(st: ConnState): void {
  if (st.relayed) return;
  st.relayed = true;
  const raw = st.raw;
  st.ctx.relaying({ fromClient: () => raw.bytesRead, fromUpstream: () => raw.bytesWritten });
}

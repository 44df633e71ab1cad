// After the handshake: bytes both ways, no parsing. pipe() gives backpressure in each direction
// (a hand-written data → write loop measured no faster: bench/RESULTS.md). What is left is the
// lifecycle, shared with relays that must look at the bytes (mysql/relay.ts): a connection
// never outlives either side, errors close both, and when Keyless itself ends a connection
// (idle timeout, shutdown, reconfigured target) the client is told why.
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.ts';

export interface SpliceOptions {
  /** Close both sides after this long with no traffic on the client socket (0: never). */
  idleMs: number;
  log: Logger;
  /** Aborted when Keyless ends the connection (shutdown, reload); its reason says why. */
  signal: AbortSignal;
  /** Protocol bytes telling the client why Keyless is closing (idle timeout, shutdown). */
  farewell?(reason: 'idle' | 'shutdown'): Buffer;
}

type Side = Duplex & { setTimeout?(ms: number): unknown };

/** Grace for the other side to flush and close after one side closed cleanly. */
const LINGER_MS = 5_000;

export interface RelayLifecycle {
  /** Resolves when both sockets have closed. */
  done: Promise<void>;
  /** Close both now (an error on the data path). */
  destroyBoth(why: string): void;
}

/**
 * Teardown for a relay between `client` and `upstream`. `stop` is called when Keyless ends the
 * connection itself, before the farewell is written: the data path must forward nothing more.
 */
export function relayLifecycle(client: Side, upstream: Side, opts: SpliceOptions, stop: () => void): RelayLifecycle {
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let closed = 0;
  let reason: string | undefined;
  const finish = (): void => {
    if (++closed < 2) return;
    opts.signal.removeEventListener('abort', onAbort);
    opts.log.info({ reason: reason ?? 'closed' }, 'connection closed');
    resolveDone();
  };
  const destroyBoth = (why: string): void => {
    reason ??= why;
    client.destroy();
    upstream.destroy();
  };
  const goodbye = (why: 'idle' | 'shutdown'): void => {
    reason ??= why === 'idle' ? 'idle timeout' : 'shutdown';
    stop();
    upstream.destroy();
    const bytes = opts.farewell?.(why);
    if (bytes && !client.destroyed) client.end(bytes);
    else client.destroy();
    setTimeout(() => client.destroy(), LINGER_MS).unref();
  };
  const onAbort = (): void => goodbye('shutdown');
  const wire = (side: Side, other: Side, name: 'client' | 'upstream'): void => {
    if (side.closed) {
      // Closed while the handshake finished: there is nothing to relay.
      reason ??= `${name} closed`;
      other.destroy();
      queueMicrotask(finish);
      return;
    }
    side.on('error', (err: Error) => {
      opts.log.debug({ side: name, err: err.message }, 'socket error');
      destroyBoth(`${name} error: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
    });
    side.on('close', () => {
      reason ??= `${name} closed`;
      // Let the other side flush what it was handed (e.g. upstream's last FATAL), then go.
      if (!other.destroyed) {
        other.end();
        setTimeout(() => other.destroy(), LINGER_MS).unref();
      }
      finish();
    });
  };
  wire(client, upstream, 'client');
  wire(upstream, client, 'upstream');
  if (opts.idleMs > 0 && client.setTimeout) {
    client.setTimeout(opts.idleMs);
    client.on('timeout', () => goodbye('idle'));
  }
  if (opts.signal.aborted) onAbort();
  else opts.signal.addEventListener('abort', onAbort, { once: true });
  return { done, destroyBoth };
}

export function splice(client: Side, upstream: Side, opts: SpliceOptions): Promise<void> {
  const { done } = relayLifecycle(client, upstream, opts, () => {
    client.unpipe(upstream);
    upstream.unpipe(client);
  });
  client.pipe(upstream);
  upstream.pipe(client);
  return done;
}

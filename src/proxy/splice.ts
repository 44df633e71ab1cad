// After the handshake: bytes both ways, no parsing. pipe() gives backpressure in each direction;
// what is left here is teardown, so a connection never outlives either side.
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.ts';

export interface SpliceOptions {
  /** Close both sides after this long with no traffic on the client socket (0: never). */
  idleMs: number;
  log: Logger;
  signal: AbortSignal;
  /** Protocol bytes telling the client why Keyless is closing (idle timeout, shutdown). */
  farewell?(reason: 'idle' | 'shutdown'): Buffer;
}

/** Grace for the other side to flush and close after one side closed cleanly. */
const LINGER_MS = 5_000;

export function splice(client: Duplex & { setTimeout?(ms: number): unknown }, upstream: Duplex, opts: SpliceOptions): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    let reason: string | undefined;
    const finish = (): void => {
      if (++closed < 2) return;
      opts.signal.removeEventListener('abort', onAbort);
      opts.log.info({ reason: reason ?? 'closed' }, 'connection closed');
      resolve();
    };
    const destroyBoth = (why: string): void => {
      reason ??= why;
      client.destroy();
      upstream.destroy();
    };
    /** Keyless ends the connection: tell the client why, let that flush, drop upstream now. */
    const goodbye = (why: 'idle' | 'shutdown'): void => {
      reason ??= why === 'idle' ? 'idle timeout' : 'shutdown';
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.destroy();
      const bytes = opts.farewell?.(why);
      if (bytes && !client.destroyed) client.end(bytes);
      else client.destroy();
      setTimeout(() => client.destroy(), LINGER_MS).unref();
    };
    const onAbort = (): void => goodbye('shutdown');
    const wire = (side: Duplex, other: Duplex, name: 'client' | 'upstream'): void => {
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
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

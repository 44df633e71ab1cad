// Keyless hands each client its own BackendKeyData and keeps the upstream's. A CancelRequest
// carrying a Keyless key is forwarded to the right upstream with that upstream's key; an unknown
// key is dropped silently, as PostgreSQL itself does.
import { randomBytes, randomInt } from 'node:crypto';
import type { Logger } from '../../observability/logger.ts';
import { dial, type UpstreamEndpoint } from './upstream.ts';
import { encodeCancelRequest } from './wire.ts';

interface Entry {
  upstream: UpstreamEndpoint;
  processId: number;
  secretKey: Buffer;
  target: string;
}

export class CancelRegistry {
  readonly #entries = new Map<string, Entry>();

  /** A fresh key for a client; `release` it when the connection ends. */
  issue(entry: Entry): { processId: number; secretKey: Buffer; release: () => void } {
    for (;;) {
      const processId = randomInt(1, 0x7fffffff);
      const secretKey = randomBytes(4);
      const key = keyOf(processId, secretKey);
      if (this.#entries.has(key)) continue;
      this.#entries.set(key, entry);
      return { processId, secretKey, release: () => this.#entries.delete(key) };
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Forward a client's CancelRequest. Resolves whether or not the key was known. */
  async forward(processId: number, secretKey: Buffer, timeoutMs: number, log: Logger): Promise<boolean> {
    const e = this.#entries.get(keyOf(processId, secretKey));
    if (!e) {
      log.info('cancel request with an unknown key ignored');
      return false;
    }
    const signal = AbortSignal.timeout(timeoutMs);
    const { socket, raw } = await dial(e.upstream, signal);
    try {
      await new Promise<void>((resolve) => {
        // The server closes the connection once it has read the request.
        socket.once('close', () => resolve());
        socket.once('error', () => resolve());
        signal.addEventListener('abort', () => resolve(), { once: true });
        socket.end(encodeCancelRequest(e.processId, e.secretKey));
      });
    } finally {
      socket.destroy();
      raw.destroy();
    }
    log.info({ target: e.target }, 'cancel request forwarded');
    return true;
  }
}

function keyOf(processId: number, secretKey: Buffer): string {
  return `${processId}:${secretKey.toString('hex')}`;
}

// Bytes off a socket for a protocol's handshake: accumulate, wait (with an abort signal) until
// enough are buffered, take them, and at the end hand back whatever arrived beyond — so the
// relay never loses bytes. Protocols frame on top (postgres/reader.ts, mysql/packet.ts).
import type { Duplex } from 'node:stream';
import { KeylessError } from '../errors.ts';

/** Stop reading from the peer past this much unconsumed data (backpressure during the handshake). */
const HIGH_WATER = 64 * 1024;

export class SocketReader {
  readonly #socket: Duplex;
  readonly side: 'client' | 'upstream';
  #buf: Buffer;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  /** Bytes the pending read needs buffered. */
  #wanted = 0;
  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    // Backpressure, but never below what the pending read needs to complete.
    if (this.#buf.length > Math.max(HIGH_WATER, this.#wanted)) this.#socket.pause();
    this.#notify();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };
  readonly #onError = (err: Error): void => {
    this.#error = err;
    this.#notify();
  };

  /** `initial`: bytes already taken off the socket that come before anything it will emit. */
  constructor(socket: Duplex, side: 'client' | 'upstream', initial: Buffer = Buffer.alloc(0)) {
    this.#socket = socket;
    this.side = side;
    this.#buf = initial;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  get buffered(): number {
    return this.#buf.length;
  }

  /** The unconsumed bytes, for reading headers in place; valid until the next take(). */
  get view(): Buffer {
    return this.#buf;
  }

  take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    if (this.#buf.length <= HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return out;
  }

  /** Stop reading; return the unconsumed bytes. The socket is left paused for the next owner. */
  detach(): Buffer {
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return rest;
  }

  /** A framing error on this side: KL_ERR_PROTOCOL from a client, KL_ERR_UPSTREAM_PROTOCOL from upstream. */
  violation(msg: string): KeylessError {
    return new KeylessError(this.side === 'client' ? 'KL_ERR_PROTOCOL' : 'KL_ERR_UPSTREAM_PROTOCOL', `${this.side}: ${msg}`);
  }

  /** Wait until `n` bytes are buffered; rejects when the peer goes away or `signal` aborts. */
  async need(n: number, signal: AbortSignal): Promise<void> {
    this.#wanted = n;
    while (this.#buf.length < n) {
      if (this.#socket.isPaused()) this.#socket.resume();
      if (this.#error) {
        const code = (this.#error as NodeJS.ErrnoException).code;
        // A client resetting the connection has left, not broken the protocol.
        const clientGone = code === 'ECONNRESET' || code === 'EPIPE';
        throw new KeylessError(
          this.side === 'upstream' ? 'KL_ERR_UPSTREAM_CLOSED' : clientGone ? 'KL_ERR_CLIENT_CLOSED' : 'KL_ERR_PROTOCOL',
          `${this.side} socket error: ${this.#error.message}`,
          { cause: this.#error },
        );
      }
      if (this.#ended) {
        if (this.side === 'upstream') throw new KeylessError('KL_ERR_UPSTREAM_CLOSED', 'upstream closed the connection');
        if (this.#buf.length === 0) throw new KeylessError('KL_ERR_CLIENT_CLOSED', 'client closed the connection');
        throw new KeylessError('KL_ERR_PROTOCOL', 'client closed the connection mid-packet');
      }
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
      await new Promise<void>((resolve) => {
        const onAbort = (): void => {
          this.#wake = undefined;
          resolve();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}

// Reads PostgreSQL packets off a socket during the handshake, with a length bound checked before
// anything is buffered and an abort signal for timeouts. When the handshake is over, `detach()`
// hands back whatever arrived beyond the last packet, so the relay never loses bytes.
import type { Duplex } from 'node:stream';
import { KeylessError, type ErrorCode } from '../../errors.ts';

/** Stop reading from the peer past this much unconsumed data (backpressure during the handshake). */
const HIGH_WATER = 64 * 1024;

export interface Frame {
  /** Message type byte. */
  type: number;
  /** The whole message: type, length and body. */
  frame: Buffer;
  body: Buffer;
}

export class PacketReader {
  readonly #socket: Duplex;
  readonly #side: 'client' | 'upstream';
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#buf.length > HIGH_WATER) this.#socket.pause();
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

  constructor(socket: Duplex, side: 'client' | 'upstream') {
    this.#socket = socket;
    this.#side = side;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  get buffered(): number {
    return this.#buf.length;
  }

  /** A startup-phase packet: int32 length (including itself), then the body. Returns the body. */
  async startup(max: number, signal: AbortSignal): Promise<Buffer> {
    await this.#need(4, signal);
    const len = this.#buf.readUInt32BE(0);
    if (len < 8) throw this.#violation(`startup packet length ${len} is too short`);
    if (len > max) throw new KeylessError('KL_ERR_PACKET_TOO_LARGE', `${this.#side} startup packet of ${len} bytes exceeds ${max}`);
    await this.#need(len, signal);
    return this.#take(len).subarray(4);
  }

  /** A typed message: one type byte, int32 length (including itself), then the body. */
  async message(max: number, signal: AbortSignal): Promise<Frame> {
    await this.#need(5, signal);
    const len = this.#buf.readUInt32BE(1);
    if (len < 4) throw this.#violation(`message length ${len} is too short`);
    if (len + 1 > max) {
      throw new KeylessError(this.#side === 'client' ? 'KL_ERR_PACKET_TOO_LARGE' : 'KL_ERR_UPSTREAM_PROTOCOL', `${this.#side} message of ${len} bytes exceeds ${max}`);
    }
    await this.#need(len + 1, signal);
    const frame = this.#take(len + 1);
    return { type: frame[0]!, frame, body: frame.subarray(5) };
  }

  /** One byte (the answer to SSLRequest). */
  async byte(signal: AbortSignal): Promise<number> {
    await this.#need(1, signal);
    return this.#take(1)[0]!;
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

  #take(n: number): Buffer {
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    if (this.#buf.length <= HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return out;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #violation(msg: string): KeylessError {
    const code: ErrorCode = this.#side === 'client' ? 'KL_ERR_PROTOCOL' : 'KL_ERR_UPSTREAM_PROTOCOL';
    return new KeylessError(code, `${this.#side}: ${msg}`);
  }

  async #need(n: number, signal: AbortSignal): Promise<void> {
    if (this.#socket.isPaused() && this.#buf.length < n) this.#socket.resume();
    while (this.#buf.length < n) {
      if (this.#error) {
        throw new KeylessError(this.#side === 'client' ? 'KL_ERR_PROTOCOL' : 'KL_ERR_UPSTREAM_CLOSED', `${this.#side} socket error: ${this.#error.message}`, { cause: this.#error });
      }
      if (this.#ended) {
        if (this.#side === 'upstream') throw new KeylessError('KL_ERR_UPSTREAM_CLOSED', 'upstream closed the connection');
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
}

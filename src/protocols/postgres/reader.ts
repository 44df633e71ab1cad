// PostgreSQL framing over a SocketReader for the handshake: startup-phase packets (int32 length
// first) and typed messages (one type byte, then int32 length), each with a length bound checked
// before anything is buffered, and an abort signal for timeouts.
import type { Duplex } from 'node:stream';
import { KeylessError } from '../../errors.ts';
import { SocketReader } from '../../proxy/socket-reader.ts';

export interface Frame {
  /** Message type byte. */
  type: number;
  /** The whole message: type, length and body. */
  frame: Buffer;
  body: Buffer;
}

export class PacketReader {
  readonly #in: SocketReader;

  constructor(socket: Duplex, side: 'client' | 'upstream') {
    this.#in = new SocketReader(socket, side);
  }

  get buffered(): number {
    return this.#in.buffered;
  }

  /** A startup-phase packet: int32 length (including itself), then the body. Returns the body. */
  async startup(max: number, signal: AbortSignal): Promise<Buffer> {
    await this.#in.need(4, signal);
    const len = this.#in.view.readUInt32BE(0);
    if (len < 8) throw this.#in.violation(`startup packet length ${len} is too short`);
    if (len > max) throw new KeylessError('KL_ERR_PACKET_TOO_LARGE', `${this.#in.side} startup packet of ${len} bytes exceeds ${max}`);
    await this.#in.need(len, signal);
    return this.#in.take(len).subarray(4);
  }

  /** A typed message: one type byte, int32 length (including itself), then the body. */
  async message(max: number, signal: AbortSignal): Promise<Frame> {
    await this.#in.need(5, signal);
    const len = this.#in.view.readUInt32BE(1);
    if (len < 4) throw this.#in.violation(`message length ${len} is too short`);
    if (len + 1 > max) {
      throw new KeylessError(this.#in.side === 'client' ? 'KL_ERR_PACKET_TOO_LARGE' : 'KL_ERR_UPSTREAM_PROTOCOL', `${this.#in.side} message of ${len} bytes exceeds ${max}`);
    }
    await this.#in.need(len + 1, signal);
    const frame = this.#in.take(len + 1);
    return { type: frame[0]!, frame, body: frame.subarray(5) };
  }

  /** One byte (the answer to SSLRequest). */
  async byte(signal: AbortSignal): Promise<number> {
    await this.#in.need(1, signal);
    return this.#in.take(1)[0]!;
  }

  /** Stop reading; return the unconsumed bytes. The socket is left paused for the next owner. */
  detach(): Buffer {
    return this.#in.detach();
  }
}

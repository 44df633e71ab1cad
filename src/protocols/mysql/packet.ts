// MySQL packet framing: a 3-byte little-endian payload length and a 1-byte sequence id, then the
// payload. A payload of 2^24-1 bytes or more is split into packets of exactly 0xFFFFFF bytes and
// a last, shorter one (possibly empty); the sequence id counts up by one per packet, modulo 256.
//
// PacketReader reads whole payloads off a socket during the connection phase, with the bound
// checked from each header before anything is buffered and an abort signal for timeouts.
// `detach()` hands back whatever arrived beyond the last payload, so the relay never loses bytes.
import type { Duplex } from 'node:stream';
import { KeylessError } from '../../errors.ts';
import { SocketReader } from '../../proxy/socket-reader.ts';
import { HEADER_LENGTH, MAX_PACKET_PAYLOAD } from './constants.ts';

export interface Packet {
  /** Sequence id of the payload's first packet. */
  seq: number;
  /** Sequence id of its last packet: the next packet of the conversation carries this + 1. */
  lastSeq: number;
  payload: Buffer;
}

/** Frame a payload as one or more packets starting at sequence id `seq`. */
export function encodePacket(seq: number, payload: Buffer): Buffer {
  if (payload.length < MAX_PACKET_PAYLOAD) {
    const out = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
    out.writeUIntLE(payload.length, 0, 3);
    out[3] = seq & 0xff;
    payload.copy(out, HEADER_LENGTH);
    return out;
  }
  const parts: Buffer[] = [];
  let off = 0;
  let s = seq;
  for (;;) {
    const n = Math.min(MAX_PACKET_PAYLOAD, payload.length - off);
    const header = Buffer.allocUnsafe(HEADER_LENGTH);
    header.writeUIntLE(n, 0, 3);
    header[3] = s & 0xff;
    parts.push(header, payload.subarray(off, off + n));
    off += n;
    s = (s + 1) & 0xff;
    if (n < MAX_PACKET_PAYLOAD) break;
  }
  return Buffer.concat(parts);
}

/** How many packets `encodePacket` makes of a payload this long. */
export function packetCount(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_PACKET_PAYLOAD) + 1;
}

export function nextSeq(p: Pick<Packet, 'lastSeq'>): number {
  return (p.lastSeq + 1) & 0xff;
}

export class PacketReader {
  readonly #in: SocketReader;

  /** `initial`: bytes already taken off the socket that come before anything it will emit. */
  constructor(socket: Duplex, side: 'client' | 'upstream', initial: Buffer = Buffer.alloc(0)) {
    this.#in = new SocketReader(socket, side, initial);
  }

  get buffered(): number {
    return this.#in.buffered;
  }

  /** One payload (reassembled from several packets when it is 16 MiB or more), at most `max` bytes. */
  async read(max: number, signal: AbortSignal): Promise<Packet> {
    const parts: Buffer[] = [];
    let total = 0;
    let first = -1;
    let expected = -1;
    for (;;) {
      await this.#in.need(HEADER_LENGTH, signal);
      const len = this.#in.view.readUIntLE(0, 3);
      const seq = this.#in.view[3]!;
      if (expected >= 0 && seq !== expected) {
        throw this.#in.violation(`packet out of order: sequence id ${seq}, expected ${expected}`);
      }
      total += len;
      if (total > max) {
        throw new KeylessError(this.#in.side === 'client' ? 'KL_ERR_PACKET_TOO_LARGE' : 'KL_ERR_UPSTREAM_PROTOCOL', `${this.#in.side} packet of ${total}${len === MAX_PACKET_PAYLOAD ? '+' : ''} bytes exceeds ${max}`);
      }
      await this.#in.need(HEADER_LENGTH + len, signal);
      const frame = this.#in.take(HEADER_LENGTH + len);
      parts.push(frame.subarray(HEADER_LENGTH));
      if (first < 0) first = seq;
      expected = (seq + 1) & 0xff;
      if (len < MAX_PACKET_PAYLOAD) {
        return { seq: first, lastSeq: seq, payload: parts.length === 1 ? parts[0]! : Buffer.concat(parts) };
      }
    }
  }

  /** Stop reading; return the unconsumed bytes. The socket is left paused for the next owner. */
  detach(): Buffer {
    return this.#in.detach();
  }
}

// Header-only tracking of the client's side of the relay, to find the commands Keyless must
// answer itself (COM_CHANGE_USER) without parsing anything else. Per packet it reads the 4-byte
// header and, for the first packet of a command, one byte more; bodies are skipped by length.
//
// What is a command: the first packet of a payload (not the continuation of a 16 MiB one) with
// sequence id 0. The one other thing a client sends unprompted by its own command is the file of
// LOAD DATA LOCAL INFILE: after the server's request (sequence id 1) the client sends the file
// as payloads numbered from 2, ending with an empty payload. Their sequence ids wrap through 0,
// so a payload that starts with a non-zero id opens "infile" mode, which only an empty payload
// closes; inside it nothing is a command.
import { HEADER_LENGTH, MAX_PACKET_PAYLOAD } from './constants.ts';

export interface ScanResult {
  /** Bytes to pass on, in order. */
  forward: Buffer[];
  /**
   * Set when a packet the predicate wants starts in this chunk: its bytes (and everything after
   * them) are not forwarded. The scanner must be `reset()` before the next push.
   */
  intercepted: Buffer | undefined;
}

export class CommandScanner {
  readonly #wants: (command: number) => boolean;
  /** Body bytes of the current packet still to pass. */
  #skip = 0;
  /** Bytes of a packet header not yet decided on (split across chunks). */
  #held: Buffer[] = [];
  #heldLength = 0;
  /** The previous packet was 0xFFFFFF long: the next one continues its payload. */
  #continuation = false;
  #infile = false;

  constructor(wants: (command: number) => boolean) {
    this.#wants = wants;
  }

  /** Between commands, no file upload running: the state after an intercepted command is answered. */
  reset(): void {
    this.#skip = 0;
    this.#held = [];
    this.#heldLength = 0;
    this.#continuation = false;
    this.#infile = false;
  }

  push(chunk: Buffer): ScanResult {
    const forward: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - pos);
        pos += n;
        this.#skip -= n;
        continue;
      }
      // A packet starts here (its first #heldLength bytes may be held from earlier chunks, in
      // which case pos is 0).
      const available = this.#heldLength + chunk.length - pos;
      if (available < HEADER_LENGTH) return this.#hold(forward, chunk, pos);
      const at = (i: number): number => (i < this.#heldLength ? heldByte(this.#held, i) : chunk[pos + i - this.#heldLength]!);
      const length = at(0) | (at(1) << 8) | (at(2) << 16);
      const seq = at(3);
      let command = false;
      if (!this.#continuation) {
        if (this.#infile) {
          if (length === 0) this.#infile = false;
        } else if (seq !== 0) {
          this.#infile = length !== 0;
        } else {
          command = length > 0;
        }
      }
      if (command) {
        if (available < HEADER_LENGTH + 1) return this.#hold(forward, chunk, pos);
        if (this.#wants(at(HEADER_LENGTH))) {
          if (pos > 0) forward.push(chunk.subarray(0, pos));
          const intercepted = this.#held.length > 0 ? Buffer.concat([...this.#held, chunk]) : chunk.subarray(pos);
          this.#held = [];
          this.#heldLength = 0;
          return { forward, intercepted };
        }
      }
      this.#continuation = length === MAX_PACKET_PAYLOAD;
      this.#skip = HEADER_LENGTH + length - this.#heldLength;
      if (this.#held.length > 0) {
        forward.push(...this.#held);
        this.#held = [];
        this.#heldLength = 0;
      }
    }
    if (chunk.length > 0) forward.push(chunk);
    return { forward, intercepted: undefined };
  }

  #hold(forward: Buffer[], chunk: Buffer, pos: number): ScanResult {
    if (pos > 0) forward.push(chunk.subarray(0, pos));
    const rest = chunk.subarray(pos);
    if (rest.length > 0) {
      this.#held.push(rest);
      this.#heldLength += rest.length;
    }
    return { forward, intercepted: undefined };
  }
}

function heldByte(held: Buffer[], i: number): number {
  let k = i;
  for (const b of held) {
    if (k < b.length) return b[k]!;
    k -= b.length;
  }
  throw new RangeError('held byte out of range');
}

import { getEventListeners, once } from 'node:events';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeylessError } from '../../../../src/errors.ts';
import { PacketReader, type Frame } from '../../../../src/protocols/postgres/reader.ts';
import { MAX_HANDSHAKE_MESSAGE, MAX_STARTUP_PACKET } from '../../../../src/protocols/postgres/wire.ts';
import {
  bodyOf,
  cancelRequest,
  everySplit,
  int32,
  passwordMessage,
  query,
  sslRequest,
  startupMessage,
  startupPhasePacket,
  terminate,
  typedMessage,
} from '../../../support/packets/postgres.ts';
import { codeOf, feed } from '../../../support/streams.ts';

const never = new AbortController().signal;

/** Write each chunk and wait until the stream has emitted it (so the reader has it too). */
// A client's opening conversation: SSLRequest (answered N), StartupMessage, a password, a
// query, Terminate, and bytes past the last packet that detach() must hand back.
const ssl = sslRequest();
const startup = startupMessage({ user: 'orders', database: 'orders', application_name: 'split-test' });
const password = passwordMessage('md5abc');
const q = query('select 1');
const x = terminate();
const trailing = Buffer.from('leftover bytes for the relay', 'utf8');
const conversation = Buffer.concat([ssl, startup, password, q, x, trailing]);

interface Read {
  bodies: Buffer[];
  frames: { type: number; frame: Buffer; body: Buffer }[];
}

async function readConversation(r: PacketReader): Promise<Read> {
  const bodies = [await r.startup(MAX_STARTUP_PACKET, never), await r.startup(MAX_STARTUP_PACKET, never)];
  const frames: Frame[] = [];
  for (let i = 0; i < 3; i++) frames.push(await r.message(1024, never));
  // Copy: the result must not depend on buffers the reader might reuse.
  return {
    bodies: bodies.map((b) => Buffer.from(b)),
    frames: frames.map((f) => ({ type: f.type, frame: Buffer.from(f.frame), body: Buffer.from(f.body) })),
  };
}

const expected: Read = {
  bodies: [bodyOf(ssl), bodyOf(startup)],
  frames: [password, q, x].map((m) => ({ type: m[0]!, frame: m, body: m.subarray(5) })),
};

async function runSplit(chunks: readonly Buffer[]): Promise<{ read: Read; rest: Buffer }> {
  const s = new PassThrough();
  const r = new PacketReader(s, 'client');
  const reading = readConversation(r);
  await feed(s, chunks);
  const read = await reading;
  return { read, rest: Buffer.from(r.detach()) };
}

describe('PacketReader: framing across splits', () => {
  it('reads the conversation in one chunk', async () => {
    const { read, rest } = await runSplit([conversation]);
    expect(read).toEqual(expected);
    expect(rest).toEqual(trailing);
  });

  it('reads identical packets when the bytes are split at every offset', async () => {
    for (const chunks of everySplit(conversation)) {
      const { read, rest } = await runSplit(chunks);
      expect(read, `split at ${chunks[0]!.length}`).toEqual(expected);
      expect(rest, `split at ${chunks[0]!.length}`).toEqual(trailing);
    }
  });

  it('reads identical packets when every byte arrives on its own', async () => {
    const drip = [...conversation].map((b) => Buffer.from([b]));
    const { read, rest } = await runSplit(drip);
    expect(read).toEqual(expected);
    expect(rest).toEqual(trailing);
  });

  it('reads identical packets under arbitrary multi-way splits', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: conversation.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), conversation.length];
        const chunks = at.slice(1).map((end, i) => conversation.subarray(at[i], end));
        const { read, rest } = await runSplit(chunks);
        expect(read).toEqual(expected);
        expect(rest).toEqual(trailing);
      }),
      { numRuns: 200 },
    );
  });

  it('reads a CancelRequest with a long key at every split', async () => {
    const cancel = cancelRequest(77, Buffer.alloc(32, 9));
    for (const chunks of everySplit(cancel)) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'client');
      const reading = r.startup(MAX_STARTUP_PACKET, never);
      await feed(s, chunks);
      expect(await reading).toEqual(bodyOf(cancel));
      expect(r.detach()).toEqual(Buffer.alloc(0));
    }
  });

  it('byte() reads the one-byte answer to SSLRequest and leaves what follows', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'upstream');
    const answer = r.byte(never);
    await feed(s, [Buffer.from('S', 'latin1'), Buffer.from([1, 2])]);
    expect(await answer).toBe(0x53);
    expect(r.buffered).toBe(2);
    expect(r.detach()).toEqual(Buffer.from([1, 2]));
  });

  it('accepts a startup packet of exactly the maximum length', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const packet = startupPhasePacket(Buffer.concat([int32(196608), Buffer.alloc(MAX_STARTUP_PACKET - 8, 0x61)]));
    expect(packet.length).toBe(MAX_STARTUP_PACKET);
    const reading = r.startup(MAX_STARTUP_PACKET, never);
    await feed(s, [packet]);
    expect((await reading).length).toBe(MAX_STARTUP_PACKET - 4);
  });

  it('reads an upstream message larger than its 64 KiB high-water mark arriving in pieces', async () => {
    // The reader pauses the socket past 64 KiB buffered; a message bigger than that (allowed up
    // to MAX_HANDSHAKE_MESSAGE) must still complete rather than wait on a paused socket.
    const s = new PassThrough();
    const r = new PacketReader(s, 'upstream');
    const big = typedMessage('N', Buffer.alloc(200 * 1024, 0x41));
    const reading = r.message(MAX_HANDSHAKE_MESSAGE, never);
    for (let at = 0; at < big.length; at += 16 * 1024) s.write(big.subarray(at, at + 16 * 1024));
    const frame = await reading;
    expect(frame.frame).toEqual(big);
  }, 3000);
});

describe('PacketReader: limits checked before buffering', () => {
  it('rejects a client startup packet over the limit from its length alone', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.startup(MAX_STARTUP_PACKET, never));
    // Only the length arrives; the body never does and the peer stays open.
    await feed(s, [int32(MAX_STARTUP_PACKET + 1)]);
    expect(await reading).toBe('KL_ERR_PACKET_TOO_LARGE');
  });

  it('rejects a client message over the limit from its header alone', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.message(1024, never));
    await feed(s, [Buffer.from('p', 'latin1'), int32(0x7fff_ffff)]);
    expect(await reading).toBe('KL_ERR_PACKET_TOO_LARGE');
  });

  it('treats an oversized upstream message as an upstream protocol error', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'upstream');
    const reading = codeOf(r.message(1024, never));
    await feed(s, [Buffer.concat([Buffer.from('S', 'latin1'), int32(1024)])]);
    expect(await reading).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });

  it('accepts a message whose whole frame is exactly the limit', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const m = typedMessage('p', Buffer.alloc(1024 - 5, 0x62));
    const reading = r.message(1024, never);
    await feed(s, [m]);
    expect((await reading).frame).toEqual(m);
  });

  it.each([0, 4, 7])('rejects a client startup length of %i as a protocol violation', async (len) => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.startup(MAX_STARTUP_PACKET, never));
    await feed(s, [int32(len)]);
    expect(await reading).toBe('KL_ERR_PROTOCOL');
  });

  it.each([0, 3])('rejects a message length of %i (client: protocol, upstream: upstream protocol)', async (len) => {
    for (const [side, code] of [['client', 'KL_ERR_PROTOCOL'], ['upstream', 'KL_ERR_UPSTREAM_PROTOCOL']] as const) {
      const s = new PassThrough();
      const r = new PacketReader(s, side);
      const reading = codeOf(r.message(1024, never));
      await feed(s, [Buffer.concat([Buffer.from('R', 'latin1'), int32(len)])]);
      expect(await reading).toBe(code);
    }
  });
});

describe('PacketReader: the peer going away', () => {
  it('a client closing before any byte is KL_ERR_CLIENT_CLOSED', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.startup(MAX_STARTUP_PACKET, never));
    s.end();
    expect(await reading).toBe('KL_ERR_CLIENT_CLOSED');
  });

  it('a client closing mid-packet is KL_ERR_PROTOCOL, at every offset', async () => {
    for (let cut = 1; cut < startup.length; cut++) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'client');
      const reading = codeOf(r.startup(MAX_STARTUP_PACKET, never));
      s.end(startup.subarray(0, cut));
      expect(await reading, `cut at ${cut}`).toBe('KL_ERR_PROTOCOL');
    }
  });

  it('a client closing mid-message is KL_ERR_PROTOCOL, at every offset', async () => {
    for (let cut = 1; cut < password.length; cut++) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'client');
      const reading = codeOf(r.message(1024, never));
      s.end(password.subarray(0, cut));
      expect(await reading, `cut at ${cut}`).toBe('KL_ERR_PROTOCOL');
    }
  });

  it('a client closing right after a whole packet: that packet reads, the next read is KL_ERR_CLIENT_CLOSED', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    s.end(startup);
    expect(await r.startup(MAX_STARTUP_PACKET, never)).toEqual(bodyOf(startup));
    expect(await codeOf(r.message(1024, never))).toBe('KL_ERR_CLIENT_CLOSED');
  });

  it('upstream closing, before or mid-packet, is KL_ERR_UPSTREAM_CLOSED', async () => {
    for (const sent of [Buffer.alloc(0), Buffer.from('R', 'latin1'), password.subarray(0, 7)]) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'upstream');
      const reading = codeOf(r.message(1024, never));
      s.end(sent);
      expect(await reading).toBe('KL_ERR_UPSTREAM_CLOSED');
    }
  });

  it('a socket error fails the pending read and keeps the cause (a client reset counts as the client leaving)', async () => {
    for (const [side, code] of [['client', 'KL_ERR_CLIENT_CLOSED'], ['upstream', 'KL_ERR_UPSTREAM_CLOSED']] as const) {
      const s = new PassThrough();
      const r = new PacketReader(s, side);
      const boom = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      const reading = r.message(1024, never).then(
        () => undefined,
        (e: unknown) => e,
      );
      s.destroy(boom);
      const err = await reading;
      expect(err).toBeInstanceOf(KeylessError);
      expect((err as KeylessError).code).toBe(code);
      expect((err as KeylessError).cause).toBe(boom);
    }
  });
});

describe('PacketReader: abort', () => {
  it('an abort rejects a pending read with the signal reason', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const ac = new AbortController();
    const reason = new KeylessError('KL_ERR_HANDSHAKE_TIMEOUT', 'test: handshake deadline');
    const reading = r.startup(MAX_STARTUP_PACKET, ac.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    await feed(s, [startup.subarray(0, 10)]);
    ac.abort(reason);
    expect(await reading).toBe(reason);
  });

  it('an abort without a reason rejects with an Error', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const ac = new AbortController();
    const reading = r.byte(ac.signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    ac.abort();
    const err = await reading;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('AbortError');
  });

  it('an already-aborted signal rejects when data is missing', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reason = new Error('already over');
    await expect(r.startup(MAX_STARTUP_PACKET, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('the reader stays usable after an aborted read, with the bytes intact', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const ac = new AbortController();
    const first = r.startup(MAX_STARTUP_PACKET, ac.signal).catch(() => 'aborted');
    await feed(s, [startup.subarray(0, 5)]);
    ac.abort(new Error('deadline'));
    expect(await first).toBe('aborted');
    const second = r.startup(MAX_STARTUP_PACKET, never);
    await feed(s, [startup.subarray(5)]);
    expect(await second).toEqual(bodyOf(startup));
  });

  it('leaves no abort listeners behind after reads complete', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const ac = new AbortController();
    const reading = (async () => {
      for (let i = 0; i < 3; i++) await r.message(1024, ac.signal);
    })();
    await feed(s, [...q].map((b) => Buffer.from([b])));
    await feed(s, [q, q]);
    await reading;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

describe('PacketReader: detach', () => {
  it('returns exactly the unconsumed bytes at every split of the tail', async () => {
    const packet = startup;
    const tail = Buffer.from('Q\0\0\0\rselect 2\0and more', 'latin1');
    const all = Buffer.concat([packet, tail]);
    for (const chunks of everySplit(all)) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'client');
      const reading = r.startup(MAX_STARTUP_PACKET, never);
      await feed(s, chunks);
      await reading;
      expect(r.detach(), `split at ${chunks[0]!.length}`).toEqual(tail);
    }
  });

  it('returns nothing when nothing is left', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = r.message(1024, never);
    await feed(s, [q]);
    await reading;
    expect(r.detach()).toEqual(Buffer.alloc(0));
  });

  it('leaves later bytes in the paused socket for the next owner', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = r.message(1024, never);
    await feed(s, [Buffer.concat([q, Buffer.from('ab')])]);
    await reading;
    const rest = r.detach();
    expect(s.isPaused()).toBe(true);
    expect(s.listenerCount('data')).toBe(0);
    expect(s.listenerCount('end')).toBe(0);
    expect(s.listenerCount('error')).toBe(0);
    s.write(Buffer.from('cd'));
    const later = once(s, 'readable');
    await later;
    expect(Buffer.concat([rest, s.read() as Buffer])).toEqual(Buffer.from('abcd'));
  });
});

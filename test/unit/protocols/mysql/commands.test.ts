import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandScanner } from '../../../../src/protocols/mysql/commands.ts';
import { encodePacket } from '../../../../src/protocols/mysql/packet.ts';
import { comChangeUser, comQuery, everySplit, packet } from './builders.ts';

const CHANGE_USER = 0x11;

/** Push chunks; return what was forwarded and what was intercepted (everything from the command on). */
function scan(chunks: readonly Buffer[]): { forwarded: Buffer; intercepted: Buffer | undefined } {
  const s = new CommandScanner((c) => c === CHANGE_USER);
  const forwarded: Buffer[] = [];
  let intercepted: Buffer[] | undefined;
  for (const c of chunks) {
    if (intercepted) {
      intercepted.push(c);
      continue;
    }
    const r = s.push(c);
    forwarded.push(...r.forward);
    if (r.intercepted) intercepted = [r.intercepted];
  }
  return { forwarded: Buffer.concat(forwarded), intercepted: intercepted && Buffer.concat(intercepted) };
}

/** A LOAD DATA LOCAL INFILE upload: file packets numbered from 2, wrapping, then an empty one. */
function infile(first: number, packets: Buffer[]): Buffer {
  const out: Buffer[] = [];
  let seq = first;
  for (const p of [...packets, Buffer.alloc(0)]) {
    out.push(packet(seq & 0xff, p));
    seq++;
  }
  return Buffer.concat(out);
}

describe('CommandScanner', () => {
  const before = Buffer.concat([packet(0, comQuery('select 1')), packet(0, comQuery('select 2'))]);
  const change = packet(0, comChangeUser({ user: 'x' }));
  const after = packet(0, comQuery('select 3'));

  it('forwards everything up to a COM_CHANGE_USER and hands over the rest, however it is split', () => {
    const whole = Buffer.concat([before, change, after]);
    for (const chunks of everySplit(whole)) {
      const { forwarded, intercepted } = scan(chunks);
      expect(forwarded).toEqual(before);
      expect(intercepted).toEqual(Buffer.concat([change, after]));
    }
  });

  it('survives three-way splits too', () => {
    const whole = Buffer.concat([before, change]);
    for (let i = 1; i < whole.length - 1; i++) {
      for (let j = i + 1; j < whole.length; j++) {
        const { forwarded, intercepted } = scan([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]);
        expect(forwarded).toEqual(before);
        expect(intercepted).toEqual(change);
      }
    }
  });

  it('passes byte by byte', () => {
    const whole = Buffer.concat([before, change]);
    const { forwarded, intercepted } = scan([...whole].map((b) => Buffer.from([b])));
    expect(forwarded).toEqual(before);
    expect(intercepted).toEqual(change);
  });

  it('does not take 0x11 inside a query, nor at the start of a 16 MiB continuation packet', () => {
    const big = Buffer.alloc(0xff_ffff + 5, 0x11);
    big[0] = 0x03;
    const stream = Buffer.concat([packet(0, Buffer.from([0x03, 0x11, 0x11])), encodePacket(0, big), after]);
    const { forwarded, intercepted } = scan([stream.subarray(0, 100_000), stream.subarray(100_000, 0xff_ffff + 4), stream.subarray(0xff_ffff + 4)]);
    expect(intercepted).toBeUndefined();
    expect(forwarded.equals(stream)).toBe(true);
  });

  it('does not take file data of LOAD DATA LOCAL INFILE for a command, even when its sequence id wraps to 0', () => {
    const file = Array.from({ length: 300 }, () => Buffer.from([CHANGE_USER, 1, 2, 3]));
    const upload = Buffer.concat([packet(0, comQuery("LOAD DATA LOCAL INFILE 'x' INTO TABLE t")), infile(2, file)]);
    const stream = Buffer.concat([upload, change]);
    for (const size of [1, 7, 4096]) {
      const chunks = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      const { forwarded, intercepted } = scan(chunks);
      expect(forwarded).toEqual(upload);
      expect(intercepted).toEqual(change);
    }
  });

  it('a declined upload (one empty packet) ends infile mode at once', () => {
    const stream = Buffer.concat([packet(0, comQuery('LOAD DATA LOCAL INFILE')), packet(2, Buffer.alloc(0)), change]);
    expect(scan([stream]).intercepted).toEqual(change);
  });

  it('after reset(), scans again from a command boundary', () => {
    const s = new CommandScanner((c) => c === CHANGE_USER);
    const r1 = s.push(Buffer.concat([before, change]));
    expect(r1.intercepted).toEqual(change);
    s.reset();
    const r2 = s.push(Buffer.concat([after, change]));
    expect(Buffer.concat(r2.forward)).toEqual(after);
    expect(r2.intercepted).toEqual(change);
  });

  it('forwards any byte stream without a wanted command unchanged (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ minLength: 1, maxLength: 40 })), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        (cmds, cuts) => {
          const stream = Buffer.concat(cmds.map(([seq, body]) => packet(seq, Buffer.from(body[0] === CHANGE_USER ? [0x03, ...body] : body))));
          const chunks = [];
          let pos = 0;
          for (let i = 0; pos < stream.length; i++) {
            const n = cuts[i % cuts.length]!;
            chunks.push(stream.subarray(pos, pos + n));
            pos += n;
          }
          const { forwarded, intercepted } = scan(chunks);
          expect(intercepted).toBeUndefined();
          expect(forwarded).toEqual(stream);
        },
      ),
    );
  });
});

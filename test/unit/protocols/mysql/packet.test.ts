import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { KeylessError } from '../../../../src/errors.ts';
import { PacketReader, encodePacket, nextSeq, packetCount } from '../../../../src/protocols/mysql/packet.ts';
import { comQuery, everySplit, handshakeResponse, packet, sslRequest } from './builders.ts';
import { codeOf, feed } from '../../../support/streams.ts';

const never = new AbortController().signal;
const MAX = 0xff_ffff;

describe('encodePacket', () => {
  it('frames a payload with its length and sequence id', () => {
    expect(encodePacket(3, Buffer.from('hey'))).toEqual(packet(3, Buffer.from('hey')));
    expect(encodePacket(0, Buffer.alloc(0))).toEqual(Buffer.from([0, 0, 0, 0]));
  });

  it('splits a payload of 16 MiB or more into 0xFFFFFF-byte packets and a shorter last one', () => {
    const payload = Buffer.alloc(MAX * 2 + 10, 0xab);
    const out = encodePacket(254, payload);
    expect(out.length).toBe(payload.length + 3 * 4);
    expect(out.readUIntLE(0, 3)).toBe(MAX);
    expect(out[3]).toBe(254);
    expect(out.readUIntLE(4 + MAX, 3)).toBe(MAX);
    expect(out[4 + MAX + 3]).toBe(255);
    expect(out.readUIntLE(2 * (4 + MAX), 3)).toBe(10);
    expect(out[2 * (4 + MAX) + 3]).toBe(0); // wraps
    expect(packetCount(payload.length)).toBe(3);
  });

  it('ends a payload of exactly 0xFFFFFF bytes with an empty packet', () => {
    const out = encodePacket(0, Buffer.alloc(MAX));
    expect(out.length).toBe(MAX + 8);
    expect(out.readUIntLE(4 + MAX, 3)).toBe(0);
    expect(out[4 + MAX + 3]).toBe(1);
  });
});

describe('PacketReader', () => {
  const conversation = Buffer.concat([
    packet(1, sslRequest()),
    packet(2, handshakeResponse({ user: 'split', database: 'billing' })),
    packet(0, comQuery('select 1')),
    packet(0, Buffer.alloc(0)),
  ]);
  const trailing = Buffer.from('bytes for the relay');

  it('reads the same payloads however the bytes are split (every offset)', async () => {
    const whole = Buffer.concat([conversation, trailing]);
    for (const chunks of everySplit(whole)) {
      const s = new PassThrough();
      const r = new PacketReader(s, 'client');
      const reading = (async () => {
        const out = [];
        for (let i = 0; i < 4; i++) out.push(await r.read(1024, never));
        return out;
      })();
      await feed(s, chunks);
      const got = await reading;
      expect(got.map((p) => p.seq)).toEqual([1, 2, 0, 0]);
      expect(got[0]!.payload).toEqual(sslRequest());
      expect(got[1]!.payload).toEqual(handshakeResponse({ user: 'split', database: 'billing' }));
      expect(got[2]!.payload).toEqual(comQuery('select 1'));
      expect(got[3]!.payload.length).toBe(0);
      expect(r.detach()).toEqual(trailing);
    }
  });

  it('reassembles a multi-packet payload and reports its last sequence id', async () => {
    const payload = Buffer.alloc(MAX + 100);
    payload.fill(1, 0, MAX);
    payload.fill(2, MAX);
    const s = new PassThrough();
    const r = new PacketReader(s, 'upstream');
    const reading = r.read(MAX + 100, never);
    s.write(encodePacket(7, payload));
    const p = await reading;
    expect(p.seq).toBe(7);
    expect(p.lastSeq).toBe(8);
    expect(nextSeq(p)).toBe(9);
    expect(p.payload.equals(payload)).toBe(true);
  });

  it('rejects an oversized packet from its header, before the body arrives', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.read(1000, never));
    s.write(Buffer.from([0xe9, 0x03, 0x00, 1])); // 1001 bytes announced, none sent
    expect(await reading).toBe('KL_ERR_PACKET_TOO_LARGE');
  });

  it('counts continuation packets toward the bound', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'upstream');
    const reading = codeOf(r.read(MAX + 10, never));
    s.write(encodePacket(0, Buffer.alloc(MAX + 11)));
    expect(await reading).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });

  it('rejects continuation packets out of order', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const reading = codeOf(r.read(MAX + 10, never));
    const header = Buffer.from([0xff, 0xff, 0xff, 0]);
    s.write(Buffer.concat([header, Buffer.alloc(MAX), packet(5, Buffer.from('x'))]));
    expect(await reading).toBe('KL_ERR_PROTOCOL');
  });

  it('tells a clean close from a truncated packet', async () => {
    const clean = new PassThrough();
    const r1 = new PacketReader(clean, 'client');
    const p1 = codeOf(r1.read(100, never));
    clean.end();
    expect(await p1).toBe('KL_ERR_CLIENT_CLOSED');

    const cut = new PassThrough();
    const r2 = new PacketReader(cut, 'client');
    const p2 = codeOf(r2.read(100, never));
    cut.end(packet(1, Buffer.from('truncated payload')).subarray(0, 9));
    expect(await p2).toBe('KL_ERR_PROTOCOL');

    const up = new PassThrough();
    const r3 = new PacketReader(up, 'upstream');
    const p3 = codeOf(r3.read(100, never));
    up.end();
    expect(await p3).toBe('KL_ERR_UPSTREAM_CLOSED');
  });

  it('stops waiting when the signal aborts, with its reason', async () => {
    const s = new PassThrough();
    const r = new PacketReader(s, 'client');
    const c = new AbortController();
    const reading = codeOf(r.read(100, c.signal));
    c.abort(new KeylessError('KL_ERR_HANDSHAKE_TIMEOUT', 'test'));
    expect(await reading).toBe('KL_ERR_HANDSHAKE_TIMEOUT');
  });

  it('starts from bytes handed over by a previous reader', async () => {
    const s = new PassThrough();
    const whole = packet(0, comQuery('select 2'));
    const r = new PacketReader(s, 'client', whole.subarray(0, 6));
    const reading = r.read(100, never);
    s.write(whole.subarray(6));
    expect((await reading).payload).toEqual(comQuery('select 2'));
  });
});

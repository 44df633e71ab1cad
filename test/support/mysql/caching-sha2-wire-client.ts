// A bare MySQL-protocol client for wire-level tests of the caching_sha2_password test server:
// it sends exactly the packets a test spells out (odd sequence ids, cleartext where it should
// not, SSLRequest and ClientHello in one write) and hands back raw packets to assert on.
// The real-client tests use mysql2 and the mariadb CLI; this is for what they cannot express.
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Cap, framePacket, PacketReader, PayloadReader, PayloadWriter, type Packet } from './caching-sha2-protocol.ts';

export interface ParsedHandshake {
  protocolVersion: number;
  serverVersion: string;
  connectionId: number;
  /** auth-plugin-data-part-1 + part-2 without part-2's terminating NUL. */
  nonce: Buffer;
  authPluginDataLength: number;
  capabilities: number;
  charset: number;
  statusFlags: number;
  authPluginName: string;
}

/** Decodes Protocol::HandshakeV10 field by field, as the docs lay it out. */
export function parseHandshakeV10(payload: Buffer): ParsedHandshake {
  const r = new PayloadReader(payload);
  const protocolVersion = r.int1();
  const serverVersion = r.nulString();
  const connectionId = r.int4();
  const part1 = Buffer.from(r.bytes(8));
  if (r.int1() !== 0) throw new Error('filler after auth-plugin-data-part-1 is not 0');
  const capLow = r.int2();
  const charset = r.int1();
  const statusFlags = r.int2();
  const capHigh = r.int2();
  const capabilities = (capLow | (capHigh << 16)) >>> 0;
  const authPluginDataLength = r.int1();
  const reserved = r.bytes(10);
  if (reserved.some((b) => b !== 0)) throw new Error('reserved bytes are not all 0');
  const part2Length = Math.max(13, authPluginDataLength - 8);
  const part2 = Buffer.from(r.bytes(part2Length));
  const nonce = Buffer.concat([part1, part2.subarray(0, part2.length - 1)]);
  if (part2.readUInt8(part2.length - 1) !== 0) throw new Error('auth-plugin-data-part-2 is not NUL-terminated');
  const authPluginName = capabilities & Cap.PLUGIN_AUTH ? r.nulString() : '';
  return { protocolVersion, serverVersion, connectionId, nonce, authPluginDataLength, capabilities, charset, statusFlags, authPluginName };
}

export type ServerReply =
  | { kind: 'ok'; affectedRows: number; status: number }
  | { kind: 'err'; code: number; sqlState: string; message: string }
  | { kind: 'eof' }
  | { kind: 'auth-more-data'; data: Buffer }
  | { kind: 'auth-switch'; plugin: string; data: Buffer }
  | { kind: 'other'; payload: Buffer };

/** Classifies a reply. `authPhase` decides what 0xfe means (AuthSwitchRequest vs EOF/OK). */
export function classify(payload: Buffer, authPhase = false): ServerReply {
  const r = new PayloadReader(payload);
  const first = payload.length > 0 ? r.int1() : -1;
  if (first === 0x00 && payload.length >= 7) {
    const affectedRows = r.lenencInt();
    r.lenencInt();
    return { kind: 'ok', affectedRows, status: r.int2() };
  }
  if (first === 0xff) {
    const code = r.int2();
    const marker = r.bytes(1).toString('latin1');
    if (marker !== '#') throw new Error('ERR without SQL state marker');
    return { kind: 'err', code, sqlState: r.bytes(5).toString('latin1'), message: r.rest().toString('utf8') };
  }
  if (first === 0x01 && authPhase) return { kind: 'auth-more-data', data: Buffer.from(r.rest()) };
  if (first === 0xfe && authPhase) {
    const plugin = r.nulString();
    return { kind: 'auth-switch', plugin, data: Buffer.from(r.rest()) };
  }
  if (first === 0xfe && payload.length < 9) return { kind: 'eof' };
  return { kind: 'other', payload };
}

/** caching_sha2_password's scramble, computed from the docs' formula (not the server's code). */
export function sha2Scramble(password: string, nonce: Buffer): Buffer {
  const h = (...b: Buffer[]): Buffer => b.reduce((acc, x) => acc.update(x), createHash('sha256')).digest();
  const p1 = h(Buffer.from(password, 'utf8'));
  const p3 = h(h(p1), nonce);
  return Buffer.from(p1.map((b, i) => b ^ (p3[i] ?? 0)));
}

/** Flags of a plain modern client (no SSL; add it per test). */
export const WIRE_CLIENT_FLAGS =
  Cap.LONG_PASSWORD | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB | Cap.CONNECT_ATTRS | Cap.TRANSACTIONS;

export interface HandshakeResponseFields {
  flags?: number;
  user: string;
  authResponse: Buffer;
  database?: string;
  plugin?: string;
  attributes?: Record<string, string>;
}

export function handshakeResponse41(f: HandshakeResponseFields): Buffer {
  const flags = f.flags ?? WIRE_CLIENT_FLAGS | (f.database ? Cap.CONNECT_WITH_DB : 0);
  const w = new PayloadWriter().int4(flags).int4(16 * 1024 * 1024).int1(255).zeros(23).nulString(f.user);
  if (flags & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencString(f.authResponse);
  else w.int1(f.authResponse.length).bytes(f.authResponse);
  if (flags & Cap.CONNECT_WITH_DB) w.nulString(f.database ?? '');
  if (flags & Cap.PLUGIN_AUTH) w.nulString(f.plugin ?? 'caching_sha2_password');
  if (flags & Cap.CONNECT_ATTRS) {
    const attrs = new PayloadWriter();
    for (const [k, v] of Object.entries(f.attributes ?? {})) attrs.lenencString(k).lenencString(v);
    w.lenencString(attrs.toBuffer());
  }
  return w.toBuffer();
}

/** COM_CHANGE_USER as a PLUGIN_AUTH / SECURE_CONNECTION / CONNECT_ATTRS client sends it. */
export function changeUser(f: { user: string; authResponse: Buffer; database?: string; plugin?: string }): Buffer {
  return new PayloadWriter()
    .int1(0x11)
    .nulString(f.user)
    .int1(f.authResponse.length)
    .bytes(f.authResponse)
    .nulString(f.database ?? '')
    .int2(255)
    .nulString(f.plugin ?? 'caching_sha2_password')
    .lenencString(new PayloadWriter().lenencString('_client_name').lenencString('wire').toBuffer())
    .toBuffer();
}

export function sslRequest(flags: number = WIRE_CLIENT_FLAGS): Buffer {
  return new PayloadWriter()
    .int4(flags | Cap.SSL)
    .int4(16 * 1024 * 1024)
    .int1(255)
    .zeros(23)
    .toBuffer();
}

export class WireClient {
  readonly raw: Socket;
  handshake!: ParsedHandshake;
  #stream: Duplex;
  #reader: PacketReader;
  /** Last sequence id sent or received. */
  seq = 0;

  private constructor(socket: Socket) {
    this.raw = socket;
    this.#stream = socket;
    this.#reader = new PacketReader(socket);
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<WireClient> {
    const socket = netConnect({ port, host });
    socket.on('error', () => {});
    const c = new WireClient(socket);
    const hello = await c.read();
    c.handshake = parseHandshakeV10(hello.payload);
    return c;
  }

  /** Sends a payload with the next sequence id (or the one given). */
  send(payload: Buffer, seq = (this.seq + 1) & 0xff): void {
    const { bytes, lastSeq } = framePacket(seq, payload);
    this.seq = lastSeq;
    this.#stream.write(bytes);
  }

  async read(): Promise<Packet> {
    const p = await this.#reader.read();
    this.seq = p.lastSeq;
    return p;
  }

  async reply(authPhase = false): Promise<ServerReply> {
    return classify((await this.read()).payload, authPhase);
  }

  /** Starts a command: sequence id 0. */
  command(payload: Buffer): void {
    this.send(payload, 0);
  }

  /**
   * SSLRequest, then TLS. With `coalesce`, the SSLRequest and the TLS ClientHello leave in one
   * write, as a fast client's may arrive in one segment.
   */
  async startTls(ca: string, opts: { coalesce?: boolean; flags?: number } = {}): Promise<void> {
    this.#reader.detach();
    const request = framePacket((this.seq + 1) & 0xff, sslRequest(opts.flags));
    this.seq = request.lastSeq;
    let transport: Duplex = this.raw;
    if (opts.coalesce) {
      let prefix: Buffer | null = request.bytes;
      const raw = this.raw;
      const wrapper = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) {
          const out = prefix ? Buffer.concat([prefix, chunk]) : chunk;
          prefix = null;
          raw.write(out, cb);
        },
        final(cb) {
          raw.end();
          cb();
        },
      });
      raw.on('data', (d: Buffer) => wrapper.push(d));
      raw.on('end', () => wrapper.push(null));
      transport = wrapper;
    } else {
      this.raw.write(request.bytes);
    }
    const tls: TLSSocket = tlsConnect({ socket: transport, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    tls.on('error', () => {});
    this.#stream = tls;
    this.#reader = new PacketReader(tls);
  }

  /** Resolves when the server closes the connection. */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.raw.destroyed || this.raw.readableEnded) return resolve();
      this.raw.once('close', () => resolve());
      this.#stream.resume();
    });
  }

  destroy(): void {
    this.#stream.destroy();
    this.raw.destroy();
  }
}

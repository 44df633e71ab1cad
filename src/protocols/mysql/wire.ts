// Codecs for the connection phase: Handshake v10, SSLRequest, HandshakeResponse41, OK/ERR,
// AuthSwitchRequest, AuthMoreData and COM_CHANGE_USER. Pure functions over payloads (framing is
// packet.ts); a malformed payload throws WireError, which the caller turns into the right
// KeylessError for the side it came from.
import { Cap, Com, Marker, PROTOCOL_VERSION, SSL_REQUEST_LENGTH, has } from './constants.ts';

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** A read cursor over one payload; every read is bounds-checked. */
export class Cursor {
  readonly buf: Buffer;
  pos = 0;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  #ensure(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new WireError(`truncated ${what}`);
  }
  u8(what = 'int<1>'): number {
    this.#ensure(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what = 'int<2>'): number {
    this.#ensure(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what = 'int<4>'): number {
    this.#ensure(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number, what = 'string'): Buffer {
    this.#ensure(n, what);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** A NUL-terminated string; `lenient` accepts the end of the payload in place of the NUL. */
  nulBytes(what = 'string<NUL>', lenient = false): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) {
      if (!lenient) throw new WireError(`unterminated ${what}`);
      return this.rest();
    }
    const v = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return v;
  }
  nulString(what?: string, lenient = false): string {
    return this.nulBytes(what, lenient).toString('utf8');
  }
  /** Length-encoded integer. Values past 2^53 cannot be a length of anything we accept. */
  lenenc(what = 'int<lenenc>'): number {
    const first = this.u8(what);
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16(what);
    if (first === 0xfd) {
      this.#ensure(3, what);
      const v = this.buf.readUIntLE(this.pos, 3);
      this.pos += 3;
      return v;
    }
    if (first === 0xfe) {
      this.#ensure(8, what);
      const v = this.buf.readBigUInt64LE(this.pos);
      this.pos += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`${what} too large`);
      return Number(v);
    }
    throw new WireError(`invalid ${what} prefix 0x${first.toString(16)}`);
  }
  lenencBytes(what = 'string<lenenc>'): Buffer {
    return this.bytes(this.lenenc(what), what);
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
}

export function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n <= 0xff_ffff) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(v: Buffer): Buffer {
  return Buffer.concat([lenencInt(v.length), v]);
}

function nul(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([b, Buffer.from([0])]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n & 0xffff);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Handshake v10 (server → client)

export interface Greeting {
  serverVersion: string;
  connectionId: number;
  /** The nonce: auth-plugin-data parts 1 and 2, without the trailing NUL. */
  scramble: Buffer;
  capabilities: number;
  charset: number;
  status: number;
  /** MariaDB extended capabilities (only when upstream cleared CLIENT_MYSQL). */
  mariadbCapabilities: number;
  /** The default auth plugin, when the server names one. */
  authPlugin: string | undefined;
}

export function decodeGreeting(payload: Buffer): Greeting {
  const c = new Cursor(payload);
  const protocol = c.u8('protocol version');
  if (protocol !== PROTOCOL_VERSION) throw new WireError(`unsupported handshake protocol version ${protocol}`);
  const serverVersion = c.nulString('server version');
  const connectionId = c.u32('connection id');
  const part1 = c.bytes(8, 'auth-plugin-data-part-1');
  c.u8('filler');
  let capabilities = c.u16('capability flags');
  let charset = 0;
  let status = 0;
  let mariadbCapabilities = 0;
  let authPlugin: string | undefined;
  let part2: Buffer = Buffer.alloc(0);
  if (c.remaining > 0) {
    charset = c.u8('character set');
    status = c.u16('status flags');
    capabilities = (capabilities | (c.u16('capability flags') << 16)) >>> 0;
    const authDataLength = c.u8('auth-plugin-data length');
    c.bytes(6, 'reserved');
    const ext = c.u32('reserved');
    if (!has(capabilities, Cap.LONG_PASSWORD)) mariadbCapabilities = ext;
    if (has(capabilities, Cap.SECURE_CONNECTION)) {
      const n = Math.max(13, authDataLength - 8);
      part2 = c.bytes(Math.min(n, c.remaining), 'auth-plugin-data-part-2');
    }
    // Some servers omit the NUL after the plugin name (MySQL bug #59453).
    if (has(capabilities, Cap.PLUGIN_AUTH) && c.remaining > 0) authPlugin = c.nulString('auth plugin name', true);
  }
  if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
  return { serverVersion, connectionId, scramble: Buffer.concat([part1, part2]), capabilities, charset, status, mariadbCapabilities, authPlugin };
}

export function encodeGreeting(g: Greeting): Buffer {
  if (g.scramble.length < 8) throw new WireError('scramble shorter than 8 bytes');
  const part2 = g.scramble.subarray(8);
  const ext = Buffer.alloc(4);
  if (!has(g.capabilities, Cap.LONG_PASSWORD)) ext.writeUInt32LE(g.mariadbCapabilities >>> 0);
  return Buffer.concat([
    Buffer.from([PROTOCOL_VERSION]),
    nul(g.serverVersion),
    u32(g.connectionId),
    g.scramble.subarray(0, 8),
    Buffer.from([0]),
    u16(g.capabilities),
    Buffer.from([g.charset & 0xff]),
    u16(g.status),
    u16(g.capabilities >>> 16),
    Buffer.from([has(g.capabilities, Cap.PLUGIN_AUTH) ? g.scramble.length + 1 : 0]),
    Buffer.alloc(6),
    ext,
    has(g.capabilities, Cap.SECURE_CONNECTION) ? nul(part2) : Buffer.alloc(0),
    has(g.capabilities, Cap.PLUGIN_AUTH) && g.authPlugin !== undefined ? nul(g.authPlugin) : Buffer.alloc(0),
  ]);
}

// ---------------------------------------------------------------------------------------------
// SSLRequest and HandshakeResponse41 (client → server)

export interface HandshakeResponse {
  capabilities: number;
  maxPacketSize: number;
  charset: number;
  /** MariaDB extended capabilities, read only when the client cleared CLIENT_MYSQL. */
  mariadbCapabilities: number;
  user: string;
  authResponse: Buffer;
  database: string | undefined;
  authPlugin: string | undefined;
  /** The raw key/value block (without its length prefix), relayed as is. */
  attributes: Buffer | undefined;
}

/** The first 32 bytes of a HandshakeResponse41; with CLIENT_SSL alone it is an SSLRequest. */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === SSL_REQUEST_LENGTH && has(payload.readUInt32LE(0), Cap.SSL);
}

export function encodeSslRequest(r: Pick<HandshakeResponse, 'capabilities' | 'maxPacketSize' | 'charset' | 'mariadbCapabilities'>): Buffer {
  return fixedPart({ ...r, capabilities: (r.capabilities | Cap.SSL) >>> 0 });
}

function fixedPart(r: Pick<HandshakeResponse, 'capabilities' | 'maxPacketSize' | 'charset' | 'mariadbCapabilities'>): Buffer {
  const b = Buffer.alloc(SSL_REQUEST_LENGTH);
  b.writeUInt32LE(r.capabilities >>> 0, 0);
  b.writeUInt32LE(r.maxPacketSize >>> 0, 4);
  b[8] = r.charset & 0xff;
  if (!has(r.capabilities, Cap.LONG_PASSWORD)) b.writeUInt32LE(r.mariadbCapabilities >>> 0, 28);
  return b;
}

export function decodeHandshakeResponse(payload: Buffer): HandshakeResponse {
  const c = new Cursor(payload);
  const capabilities = c.u32('capability flags');
  if (!has(capabilities, Cap.PROTOCOL_41)) throw new WireError('client does not speak protocol 4.1 (HandshakeResponse320 is not supported)');
  const maxPacketSize = c.u32('max packet size');
  const charset = c.u8('character set');
  c.bytes(19, 'filler');
  const ext = c.u32('filler');
  const user = c.nulString('user name');
  let authResponse: Buffer;
  if (has(capabilities, Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA)) authResponse = c.lenencBytes('auth response');
  else if (has(capabilities, Cap.SECURE_CONNECTION)) authResponse = c.bytes(c.u8('auth response length'), 'auth response');
  else authResponse = c.nulBytes('auth response');
  // Clients may stop after any optional field they have nothing for.
  let database: string | undefined;
  let authPlugin: string | undefined;
  let attributes: Buffer | undefined;
  if (has(capabilities, Cap.CONNECT_WITH_DB) && c.remaining > 0) database = c.nulString('database', true);
  if (has(capabilities, Cap.PLUGIN_AUTH) && c.remaining > 0) authPlugin = c.nulString('auth plugin name', true);
  if (has(capabilities, Cap.CONNECT_ATTRS) && c.remaining > 0) attributes = c.lenencBytes('connection attributes');
  return {
    capabilities,
    maxPacketSize,
    charset,
    mariadbCapabilities: has(capabilities, Cap.LONG_PASSWORD) ? 0 : ext,
    user,
    authResponse,
    database,
    authPlugin,
    attributes,
  };
}

export function encodeHandshakeResponse(r: HandshakeResponse): Buffer {
  const caps = r.capabilities;
  const parts = [fixedPart(r), nul(r.user)];
  if (has(caps, Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA)) parts.push(lenencBytes(r.authResponse));
  else if (has(caps, Cap.SECURE_CONNECTION)) {
    if (r.authResponse.length > 255) throw new WireError('auth response longer than 255 bytes needs PLUGIN_AUTH_LENENC_CLIENT_DATA');
    parts.push(Buffer.from([r.authResponse.length]), r.authResponse);
  } else parts.push(nul(r.authResponse));
  if (has(caps, Cap.CONNECT_WITH_DB)) parts.push(nul(r.database ?? ''));
  if (has(caps, Cap.PLUGIN_AUTH)) parts.push(nul(r.authPlugin ?? ''));
  if (has(caps, Cap.CONNECT_ATTRS)) parts.push(lenencBytes(r.attributes ?? Buffer.alloc(0)));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Server replies during authentication

export interface ErrPacket {
  code: number;
  /** Empty when the server sent none (before the handshake, or without PROTOCOL_41). */
  sqlState: string;
  message: string;
}

export function decodeErr(payload: Buffer): ErrPacket {
  const c = new Cursor(payload);
  if (c.u8('header') !== Marker.ERR) throw new WireError('not an ERR packet');
  const code = c.u16('error code');
  let sqlState = '';
  if (c.remaining >= 6 && c.buf[c.pos] === 0x23 /* # */) {
    c.u8();
    sqlState = c.bytes(5, 'SQLSTATE').toString('latin1');
  }
  return { code, sqlState, message: c.rest().toString('utf8') };
}

/** An ERR packet; `sqlState` is left out for a client that has not said it speaks protocol 4.1. */
export function encodeErr(e: ErrPacket, withSqlState: boolean): Buffer {
  const head = Buffer.alloc(3);
  head[0] = Marker.ERR;
  head.writeUInt16LE(e.code, 1);
  const state = withSqlState ? Buffer.from(`#${e.sqlState.padEnd(5, '0').slice(0, 5)}`, 'latin1') : Buffer.alloc(0);
  return Buffer.concat([head, state, Buffer.from(e.message, 'utf8')]);
}

export interface AuthSwitch {
  plugin: string;
  data: Buffer;
}

/** AuthSwitchRequest: 0xFE, plugin name, plugin data (to the end). */
export function decodeAuthSwitch(payload: Buffer): AuthSwitch {
  const c = new Cursor(payload);
  if (c.u8('header') !== Marker.AUTH_SWITCH) throw new WireError('not an AuthSwitchRequest');
  if (c.remaining === 0) throw new WireError('old-style auth switch (pre-4.1 passwords) is not supported');
  const plugin = c.nulString('auth plugin name', true);
  return { plugin, data: c.rest() };
}

export function encodeAuthMoreData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([Marker.MORE_DATA]), data]);
}

// ---------------------------------------------------------------------------------------------
// COM_CHANGE_USER (client → server, in the command phase)

export interface ChangeUser {
  user: string;
  authResponse: Buffer;
  database: string;
  /** Absent in packets from clients that stop after the schema. */
  charset: number | undefined;
  authPlugin: string | undefined;
  attributes: Buffer | undefined;
}

export function decodeChangeUser(payload: Buffer, capabilities: number): ChangeUser {
  const c = new Cursor(payload);
  if (c.u8('command') !== Com.CHANGE_USER) throw new WireError('not a COM_CHANGE_USER');
  const user = c.nulString('user name');
  const authResponse = has(capabilities, Cap.SECURE_CONNECTION) ? c.bytes(c.u8('auth response length'), 'auth response') : c.nulBytes('auth response');
  const database = c.nulString('schema', true);
  let charset: number | undefined;
  let authPlugin: string | undefined;
  let attributes: Buffer | undefined;
  if (c.remaining >= 2) charset = c.u16('character set');
  if (has(capabilities, Cap.PLUGIN_AUTH) && c.remaining > 0) authPlugin = c.nulString('auth plugin name', true);
  if (has(capabilities, Cap.CONNECT_ATTRS) && c.remaining > 0) attributes = c.lenencBytes('connection attributes');
  return { user, authResponse, database, charset, authPlugin, attributes };
}

export function encodeChangeUser(u: ChangeUser, capabilities: number): Buffer {
  const parts = [Buffer.from([Com.CHANGE_USER]), nul(u.user)];
  if (has(capabilities, Cap.SECURE_CONNECTION)) {
    if (u.authResponse.length > 255) throw new WireError('auth response longer than 255 bytes');
    parts.push(Buffer.from([u.authResponse.length]), u.authResponse);
  } else parts.push(nul(u.authResponse));
  parts.push(nul(u.database));
  if (u.charset !== undefined) {
    parts.push(u16(u.charset));
    if (has(capabilities, Cap.PLUGIN_AUTH)) parts.push(nul(u.authPlugin ?? ''));
    if (has(capabilities, Cap.CONNECT_ATTRS)) parts.push(lenencBytes(u.attributes ?? Buffer.alloc(0)));
  }
  return Buffer.concat(parts);
}


// Wire format for the caching_sha2_password test server: packet framing, payload reader and
// writer, and builders for the server-side packets it sends. Built from the MySQL client/server
// protocol docs (dev.mysql.com/doc/dev/mysql-server: page_protocol_basic_packets,
// page_protocol_connection_phase_packets_*, page_protocol_com_query_response_text_resultset).
import type { Duplex } from 'node:stream';

/** Capability flags (page_protocol_basic_capabilities). */
export const Cap = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  NO_SCHEMA: 0x10,
  COMPRESS: 0x20,
  ODBC: 0x40,
  LOCAL_FILES: 0x80,
  IGNORE_SPACE: 0x100,
  PROTOCOL_41: 0x200,
  INTERACTIVE: 0x400,
  SSL: 0x800,
  IGNORE_SIGPIPE: 0x1000,
  TRANSACTIONS: 0x2000,
  RESERVED: 0x4000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
  OPTIONAL_RESULTSET_METADATA: 0x2000000,
  ZSTD_COMPRESSION: 0x4000000,
  QUERY_ATTRIBUTES: 0x8000000,
  MULTI_FACTOR_AUTHENTICATION: 0x10000000,
} as const;

/** Command bytes (page_protocol_command_phase). */
export const Com = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  RESET_CONNECTION: 0x1f,
} as const;

/** First payload byte of the generic response and auth packets. */
export const Marker = {
  OK: 0x00,
  AUTH_MORE_DATA: 0x01, // Protocol::AuthMoreData
  EOF: 0xfe, // EOF_Packet, and the OK that ends a resultset under DEPRECATE_EOF
  AUTH_SWITCH: 0xfe, // Protocol::AuthSwitchRequest (only during authentication)
  ERR: 0xff,
  NULL_VALUE: 0xfb, // a NULL column value in a text resultset row
} as const;

/** caching_sha2_password's one-byte messages inside AuthMoreData / from the client. */
export const Sha2 = {
  REQUEST_PUBLIC_KEY: 0x02,
  FAST_AUTH_SUCCESS: 0x03,
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;

export const ServerStatus = { AUTOCOMMIT: 0x0002 } as const;

/** Column types used by the text resultsets this server returns (enum_field_types). */
export const ColumnType = { LONGLONG: 0x08, VAR_STRING: 0xfd } as const;
export const ColumnFlag = { NOT_NULL: 0x1, UNSIGNED: 0x20, BINARY: 0x80, NUM: 0x8000 } as const;
export const Charset = { BINARY: 63, UTF8MB4_0900_AI_CI: 255 } as const;

/** A payload of exactly 0xffffff bytes means "continued in the next packet". */
export const MAX_PACKET_PAYLOAD = 0xffffff;
const HEADER_LENGTH = 4;

export interface Packet {
  /** Sequence id of the first physical packet. */
  seq: number;
  /** Sequence id of the last physical packet (differs from seq only for payloads ≥ 16 MiB). */
  lastSeq: number;
  payload: Buffer;
}

export class ConnectionClosedError extends Error {
  readonly code = 'CONNECTION_CLOSED';
}
export class MalformedPacketError extends Error {
  readonly code = 'MALFORMED_PACKET';
}
export class PacketTooLargeError extends Error {
  readonly code = 'PACKET_TOO_LARGE';
}

/**
 * Reads whole logical packets from a stream, joining multi-packet payloads. One read at a time.
 * `detach()` hands the stream back (used before a TLS upgrade) together with any unread bytes.
 */
export class PacketReader {
  readonly #stream: Duplex;
  readonly #maxPayload: number;
  #buf: Buffer = Buffer.alloc(0);
  #waiter: { resolve(p: Packet): void; reject(e: Error): void } | null = null;
  #failure: Error | null = null;

  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#pump();
  };
  readonly #onEnd = (): void => this.#fail(new ConnectionClosedError('peer closed the connection'));
  readonly #onError = (err: Error): void => this.#fail(err);

  constructor(stream: Duplex, maxPayload = 64 * 1024 * 1024) {
    this.#stream = stream;
    this.#maxPayload = maxPayload;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  read(): Promise<Packet> {
    if (this.#waiter) return Promise.reject(new Error('PacketReader: concurrent read'));
    return new Promise<Packet>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#pump();
    });
  }

  /** Stop reading from the stream; returns the bytes received but not yet consumed. */
  detach(): Buffer {
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('close', this.#onEnd);
    this.#stream.off('error', this.#onError);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return rest;
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#pump();
  }

  #pump(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    let packet: Packet | null;
    try {
      packet = this.#take();
    } catch (err) {
      this.#waiter = null;
      waiter.reject(err as Error);
      return;
    }
    if (packet) {
      this.#waiter = null;
      waiter.resolve(packet);
    } else if (this.#failure) {
      this.#waiter = null;
      waiter.reject(this.#failure);
    }
  }

  /** One logical packet off the front of the buffer, or null if it is not all here yet. */
  #take(): Packet | null {
    const buf = this.#buf;
    let offset = 0;
    let total = 0;
    let firstSeq = -1;
    let lastSeq = -1;
    const parts: Buffer[] = [];
    for (;;) {
      if (buf.length < offset + HEADER_LENGTH) return null;
      const length = buf.readUIntLE(offset, 3);
      const seq = buf.readUInt8(offset + 3);
      total += length;
      // Refuse before buffering the rest of an oversized packet.
      if (total > this.#maxPayload) throw new PacketTooLargeError(`packet of more than ${this.#maxPayload} bytes`);
      if (firstSeq < 0) firstSeq = seq;
      else if (seq !== ((lastSeq + 1) & 0xff)) throw new MalformedPacketError('packets out of order inside a multi-packet payload');
      lastSeq = seq;
      if (buf.length < offset + HEADER_LENGTH + length) return null;
      parts.push(buf.subarray(offset + HEADER_LENGTH, offset + HEADER_LENGTH + length));
      offset += HEADER_LENGTH + length;
      if (length < MAX_PACKET_PAYLOAD) break;
    }
    this.#buf = buf.subarray(offset);
    const payload = parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
    return { seq: firstSeq, lastSeq, payload };
  }
}

/** Frames a payload into physical packets starting at `seq`; returns the bytes and the last seq used. */
export function framePacket(seq: number, payload: Buffer): { bytes: Buffer; lastSeq: number } {
  const frames: Buffer[] = [];
  let offset = 0;
  let s = seq & 0xff;
  for (;;) {
    const length = Math.min(MAX_PACKET_PAYLOAD, payload.length - offset);
    const header = Buffer.alloc(HEADER_LENGTH);
    header.writeUIntLE(length, 0, 3);
    header.writeUInt8(s, 3);
    frames.push(header, payload.subarray(offset, offset + length));
    offset += length;
    if (length < MAX_PACKET_PAYLOAD) break;
    s = (s + 1) & 0xff;
  }
  return { bytes: Buffer.concat(frames), lastSeq: s };
}

/** Bounds-checked reader over one payload; every overrun throws MalformedPacketError. */
export class PayloadReader {
  readonly buf: Buffer;
  offset: number;

  constructor(buf: Buffer, offset = 0) {
    this.buf = buf;
    this.offset = offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  #need(n: number): void {
    if (this.offset + n > this.buf.length) throw new MalformedPacketError(`truncated packet: need ${n} bytes at offset ${this.offset}`);
  }

  int1(): number {
    this.#need(1);
    return this.buf.readUInt8(this.offset++);
  }

  int2(): number {
    this.#need(2);
    const v = this.buf.readUInt16LE(this.offset);
    this.offset += 2;
    return v;
  }

  int4(): number {
    this.#need(4);
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }

  /** int<lenenc>; NULL (0xfb) and the undefined 0xff are malformed here. */
  lenencInt(): number {
    const first = this.int1();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.int2();
    if (first === 0xfd) {
      this.#need(3);
      const v = this.buf.readUIntLE(this.offset, 3);
      this.offset += 3;
      return v;
    }
    if (first === 0xfe) {
      this.#need(8);
      const v = this.buf.readBigUInt64LE(this.offset);
      this.offset += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedPacketError('length-encoded integer too large');
      return Number(v);
    }
    throw new MalformedPacketError(`invalid length-encoded integer prefix 0x${first.toString(16)}`);
  }

  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenencInt());
  }

  nulBytes(): Buffer {
    const end = this.buf.indexOf(0, this.offset);
    if (end < 0) throw new MalformedPacketError('unterminated string');
    const v = this.buf.subarray(this.offset, end);
    this.offset = end + 1;
    return v;
  }

  nulString(): string {
    return this.nulBytes().toString('utf8');
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return v;
  }
}

/** Append-only payload builder. */
export class PayloadWriter {
  readonly #parts: Buffer[] = [];

  int1(v: number): this {
    this.#parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  int2(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.#parts.push(b);
    return this;
  }

  int4(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.#parts.push(b);
    return this;
  }

  lenencInt(v: number): this {
    if (v < 0xfb) return this.int1(v);
    if (v <= 0xffff) return this.int1(0xfc).int2(v);
    if (v <= 0xffffff) {
      const b = Buffer.alloc(4);
      b.writeUInt8(0xfd);
      b.writeUIntLE(v, 1, 3);
      this.#parts.push(b);
      return this;
    }
    const b = Buffer.alloc(9);
    b.writeUInt8(0xfe);
    b.writeBigUInt64LE(BigInt(v), 1);
    this.#parts.push(b);
    return this;
  }

  bytes(b: Buffer | Uint8Array): this {
    this.#parts.push(Buffer.from(b));
    return this;
  }

  zeros(n: number): this {
    this.#parts.push(Buffer.alloc(n));
    return this;
  }

  nulString(s: string | Buffer): this {
    this.#parts.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from([0]));
    return this;
  }

  lenencString(s: string | Buffer): this {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    return this.lenencInt(b.length).bytes(b);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

// ---- server → client packets -------------------------------------------------------------

export interface HandshakeV10 {
  serverVersion: string;
  connectionId: number;
  /** Exactly 20 bytes, none of them NUL. */
  scramble: Buffer;
  capabilities: number;
  charset: number;
  statusFlags: number;
  authPluginName: string;
}

/** Protocol::HandshakeV10 (page_protocol_connection_phase_packets_protocol_handshake_v10). */
export function handshakeV10(h: HandshakeV10): Buffer {
  if (h.scramble.length !== 20) throw new Error('scramble must be 20 bytes');
  return new PayloadWriter()
    .int1(10) // protocol version
    .nulString(h.serverVersion)
    .int4(h.connectionId)
    .bytes(h.scramble.subarray(0, 8)) // auth-plugin-data-part-1
    .int1(0) // filler
    .int2(h.capabilities & 0xffff)
    .int1(h.charset)
    .int2(h.statusFlags)
    .int2((h.capabilities >>> 16) & 0xffff)
    .int1(h.capabilities & Cap.PLUGIN_AUTH ? h.scramble.length + 1 : 0) // auth_plugin_data_len (incl. NUL)
    .zeros(10) // reserved
    .bytes(h.scramble.subarray(8)) // auth-plugin-data-part-2: 12 bytes …
    .int1(0) // … + NUL = MAX(13, 20 - 8)
    .nulString(h.authPluginName)
    .toBuffer();
}

/** OK_Packet with the PROTOCOL_41 fields (no SESSION_TRACK: this server never offers it). */
export function okPacket(opts: { header?: number; affectedRows?: number; lastInsertId?: number; status?: number; warnings?: number; info?: string } = {}): Buffer {
  const w = new PayloadWriter()
    .int1(opts.header ?? Marker.OK)
    .lenencInt(opts.affectedRows ?? 0)
    .lenencInt(opts.lastInsertId ?? 0)
    .int2(opts.status ?? ServerStatus.AUTOCOMMIT)
    .int2(opts.warnings ?? 0);
  if (opts.info) w.bytes(Buffer.from(opts.info, 'utf8'));
  return w.toBuffer();
}

/** EOF_Packet (PROTOCOL_41 form). */
export function eofPacket(status: number = ServerStatus.AUTOCOMMIT, warnings = 0): Buffer {
  return new PayloadWriter().int1(Marker.EOF).int2(warnings).int2(status).toBuffer();
}

/** ERR_Packet (PROTOCOL_41 form with the SQL state marker). */
export function errPacket(code: number, sqlState: string, message: string): Buffer {
  if (sqlState.length !== 5) throw new Error('SQLSTATE must be 5 characters');
  return new PayloadWriter().int1(Marker.ERR).int2(code).bytes(Buffer.from(`#${sqlState}`, 'latin1')).bytes(Buffer.from(message, 'utf8')).toBuffer();
}

/** Protocol::AuthSwitchRequest: 0xfe, plugin name NUL, plugin data (EOF-terminated). */
export function authSwitchRequest(pluginName: string, pluginData: Buffer): Buffer {
  return new PayloadWriter().int1(Marker.AUTH_SWITCH).nulString(pluginName).bytes(pluginData).toBuffer();
}

/** Protocol::AuthMoreData: 0x01 then the plugin's data. */
export function authMoreData(data: Buffer): Buffer {
  return new PayloadWriter().int1(Marker.AUTH_MORE_DATA).bytes(data).toBuffer();
}

export interface ColumnDefinition {
  schema?: string;
  table?: string;
  name: string;
  charset: number;
  length: number;
  type: number;
  flags: number;
  decimals: number;
}

/** Protocol::ColumnDefinition41. */
export function columnDefinition41(c: ColumnDefinition): Buffer {
  return new PayloadWriter()
    .lenencString('def') // catalog
    .lenencString(c.schema ?? '')
    .lenencString(c.table ?? '') // table
    .lenencString(c.table ?? '') // org_table
    .lenencString(c.name)
    .lenencString('') // org_name: empty for expressions
    .lenencInt(0x0c) // length of the fixed-length fields
    .int2(c.charset)
    .int4(c.length)
    .int1(c.type)
    .int2(c.flags)
    .int1(c.decimals)
    .zeros(2) // filler
    .toBuffer();
}

/** ProtocolText::ResultsetRow: each value a string<lenenc>, NULL as 0xfb. */
export function textRow(values: ReadonlyArray<string | null>): Buffer {
  const w = new PayloadWriter();
  for (const v of values) {
    if (v === null) w.int1(Marker.NULL_VALUE);
    else w.lenencString(v);
  }
  return w.toBuffer();
}

// ---- client → server packets -------------------------------------------------------------

export interface HandshakeResponse41 {
  clientFlags: number;
  maxPacketSize: number;
  charset: number;
  user: string;
  authResponse: Buffer;
  database: string | undefined;
  /** Undefined when the client did not set CLIENT_PLUGIN_AUTH. */
  authPluginName: string | undefined;
  attributes: Record<string, string>;
}

/** Length of Protocol::SSLRequest: flags, max packet size, charset, 23 filler bytes. */
export const SSL_REQUEST_LENGTH = 32;

export function isSslRequest(payload: Buffer): boolean {
  return payload.length === SSL_REQUEST_LENGTH && (payload.readUInt32LE(0) & Cap.SSL) !== 0;
}

function readAttributes(r: PayloadReader): Record<string, string> {
  const attributes: Record<string, string> = {};
  const length = r.lenencInt();
  const end = r.offset + length;
  if (end > r.buf.length) throw new MalformedPacketError('connection attributes overrun the packet');
  while (r.offset < end) {
    const key = r.lenencBytes().toString('utf8');
    attributes[key] = r.lenencBytes().toString('utf8');
  }
  if (r.offset !== end) throw new MalformedPacketError('connection attributes overrun their length');
  return attributes;
}

/**
 * Protocol::HandshakeResponse41. Optional parts are read per the client's flags as limited by
 * what the server offered (`serverCapabilities`).
 */
export function parseHandshakeResponse41(payload: Buffer, serverCapabilities: number): HandshakeResponse41 {
  const r = new PayloadReader(payload);
  const clientFlags = r.int4();
  if (!(clientFlags & Cap.PROTOCOL_41)) throw new MalformedPacketError('client does not speak PROTOCOL_41');
  const flags = clientFlags & serverCapabilities;
  const maxPacketSize = r.int4();
  const charset = r.int1();
  r.bytes(23); // filler
  const user = r.nulString();
  let authResponse: Buffer;
  if (flags & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = Buffer.from(r.lenencBytes());
  else if (flags & Cap.SECURE_CONNECTION) authResponse = Buffer.from(r.bytes(r.int1()));
  else authResponse = Buffer.from(r.nulBytes());
  let database: string | undefined;
  if (flags & Cap.CONNECT_WITH_DB && r.remaining > 0) {
    const db = r.nulString();
    if (db !== '') database = db;
  }
  let authPluginName: string | undefined;
  if (flags & Cap.PLUGIN_AUTH && r.remaining > 0) authPluginName = r.nulString();
  const attributes = flags & Cap.CONNECT_ATTRS && r.remaining > 0 ? readAttributes(r) : {};
  return { clientFlags, maxPacketSize, charset, user, authResponse, database, authPluginName, attributes };
}

export interface ChangeUserRequest {
  user: string;
  authResponse: Buffer;
  database: string | undefined;
  charset: number | undefined;
  authPluginName: string | undefined;
  attributes: Record<string, string>;
}

/** COM_CHANGE_USER (page_protocol_com_change_user); `flags` are the negotiated capabilities. */
export function parseChangeUser(payload: Buffer, flags: number): ChangeUserRequest {
  const r = new PayloadReader(payload);
  if (r.int1() !== Com.CHANGE_USER) throw new MalformedPacketError('not a COM_CHANGE_USER');
  const user = r.nulString();
  const authResponse = Buffer.from(flags & Cap.SECURE_CONNECTION ? r.bytes(r.int1()) : r.nulBytes());
  const db = r.nulString();
  let charset: number | undefined;
  let authPluginName: string | undefined;
  let attributes: Record<string, string> = {};
  if (r.remaining > 0) {
    charset = r.int2();
    if (flags & Cap.PLUGIN_AUTH && r.remaining > 0) authPluginName = r.nulString();
    if (flags & Cap.CONNECT_ATTRS && r.remaining > 0) attributes = readAttributes(r);
  }
  return { user, authResponse, database: db === '' ? undefined : db, charset, authPluginName, attributes };
}

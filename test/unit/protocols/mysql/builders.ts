// Named builders for MySQL wire packets, written from the MySQL protocol docs ("Connection Phase
// Packets", "Generic Response Packets") and independent of src/: tests say
// `handshakeResponse({ user: 'app', database: 'billing' })`, never hex.

export const CAP = {
  LONG_PASSWORD: 0x1,
  CONNECT_WITH_DB: 0x8,
  COMPRESS: 0x20,
  LOCAL_FILES: 0x80,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x1_0000,
  MULTI_RESULTS: 0x2_0000,
  PLUGIN_AUTH: 0x8_0000,
  CONNECT_ATTRS: 0x10_0000,
  PLUGIN_AUTH_LENENC: 0x20_0000,
  SESSION_TRACK: 0x80_0000,
  DEPRECATE_EOF: 0x100_0000,
  QUERY_ATTRIBUTES: 0x800_0000,
} as const;

/** What mysql2 and libmariadb send, give or take. */
export const MODERN_CLIENT =
  CAP.LONG_PASSWORD | CAP.CONNECT_WITH_DB | CAP.LOCAL_FILES | CAP.PROTOCOL_41 | CAP.TRANSACTIONS | CAP.SECURE_CONNECTION | CAP.MULTI_STATEMENTS | CAP.MULTI_RESULTS | CAP.PLUGIN_AUTH | CAP.CONNECT_ATTRS | CAP.PLUGIN_AUTH_LENENC | CAP.SESSION_TRACK | CAP.DEPRECATE_EOF;

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export function cstr(s: string | Buffer): Buffer {
  return Buffer.concat([typeof s === 'string' ? Buffer.from(s, 'utf8') : s, Buffer.from([0])]);
}

export function lenenc(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x1_0000) return Buffer.concat([Buffer.from([0xfc]), u16(n)]);
  const b = Buffer.alloc(4);
  b[0] = 0xfd;
  b.writeUIntLE(n, 1, 3);
  return b;
}

export function lenencStr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([lenenc(b.length), b]);
}

/** One wire packet: 3-byte length, sequence id, payload (under 16 MiB). */
export function packet(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

export interface GreetingFields {
  version?: string;
  connectionId?: number;
  scramble?: Buffer;
  capabilities?: number;
  charset?: number;
  status?: number;
  /** MariaDB: extended capabilities in the last 4 filler bytes (set with LONG_PASSWORD cleared). */
  mariadbCapabilities?: number;
  plugin?: string;
}

export function greeting(f: GreetingFields = {}): Buffer {
  const scramble = f.scramble ?? Buffer.from('abcdefghijklmnopqrst');
  const caps = f.capabilities ?? (MODERN_CLIENT | CAP.SSL);
  const filler = Buffer.alloc(10);
  if (f.mariadbCapabilities !== undefined) filler.writeUInt32LE(f.mariadbCapabilities, 6);
  return Buffer.concat([
    Buffer.from([10]),
    cstr(f.version ?? '8.0.36'),
    u32(f.connectionId ?? 42),
    scramble.subarray(0, 8),
    Buffer.from([0]),
    u16(caps & 0xffff),
    Buffer.from([f.charset ?? 45]),
    u16(f.status ?? 2),
    u16(caps >>> 16),
    Buffer.from([scramble.length + 1]),
    filler,
    cstr(scramble.subarray(8)),
    cstr(f.plugin ?? 'mysql_native_password'),
  ]);
}

export interface ResponseFields {
  capabilities?: number;
  maxPacket?: number;
  charset?: number;
  mariadbCapabilities?: number;
  user?: string;
  auth?: Buffer;
  database?: string;
  plugin?: string;
  attributes?: Record<string, string>;
}

export function sslRequest(f: ResponseFields = {}): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(((f.capabilities ?? MODERN_CLIENT) | CAP.SSL) >>> 0, 0);
  b.writeUInt32LE(f.maxPacket ?? 16 * 1024 * 1024, 4);
  b[8] = f.charset ?? 45;
  return b;
}

export function handshakeResponse(f: ResponseFields = {}): Buffer {
  const caps = f.capabilities ?? MODERN_CLIENT;
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(caps >>> 0, 0);
  fixed.writeUInt32LE(f.maxPacket ?? 16 * 1024 * 1024, 4);
  fixed[8] = f.charset ?? 45;
  if (f.mariadbCapabilities !== undefined) fixed.writeUInt32LE(f.mariadbCapabilities, 28);
  const auth = f.auth ?? Buffer.alloc(20, 7);
  const parts = [fixed, cstr(f.user ?? 'app')];
  if (caps & CAP.PLUGIN_AUTH_LENENC) parts.push(lenencStr(auth));
  else if (caps & CAP.SECURE_CONNECTION) parts.push(Buffer.from([auth.length]), auth);
  else parts.push(cstr(auth));
  if (caps & CAP.CONNECT_WITH_DB) parts.push(cstr(f.database ?? ''));
  if (caps & CAP.PLUGIN_AUTH) parts.push(cstr(f.plugin ?? 'mysql_native_password'));
  if (caps & CAP.CONNECT_ATTRS) {
    const kv = Buffer.concat(Object.entries(f.attributes ?? { _client_name: 'builders' }).flatMap(([k, v]) => [lenencStr(k), lenencStr(v)]));
    parts.push(lenencStr(kv));
  }
  return Buffer.concat(parts);
}

export function okPacket(status = 2): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), u16(status), u16(0)]);
}

export function errPacket(code: number, sqlState: string, message: string): Buffer {
  return Buffer.concat([Buffer.from([0xff]), u16(code), Buffer.from(`#${sqlState}`, 'latin1'), Buffer.from(message, 'utf8')]);
}

export function authSwitch(plugin: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), cstr(plugin), data]);
}

export function authMoreData(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x01]), data]);
}

export function comQuery(sql: string): Buffer {
  return Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]);
}

export function comChangeUser(f: { user?: string; auth?: Buffer; database?: string; charset?: number; plugin?: string } = {}): Buffer {
  const auth = f.auth ?? Buffer.alloc(20, 9);
  return Buffer.concat([
    Buffer.from([0x11]),
    cstr(f.user ?? 'app'),
    Buffer.from([auth.length]),
    auth,
    cstr(f.database ?? ''),
    u16(f.charset ?? 45),
    cstr(f.plugin ?? 'mysql_native_password'),
  ]);
}

/** Every way to cut `buf` in two (and the uncut buffer). */
export function* everySplit(buf: Buffer): Generator<Buffer[]> {
  yield [buf];
  for (let i = 1; i < buf.length; i++) yield [buf.subarray(0, i), buf.subarray(i)];
}

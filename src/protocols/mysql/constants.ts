// Named wire constants of the MySQL client/server protocol (and MariaDB's extensions), from the
// MySQL source documentation ("Capabilities Flags", "Text Protocol", "Connection Phase") and
// MariaDB's "Connection" page. Values are plain numbers; flag arithmetic goes through `has()`
// because bit 31 does not survive JavaScript's signed 32-bit operators without `>>> 0`.

/** Capability flags (the low and high 16 bits of the 32-bit field). */
export const Cap = {
  /** CLIENT_LONG_PASSWORD; MariaDB calls it CLIENT_MYSQL and clears it to announce extended capabilities. */
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
  MULTI_STATEMENTS: 0x1_0000,
  MULTI_RESULTS: 0x2_0000,
  PS_MULTI_RESULTS: 0x4_0000,
  PLUGIN_AUTH: 0x8_0000,
  CONNECT_ATTRS: 0x10_0000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x20_0000,
  CAN_HANDLE_EXPIRED_PASSWORDS: 0x40_0000,
  SESSION_TRACK: 0x80_0000,
  DEPRECATE_EOF: 0x100_0000,
  OPTIONAL_RESULTSET_METADATA: 0x200_0000,
  ZSTD_COMPRESSION: 0x400_0000,
  QUERY_ATTRIBUTES: 0x800_0000,
  MULTI_FACTOR_AUTHENTICATION: 0x1000_0000,
  CAPABILITY_EXTENSION: 0x2000_0000,
  SSL_VERIFY_SERVER_CERT: 0x4000_0000,
  REMEMBER_OPTIONS: 0x8000_0000,
} as const;

/** MariaDB extended capabilities: the 4 bytes at the end of the greeting's and response's filler. */
export const MariaDbCap = {
  PROGRESS: 0x1,
  COM_MULTI: 0x2,
  STMT_BULK_OPERATIONS: 0x4,
  EXTENDED_METADATA: 0x8,
  CACHE_METADATA: 0x10,
  BULK_UNIT_RESULTS: 0x20,
} as const;

/**
 * Flags that shape the protocol after authentication. Keyless relays those bytes without parsing
 * them, so both hops must agree: each is granted to the client only if upstream offers it, and
 * sent upstream only if the client asked for it.
 */
export const RELAYED_CAPS =
  Cap.LONG_PASSWORD |
  Cap.FOUND_ROWS |
  Cap.LONG_FLAG |
  Cap.NO_SCHEMA |
  Cap.ODBC |
  Cap.LOCAL_FILES |
  Cap.IGNORE_SPACE |
  Cap.PROTOCOL_41 |
  Cap.INTERACTIVE |
  Cap.IGNORE_SIGPIPE |
  Cap.TRANSACTIONS |
  Cap.RESERVED |
  Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS |
  Cap.PS_MULTI_RESULTS |
  Cap.SESSION_TRACK |
  Cap.DEPRECATE_EOF |
  Cap.OPTIONAL_RESULTSET_METADATA |
  Cap.QUERY_ATTRIBUTES;

/**
 * Flags of the connection phase, which each hop negotiates on its own. Compression is in neither
 * set (Keyless does not implement it), nor are expired-password sandboxes, multi-factor auth and
 * the capability extension.
 */
export const PER_HOP_CAPS = Cap.CONNECT_WITH_DB | Cap.SSL | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_ATTRS;

/** MariaDB extended capabilities are all post-authentication framing: relayed like RELAYED_CAPS. */
export const RELAYED_MARIADB_CAPS =
  MariaDbCap.PROGRESS |
  MariaDbCap.COM_MULTI |
  MariaDbCap.STMT_BULK_OPERATIONS |
  MariaDbCap.EXTENDED_METADATA |
  MariaDbCap.CACHE_METADATA |
  MariaDbCap.BULK_UNIT_RESULTS;

export function has(flags: number, flag: number): boolean {
  return ((flags & flag) >>> 0) !== 0;
}

/** Command bytes (the first byte of a client packet with sequence id 0). */
export const Com = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  RESET_CONNECTION: 0x1f,
} as const;

/** The first byte of a server packet during the connection phase. */
export const Marker = {
  OK: 0x00,
  /** AuthMoreData. */
  MORE_DATA: 0x01,
  /** AuthNextFactor (MySQL 8.0.27+ multi-factor). */
  NEXT_FACTOR: 0x02,
  /** AuthSwitchRequest (or the old pre-4.1 auth switch when the packet is one byte). */
  AUTH_SWITCH: 0xfe,
  ERR: 0xff,
} as const;

/** Handshake protocol version of Handshake v10. */
export const PROTOCOL_VERSION = 10;

/** A packet's payload length field is 3 bytes; a payload of this length continues in the next packet. */
export const MAX_PACKET_PAYLOAD = 0xff_ffff;
export const HEADER_LENGTH = 4;

/** The length of an SSLRequest: the fixed part of HandshakeResponse41. */
export const SSL_REQUEST_LENGTH = 32;

/** Client-side connection-phase packets (HandshakeResponse41, COM_CHANGE_USER) may be at most this large. */
export const MAX_CLIENT_HANDSHAKE_PACKET = 72 * 1024;
/** Upstream connection-phase packets (greeting, auth data, OK with session state) may be at most this large. */
export const MAX_UPSTREAM_HANDSHAKE_PACKET = 1024 * 1024;

/** Auth plugin names. */
export const Plugin = {
  NATIVE: 'mysql_native_password',
  CACHING_SHA2: 'caching_sha2_password',
  ED25519: 'client_ed25519',
  CLEAR: 'mysql_clear_password',
} as const;

/** caching_sha2_password AuthMoreData payloads. */
export const Sha2 = {
  REQUEST_PUBLIC_KEY: 0x02,
  FAST_AUTH_SUCCESS: 0x03,
  PERFORM_FULL_AUTH: 0x04,
} as const;

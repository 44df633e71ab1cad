// Named builders for PostgreSQL wire packets, written from the "Message Formats" section of the
// protocol docs and independent of src/: tests say `startupMessage({ user: 'orders' })`, never hex.
// Startup-phase packets have no type byte: int32 length (including itself), then the body.
// Every other message: one type byte, int32 length (including itself, not the type), then the body.

/** Request codes: the int32 after the length of a startup-phase packet. */
export const SSL_REQUEST_CODE = (1234 << 16) | 5679; // 80877103
export const GSSENC_REQUEST_CODE = (1234 << 16) | 5680; // 80877104
export const CANCEL_REQUEST_CODE = (1234 << 16) | 5678; // 80877102

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

/** A NUL-terminated UTF-8 string. */
export function cstring(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
}

/** A startup-phase packet: the length prefix in front of a body. */
export function startupPhasePacket(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length + 4), body]);
}

/** The body a startup-phase packet carries (what decodeStartupPacket takes). */
export function bodyOf(packet: Buffer): Buffer {
  return packet.subarray(4);
}

export function protocolVersion(major: number, minor: number): number {
  return ((major << 16) | minor) >>> 0;
}

export type Params = Readonly<Record<string, string>> | readonly (readonly [string, string])[];

/** StartupMessage body: protocol version, name/value pairs, a final NUL. */
export function startupMessageBody(params: Params, version: { major: number; minor: number } = { major: 3, minor: 0 }): Buffer {
  const pairs = Array.isArray(params) ? (params as readonly (readonly [string, string])[]) : Object.entries(params);
  return Buffer.concat([int32(protocolVersion(version.major, version.minor)), ...pairs.flatMap(([k, v]) => [cstring(k), cstring(v)]), Buffer.from([0])]);
}

export function startupMessage(params: Params, version?: { major: number; minor: number }): Buffer {
  return startupPhasePacket(startupMessageBody(params, version));
}

export function sslRequest(): Buffer {
  return startupPhasePacket(int32(SSL_REQUEST_CODE));
}

export function gssencRequest(): Buffer {
  return startupPhasePacket(int32(GSSENC_REQUEST_CODE));
}

/** CancelRequest: code, process id, secret key (4 bytes in 3.0, up to 256 in 3.2). */
export function cancelRequest(processId: number, secretKey: Buffer): Buffer {
  return startupPhasePacket(Buffer.concat([int32(CANCEL_REQUEST_CODE), int32(processId), secretKey]));
}

/** A typed message: type character, length, body. */
export function typedMessage(type: string, body: Buffer): Buffer {
  if (type.length !== 1) throw new Error('message type is one character');
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

// Frontend messages.

/** PasswordMessage 'p' with a cleartext or md5 password. */
export function passwordMessage(password: string): Buffer {
  return typedMessage('p', cstring(password));
}

/** SASLInitialResponse 'p': mechanism name, int32 length of the data, the data. */
export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const d = Buffer.from(data, 'utf8');
  return typedMessage('p', Buffer.concat([cstring(mechanism), int32(d.length), d]));
}

/** Query 'Q': one SQL string. */
export function query(sql: string): Buffer {
  return typedMessage('Q', cstring(sql));
}

/** Terminate 'X': no body. */
export function terminate(): Buffer {
  return typedMessage('X', Buffer.alloc(0));
}

// Backend messages.

/** AuthenticationOk: 'R', int32 0. */
export function authenticationOk(): Buffer {
  return typedMessage('R', int32(0));
}

/** AuthenticationMD5Password: 'R', int32 5, 4-byte salt. */
export function authenticationMd5Password(salt: Buffer): Buffer {
  return typedMessage('R', Buffer.concat([int32(5), salt]));
}

/** ParameterStatus 'S': name, value. */
export function parameterStatus(name: string, value: string): Buffer {
  return typedMessage('S', Buffer.concat([cstring(name), cstring(value)]));
}

/** BackendKeyData 'K': process id, secret key. */
export function backendKeyData(processId: number, secretKey: Buffer): Buffer {
  return typedMessage('K', Buffer.concat([int32(processId), secretKey]));
}

/** ReadyForQuery 'Z': transaction status I, T or E. */
export function readyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return typedMessage('Z', Buffer.from(status, 'latin1'));
}

/** NegotiateProtocolVersion 'v': newest minor supported, count, the unrecognised option names. */
export function negotiateProtocolVersion(minor: number, unrecognized: readonly string[]): Buffer {
  return typedMessage('v', Buffer.concat([int32(minor), int32(unrecognized.length), ...unrecognized.map(cstring)]));
}

/** ErrorResponse 'E' (or NoticeResponse 'N'): (field letter, value) pairs, then a NUL. */
export function errorResponse(fields: readonly (readonly [string, string])[], type: 'E' | 'N' = 'E'): Buffer {
  return typedMessage(type, Buffer.concat([...fields.map(([letter, value]) => Buffer.concat([Buffer.from(letter, 'latin1'), cstring(value)])), Buffer.from([0])]));
}

/** The body of a typed message (after type and length). */
export function messageBody(message: Buffer): Buffer {
  return message.subarray(5);
}

/**
 * Every way to cut `bytes` in two non-empty pieces, plus the whole thing as one piece:
 * `[[bytes], [b[0..1], b[1..]], …]`.
 */
export function everySplit(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

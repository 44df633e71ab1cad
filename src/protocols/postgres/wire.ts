// PostgreSQL wire format pieces Keyless needs beyond pg-protocol: the frontend's startup-phase
// packets (which pg-protocol, a client library, does not parse) and the backend messages Keyless
// sends as a server. See the "Frontend/Backend Protocol" chapter, "Message Formats".

/** Startup-phase request codes (the int32 after the length). */
export const RequestCode = {
  Cancel: 80877102, // 1234.5678
  SSL: 80877103, // 1234.5679
  GSSENC: 80877104, // 1234.5680
} as const;

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const MAX_STARTUP_PACKET = 10_000; // PostgreSQL's own MAX_STARTUP_PACKET_LENGTH
/** Upstream handshake messages (auth, ParameterStatus, errors) are small; anything larger is wrong. */
export const MAX_HANDSHAKE_MESSAGE = 1 << 20;

/** Backend message type bytes Keyless writes or inspects during the handshake. */
export const Backend = {
  Authentication: 0x52, // R
  ParameterStatus: 0x53, // S
  BackendKeyData: 0x4b, // K
  ReadyForQuery: 0x5a, // Z
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NegotiateProtocolVersion: 0x76, // v
} as const;

/** Frontend message type bytes seen during the handshake. */
export const Frontend = {
  Password: 0x70, // p (PasswordMessage, SASLInitialResponse, SASLResponse)
  Terminate: 0x58, // X
} as const;

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> };

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/**
 * Decode one startup-phase packet body (everything after the int32 length).
 * Throws WireError on anything malformed.
 */
export function decodeStartupPacket(body: Buffer): StartupPacket {
  if (body.length < 4) throw new WireError('startup packet shorter than its protocol code');
  const code = body.readUInt32BE(0);
  switch (code) {
    case RequestCode.SSL:
      if (body.length !== 4) throw new WireError('SSLRequest with a body');
      return { kind: 'ssl' };
    case RequestCode.GSSENC:
      if (body.length !== 4) throw new WireError('GSSENCRequest with a body');
      return { kind: 'gssenc' };
    case RequestCode.Cancel: {
      // Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256.
      const key = body.subarray(8);
      if (body.length < 12 || key.length > 256) throw new WireError('malformed CancelRequest');
      return { kind: 'cancel', processId: body.readUInt32BE(4), secretKey: Buffer.from(key) };
    }
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  const params = new Map<string, string>();
  let at = 4;
  for (;;) {
    const keyEnd = body.indexOf(0, at);
    if (keyEnd < 0) throw new WireError('startup parameters are not terminated');
    if (keyEnd === at) {
      if (keyEnd !== body.length - 1) throw new WireError('bytes after the startup parameters');
      break;
    }
    const key = body.toString('utf8', at, keyEnd);
    const valEnd = body.indexOf(0, keyEnd + 1);
    if (valEnd < 0) throw new WireError(`startup parameter "${key.slice(0, 64)}" has no value`);
    params.set(key, body.toString('utf8', keyEnd + 1, valEnd));
    at = valEnd + 1;
  }
  return { kind: 'startup', major, minor, params };
}

/** A StartupMessage for protocol 3.0 with the given parameters, in order. */
export function encodeStartup(params: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of params) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8, 0);
  head.writeUInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

export function encodeCancelRequest(processId: number, secretKey: Buffer): Buffer {
  const b = Buffer.alloc(12 + secretKey.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(RequestCode.Cancel, 4);
  b.writeUInt32BE(processId, 8);
  secretKey.copy(b, 12);
  return b;
}

export const SSL_REQUEST = (() => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(8, 0);
  b.writeUInt32BE(RequestCode.SSL, 4);
  return b;
})();

function message(type: number, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = type;
  b.writeUInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

export const AUTHENTICATION_OK = message(Backend.Authentication, Buffer.from([0, 0, 0, 0]));

export function encodeParameterStatus(name: string, value: string): Buffer {
  return message(Backend.ParameterStatus, Buffer.from(`${name}\0${value}\0`, 'utf8'));
}

export function encodeBackendKeyData(processId: number, secretKey: Buffer): Buffer {
  const body = Buffer.alloc(4 + secretKey.length);
  body.writeUInt32BE(processId, 0);
  secretKey.copy(body, 4);
  return message(Backend.BackendKeyData, body);
}

export function encodeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return message(Backend.ReadyForQuery, Buffer.from(status, 'latin1'));
}

/** NegotiateProtocolVersion: the newest minor version we speak and the options we ignored. */
export function encodeNegotiateProtocolVersion(minor: number, unrecognized: readonly string[]): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(minor, 0);
  head.writeUInt32BE(unrecognized.length, 4);
  return message(Backend.NegotiateProtocolVersion, Buffer.concat([head, ...unrecognized.map((o) => Buffer.from(`${o}\0`, 'utf8'))]));
}

export interface ErrorFields {
  severity: 'FATAL' | 'ERROR';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse with S, V (non-localised severity), C, M and optional D, H fields. */
export function encodeErrorResponse(f: ErrorFields): Buffer {
  let s = `S${f.severity}\0V${f.severity}\0C${f.code}\0M${f.message}\0`;
  if (f.detail) s += `D${f.detail}\0`;
  if (f.hint) s += `H${f.hint}\0`;
  return message(Backend.ErrorResponse, Buffer.from(`${s}\0`, 'utf8'));
}

/** The fields of an ErrorResponse or NoticeResponse body, keyed by their type letter. */
export function decodeErrorFields(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    out.set(String.fromCharCode(body[at]!), body.toString('utf8', at + 1, end));
    at = end + 1;
  }
  return out;
}

// Keyless as the server the application talks to: a greeting that mirrors upstream's (version,
// connection id, character set, status, the relayed capability flags) with Keyless's own nonce,
// TLS when the listener has a certificate, and the client's HandshakeResponse41. The client's
// user name and auth response are read and ignored: whatever plugin it used, it is let in.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { KeylessError } from '../../errors.ts';
import { Cap, MAX_CLIENT_HANDSHAKE_PACKET, Plugin, RELAYED_CAPS, RELAYED_MARIADB_CAPS, Sha2, has } from './constants.ts';
import { PacketReader, encodePacket, nextSeq } from './packet.ts';
import { acceptTls } from '../../proxy/transport.ts';
import { WireError, decodeHandshakeResponse, encodeAuthMoreData, encodeGreeting, isSslRequest, type Greeting, type HandshakeResponse } from './wire.ts';

/** A 20-byte nonce as servers make them: printable-ish, never NUL (some clients treat it as a C string). */
export function newScramble(): Buffer {
  const b = randomBytes(20);
  for (let i = 0; i < b.length; i++) b[i] = (b[i]! % 94) + 33;
  return b;
}

/** The greeting Keyless sends the client for an upstream greeting. */
export function clientGreeting(up: Greeting, tls: boolean): Greeting {
  let caps = ((up.capabilities & RELAYED_CAPS) | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA | Cap.CONNECT_WITH_DB) >>> 0;
  if (has(up.capabilities, Cap.CONNECT_ATTRS)) caps = (caps | Cap.CONNECT_ATTRS) >>> 0;
  if (tls) caps = (caps | Cap.SSL) >>> 0;
  return {
    serverVersion: up.serverVersion,
    connectionId: up.connectionId,
    scramble: newScramble(),
    capabilities: caps,
    charset: up.charset,
    status: up.status,
    mariadbCapabilities: up.mariadbCapabilities & RELAYED_MARIADB_CAPS,
    // Drivers pick their first response by this name; any answer is accepted.
    authPlugin: up.authPlugin === Plugin.CACHING_SHA2 ? Plugin.CACHING_SHA2 : Plugin.NATIVE,
  };
}

export interface ClientHello {
  /** The socket to relay on (TLS when the client asked for it). */
  socket: Socket | TLSSocket;
  reader: PacketReader;
  response: HandshakeResponse;
  /** Sequence id of Keyless's next packet to the client. */
  seq: number;
}

/** Send the greeting; read the SSLRequest (then TLS) and the HandshakeResponse41. */
export async function readClientHello(client: Socket, greeting: Greeting, tls: SecureContext | undefined, signal: AbortSignal): Promise<ClientHello> {
  client.write(encodePacket(0, encodeGreeting(greeting)));
  let socket: Socket | TLSSocket = client;
  let reader = new PacketReader(client, 'client');
  let expected = 1;
  let p = await reader.read(MAX_CLIENT_HANDSHAKE_PACKET, signal);
  if (p.seq !== expected) throw outOfOrder(p.seq, expected);
  if (isSslRequest(p.payload)) {
    if (!tls) throw new KeylessError('KL_ERR_PROTOCOL', 'client asked for TLS, which this listener does not offer');
    // Unlike PostgreSQL, a MySQL client does not wait for an answer to SSLRequest: bytes behind
    // it are its TLS ClientHello. Hand them back to the socket, where the TLS layer reads them.
    const hello = reader.detach();
    if (hello.length > 0) client.unshift(hello);
    socket = await acceptTls(client, tls, signal);
    reader = new PacketReader(socket, 'client');
    expected = 2;
    p = await reader.read(MAX_CLIENT_HANDSHAKE_PACKET, signal);
    if (p.seq !== expected) throw outOfOrder(p.seq, expected);
  }
  let response: HandshakeResponse;
  try {
    response = decodeHandshakeResponse(p.payload);
  } catch (err) {
    if (err instanceof WireError) throw new KeylessError('KL_ERR_PROTOCOL', `client: malformed HandshakeResponse41: ${err.message}`, { cause: err });
    throw err;
  }
  if (has(response.capabilities, Cap.SSL) && socket === client) throw new KeylessError('KL_ERR_PROTOCOL', 'client set CLIENT_SSL without an SSLRequest');
  return { socket, reader, response, seq: nextSeq(p) };
}

/**
 * The packets that let the client in: upstream's OK, preceded by "fast auth success" for a
 * caching_sha2_password client that sent a scramble, as a MySQL 8 server would.
 */
export function clientWelcome(hello: Pick<ClientHello, 'response' | 'seq'>, ok: Buffer): Buffer {
  const parts: Buffer[] = [];
  let seq = hello.seq;
  if (hello.response.authPlugin === Plugin.CACHING_SHA2 && hello.response.authResponse.length > 0) {
    parts.push(encodePacket(seq, encodeAuthMoreData(Buffer.from([Sha2.FAST_AUTH_SUCCESS]))));
    seq = (seq + 1) & 0xff;
  }
  parts.push(encodePacket(seq, ok));
  return Buffer.concat(parts);
}

function outOfOrder(seq: number, expected: number): KeylessError {
  return new KeylessError('KL_ERR_PROTOCOL', `client: packet out of order: sequence id ${seq}, expected ${expected}`);
}

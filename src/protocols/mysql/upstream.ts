// Keyless as the client of the real server: dial and read its greeting (no credential needed),
// then, once the client has answered, negotiate TLS and log in as the stored credential; later,
// re-authenticate the same session with COM_CHANGE_USER. Both run one auth loop that answers
// AuthSwitchRequest and AuthMoreData with the plugins in auth/.
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { optionalField, requireField } from '../../credentials/fields.ts';
import type { Credential } from '../../credentials/types.ts';
import { KeylessError } from '../../errors.ts';
import { SUPPORTED_PLUGINS, createAuth, type AuthExchange, type AuthOptions } from './auth/index.ts';
import { Cap, MAX_UPSTREAM_HANDSHAKE_PACKET, Marker, Plugin, RELAYED_CAPS, RELAYED_MARIADB_CAPS, has } from './constants.ts';
import { UpstreamServerError } from './errors.ts';
import { PacketReader, encodePacket, nextSeq, type Packet } from './packet.ts';
import { tcpConnect, upgradeUpstream, type UpstreamTls } from '../../proxy/transport.ts';
import {
  WireError,
  decodeAuthSwitch,
  decodeErr,
  decodeGreeting,
  encodeChangeUser,
  encodeHandshakeResponse,
  encodeSslRequest,
  type ErrPacket,
  type Greeting,
} from './wire.ts';

export interface UpstreamEndpoint {
  /** The target's name, for messages. */
  target: string;
  host: string;
  port: number;
  tls: UpstreamTls;
  /** Pinned RSA public key (PEM) for caching_sha2_password without TLS. */
  serverPublicKey: Buffer | undefined;
  fetchServerPublicKey: boolean;
}

/** A dialed upstream that has sent its greeting and waits for a HandshakeResponse. */
export interface Greeted {
  raw: Socket;
  reader: PacketReader;
  greeting: Greeting;
}

/** What the client asked for that the upstream login carries on. */
export interface LoginParams {
  capabilities: number;
  mariadbCapabilities: number;
  maxPacketSize: number;
  charset: number;
  database: string | undefined;
  attributes: Buffer | undefined;
}

export interface UpstreamSession {
  /** The socket to relay on (TLS when negotiated). */
  socket: Socket | TLSSocket;
  /** The TCP socket underneath, for byte counts. */
  raw: Socket;
  greeting: Greeting;
  /** The flags Keyless sent upstream (the relayed ones equal what the client has). */
  capabilities: number;
  tls: boolean;
  /** The OK packet that ended the login, to pass on to the client. */
  ok: Buffer;
  /** Bytes upstream sent after the OK (none in practice); the relay sends them first. */
  leftover: Buffer;
}

/** Error numbers that mean "this credential was not accepted": invalidate, refetch, retry once. */
const CREDENTIAL_REJECTED = new Set([
  1045, // ER_ACCESS_DENIED_ERROR
  1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  1862, // ER_MUST_CHANGE_PASSWORD_LOGIN: expired; a rotated one may not be
  4151, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB max_password_errors): a rotated one may not be
]);

export async function greet(ep: UpstreamEndpoint, signal: AbortSignal): Promise<Greeted> {
  const raw = await tcpConnect(ep.host, ep.port, signal);
  const reader = new PacketReader(raw, 'upstream');
  try {
    const p = await reader.read(MAX_UPSTREAM_HANDSHAKE_PACKET, signal);
    if (p.payload[0] === Marker.ERR) {
      // "Too many connections", "Host is blocked"…: the server refused before greeting.
      const e = decodeOrProtocol(() => decodeErr(p.payload));
      throw new UpstreamServerError(`upstream refused the connection: ${e.code} ${e.message}`, e);
    }
    const greeting = decodeOrProtocol(() => decodeGreeting(p.payload));
    if (!has(greeting.capabilities, Cap.PROTOCOL_41) || !has(greeting.capabilities, Cap.SECURE_CONNECTION)) {
      throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `upstream ${greeting.serverVersion} does not speak protocol 4.1 with secure connection`);
    }
    if (ep.tls.mode !== 'disable' && !has(greeting.capabilities, Cap.SSL)) {
      throw new KeylessError('KL_ERR_UPSTREAM_TLS', `upstream ${ep.host}:${ep.port} does not offer TLS and tls.mode is ${ep.tls.mode}`);
    }
    return { raw, reader, greeting };
  } catch (err) {
    reader.detach();
    raw.destroy();
    throw err;
  }
}

/**
 * Log in on a greeted connection as the credential's user. A rejected credential surfaces as
 * KL_ERR_UPSTREAM_AUTH (the server closes the connection after it).
 */
export async function login(g: Greeted, ep: UpstreamEndpoint, params: LoginParams, cred: Credential, signal: AbortSignal): Promise<UpstreamSession> {
  const up = g.greeting;
  const tls = ep.tls.mode !== 'disable';
  let capabilities =
    ((params.capabilities & up.capabilities & RELAYED_CAPS) | Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | (up.capabilities & (Cap.PLUGIN_AUTH | Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA))) >>> 0;
  if (params.database !== undefined) capabilities = (capabilities | Cap.CONNECT_WITH_DB) >>> 0;
  if (params.attributes !== undefined && has(up.capabilities, Cap.CONNECT_ATTRS)) capabilities = (capabilities | Cap.CONNECT_ATTRS) >>> 0;
  if (tls) capabilities = (capabilities | Cap.SSL) >>> 0;
  const fixed = {
    capabilities,
    maxPacketSize: params.maxPacketSize,
    charset: params.charset,
    mariadbCapabilities: has(capabilities, Cap.LONG_PASSWORD) ? 0 : params.mariadbCapabilities & up.mariadbCapabilities & RELAYED_MARIADB_CAPS,
  };

  let socket: Socket | TLSSocket = g.raw;
  let reader = g.reader;
  let seq = 1;
  try {
    if (tls) {
      socket.write(encodePacket(seq++, encodeSslRequest(fixed)));
      // Bytes after the greeting and before the TLS handshake would be injected in plaintext.
      if (reader.buffered > 0) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'upstream sent unencrypted data before the TLS handshake');
      reader.detach();
      socket = await upgradeUpstream(g.raw, ep.host, ep.port, ep.tls, signal);
      reader = new PacketReader(socket, 'upstream');
    }
    const opts = authOptions(ep, cred, tls);
    const user = requireField(cred, 'username', ep.target).reveal();
    const exchange = startExchange(up.authPlugin, opts);
    const response = encodeHandshakeResponse({
      ...fixed,
      user,
      authResponse: exchange.start(up.scramble),
      database: params.database,
      authPlugin: exchange.plugin,
      attributes: has(capabilities, Cap.CONNECT_ATTRS) ? params.attributes : undefined,
    });
    socket.write(encodePacket(seq, response));
    const ok = await authLoop(socket, reader, exchange, opts, seq, cred, signal);
    return { socket, raw: g.raw, greeting: up, capabilities, tls, ok: ok.payload, leftover: reader.detach() };
  } catch (err) {
    reader.detach();
    socket.destroy();
    g.raw.destroy();
    throw err;
  }
}

/** What COM_CHANGE_USER carries besides the credential. */
export interface ChangeUserParams {
  database: string;
  charset: number | undefined;
  attributes: Buffer | undefined;
}

/**
 * Re-authenticate an open session as the credential's user (the session state resets, the
 * connection id stays). On ERR the server keeps the connection, unauthenticated until the next
 * COM_CHANGE_USER; the error is thrown as for a login. Must be called while upstream is quiet.
 */
export async function changeUser(s: UpstreamSession, ep: UpstreamEndpoint, params: ChangeUserParams, cred: Credential, signal: AbortSignal): Promise<Buffer> {
  const reader = new PacketReader(s.socket, 'upstream', s.leftover);
  s.leftover = Buffer.alloc(0);
  try {
    const opts = authOptions(ep, cred, s.tls);
    const exchange = startExchange(s.greeting.authPlugin, opts);
    const payload = encodeChangeUser(
      {
        user: requireField(cred, 'username', ep.target).reveal(),
        authResponse: exchange.start(s.greeting.scramble),
        database: params.database,
        charset: params.charset ?? s.greeting.charset,
        authPlugin: exchange.plugin,
        attributes: params.attributes,
      },
      s.capabilities,
    );
    s.socket.write(encodePacket(0, payload));
    const ok = await authLoop(s.socket, reader, exchange, opts, 0, cred, signal);
    return ok.payload;
  } finally {
    s.leftover = reader.detach();
  }
}

function authOptions(ep: UpstreamEndpoint, cred: Credential, secure: boolean): AuthOptions {
  return {
    password: optionalField(cred, 'password'),
    secure,
    serverPublicKey: ep.serverPublicKey,
    fetchServerPublicKey: ep.fetchServerPublicKey,
  };
}

/** Open with upstream's default plugin when Keyless speaks it; otherwise native, and upstream switches. */
function startExchange(plugin: string | undefined, opts: AuthOptions): AuthExchange {
  return (plugin !== undefined && plugin !== Plugin.CLEAR ? createAuth(plugin, opts) : undefined) ?? createAuth(Plugin.NATIVE, opts)!;
}

/** Answer upstream until it says OK or ERR. `sent` is the sequence id of the packet just written. */
async function authLoop(
  socket: Socket | TLSSocket,
  reader: PacketReader,
  first: AuthExchange,
  opts: AuthOptions,
  sent: number,
  cred: Credential,
  signal: AbortSignal,
): Promise<Packet> {
  let exchange = first;
  let expected = (sent + 1) & 0xff;
  for (let round = 0; ; round++) {
    if (round > 16) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'upstream authentication did not finish after 16 rounds');
    const p = await reader.read(MAX_UPSTREAM_HANDSHAKE_PACKET, signal);
    if (p.seq !== expected) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `upstream packet out of order during authentication: sequence id ${p.seq}, expected ${expected}`);
    const reply = (payload: Buffer): void => {
      const seq = nextSeq(p);
      socket.write(encodePacket(seq, payload));
      expected = (seq + 1) & 0xff;
    };
    switch (p.payload[0]) {
      case Marker.OK:
        return p;
      case Marker.ERR:
        throw rejection(decodeOrProtocol(() => decodeErr(p.payload)), cred);
      case Marker.AUTH_SWITCH: {
        const sw = decodeOrProtocol(() => decodeAuthSwitch(p.payload));
        const next = createAuth(sw.plugin, opts);
        if (!next) {
          throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', `upstream asked for auth plugin ${JSON.stringify(sw.plugin)}; Keyless speaks ${SUPPORTED_PLUGINS.join(', ')}`);
        }
        exchange = next;
        reply(exchange.start(sw.data));
        break;
      }
      case Marker.MORE_DATA: {
        const out = exchange.more(p.payload.subarray(1));
        if (out) reply(out);
        else expected = nextSeq(p);
        break;
      }
      case Marker.NEXT_FACTOR:
        throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', 'upstream asked for a further authentication factor; Keyless supports single-factor accounts');
      default:
        throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `unexpected upstream packet 0x${(p.payload[0] ?? 0).toString(16)} during authentication`);
    }
  }
}

function rejection(e: ErrPacket, cred: Credential): KeylessError {
  const server = { ...e, message: scrub(e.message, cred) };
  if (CREDENTIAL_REJECTED.has(e.code)) {
    return new KeylessError('KL_ERR_UPSTREAM_AUTH', `upstream rejected the credential: ${server.code} (${server.sqlState}) ${server.message}`, { upstream: { code: String(e.code) } });
  }
  return new UpstreamServerError(`upstream refused the login: ${server.code} (${server.sqlState}) ${server.message}`, server);
}

/** Upstream's text quotes the user name (and could echo anything): never pass the credential on. */
export function scrub(text: string, cred: Credential): string {
  let out = text;
  for (const field of ['password', 'username']) {
    const v = optionalField(cred, field)?.reveal();
    if (v && v.length >= 3) out = out.split(v).join('[redacted]');
  }
  return out;
}

function decodeOrProtocol<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WireError) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `malformed upstream packet: ${err.message}`, { cause: err });
    throw err;
  }
}

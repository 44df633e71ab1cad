// Keyless as the client of the real database: dial, negotiate TLS, start up and authenticate
// with the stored credential, and collect what the client must be told (ParameterStatus,
// notices, transaction status).
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { serialize, type DatabaseError } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { TlsMode } from '../../config/schema.ts';
import { optionalField } from '../../credentials/fields.ts';
import type { Credential } from '../../credentials/types.ts';
import { KeylessError } from '../../errors.ts';
import { md5PasswordResponse } from './auth/md5.ts';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramClient, ScramError, tlsServerEndPoint } from './auth/scram.ts';
import { tcpConnect, upgradeUpstream } from '../../proxy/transport.ts';
import { PacketReader } from './reader.ts';
import { Backend, MAX_HANDSHAKE_MESSAGE, SSL_REQUEST, encodeStartup } from './wire.ts';

export interface UpstreamEndpoint {
  host: string;
  port: number;
  tls: { mode: TlsMode; ca?: Buffer; servername?: string };
}

export interface UpstreamSession {
  /** The socket to relay on (TLS when negotiated). */
  socket: Socket | TLSSocket;
  /** The TCP socket underneath, for byte counts. */
  raw: Socket;
  parameters: [string, string][];
  /** Upstream's cancel key, kept by Keyless and never shown to the client. */
  backendKey: { processId: number; secretKey: Buffer } | undefined;
  /** NoticeResponse frames upstream sent during startup, to pass on. */
  notices: Buffer[];
  status: 'I' | 'T' | 'E';
  /** How upstream authenticated us: trust, password, md5, SCRAM-SHA-256, SCRAM-SHA-256-PLUS (plus +cert). */
  auth: string;
  /** Bytes upstream sent after ReadyForQuery (none in practice); the relay sends them first. */
  leftover: Buffer;
}

/** SQLSTATEs that mean "the credential was not accepted": invalidate and retry once. */
const AUTH_REJECTED = new Set(['28P01', '28000']);

/** TCP connect and, unless disabled, TLS by SSLRequest. Used for sessions and cancel requests. */
export async function dial(ep: UpstreamEndpoint, signal: AbortSignal, clientCert?: { cert: string; key: string }): Promise<{ socket: Socket | TLSSocket; raw: Socket; reader: PacketReader }> {
  const raw = await tcpConnect(ep.host, ep.port, signal);
  let reader = new PacketReader(raw, 'upstream');
  if (ep.tls.mode === 'disable') return { socket: raw, raw, reader };
  try {
    raw.write(SSL_REQUEST);
    const answer = await reader.byte(signal);
    if (answer !== 0x53 /* S */) {
      throw new KeylessError('KL_ERR_UPSTREAM_TLS', `upstream ${ep.host}:${ep.port} does not accept TLS (answered ${JSON.stringify(String.fromCharCode(answer))}) and tls.mode is ${ep.tls.mode}`);
    }
    // Bytes after 'S' and before the TLS handshake would be injected in plaintext (CVE-2021-23222).
    if (reader.buffered > 0) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'upstream sent unencrypted data after accepting TLS');
    reader.detach();
    const socket = await upgradeUpstream(raw, ep.host, ep.port, ep.tls, signal, clientCert);
    reader = new PacketReader(socket, 'upstream');
    return { socket, raw, reader };
  } catch (err) {
    raw.destroy();
    throw err;
  }
}

/**
 * Open an authenticated session as the credential's user. Rejected credentials surface as
 * KL_ERR_UPSTREAM_AUTH so the caller can refetch and retry once.
 */
export async function openSession(
  ep: UpstreamEndpoint,
  startup: ReadonlyMap<string, string>,
  cred: Credential,
  signal: AbortSignal,
): Promise<UpstreamSession> {
  const tlsCert = optionalField(cred, 'tls_cert');
  const tlsKey = optionalField(cred, 'tls_key');
  if ((tlsCert || tlsKey) && ep.tls.mode === 'disable') {
    throw new KeylessError('KL_ERR_CREDENTIAL_INVALID', 'credential has a client certificate but upstream tls.mode is disable');
  }
  const clientCert = tlsCert && tlsKey ? { cert: tlsCert.reveal(), key: tlsKey.reveal() } : undefined;
  const { socket, raw, reader } = await dial(ep, signal, clientCert);
  try {
    socket.write(encodeStartup(startup));
    const session = await authenticate(socket, reader, cred, signal);
    const auth = clientCert && session.auth === 'trust' ? 'cert' : session.auth;
    return { ...session, auth, socket, raw, leftover: reader.detach() };
  } catch (err) {
    socket.destroy();
    raw.destroy();
    throw err;
  }
}

async function authenticate(
  socket: Socket | TLSSocket,
  reader: PacketReader,
  cred: Credential,
  signal: AbortSignal,
): Promise<Omit<UpstreamSession, 'socket' | 'raw' | 'leftover'>> {
  const parser = new Parser();
  const parameters: [string, string][] = [];
  const notices: Buffer[] = [];
  let backendKey: UpstreamSession['backendKey'];
  let scram: ScramClient | undefined;
  let scramVerified = false;
  let auth = 'trust';
  const password = (): string => {
    const p = optionalField(cred, 'password');
    if (!p) throw new KeylessError('KL_ERR_CREDENTIAL_INVALID', `upstream asked for a password and credential ${cred.ref.store}:${cred.ref.path} has none`);
    return p.reveal();
  };
  const username = optionalField(cred, 'username')?.reveal() ?? '';

  for (;;) {
    const { type, frame } = await reader.message(MAX_HANDSHAKE_MESSAGE, signal);
    if (type === Backend.NegotiateProtocolVersion) continue; // we asked for 3.0 with no options; nothing to adjust
    if (type === Backend.NoticeResponse) {
      notices.push(Buffer.from(frame));
      continue;
    }
    const msg = decode(parser, frame);
    switch (msg.name) {
      case 'authenticationOk':
        if (scram && !scramVerified) throw new KeylessError('KL_ERR_UPSTREAM_AUTH', 'upstream skipped the SCRAM server signature');
        break;
      case 'authenticationCleartextPassword':
        auth = 'password';
        socket.write(serialize.password(password()));
        break;
      case 'authenticationMD5Password':
        auth = 'md5';
        socket.write(serialize.password(md5PasswordResponse(username, password(), (msg as unknown as { salt: Buffer }).salt)));
        break;
      case 'authenticationSASL': {
        const mechanisms = (msg as unknown as { mechanisms: string[] }).mechanisms;
        const tls = 'getPeerX509Certificate' in socket;
        const cert = tls ? (socket as TLSSocket).getPeerX509Certificate() : undefined;
        const cb = cert ? tlsServerEndPoint(cert) : undefined;
        if (cb && mechanisms.includes(SCRAM_SHA_256_PLUS)) {
          scram = new ScramClient(password(), { mechanism: SCRAM_SHA_256_PLUS, channelBinding: cb });
        } else if (mechanisms.includes(SCRAM_SHA_256)) {
          scram = new ScramClient(password(), { mechanism: SCRAM_SHA_256, clientSupportsBinding: cb !== undefined });
        } else {
          throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', `upstream offered SASL mechanisms ${mechanisms.join(', ')}; Keyless speaks ${SCRAM_SHA_256}(-PLUS)`);
        }
        auth = scram.mechanism;
        socket.write(serialize.sendSASLInitialResponseMessage(scram.mechanism, scram.clientFirst()));
        break;
      }
      case 'authenticationSASLContinue': {
        if (!scram) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'SASLContinue before SASL started');
        const data = (msg as unknown as { data: string }).data;
        socket.write(serialize.sendSCRAMClientFinalMessage(await scramStep(() => scram!.clientFinal(data))));
        break;
      }
      case 'authenticationSASLFinal': {
        if (!scram) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'SASLFinal before SASL started');
        const data = (msg as unknown as { data: string }).data;
        await scramStep(async () => scram!.verifyServerFinal(data));
        scramVerified = true;
        break;
      }
      case 'parameterStatus': {
        const p = msg as unknown as { parameterName: string; parameterValue: string };
        parameters.push([p.parameterName, p.parameterValue]);
        break;
      }
      case 'backendKeyData': {
        // pg-protocol reads a 4-byte key; take the raw bytes so longer (3.2) keys survive.
        backendKey = { processId: frame.readUInt32BE(5), secretKey: Buffer.from(frame.subarray(9)) };
        break;
      }
      case 'readyForQuery': {
        const status = (msg as unknown as { status: string }).status;
        return { parameters, notices, backendKey, auth, status: status === 'T' || status === 'E' ? status : 'I' };
      }
      case 'error':
        throw upstreamError(msg as unknown as DatabaseError);
      default:
        throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `unexpected upstream message ${msg.name} during login`);
    }
  }
}

function decode(parser: Parser, frame: Buffer): BackendMessage {
  let out: BackendMessage | undefined;
  try {
    parser.parse(frame, (m) => {
      out = m;
    });
  } catch (err) {
    // pg-protocol throws on authentication types it does not know (GSS, SSPI, Kerberos).
    if (frame[0] === Backend.Authentication && frame.length >= 9) {
      throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', `upstream asked for authentication type ${frame.readUInt32BE(5)} (GSSAPI/SSPI are not supported)`, { cause: err });
    }
    throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', `cannot parse upstream message: ${(err as Error).message}`, { cause: err });
  }
  if (!out) throw new KeylessError('KL_ERR_UPSTREAM_PROTOCOL', 'incomplete upstream message');
  return out;
}

async function scramStep<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScramError) throw new KeylessError('KL_ERR_UPSTREAM_AUTH', `SCRAM with upstream failed: ${err.message}`, { cause: err });
    throw err;
  }
}

function upstreamError(e: DatabaseError): KeylessError {
  const code = e.code ?? 'XX000';
  if (AUTH_REJECTED.has(code)) {
    // Upstream's text names the user; keep it for the log, show the client only our own text.
    return new KeylessError('KL_ERR_UPSTREAM_AUTH', `upstream rejected the credential: ${code} ${e.message}`, { upstream: { code } });
  }
  return new KeylessError('KL_ERR_UPSTREAM_ERROR', `upstream refused the login: ${code} ${e.message}`, { upstream: { code, message: e.message } });
}

// TCP connect and TLS both ways, with abort signals, for every protocol (the protocol decides
// when: after its SSLRequest or equivalent). Upstream TLS follows the target's mode:
// `require` encrypts without verifying, `verify-ca` checks the chain, `verify-full` the chain and
// the name (an IP host against the certificate's IP SANs). SNI is sent for names only (RFC 6066).
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { TLSSocket, checkServerIdentity, connect as tlsConnect, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { TlsMode } from '../config/schema.ts';
import { KeylessError } from '../errors.ts';

export interface UpstreamTls {
  mode: TlsMode;
  ca?: Buffer;
  servername?: string;
}

function abortError(signal: AbortSignal, host: string, port: number): Error {
  const r: unknown = signal.reason;
  if (r instanceof KeylessError) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', `upstream ${host}:${port} did not answer in time`, { cause: r });
  return r instanceof Error ? r : new Error(String(r));
}

export function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal, host, port));
    const s = netConnect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
    const onAbort = (): void => {
      s.destroy();
      reject(abortError(signal, host, port));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(new KeylessError('KL_ERR_UPSTREAM_UNREACHABLE', `cannot connect to upstream ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

export function upgradeUpstream(
  raw: Socket,
  host: string,
  port: number,
  tls: UpstreamTls,
  signal: AbortSignal,
  clientCert?: { cert: string; key: string },
): Promise<TLSSocket> {
  const name = tls.servername ?? host;
  const opts: ConnectionOptions = {
    socket: raw,
    servername: isIP(name) ? undefined : name,
    ca: tls.ca,
    rejectUnauthorized: tls.mode !== 'require',
    minVersion: 'TLSv1.2',
  };
  if (tls.mode === 'verify-ca') opts.checkServerIdentity = () => undefined;
  else if (tls.mode === 'verify-full') opts.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
  if (clientCert) {
    opts.cert = clientCert.cert;
    opts.key = clientCert.key;
  }
  return new Promise((resolve, reject) => {
    const s = tlsConnect(opts);
    const onAbort = (): void => {
      s.destroy();
      reject(abortError(signal, host, port));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      reject(new KeylessError('KL_ERR_UPSTREAM_TLS', `TLS to upstream ${host}:${port} (mode ${tls.mode}) failed: ${err.code ?? ''} ${err.message}`.trim(), { cause: err }));
    });
  });
}

/** Server-side TLS on a client socket that asked for it (SSLRequest or the protocol's equivalent). */
export function acceptTls(client: Socket, context: SecureContext | undefined, signal: AbortSignal, alpn?: string[]): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = new TLSSocket(client, { isServer: true, secureContext: context, ALPNProtocols: alpn });
    const onAbort = (): void => {
      s.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('secure', () => {
      signal.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err: Error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new KeylessError('KL_ERR_PROTOCOL', `client TLS handshake failed: ${err.message}`, { cause: err }));
    });
  });
}

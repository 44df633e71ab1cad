// The one place a KeylessError becomes what an HTTP client sees: a status and a short
// application/problem+json body (RFC 9457) naming the target. Only our own safe text, never the
// internal message, never a secret.
import type { ServerResponse } from 'node:http';
import { KeylessError, type ErrorCode } from '../../errors.ts';

const STATUS: Record<ErrorCode, { status: number; title: string }> = {
  KL_ERR_CONFIG: { status: 500, title: 'proxy misconfigured' },
  KL_ERR_POLICY_DENIED: { status: 403, title: 'client not allowed for this target' },
  KL_ERR_UNKNOWN_TARGET: { status: 403, title: 'no target owns this host' },
  KL_ERR_PROTOCOL: { status: 400, title: 'bad request' },
  KL_ERR_CLIENT_CLOSED: { status: 499, title: 'client closed the request' },
  KL_ERR_PACKET_TOO_LARGE: { status: 413, title: 'request body too large' },
  KL_ERR_HANDSHAKE_TIMEOUT: { status: 408, title: 'request timed out' },
  KL_ERR_UNSUPPORTED: { status: 405, title: 'unsupported request' },
  KL_ERR_STORE_UNAVAILABLE: { status: 503, title: 'credential store unavailable' },
  KL_ERR_STORE_DENIED: { status: 503, title: 'credential store denied access' },
  KL_ERR_STORE_REFUSED: { status: 503, title: 'credential store refused the request' },
  KL_ERR_CREDENTIAL_NOT_FOUND: { status: 503, title: 'credential not found in store' },
  KL_ERR_CREDENTIAL_INVALID: { status: 503, title: 'stored credential is incomplete' },
  KL_ERR_UPSTREAM_UNREACHABLE: { status: 502, title: 'upstream unreachable' },
  KL_ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'upstream timed out' },
  KL_ERR_UPSTREAM_TLS: { status: 502, title: 'upstream TLS verification failed' },
  KL_ERR_UPSTREAM_AUTH: { status: 502, title: 'upstream refused the stored credential' },
  KL_ERR_UPSTREAM_AUTH_METHOD: { status: 502, title: 'upstream asked for an authentication method Keyless does not support' },
  KL_ERR_UPSTREAM_PROTOCOL: { status: 502, title: 'upstream protocol error' },
  KL_ERR_UPSTREAM_ERROR: { status: 502, title: 'upstream error' },
  KL_ERR_UPSTREAM_CLOSED: { status: 502, title: 'upstream closed the connection' },
  KL_ERR_SHUTTING_DOWN: { status: 503, title: 'proxy is shutting down' },
  KL_ERR_TARGET_RECONFIGURED: { status: 503, title: 'target was reconfigured or removed; retry' },
  KL_ERR_IDLE_TIMEOUT: { status: 408, title: 'connection closed after the idle timeout' },
  KL_ERR_TOO_MANY_CONNECTIONS: { status: 503, title: 'too many connections' },
};

/** An error with an HTTP status other than its code's (421 for a connection bound elsewhere). */
export class HttpStatusError extends KeylessError {
  readonly status: number;
  constructor(status: number, code: ErrorCode, message: string, clientDetail?: string) {
    super(code, message, clientDetail === undefined ? undefined : { clientDetail });
    this.status = status;
  }
}

export function statusOf(err: KeylessError): number {
  return err instanceof HttpStatusError ? err.status : STATUS[err.code].status;
}

export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function toProblem(err: KeylessError, target: string | undefined): Problem {
  const status = statusOf(err);
  const { title } = STATUS[err.code];
  const detail = `keyless: ${target ? `target ${target}: ` : ''}${err.clientDetail ? `${title} ${err.clientDetail}` : title}`;
  const body = JSON.stringify({ type: `urn:keyless:error:${err.code}`, title, status, detail, code: err.code, ...(target ? { target } : {}) });
  return {
    status,
    headers: { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' },
    body,
  };
}

/** Answer with the problem if nothing was sent yet; otherwise cut the response off (it is already wrong). */
export function sendProblem(res: ServerResponse, err: KeylessError, target: string | undefined, opts: { close?: boolean } = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const p = toProblem(err, target);
  if (opts.close) res.shouldKeepAlive = false;
  res.writeHead(p.status, p.headers);
  res.end(p.body);
}

// Upstream connections: one undici Agent per target (keep-alive pools per origin, HTTP/2 by ALPN,
// verified TLS), and the mapping from undici and socket errors to Keyless error codes.
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import type { HttpTargetConfig } from '../../config/schema.ts';
import { KeylessError } from '../../errors.ts';

export function createAgent(name: string, cfg: HttpTargetConfig): Agent {
  const tls = cfg.upstream.tls;
  let ca: Buffer | undefined;
  if (tls.ca) {
    try {
      ca = readFileSync(tls.ca);
    } catch (err) {
      throw new KeylessError('KL_ERR_CONFIG', `targets.${name}.upstream.tls.ca: cannot read ${tls.ca}: ${(err as Error).message}`, { cause: err });
    }
  }
  return new Agent({
    allowH2: cfg.upstream.http2 && tls.mode !== 'disable',
    headersTimeout: cfg.timeouts.response,
    bodyTimeout: cfg.timeouts.body,
    keepAliveTimeout: 30_000,
    connections: null,
    pipelining: 1,
    connect: {
      timeout: cfg.timeouts.connect,
      ...(ca ? { ca } : {}),
      ...(tls.servername ? { servername: tls.servername } : {}),
      rejectUnauthorized: tls.mode === 'verify-full' || tls.mode === 'verify-ca',
      // verify-ca: the chain must verify, the name need not match.
      ...(tls.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    },
  });
}

const TIMEOUT = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
const CLOSED = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Classify an error from dispatching a request upstream. */
export function upstreamError(err: unknown, target: string, origin: string): KeylessError {
  if (err instanceof KeylessError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const causeCode = ((err as Error)?.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
  const msg = `target ${target}: ${origin}: ${code || causeCode || 'error'}: ${(err as Error)?.message ?? String(err)}`;
  if (TIMEOUT.has(code)) return new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', msg, { cause: err });
  if (UNREACHABLE.has(code) || UNREACHABLE.has(causeCode)) return new KeylessError('KL_ERR_UPSTREAM_UNREACHABLE', msg, { cause: err });
  if (isTlsError(code) || isTlsError(causeCode)) return new KeylessError('KL_ERR_UPSTREAM_TLS', msg, { cause: err });
  if (CLOSED.has(code) || CLOSED.has(causeCode)) return new KeylessError('KL_ERR_UPSTREAM_CLOSED', msg, { cause: err });
  return new KeylessError('KL_ERR_UPSTREAM_ERROR', msg, { cause: err });
}

function isTlsError(code: string): boolean {
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|LEAF_SIGNATURE/.test(code);
}

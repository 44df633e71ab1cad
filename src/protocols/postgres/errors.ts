// The one place a KeylessError becomes what a PostgreSQL client sees: an ErrorResponse with a
// SQLSTATE and our safe client text. Never the internal message, never a secret.
import type { ErrorCode, KeylessError } from '../../errors.ts';
import { encodeErrorResponse } from './wire.ts';

const SQLSTATE: Record<ErrorCode, string> = {
  KL_ERR_CONFIG: '08001',
  KL_ERR_POLICY_DENIED: '28000', // invalid_authorization_specification
  KL_ERR_UNKNOWN_TARGET: '3D000', // invalid_catalog_name
  KL_ERR_PROTOCOL: '08P01', // protocol_violation
  KL_ERR_CLIENT_CLOSED: '08006',
  KL_ERR_PACKET_TOO_LARGE: '08P01',
  KL_ERR_HANDSHAKE_TIMEOUT: '08P01',
  KL_ERR_UNSUPPORTED: '0A000', // feature_not_supported
  KL_ERR_STORE_UNAVAILABLE: '08001', // sqlclient_unable_to_establish_sqlconnection
  KL_ERR_STORE_DENIED: '08001',
  KL_ERR_STORE_REFUSED: '08001',
  KL_ERR_CREDENTIAL_NOT_FOUND: '08001',
  KL_ERR_CREDENTIAL_INVALID: '08001',
  KL_ERR_UPSTREAM_UNREACHABLE: '08001',
  KL_ERR_UPSTREAM_TIMEOUT: '08001',
  KL_ERR_UPSTREAM_TLS: '08001',
  KL_ERR_UPSTREAM_AUTH: '28P01', // invalid_password: the stored one
  KL_ERR_UPSTREAM_AUTH_METHOD: '28000',
  KL_ERR_UPSTREAM_PROTOCOL: '08P01',
  KL_ERR_UPSTREAM_ERROR: '08006',
  KL_ERR_UPSTREAM_CLOSED: '08006', // connection_failure
  KL_ERR_SHUTTING_DOWN: '57P01', // admin_shutdown
  KL_ERR_TARGET_RECONFIGURED: '57P01',
  KL_ERR_IDLE_TIMEOUT: '57P05', // idle_session_timeout
  KL_ERR_TOO_MANY_CONNECTIONS: '53300', // too_many_connections
};

export function sqlstateOf(code: ErrorCode): string {
  return SQLSTATE[code];
}

export function toErrorResponse(err: KeylessError, target: string | undefined): Buffer {
  const prefix = target ? `keyless: target ${target}: ` : 'keyless: ';
  // Errors the upstream raised for the login (no such database, too many connections…) pass on
  // with upstream's SQLSTATE and text; auth rejections keep only our own text.
  if (err.code === 'KL_ERR_UPSTREAM_ERROR' && err.upstream?.code) {
    return encodeErrorResponse({ severity: 'FATAL', code: err.upstream.code, message: `${prefix}upstream: ${err.upstream.message ?? 'error'}` });
  }
  // A rejected credential keeps upstream's class (28P01 bad password, 28000 no pg_hba entry).
  const code = err.code === 'KL_ERR_UPSTREAM_AUTH' && err.upstream?.code ? err.upstream.code : SQLSTATE[err.code];
  return encodeErrorResponse({ severity: 'FATAL', code, message: prefix + err.clientMessage });
}

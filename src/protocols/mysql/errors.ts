// The one place a KeylessError becomes what a MySQL client sees: an ERR packet with a MySQL error
// number, a SQLSTATE and `keyless: target X: <safe client text>`. Never the internal message,
// never a secret.
import { KeylessError, type ErrorCode } from '../../errors.ts';
import { encodeErr, type ErrPacket } from './wire.ts';

/**
 * An ERR packet upstream sent during the login (or COM_CHANGE_USER) that the client should see
 * with upstream's own number and SQLSTATE. `server.message` is already scrubbed of the
 * credential's user name and password.
 */
export class UpstreamServerError extends KeylessError {
  readonly server: ErrPacket;
  constructor(message: string, server: ErrPacket) {
    super('KL_ERR_UPSTREAM_ERROR', message, { upstream: { code: String(server.code), message: server.message } });
    this.server = server;
  }
}

/**
 * Error number and SQLSTATE per Keyless code, chosen so drivers classify them the usual way.
 * Only server error numbers: Connector/C takes a client-range number (2000–2999, CR_*) in an ERR
 * packet for a malformed packet. A code missing here (added to the registry later) is sent as
 * ER_UNKNOWN_ERROR; a unit test lists the missing ones.
 */
export const MYSQL_ERROR: Partial<Record<ErrorCode, { code: number; sqlState: string }>> = {
  KL_ERR_CONFIG: { code: 1105, sqlState: 'HY000' }, // ER_UNKNOWN_ERROR
  KL_ERR_POLICY_DENIED: { code: 1130, sqlState: 'HY000' }, // ER_HOST_NOT_PRIVILEGED
  KL_ERR_UNKNOWN_TARGET: { code: 1049, sqlState: '42000' }, // ER_BAD_DB_ERROR
  KL_ERR_PROTOCOL: { code: 1043, sqlState: '08S01' }, // ER_HANDSHAKE_ERROR
  KL_ERR_CLIENT_CLOSED: { code: 1158, sqlState: '08S01' }, // ER_NET_READ_ERROR
  KL_ERR_PACKET_TOO_LARGE: { code: 1153, sqlState: '08S01' }, // ER_NET_PACKET_TOO_LARGE
  KL_ERR_HANDSHAKE_TIMEOUT: { code: 1159, sqlState: '08S01' }, // ER_NET_READ_INTERRUPTED
  KL_ERR_UNSUPPORTED: { code: 1235, sqlState: '42000' }, // ER_NOT_SUPPORTED_YET
  KL_ERR_STORE_UNAVAILABLE: { code: 1105, sqlState: '08001' },
  KL_ERR_STORE_DENIED: { code: 1105, sqlState: '08001' },
  KL_ERR_STORE_REFUSED: { code: 1105, sqlState: '08001' },
  KL_ERR_CREDENTIAL_NOT_FOUND: { code: 1105, sqlState: '08001' },
  KL_ERR_CREDENTIAL_INVALID: { code: 1105, sqlState: '08001' },
  KL_ERR_UPSTREAM_UNREACHABLE: { code: 1429, sqlState: '08001' }, // ER_CONNECT_TO_FOREIGN_DATA_SOURCE
  KL_ERR_UPSTREAM_TIMEOUT: { code: 1429, sqlState: '08001' },
  KL_ERR_UPSTREAM_TLS: { code: 1429, sqlState: '08001' },
  KL_ERR_UPSTREAM_AUTH: { code: 1045, sqlState: '28000' }, // ER_ACCESS_DENIED_ERROR (of the stored credential)
  KL_ERR_UPSTREAM_AUTH_METHOD: { code: 1251, sqlState: '08004' }, // ER_NOT_SUPPORTED_AUTH_MODE
  KL_ERR_UPSTREAM_PROTOCOL: { code: 1835, sqlState: '08S01' }, // ER_MALFORMED_PACKET
  KL_ERR_UPSTREAM_ERROR: { code: 1105, sqlState: 'HY000' },
  KL_ERR_UPSTREAM_CLOSED: { code: 1158, sqlState: '08S01' }, // ER_NET_READ_ERROR
  KL_ERR_SHUTTING_DOWN: { code: 1053, sqlState: '08S01' }, // ER_SERVER_SHUTDOWN
  KL_ERR_TARGET_RECONFIGURED: { code: 1053, sqlState: '08S01' },
  KL_ERR_IDLE_TIMEOUT: { code: 4031, sqlState: 'HY000' }, // ER_CLIENT_INTERACTION_TIMEOUT
  KL_ERR_TOO_MANY_CONNECTIONS: { code: 1040, sqlState: '08004' }, // ER_CON_COUNT_ERROR
};

const UNKNOWN = { code: 1105, sqlState: 'HY000' }; // ER_UNKNOWN_ERROR

export function mysqlErrorOf(code: ErrorCode): { code: number; sqlState: string } {
  return MYSQL_ERROR[code] ?? UNKNOWN;
}

/**
 * The ERR payload for a failure. `withSqlState` is false before the client said it speaks
 * protocol 4.1 (an error in place of the greeting), as a real server does. Upstream errors
 * raised for the login (unknown database, too many connections…) keep upstream's number,
 * SQLSTATE and text, which the caller has already scrubbed of the credential.
 */
export function toErrPacket(err: KeylessError, target: string | undefined, withSqlState: boolean): Buffer {
  const prefix = target ? `keyless: target ${target}: ` : 'keyless: ';
  const e: ErrPacket =
    err instanceof UpstreamServerError
      ? { code: err.server.code, sqlState: err.server.sqlState || 'HY000', message: `${prefix}upstream: ${err.server.message}` }
      : { ...mysqlErrorOf(err.code), message: prefix + err.clientMessage };
  return encodeErr(e, withSqlState);
}

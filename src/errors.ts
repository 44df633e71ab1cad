// One registry of error codes (fastify style). `client` is the only text a client ever sees,
// prefixed by the target name; `message` (internal) goes to logs and may name paths and hosts,
// never secret values.
export const ERROR_CODES = {
  KL_ERR_CONFIG: { client: 'invalid configuration' },
  KL_ERR_POLICY_DENIED: { client: 'client not allowed for this target' },
  KL_ERR_UNKNOWN_TARGET: { client: 'no such database' },
  KL_ERR_PROTOCOL: { client: 'protocol violation' },
  KL_ERR_CLIENT_CLOSED: { client: 'client closed the connection' },
  KL_ERR_PACKET_TOO_LARGE: { client: 'packet too large' },
  KL_ERR_HANDSHAKE_TIMEOUT: { client: 'handshake timed out' },
  KL_ERR_UNSUPPORTED: { client: 'unsupported request' },
  KL_ERR_STORE_UNAVAILABLE: { client: 'credential store unavailable' },
  KL_ERR_STORE_DENIED: { client: 'credential store denied access' },
  KL_ERR_STORE_REFUSED: { client: 'credential store refused the request' },
  KL_ERR_CREDENTIAL_NOT_FOUND: { client: 'credential not found in store' },
  KL_ERR_CREDENTIAL_INVALID: { client: 'stored credential is incomplete' },
  KL_ERR_UPSTREAM_UNREACHABLE: { client: 'upstream unreachable' },
  KL_ERR_UPSTREAM_TIMEOUT: { client: 'upstream timed out' },
  KL_ERR_UPSTREAM_TLS: { client: 'upstream TLS verification failed' },
  KL_ERR_UPSTREAM_AUTH: { client: 'upstream refused the stored credential' },
  KL_ERR_UPSTREAM_AUTH_METHOD: { client: 'upstream asked for an authentication method Keyless does not support' },
  KL_ERR_UPSTREAM_PROTOCOL: { client: 'upstream protocol error' },
  KL_ERR_UPSTREAM_ERROR: { client: 'upstream error' },
  KL_ERR_UPSTREAM_CLOSED: { client: 'upstream closed the connection during the handshake' },
  KL_ERR_SHUTTING_DOWN: { client: 'proxy is shutting down' },
  KL_ERR_TARGET_RECONFIGURED: { client: 'target was reconfigured or removed; reconnect' },
  KL_ERR_IDLE_TIMEOUT: { client: 'connection closed after the idle timeout' },
  KL_ERR_TOO_MANY_CONNECTIONS: { client: 'too many connections' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class KeylessError extends Error {
  readonly code: ErrorCode;
  /** Set when the upstream itself answered with an error the client should see as-is (e.g. a SQLSTATE). */
  readonly upstream: { code?: string; message?: string } | undefined;
  /** Safe extra text for the client: only things the client itself sent (a database name). */
  readonly clientDetail: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; upstream?: { code?: string; message?: string }; clientDetail?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeylessError';
    this.code = code;
    this.upstream = options?.upstream;
    this.clientDetail = options?.clientDetail;
  }

  /** The text a client may see, without the target prefix. Never contains a secret. */
  get clientMessage(): string {
    const base = ERROR_CODES[this.code].client;
    return this.clientDetail ? `${base} ${this.clientDetail}` : base;
  }
}

/** Wrap anything thrown into a KeylessError, keeping KeylessErrors as they are. */
export function asKeylessError(err: unknown, fallback: ErrorCode, message: string): KeylessError {
  if (err instanceof KeylessError) return err;
  return new KeylessError(fallback, message, { cause: err });
}

import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

// Compiled once by pino; a field of these names is censored wherever it appears in a log object.
// Secret values are also wrapped in `Secret`, which serialises as [redacted] on its own.
const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'secret', '*.secret', 'secret_id', '*.secret_id',
  'api_key', '*.api_key', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'fields', '*.fields', 'credential.fields', 'key', '*.key', 'tls_key', '*.tls_key', 'client_secret', '*.client_secret',
];

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'keyless' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

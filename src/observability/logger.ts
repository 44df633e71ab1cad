import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

// A field of these names (any case, any depth) is censored wherever it appears in a log object.
// Secret values are also wrapped in `Secret`, which serialises as [redacted] on its own. Logging
// is off the relay's hot path, so walking the object costs nothing that matters.
const SENSITIVE = /^(password|passwd|token|client_token|secret|secret_id|api_key|apikey|authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-vault-token|fields|key|tls_key|private_key|client_secret|jwt|role_id)$/i;
const CENSOR = '[redacted]';
const MAX_DEPTH = 8;

function censor(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (value instanceof Error || seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => censor(v, depth + 1, seen));
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE.test(k) ? CENSOR : censor(v, depth + 1, seen);
  return out;
}

/** The log object with sensitive fields censored at any depth. */
export function redact(obj: Record<string, unknown>): Record<string, unknown> {
  return censor(obj, 0, new WeakSet()) as Record<string, unknown>;
}

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'keyless' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redact },
      // Errors are serialised first (with their causes), then walked like any other object.
      serializers: { err: (e: Error) => censor(pino.stdSerializers.err(e), 0, new WeakSet()) },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

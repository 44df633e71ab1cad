// An upstream that echoes the injected secret back (a debug header, a Location carrying the
// query) must not hand it to the app: every response header value is scrubbed of the values
// placed on the request.
import type { Headers } from './hop-by-hop.ts';

/** Shorter values are not scrubbed: they would match ordinary header text by chance. */
export const MIN_REDACT_LENGTH = 6;
const REDACTED = '[redacted]';

export function redactHeaders(h: Headers, secrets: readonly string[]): Headers {
  const list = secrets.filter((s) => s.length >= MIN_REDACT_LENGTH).sort((a, b) => b.length - a.length);
  if (list.length === 0) return h;
  for (const [k, v] of Object.entries(h)) {
    h[k] = Array.isArray(v) ? v.map((x) => scrub(x, list)) : scrub(v, list);
  }
  return h;
}

function scrub(value: string, secrets: readonly string[]): string {
  let out = value;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

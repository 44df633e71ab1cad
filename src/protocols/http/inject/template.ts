// `{{ field }}` templates over a credential's fields: "Bearer {{ api_key }}", "{{ username }}".
// Parsed once at startup; rendered at the point of use, so the value exists only in the outgoing
// request.
import { requireField } from '../../../credentials/fields.ts';
import type { Credential } from '../../../credentials/types.ts';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

export interface Template {
  readonly source: string;
  /** The credential fields the template reads. */
  readonly fields: readonly string[];
  /** Render with the credential; `used` collects every secret value placed into the result. */
  render(cred: Credential, target: string, used: string[]): string;
}

/** Is `source` a well-formed template (every `{{` closes on a field name)? */
export function isValidTemplate(source: string): boolean {
  const stripped = source.replace(PLACEHOLDER, '');
  return !stripped.includes('{{') && !stripped.includes('}}');
}

export function parseTemplate(source: string): Template {
  if (!isValidTemplate(source)) throw new Error(`malformed template: ${JSON.stringify(source)}`);
  const parts: (string | { field: string })[] = [];
  let last = 0;
  for (const m of source.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push(source.slice(last, m.index));
    parts.push({ field: m[1]! });
    last = m.index + m[0].length;
  }
  if (last < source.length) parts.push(source.slice(last));
  const fields = parts.filter((p): p is { field: string } => typeof p !== 'string').map((p) => p.field);
  return {
    source,
    fields,
    render(cred, target, used) {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') {
          out += p;
          continue;
        }
        const v = requireField(cred, p.field, target).reveal();
        used.push(v);
        out += v;
      }
      return out;
    },
  };
}

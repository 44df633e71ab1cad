import { KeylessError } from '../errors.ts';
import type { Secret } from './secret.ts';
import type { Credential } from './types.ts';

/** Renames store keys to canonical field names (`fields: { username: db-user }` in the config). */
export function mapFields(cred: Credential, mapping: Readonly<Record<string, string>> | undefined): Credential {
  if (!mapping) return cred;
  const fields = new Map(cred.fields);
  for (const [canonical, storeKey] of Object.entries(mapping)) {
    const v = cred.fields.get(storeKey);
    if (v) fields.set(canonical, v);
    else fields.delete(canonical);
  }
  return { ...cred, fields };
}

export function requireField(cred: Credential, field: string, target: string): Secret {
  const v = cred.fields.get(field);
  if (!v || v.length === 0) {
    throw new KeylessError(
      'KL_ERR_CREDENTIAL_INVALID',
      `target ${target}: credential ${cred.ref.store}:${cred.ref.path} (version ${cred.version}) has no "${field}" field`,
    );
  }
  return v;
}

export function optionalField(cred: Credential, field: string): Secret | undefined {
  const v = cred.fields.get(field);
  return v && v.length > 0 ? v : undefined;
}

// What handlers return, and the success envelope Vault wraps it in (keys in Go struct order).
import { uuid } from './random.ts';

/** The `auth` block of a login or renew-self response (Go struct order). */
export interface AuthBlock {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: string;
  orphan: boolean;
  mfa_requirement: null;
  num_uses: number;
}

export interface EnvelopeInit {
  data?: unknown;
  leaseId?: string;
  renewable?: boolean;
  leaseDuration?: number;
  auth?: AuthBlock | null;
  warnings?: string[];
  /** Defaults to the answering mount's type; raw responses (RespondWithStatusCode) use "". */
  mountType?: string;
}

export type Reply =
  | { kind: 'envelope'; status: number; envelope: EnvelopeInit }
  | { kind: 'empty'; status: 204 | 202 }
  | { kind: 'json'; status: number; body: unknown };

export function ok(envelope: EnvelopeInit): Reply {
  return { kind: 'envelope', status: 200, envelope };
}

/** A 404 that still carries a full envelope and no `errors` key (soft-deleted KV, invalid KV v2 paths). */
export function rawNotFound(envelope: EnvelopeInit): Reply {
  return { kind: 'envelope', status: 404, envelope: { mountType: '', ...envelope } };
}

export function noContent(): Reply {
  return { kind: 'empty', status: 204 };
}

export function accepted(): Reply {
  return { kind: 'empty', status: 202 };
}

export function json(status: number, body: unknown): Reply {
  return { kind: 'json', status, body };
}

/** Go's encoding/json writes map keys sorted; `data` is a map, so sort it recursively. */
export function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

export function buildEnvelope(e: EnvelopeInit, mountType: string, withMountType: boolean, extraWarnings: readonly string[]): Record<string, unknown> {
  const warnings = [...(e.warnings ?? []), ...extraWarnings];
  const body: Record<string, unknown> = {
    request_id: uuid(),
    lease_id: e.leaseId ?? '',
    renewable: e.renewable ?? false,
    lease_duration: e.leaseDuration ?? 0,
    data: e.data === undefined || e.data === null ? null : sortKeys(e.data),
    wrap_info: null,
    warnings: warnings.length > 0 ? warnings : null,
    auth: e.auth ?? null,
  };
  if (withMountType) body.mount_type = e.mountType ?? mountType;
  return body;
}

// RFC 9110 §7.6.1: headers that describe one connection, not the message. A proxy removes them,
// and every header named in Connection, before forwarding in either direction.
import type { IncomingHttpHeaders } from 'node:http';

export type Headers = Record<string, string | string[]>;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection', // non-standard, still sent by some clients
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Not hop-by-hop, but answered by this proxy itself (Node sends 100 Continue) and refused by undici.
  'expect',
  // HTTP/2 pseudo-headers never travel as fields.
  'http2-settings',
]);

function connectionTokens(v: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (v === undefined) return out;
  for (const line of Array.isArray(v) ? v : [v]) {
    for (const t of line.split(',')) {
      const n = t.trim().toLowerCase();
      if (n) out.add(n);
    }
  }
  return out;
}

/**
 * End-to-end headers of a client request, keys lower-cased, without Host (set for the upstream
 * by the caller). `keep` lists headers to pass even though hop-by-hop (the WebSocket handshake's
 * Upgrade is re-added by the upgrade path itself, so nothing needs this today).
 */
export function endToEndRequestHeaders(h: IncomingHttpHeaders): Headers {
  const named = connectionTokens(h.connection);
  const out: Headers = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k === 'host' || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

/** End-to-end headers of an upstream response (undici gives lower-cased keys). */
export function endToEndResponseHeaders(h: Record<string, string | string[] | undefined>): Headers {
  const named = connectionTokens(h.connection);
  const out: Headers = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name.toLowerCase());
}

/** Remove a header whatever its case (the app's copy of an injected header is replaced, never merged). */
export function deleteHeader(h: Headers, name: string): void {
  const lower = name.toLowerCase();
  for (const k of Object.keys(h)) if (k.toLowerCase() === lower) delete h[k];
}

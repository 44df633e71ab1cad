// AWS Signature Version 4 with @smithy/signature-v4 (the AWS SDK's own signer). The payload is
// either hashed — which needs the whole body, so it is buffered up to `maxBodyBytes` and refused
// with 413 beyond — or sent as UNSIGNED-PAYLOAD and streamed, where the service allows it (S3).
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpTargetConfig } from '../../../config/schema.ts';
import { optionalField, requireField } from '../../../credentials/fields.ts';
import { KeylessError } from '../../../errors.ts';
import { deleteHeader } from '../hop-by-hop.ts';
import type { Injector, Outgoing } from './types.ts';

export type SigV4Config = Extract<HttpTargetConfig['inject'], { kind: 'aws-sigv4' }>;

/** Headers the signer owns: whatever the app sent under these names is dropped. */
const OWNED = ['authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'];

export function sigv4(target: string, cfg: SigV4Config): Injector {
  return {
    async apply(out, cred) {
      const accessKeyId = requireField(cred, cfg.fields.accessKeyId, target).reveal();
      const secretAccessKey = requireField(cred, cfg.fields.secretAccessKey, target).reveal();
      const sessionToken = optionalField(cred, cfg.fields.sessionToken)?.reveal();
      for (const h of OWNED) deleteHeader(out.headers, h);
      let payloadHash = 'UNSIGNED-PAYLOAD';
      if (cfg.payload === 'signed') {
        const body = out.body === null ? Buffer.alloc(0) : Buffer.isBuffer(out.body) ? out.body : await readBounded(out.body, out.headers, cfg.maxBodyBytes, target);
        if (out.body !== null) {
          out.body = body;
          deleteHeader(out.headers, 'transfer-encoding');
          out.headers['content-length'] = String(body.length);
        }
        payloadHash = createHash('sha256').update(body).digest('hex');
      }
      out.headers['x-amz-content-sha256'] = payloadHash;
      // One line per header, so what is signed is exactly what goes on the wire.
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(out.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const origin = new URL(out.origin);
      const q = out.path.indexOf('?');
      const signer = new SignatureV4({
        service: cfg.service,
        region: cfg.region,
        sha256: Sha256,
        credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
        // S3 signs the path as sent; every other service encodes it once more (the SigV4 rules).
        uriEscapePath: cfg.service !== 's3',
      });
      const signed = await signer.sign({
        method: out.method,
        protocol: origin.protocol,
        hostname: origin.hostname,
        ...(origin.port ? { port: Number(origin.port) } : {}),
        path: q === -1 ? out.path : out.path.slice(0, q),
        query: parseQuery(q === -1 ? '' : out.path.slice(q + 1)),
        headers,
      });
      out.headers = { ...signed.headers };
      return sessionToken ? [sessionToken] : [];
    },
  };
}

/** The query as the signer wants it: decoded names to decoded values (repeated names as arrays). */
export function parseQuery(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const k = decode(eq === -1 ? pair : pair.slice(0, eq));
    const v = eq === -1 ? '' : decode(pair.slice(eq + 1));
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

async function readBounded(body: Readable, headers: Outgoing['headers'], max: number, target: string): Promise<Buffer> {
  const tooLarge = (): KeylessError =>
    new KeylessError('KL_ERR_PACKET_TOO_LARGE', `target ${target}: request body over ${max} bytes cannot be signed`, { clientDetail: `(signing needs the whole body; the limit is ${max} bytes)` });
  const declared = Number(headers['content-length'] ?? NaN);
  if (declared > max) throw tooLarge();
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    n += b.length;
    if (n > max) throw tooLarge();
    parts.push(b);
  }
  return Buffer.concat(parts, n);
}

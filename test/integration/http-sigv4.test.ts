// AWS Signature V4, checked by an independent verifier: the `aws4` package (not the AWS SDK's
// signer Keyless uses) recomputes each signature from what the upstream received — its method,
// path, query, the headers named in SignedHeaders and the body — and must arrive at the same value.
import { createHash, randomBytes } from 'node:crypto';
import aws4 from 'aws4';
import { request } from 'undici';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';

const pki = inject('pki');
const tag = randomBytes(6).toString('hex');
const CREDS = { accessKeyId: `AKIA${tag.toUpperCase()}`, secretAccessKey: `KLCANARYawssecret${tag}`, sessionToken: `KLCANARYawssession${tag}` };

let keyless: KeylessProcess;
let up: HttpsUpstream;
const port: Record<string, number> = {};
const bodies: Buffer[] = [];
const clientSaw: string[] = [];

beforeAll(async () => {
  up = await startHttpsUpstream(pki);
  for (const p of ['/api/items', '/api/items/a%20b', '/bucket/key.bin', '/echo-token']) {
    up.routes.set(p, async (req, res) => {
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      bodies.push(Buffer.concat(parts));
      res.writeHead(200, p === '/echo-token' ? { 'x-echo': String(req.headers['x-amz-security-token']) } : {});
      res.end('ok');
    });
  }
  const store = httpStore({ aws: { access_key_id: CREDS.accessKeyId, secret_access_key: CREDS.secretAccessKey, session_token: CREDS.sessionToken } });
  for (const n of ['api', 's3', 'small']) port[n] = await freePort();
  const t = (p: number, inj: Record<string, unknown>): Record<string, unknown> => ({
    protocol: 'http',
    listen: `127.0.0.1:${p}`,
    upstream: { url: up.url, tls: { ca: pki.caFile } },
    credential: { store: 'files', path: 'aws' },
    inject: { kind: 'aws-sigv4', region: 'eu-west-1', ...inj },
  });
  keyless = await startKeyless({
    stores: store.stores,
    targets: {
      api: t(port.api!, { service: 'execute-api' }),
      s3: t(port.s3!, { service: 's3', payload: 'unsigned' }),
      small: t(port.small!, { service: 'execute-api', maxBodyBytes: 1024 }),
    },
  });
});

afterAll(async () => {
  await keyless?.stop();
  await up?.close();
});

/** Recompute the signature of a received request with aws4 and compare. */
function verify(seen: HttpsUpstream['seen'][number], body: Buffer, service: string): void {
  const auth = String(seen.headers.authorization);
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  expect(m, auth).not.toBeNull();
  const [, akid, , region, svc, signedHeaders, signature] = m!;
  expect([akid, region, svc]).toEqual([CREDS.accessKeyId, 'eu-west-1', service]);
  const names = signedHeaders!.split(';');
  expect(names).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token']));
  const headers: Record<string, string> = {};
  for (const n of names) headers[n] = String(seen.headers[n]);
  const opts: aws4.Request & { headers: Record<string, string> } = { host: headers.host, method: seen.method, path: seen.url, service, region: 'eu-west-1', headers, body: body.length > 0 ? body : undefined };
  aws4.sign(opts, CREDS);
  expect(String(opts.headers.Authorization)).toBe(auth);
  expect(signature).toHaveLength(64);
}

function seenFor(path: string): HttpsUpstream['seen'][number] {
  return [...up.seen].reverse().find((s) => s.url.startsWith(path))!;
}

describe('aws-sigv4', () => {
  test('GET with a query and a session token; the app’s own signing headers are replaced', async () => {
    const r = await request(`http://127.0.0.1:${port.api}/api/items?b=2&a=1&a=0&x=hello%20world`, {
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=APP/20000101/x/y/aws4_request, SignedHeaders=host, Signature=00', 'x-amz-date': '20000101T000000Z', 'x-custom': 'v' },
    });
    clientSaw.push(await r.body.text());
    expect(r.statusCode).toBe(200);
    const seen = seenFor('/api/items?');
    expect(seen.headers['x-amz-date']).not.toBe('20000101T000000Z');
    expect(seen.headers['x-amz-security-token']).toBe(CREDS.sessionToken);
    expect(seen.headers['x-amz-content-sha256']).toBe(createHash('sha256').update('').digest('hex'));
    verify(seen, bodies.at(-1)!, 'execute-api');
  });

  test('POST with a signed payload hash; a path needing encoding', async () => {
    const body = JSON.stringify({ name: 'widget', n: 42 });
    const r = await request(`http://127.0.0.1:${port.api}/api/items/a%20b`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    clientSaw.push(await r.body.text());
    expect(r.statusCode).toBe(200);
    const seen = seenFor('/api/items/a%20b');
    expect(bodies.at(-1)!.toString()).toBe(body);
    expect(seen.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'));
    verify(seen, bodies.at(-1)!, 'execute-api');
  });

  test('S3 with UNSIGNED-PAYLOAD streams a chunked body unbuffered', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let left = 80; // 5 MB
    const stream = new Readable({
      read() {
        this.push(left-- > 0 ? chunk : null);
      },
    });
    const r = await request(`http://127.0.0.1:${port.s3}/bucket/key.bin`, { method: 'PUT', body: stream, headers: { 'content-type': 'application/octet-stream' } });
    clientSaw.push(await r.body.text());
    expect(r.statusCode).toBe(200);
    const seen = seenFor('/bucket/key.bin');
    expect(seen.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(seen.headers['transfer-encoding']).toBe('chunked');
    expect(bodies.at(-1)!.length).toBe(80 * 64 * 1024);
    verify(seen, Buffer.alloc(0), 's3');
  });

  test('a body over maxBodyBytes with a signed payload → 413 problem', async () => {
    const before = up.seen.length;
    const r = await request(`http://127.0.0.1:${port.small}/api/items`, { method: 'POST', body: 'x'.repeat(4096), headers: { 'content-type': 'text/plain' } });
    const text = await r.body.text();
    clientSaw.push(text);
    expect(r.statusCode).toBe(413);
    expect(JSON.parse(text)).toMatchObject({ code: 'KL_ERR_PACKET_TOO_LARGE', target: 'small' });
    expect(up.seen.length).toBe(before);
    // The connection still serves the next request.
    const ok = await request(`http://127.0.0.1:${port.small}/api/items`, { method: 'POST', body: 'small', headers: { 'content-type': 'text/plain' } });
    clientSaw.push(await ok.body.text());
    expect(ok.statusCode).toBe(200);
    verify(seenFor('/api/items'), bodies.at(-1)!, 'execute-api');
  });

  test('an echoed session token is redacted', async () => {
    const r = await request(`http://127.0.0.1:${port.api}/echo-token`);
    clientSaw.push(JSON.stringify(r.headers), await r.body.text());
    expect(r.headers['x-echo']).toBe('[redacted]');
  });

  test('the secret key never leaves Keyless; canaries nowhere', async () => {
    for (const s of up.seen) expect(JSON.stringify(s.headers).includes(CREDS.secretAccessKey)).toBe(false);
    const logs = keyless.output();
    const metrics = (await keyless.admin('/metrics')).body;
    for (const v of [CREDS.secretAccessKey, CREDS.sessionToken]) {
      expect(logs.includes(v)).toBe(false);
      expect(metrics.includes(v)).toBe(false);
      expect(clientSaw.some((s) => s.includes(v))).toBe(false);
    }
  });
});

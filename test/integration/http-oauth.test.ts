// OAuth 2.0 client credentials against a real token endpoint (HTTPS, test CA): the client id and
// secret from the store authenticate to it, the token is cached across requests, an API 401
// makes exactly one token refresh and retry, and a refused client secret is refetched once.
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, writeCredential, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { bodyOf, httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';

const pki = inject('pki');
const tag = randomBytes(6).toString('hex');
const CLIENT_ID = `client-${tag}`;
const SECRET_V1 = `KLCANARYoauthsecret1${tag}`;
const SECRET_V2 = `KLCANARYoauthsecret2${tag}`;

let keyless: KeylessProcess;
let api: HttpsUpstream;
let auth: HttpsUpstream;
let storeDir: string;
const port: Record<string, number> = {};
/** Tokens the endpoint issued, in order; the API accepts only those in `valid`. */
const issued: string[] = [];
const valid = new Set<string>();
const tokenRequests: { authorization?: string; form: URLSearchParams }[] = [];
let acceptedSecret = SECRET_V1;
const clientSaw: string[] = [];

beforeAll(async () => {
  auth = await startHttpsUpstream(pki);
  api = await startHttpsUpstream(pki);
  auth.routes.set('/oauth/token', async (req, res) => {
    const form = new URLSearchParams(await bodyOf(req));
    tokenRequests.push({ authorization: req.headers.authorization, form });
    let id: string | undefined;
    let secret: string | undefined;
    if (req.headers.authorization?.startsWith('Basic ')) {
      const [a, b] = Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':');
      id = decodeURIComponent(a!.replace(/\+/g, ' '));
      secret = decodeURIComponent(b!.replace(/\+/g, ' '));
    } else {
      id = form.get('client_id') ?? undefined;
      secret = form.get('client_secret') ?? undefined;
    }
    if (form.get('grant_type') !== 'client_credentials' || id !== CLIENT_ID || secret !== acceptedSecret) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":"invalid_client"}');
      return;
    }
    const token = `KLCANARYtoken${issued.length + 1}${tag}`;
    issued.push(token);
    valid.add(token);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600, scope: form.get('scope') }));
  });
  api.routes.set('/resource', (req, res) => {
    const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
    const ok = valid.has(token);
    res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain', ...(ok ? {} : { 'www-authenticate': 'Bearer error="invalid_token"' }) });
    res.end(ok ? `hello ${issued.indexOf(token) + 1}` : 'expired');
  });
  const store = httpStore({ oauth: { client_id: CLIENT_ID, client_secret: SECRET_V1 } });
  storeDir = store.dir;
  port.basic = await freePort();
  port.body = await freePort();
  const target = (p: number, extra: Record<string, unknown>): Record<string, unknown> => ({
    protocol: 'http',
    listen: `127.0.0.1:${p}`,
    upstream: { url: api.url, tls: { ca: pki.caFile } },
    credential: { store: 'files', path: 'oauth' },
    inject: { kind: 'oauth2', tokenUrl: `${auth.url}/oauth/token`, scopes: ['read:things', 'write:things'], audience: 'https://api.example', ...extra },
  });
  keyless = await startKeyless({
    // Not watched: a rotated client secret is noticed only when the token endpoint refuses the old one.
    stores: { files: { kind: 'file', dir: storeDir, watch: false } },
    targets: { basic: target(port.basic, {}), body: target(port.body, { clientAuth: 'body' }) },
  });
});

afterAll(async () => {
  await keyless?.stop();
  await api?.close();
  await auth?.close();
});

async function call(name: string): Promise<{ status: number; body: string }> {
  const r = await request(`http://127.0.0.1:${port[name]}/resource`, { headers: { authorization: 'Bearer app-token' } });
  const body = await r.body.text();
  clientSaw.push(JSON.stringify(r.headers), body);
  return { status: r.statusCode, body };
}

describe('oauth2 client credentials', () => {
  test('a token from the endpoint (Basic client auth, scope, audience), cached across requests', async () => {
    const before = tokenRequests.length;
    const results = await Promise.all([call('basic'), call('basic'), call('basic')]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await call('basic')).status).toBe(200);
    // Concurrent first requests share one token fetch; later ones reuse it.
    expect(tokenRequests.length - before).toBe(1);
    const t = tokenRequests.at(-1)!;
    expect(t.authorization).toBe(`Basic ${Buffer.from(`${CLIENT_ID}:${SECRET_V1}`).toString('base64')}`);
    expect(t.form.get('grant_type')).toBe('client_credentials');
    expect(t.form.get('scope')).toBe('read:things write:things');
    expect(t.form.get('audience')).toBe('https://api.example');
    expect(t.form.get('client_secret')).toBeNull();
    expect(api.seen.at(-1)?.headers.authorization).toBe(`Bearer ${issued.at(-1)}`);
  });

  test('client_secret_post: id and secret in the form', async () => {
    expect((await call('body')).status).toBe(200);
    const t = tokenRequests.at(-1)!;
    expect(t.authorization).toBeUndefined();
    expect(t.form.get('client_id')).toBe(CLIENT_ID);
    expect(t.form.get('client_secret')).toBe(SECRET_V1);
  });

  test('API 401 → exactly one token refresh and one retry', async () => {
    expect((await call('basic')).status).toBe(200);
    const old = api.seen.at(-1)!.headers.authorization;
    const before = tokenRequests.length;
    const seenBefore = api.seen.length;
    valid.clear(); // the API revokes every token it knows
    const r = await call('basic');
    expect(r.status).toBe(200);
    expect(tokenRequests.length - before).toBe(1);
    const tries = api.seen.slice(seenBefore).map((s) => s.headers.authorization);
    expect(tries).toEqual([old, `Bearer ${issued.at(-1)}`]);
    expect(old).not.toBe(`Bearer ${issued.at(-1)}`);
    // The fresh token is cached again.
    expect((await call('basic')).status).toBe(200);
    expect(tokenRequests.length - before).toBe(1);
  });

  test('a refused client secret is refetched from the store once (rotation), then works', async () => {
    valid.clear();
    acceptedSecret = SECRET_V2;
    writeCredential(storeDir, 'oauth', { client_secret: SECRET_V2 });
    const r = await call('basic');
    expect(r.status).toBe(200);
    expect(tokenRequests.at(-1)!.authorization).toBe(`Basic ${Buffer.from(`${CLIENT_ID}:${SECRET_V2}`).toString('base64')}`);
  });

  test('token endpoint refusing the stored secret → 502 problem naming the target', async () => {
    valid.clear();
    acceptedSecret = 'something else';
    const r = await call('body');
    expect(r.status).toBe(502);
    expect(JSON.parse(r.body)).toMatchObject({ code: 'KL_ERR_UPSTREAM_AUTH', target: 'body' });
  });

  test('canaries (client secrets, tokens) never reach a client, the logs or the metrics', async () => {
    const metrics = (await keyless.admin('/metrics')).body;
    const logs = keyless.output();
    for (const v of [SECRET_V1, SECRET_V2, ...issued]) {
      expect(logs.includes(v)).toBe(false);
      expect(metrics.includes(v)).toBe(false);
      expect(clientSaw.some((s) => s.includes(v))).toBe(false);
    }
  });
});

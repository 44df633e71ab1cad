// HTTP targets end to end: Keyless as a child process in front of real HTTPS upstreams signed by
// the test CA. Each injection kind checked by what the upstream received; hop-by-hop headers;
// forward mode with curl (HTTP_PROXY) and undici; refusals (unknown host, CONNECT, 421); the
// problem+json errors; redaction of echoed secrets; one refetch on 401; canaries nowhere.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync } from 'node:fs';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { connect, createServer as createTcpServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, writeCredential, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { bodyOf, httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';

const run = promisify(execFile);
const pki = inject('pki');
const tag = randomBytes(6).toString('hex');
const canary = (what: string): string => `KLCANARY${what}${tag}`;
const SECRETS = {
  token: canary('token'),
  user: canary('user'),
  password: canary('password'),
  apiKey: canary('apikey'),
  queryKey: canary('querykey'),
  fwdToken: canary('fwdtoken'),
  rotateV1: canary('rotatev1'),
  rotateV2: canary('rotatev2'),
};

let keyless: KeylessProcess;
let up: HttpsUpstream;
let wrongName: HttpsUpstream;
let h2: Http2SecureServer;
/** Accepts TCP and never says a word: a TLS handshake that never finishes. */
let blackhole: Server;
const h2Seen: { version: string; authorization?: string }[] = [];
let store: { dir: string; stores: Record<string, unknown> };
let rotateDir: string;
const port: Record<string, number> = {};
/** Everything a client was handed, for the canary check. */
const clientSaw: string[] = [];

async function get(name: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const r = await request(`http://127.0.0.1:${port[name]}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  const body = await r.body.text();
  clientSaw.push(JSON.stringify(r.headers), body);
  return { status: r.statusCode, headers: r.headers, body };
}

function nodeGet(p: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: p, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        clientSaw.push(JSON.stringify(res.headers), body);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function lastSeen(path: string): HttpsUpstream['seen'][number] {
  const s = [...up.seen].reverse().find((x) => x.url.startsWith(path));
  if (!s) throw new Error(`upstream saw no request for ${path}`);
  return s;
}

function count(raw: string[], name: string): number {
  return raw.filter((_, i) => i % 2 === 0).filter((k) => k.toLowerCase() === name).length;
}

beforeAll(async () => {
  up = await startHttpsUpstream(pki);
  wrongName = await startHttpsUpstream(pki, { cert: pki.wrongName });
  // An upstream that speaks only HTTP/2.
  h2 = createSecureServer({ cert: pki.server.cert, key: pki.server.key, allowHTTP1: false }, (req, res) => {
    h2Seen.push({ version: req.httpVersion, authorization: req.headers.authorization });
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`h${req.httpVersion}`);
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  blackhole = createTcpServer(() => undefined);
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  store = httpStore({
    bearer: { token: SECRETS.token },
    basic: { username: SECRETS.user, password: SECRETS.password },
    headers: { api_key: SECRETS.apiKey, tenant: 'acme' },
    query: { key: SECRETS.queryKey },
    fwd: { token: SECRETS.fwdToken },
  });
  rotateDir = join(store.dir, '..', `rotate-${tag}`);
  mkdirSync(rotateDir);
  writeCredential(rotateDir, 'rotate', { token: SECRETS.rotateV1 });
  // A credential directory the store cannot read (a symlink loop): the store fails.
  symlinkSync(join(store.dir, 'loop'), join(store.dir, 'loop'));
  for (const n of ['bearer', 'basic', 'headers', 'query', 'fwd', 'fwd2', 'down', 'slow', 'broken', 'missing', 'tlsbad', 'denied', 'rotate', 'tlslistener', 'h2', 'stall', 'idle', 'blackhole']) port[n] = await freePort();
  const ca = { ca: pki.caFile };
  const rev = (name: string, cred: string, inject: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    protocol: 'http',
    listen: `127.0.0.1:${port[name]}`,
    upstream: { url: `${up.url}/base`, tls: ca },
    credential: { store: 'files', path: cred },
    inject,
    ...extra,
  });
  keyless = await startKeyless({
    stores: { ...store.stores, unwatched: { kind: 'file', dir: rotateDir, watch: false } },
    targets: {
      bearer: rev('bearer', 'bearer', { kind: 'bearer' }, { forwarded: true }),
      basic: rev('basic', 'basic', { kind: 'basic' }),
      headers: rev('headers', 'headers', { kind: 'headers', headers: { 'X-Api-Key': '{{ api_key }}', 'X-Tenant': 'tenant-{{tenant}}' } }),
      query: rev('query', 'query', { kind: 'query', params: { api_key: '{{ key }}' } }),
      fwd: {
        protocol: 'http',
        mode: 'forward',
        listen: `127.0.0.1:${port.fwd}`,
        hosts: [`localhost:${up.port}`],
        passthrough: [`127.0.0.1:${wrongName.port}`],
        upstream: { tls: ca },
        credential: { store: 'files', path: 'fwd' },
        inject: { kind: 'bearer' },
      },
      // A second target on the same forward listener, owning another name of the same server.
      fwd2: {
        protocol: 'http',
        mode: 'forward',
        listen: `127.0.0.1:${port.fwd}`,
        hosts: [`127.0.0.1:${up.port}`],
        upstream: { tls: ca },
        credential: { store: 'files', path: 'bearer' },
        inject: { kind: 'bearer' },
      },
      down: { ...rev('down', 'bearer', { kind: 'bearer' }), upstream: { url: `https://localhost:${await freePort()}`, tls: ca } },
      slow: rev('slow', 'bearer', { kind: 'bearer' }, { timeouts: { response: '300ms' } }),
      blackhole: { ...rev('blackhole', 'bearer', { kind: 'bearer' }, { timeouts: { connect: '300ms' } }), upstream: { url: `https://localhost:${(blackhole.address() as { port: number }).port}`, tls: ca } },
      stall: rev('stall', 'bearer', { kind: 'bearer' }, { timeouts: { body: '300ms' } }),
      idle: rev('idle', 'bearer', { kind: 'bearer' }, { timeouts: { idle: '200ms', handshake: '300ms' } }),
      broken: rev('broken', 'loop', { kind: 'bearer' }),
      missing: rev('missing', 'no-such-credential', { kind: 'bearer' }),
      tlsbad: { ...rev('tlsbad', 'bearer', { kind: 'bearer' }), upstream: { url: wrongName.url, tls: ca } },
      denied: rev('denied', 'bearer', { kind: 'bearer' }, { allow: [{ cidr: '10.0.0.0/8' }] }),
      rotate: { ...rev('rotate', 'rotate', { kind: 'bearer' }), credential: { store: 'unwatched', path: 'rotate' } },
      h2: { ...rev('h2', 'bearer', { kind: 'bearer' }), upstream: { url: `https://localhost:${(h2.address() as { port: number }).port}`, tls: ca } },
      tlslistener: rev('tlslistener', 'bearer', { kind: 'bearer' }, { tls: { cert: pki.server.certFile, key: pki.server.keyFile } }),
    },
  });
});

afterAll(async () => {
  if (process.env.KEYLESS_TEST_LOG) (await import('node:fs')).writeFileSync(process.env.KEYLESS_TEST_LOG, keyless?.output() ?? '');
  await keyless?.stop();
  await up?.close();
  await wrongName?.close();
  await new Promise((resolve) => h2?.close(resolve));
  blackhole?.close();
});

describe('reverse mode injection', () => {
  test('bearer replaces the app’s Authorization; hop-by-hop headers are dropped both ways; X-Forwarded-*', async () => {
    up.routes.set('/base/v1/charges', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-resp-hop': '1', connection: 'x-resp-hop', 'keep-alive': 'timeout=30' });
      res.end('{"charged":true}');
    });
    // node:http, since undici will not send a custom Connection header.
    const r = await nodeGet(port.bearer!, '/v1/charges?limit=3', {
      authorization: 'Bearer app-own-token', 'x-custom': 'drop me', connection: 'x-custom, keep-alive', 'proxy-authorization': 'Basic Zm9vOmJhcg==', te: 'trailers', 'x-keep': 'yes',
    });
    expect(r.status).toBe(200);
    expect(r.body).toBe('{"charged":true}');
    expect(r.headers['x-resp-hop']).toBeUndefined();
    const seen = lastSeen('/base/v1/charges');
    expect(seen.url).toBe('/base/v1/charges?limit=3');
    expect(seen.headers.authorization).toBe(`Bearer ${SECRETS.token}`);
    expect(count(seen.rawHeaders, 'authorization')).toBe(1);
    expect(seen.headers['x-custom']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(seen.headers['x-keep']).toBe('yes');
    expect(seen.headers.host).toBe(`localhost:${up.port}`);
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
  });

  test('curl --http2 on http:// (Upgrade: h2c) is served as a plain HTTP/1.1 request', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '--http2', `http://127.0.0.1:${port.bearer}/h2c`]);
    clientSaw.push(stdout);
    expect(stdout).toMatch(/^HTTP\/1.1 200/);
    const seen = lastSeen('/base/h2c');
    expect(seen.headers.upgrade).toBeUndefined();
    expect(seen.headers['http2-settings']).toBeUndefined();
    expect(seen.headers.authorization).toBe(`Bearer ${SECRETS.token}`);
  });

  test('basic', async () => {
    const r = await get('basic', '/x', { headers: { authorization: 'Basic YXBwOmFwcA==' } });
    expect(r.status).toBe(200);
    const seen = lastSeen('/base/x');
    expect(seen.headers.authorization).toBe(`Basic ${Buffer.from(`${SECRETS.user}:${SECRETS.password}`).toString('base64')}`);
    expect(count(seen.rawHeaders, 'authorization')).toBe(1);
    expect(seen.headers['x-forwarded-for']).toBeUndefined();
  });

  test('header templates replace what the app sent, never merge', async () => {
    const r = await get('headers', '/h', { headers: { 'x-api-key': 'app-key', 'X-Tenant': 'other' } });
    expect(r.status).toBe(200);
    const seen = lastSeen('/base/h');
    expect(seen.headers['x-api-key']).toBe(SECRETS.apiKey);
    expect(seen.headers['x-tenant']).toBe('tenant-acme');
    expect(count(seen.rawHeaders, 'x-api-key')).toBe(1);
    expect(count(seen.rawHeaders, 'x-tenant')).toBe(1);
  });

  test('query parameter replaces the app’s and leaves the others byte for byte', async () => {
    const r = await get('query', '/q?a=1&api_key=mine&b=x%2By+z&api_key=again');
    expect(r.status).toBe(200);
    expect(lastSeen('/base/q').url).toBe(`/base/q?a=1&b=x%2By+z&api_key=${SECRETS.queryKey}`);
  });

  test('Node fetch: a POST body streams through and the response comes back', async () => {
    up.routes.set('/base/echo-length', async (req, res) => {
      const body = await bodyOf(req);
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end(`got ${body.length} ${req.headers['content-type']}`);
    });
    const r = await fetch(`http://127.0.0.1:${port.bearer}/echo-length`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hello: 'x'.repeat(10_000) }) });
    const text = await r.text();
    clientSaw.push(text);
    expect(r.status).toBe(201);
    expect(text).toBe('got 10012 application/json');
  });

  test('keep-alive: many requests on one client connection', async () => {
    const agent = new Agent({ connections: 1 });
    for (let i = 0; i < 20; i++) {
      const r = await request(`http://127.0.0.1:${port.bearer}/k${i}`, { dispatcher: agent });
      expect(r.statusCode).toBe(200);
      await r.body.text();
    }
    await agent.close();
  });

  test('HTTP/2 to an upstream that speaks only HTTP/2, HTTP/1.1 to the client', async () => {
    const r = await get('h2', '/over-h2');
    expect(r.status).toBe(200);
    expect(r.body).toBe('h2.0');
    expect(h2Seen.at(-1)).toEqual({ version: '2.0', authorization: `Bearer ${SECRETS.token}` });
  });

  test('TLS on the client-facing listener', async () => {
    const agent = new Agent({ connect: { ca: pki.server.cert.length > 0 ? (await import('node:fs')).readFileSync(pki.caFile) : undefined } });
    const r = await request(`https://localhost:${port.tlslistener}/over-tls`, { dispatcher: agent });
    expect(r.statusCode).toBe(200);
    await r.body.text();
    expect(lastSeen('/base/over-tls').headers.authorization).toBe(`Bearer ${SECRETS.token}`);
    await agent.close();
  });

  test('a secret the upstream echoes in a response header is redacted', async () => {
    up.routes.set('/base/echo-auth', (req, res) => {
      res.writeHead(200, { 'x-debug-auth': String(req.headers.authorization), 'x-debug-key': `key=${req.url?.split('api_key=')[1] ?? ''}`, location: `/next?api_key=${req.url?.split('api_key=')[1] ?? ''}` });
      res.end('ok');
    });
    const b = await get('bearer', '/echo-auth');
    expect(b.headers['x-debug-auth']).toBe('[redacted]');
    const q = await get('query', '/echo-auth');
    expect(q.headers['x-debug-key']).toBe('key=[redacted]');
    expect(q.headers.location).toBe('/next?api_key=[redacted]');
  });

  test('upstream 401: the credential is refetched once and the request retried', async () => {
    let accept = SECRETS.rotateV1;
    up.routes.set('/base/rotating', (req, res) => {
      const ok = req.headers.authorization === `Bearer ${accept}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(ok ? 'welcome' : 'bad token');
    });
    expect((await get('rotate', '/rotating')).status).toBe(200);
    accept = SECRETS.rotateV2;
    const before = up.seen.length;
    writeCredential(rotateDir, 'rotate', { token: SECRETS.rotateV2 });
    // The store is not watched: Keyless still holds v1 until the upstream refuses it.
    const r = await get('rotate', '/rotating');
    expect(r.status).toBe(200);
    expect(r.body).toBe('welcome');
    const tries = up.seen.slice(before).filter((s) => s.url === '/base/rotating').map((s) => s.headers.authorization);
    expect(tries).toEqual([`Bearer ${SECRETS.rotateV1}`, `Bearer ${SECRETS.rotateV2}`]);
    // Still refused after the refetch: the app gets the 401, with no third try.
    up.routes.set('/base/rotating', (_req, res) => {
      res.writeHead(401);
      res.end('no');
    });
    const n = up.seen.length;
    const r2 = await get('rotate', '/rotating');
    expect(r2.status).toBe(401);
    expect(up.seen.length - n).toBe(2);
  });
});

describe('errors are problem+json naming the target', () => {
  async function problem(name: string, path: string, status: number, code: string): Promise<void> {
    const r = await get(name, path);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('application/problem+json');
    const p = JSON.parse(r.body) as Record<string, unknown>;
    expect(p).toMatchObject({ status, code, target: name });
    expect(String(p.detail)).toContain(`target ${name}`);
  }
  test('upstream unreachable → 502', () => problem('down', '/', 502, 'KL_ERR_UPSTREAM_UNREACHABLE'));
  test('upstream timeout → 504', async () => {
    up.routes.set('/base/slow', () => undefined); // never answers
    await problem('slow', '/slow', 504, 'KL_ERR_UPSTREAM_TIMEOUT');
  });
  test('upstream stalls mid-body past the body timeout → the response is cut off, not completed', async () => {
    up.routes.set('/base/stall', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('partial');
    });
    const r = await request(`http://127.0.0.1:${port.stall}/stall`);
    expect(r.statusCode).toBe(200);
    await expect(r.body.text()).rejects.toThrow();
  });
  test('a keep-alive connection idle past timeouts.idle is closed by Keyless', async () => {
    const s = connect({ host: '127.0.0.1', port: port.idle! });
    s.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    await new Promise((resolve) => s.once('close', resolve));
    expect(got).toMatch(/^HTTP\/1.1 200/);
  });
  test('a client that connects and drips a request slower than timeouts.handshake is dropped', async () => {
    const s = connect({ host: '127.0.0.1', port: port.idle! });
    s.write('GET /drip HTTP/1.1\r\nHost: x\r\n');
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    s.on('error', () => undefined);
    await new Promise((resolve) => s.once('close', resolve));
    expect(got).not.toMatch(/^HTTP\/1.1 200/);
    expect(up.seen.some((x) => x.url === '/base/drip')).toBe(false);
  });
  test('upstream that never completes the TLS handshake → 504 after timeouts.connect', () => problem('blackhole', '/', 504, 'KL_ERR_UPSTREAM_TIMEOUT'));
  test('a client giving up mid-request aborts the upstream request', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    up.routes.set('/base/hang', (_req, res) => {
      res.once('close', () => upstreamClosed());
    });
    const ac = new AbortController();
    const pending = request(`http://127.0.0.1:${port.bearer}/hang`, { signal: ac.signal }).catch((e: Error) => e);
    while (!up.seen.some((x) => x.url === '/base/hang')) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await pending;
    await closed; // hangs (and the test times out) if Keyless keeps the upstream request open
  });
  test('store failure → 503', () => problem('broken', '/', 503, 'KL_ERR_STORE_UNAVAILABLE'));
  test('credential missing from the store → 503', () => problem('missing', '/', 503, 'KL_ERR_CREDENTIAL_NOT_FOUND'));
  test('upstream certificate for another name → 502', () => problem('tlsbad', '/', 502, 'KL_ERR_UPSTREAM_TLS'));
  test('client outside the allow rules → 403', () => problem('denied', '/', 403, 'KL_ERR_POLICY_DENIED'));
});

describe('forward mode', () => {
  const proxyEnv = (): NodeJS.ProcessEnv => ({ ...process.env, http_proxy: `http://127.0.0.1:${port.fwd}`, HTTP_PROXY: `http://127.0.0.1:${port.fwd}`, https_proxy: `http://127.0.0.1:${port.fwd}`, HTTPS_PROXY: `http://127.0.0.1:${port.fwd}`, NO_PROXY: '', no_proxy: '' });

  test('curl with HTTP_PROXY: the request reaches the owning target’s upstream over HTTPS with its credential', async () => {
    const { stdout } = await run('curl', ['-sS', '-i', '-H', 'Authorization: Bearer app', `http://localhost:${up.port}/fwd/path?x=1`], { env: proxyEnv() });
    clientSaw.push(stdout);
    expect(stdout).toMatch(/^HTTP\/1.1 200/);
    const seen = lastSeen('/fwd/path');
    expect(seen.url).toBe('/fwd/path?x=1');
    expect(seen.headers.authorization).toBe(`Bearer ${SECRETS.fwdToken}`);
    expect(seen.headers.host).toBe(`localhost:${up.port}`);
    expect(seen.headers['proxy-connection']).toBeUndefined();
  });

  test('the other target on the same listener, chosen by host', async () => {
    const { stdout } = await run('curl', ['-sS', `http://127.0.0.1:${up.port}/fwd2`], { env: proxyEnv() });
    clientSaw.push(stdout);
    expect(lastSeen('/fwd2').headers.authorization).toBe(`Bearer ${SECRETS.token}`);
  });

  test('undici ProxyAgent (absolute-form, no tunnel)', async () => {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${port.fwd}`, proxyTunnel: false });
    const r = await request(`http://localhost:${up.port}/via-undici`, { dispatcher: agent });
    clientSaw.push(await r.body.text());
    expect(r.statusCode).toBe(200);
    expect(lastSeen('/via-undici').headers.authorization).toBe(`Bearer ${SECRETS.fwdToken}`);
    await agent.close();
  });

  test('a host no target owns → 403, not passed on without credentials', async () => {
    const before = up.seen.length;
    const { stdout } = await run('curl', ['-sS', '-i', `http://localhost:${wrongName.port}/elsewhere`], { env: proxyEnv() });
    clientSaw.push(stdout);
    expect(stdout).toMatch(/^HTTP\/1.1 403/);
    expect(stdout).toContain('application/problem+json');
    expect(stdout).toContain('KL_ERR_UNKNOWN_TARGET');
    expect(up.seen.length).toBe(before);
  });

  test('CONNECT is refused with a message telling the app to send http://', async () => {
    const answer = await rawExchange(port.fwd!, `CONNECT localhost:${up.port} HTTP/1.1\r\nHost: localhost:${up.port}\r\n\r\n`);
    clientSaw.push(answer);
    expect(answer).toMatch(/^HTTP\/1.1 403/);
    expect(answer).toContain('application/problem+json');
    expect(answer).toContain('send plain http:// URLs through Keyless');
    // curl sees the refusal of its tunnel.
    const r = await run('curl', ['-sS', '--cacert', pki.caFile, `https://localhost:${up.port}/tunnel`], { env: proxyEnv() }).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code: number }).code).toBe(56);
    expect((r as { stderr: string }).stderr).toContain('403');
  });

  test('CONNECT to a listed pass-through host:port tunnels untouched', async () => {
    wrongName.routes.set('/pt', (req, res) => {
      res.end(`auth=${req.headers.authorization ?? 'none'}`);
    });
    // -k: the upstream's certificate names another host; this checks the tunnel, not its TLS.
    const { stdout } = await run('curl', ['-sS', '-k', `https://127.0.0.1:${wrongName.port}/pt`], { env: proxyEnv() });
    clientSaw.push(stdout);
    expect(stdout).toBe('auth=none');
  });

  test('a connection bound to one target answers 421 for another target’s host', async () => {
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const one = (host: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: port.fwd, path: `http://${host}:${up.port}/bound`, headers: { host: `${host}:${up.port}` }, agent }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    expect((await one('localhost')).status).toBe(200);
    const second = await one('127.0.0.1');
    clientSaw.push(second.body);
    expect(second.status).toBe(421);
    // A fresh connection serves it.
    expect((await one('127.0.0.1')).status).toBe(200);
    agent.destroy();
  });
});

test('canary secrets never reach a client, the logs or the metrics', async () => {
  const metrics = (await keyless.admin('/metrics')).body;
  expect(metrics).toContain('keyless_http_requests_total{target="bearer",status="200"}');
  const logs = keyless.output();
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(logs.includes(value), `${name} in logs`).toBe(false);
    expect(metrics.includes(value), `${name} in metrics`).toBe(false);
    expect(clientSaw.some((s) => s.includes(value)), `${name} sent to a client`).toBe(false);
  }
  expect(logs.includes(tag), 'canary tag in logs').toBe(false);
});

/** Write raw bytes to Keyless and collect what comes back until it closes (or the first answer). */
function rawExchange(p: number, data: string, firstChunkOnly = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: p }, () => s.write(data));
    let out = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      out += d;
      if (firstChunkOnly) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('end', () => resolve(out));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

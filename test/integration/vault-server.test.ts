// Proves the Vault-compatible test server right against ../shared/vault-api.md: paths, status
// codes, JSON shapes and error texts; token/lease expiry on the injected clock; a database engine
// that really creates and drops PostgreSQL roles; and a real client (node-vault) against it.
import { readFileSync } from 'node:fs';
import nodeVault from 'node-vault';
import pg from 'pg';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminSql } from '../support/pg-cluster.ts';
import { ManualClock, multierror, ServiceAccountIssuer, startVaultServer, type VaultServer, type VaultServerOptions } from '../support/vault/index.ts';

// Response bodies are JSON of many shapes, checked field by field below.
type J = any;

const pki = inject('pki');
const pgInfo = inject('pg');
const ca = readFileSync(pki.caFile);
const agent = new Agent({ connect: { ca } });
const TLS = { certFile: pki.server.certFile, keyFile: pki.server.keyFile };
const PERMISSION_DENIED = multierror(['permission denied']);
const INVALID_TOKEN = multierror(['permission denied', 'invalid token']);

afterAll(async () => {
  await agent.close();
});

async function start(opts: VaultServerOptions = {}): Promise<VaultServer> {
  return startVaultServer({ tls: TLS, ...opts });
}

interface CallOptions {
  /** Default the root token; null sends none. */
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  namespace?: string;
  /** Send the path as is (no /v1/ prefix added). */
  rawPath?: boolean;
  base?: string;
  dispatcher?: Agent;
}

interface CallResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: J;
}

async function call(v: VaultServer, method: string, path: string, o: CallOptions = {}): Promise<CallResult> {
  const headers: Record<string, string> = { ...o.headers };
  const token = o.token === undefined ? v.rootToken : o.token;
  if (token) headers['X-Vault-Token'] = token;
  if (o.namespace) headers['X-Vault-Namespace'] = o.namespace;
  let body: string | undefined;
  if (o.rawBody !== undefined) body = o.rawBody;
  else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const res = await (o.dispatcher ?? agent).request({ origin: new URL(o.base ?? v.address).origin, path: o.rawPath ? path : `/v1/${path}`, method: method as 'GET', headers, ...(body === undefined ? {} : { body }) });
  const text = await res.body.text();
  let json: J;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers as CallResult['headers'], text, json };
}

const ENVELOPE_KEYS = ['request_id', 'lease_id', 'renewable', 'lease_duration', 'data', 'wrap_info', 'warnings', 'auth', 'mount_type'];
const AUTH_KEYS = ['client_token', 'accessor', 'policies', 'token_policies', 'metadata', 'lease_duration', 'renewable', 'entity_id', 'token_type', 'orphan', 'mfa_requirement', 'num_uses'];

// ------------------------------------------------------------------------------------------------

describe('transport and request handling', () => {
  let v: VaultServer;
  beforeAll(async () => {
    v = await start({ plainHttp: true });
  });
  afterAll(async () => {
    await v.close();
  });

  it('serves HTTPS verified by the test CA, and a client trusting another CA is refused', async () => {
    expect(v.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await call(v, 'GET', 'sys/health')).status).toBe(200);
    const wrongCa = new Agent({ connect: { ca: readFileSync(pki.otherCaFile) } });
    try {
      await expect(call(v, 'GET', 'sys/health', { dispatcher: wrongCa })).rejects.toThrow(/certificate|verify/i);
    } finally {
      await wrongCa.close();
    }
  });

  it('also serves plain HTTP when asked, with the same state', async () => {
    expect(v.httpAddress).toMatch(/^http:\/\//);
    await call(v, 'POST', 'secret/data/plain', { body: { data: { k: 'v' } } });
    const r = await call(v, 'GET', 'secret/data/plain', { base: v.httpAddress! });
    expect(r.status).toBe(200);
    expect(r.json.data.data).toEqual({ k: 'v' });
  });

  it('answers JSON with Cache-Control: no-store, even for a 204, and envelopes in Go struct order', async () => {
    const w = await call(v, 'POST', 'secret/data/order', { body: { data: { b: 2, a: 1 } } });
    expect(w.status).toBe(200);
    expect(w.headers['content-type']).toBe('application/json');
    expect(w.headers['cache-control']).toBe('no-store');
    expect(Object.keys(w.json)).toEqual(ENVELOPE_KEYS);
    expect(w.json.request_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const r = await call(v, 'GET', 'secret/data/order');
    expect(Object.keys(r.json.data.data)).toEqual(['a', 'b']);
    const d = await call(v, 'DELETE', 'secret/data/order');
    expect(d.status).toBe(204);
    expect(d.text).toBe('');
    expect(d.headers['content-type']).toBe('application/json');
    expect(d.headers['cache-control']).toBe('no-store');
  });

  it('can leave mount_type out, as older Vault and OpenBao do', async () => {
    const old = await start({ mountType: false });
    try {
      const r = await call(old, 'GET', 'auth/token/lookup-self');
      expect(r.status).toBe(200);
      expect(Object.keys(r.json)).toEqual(ENVELOPE_KEYS.slice(0, -1));
    } finally {
      await old.close();
    }
  });

  it('answers 404 {"errors":[]} outside /v1/', async () => {
    for (const p of ['/', '/v2/secret/data/x', '/ui/']) {
      const r = await call(v, 'GET', p, { rawPath: true });
      expect(r.status, p).toBe(404);
      expect(r.json).toEqual({ errors: [] });
    }
  });

  it('redirects paths with // or dot segments to the cleaned path (301), as Go ServeMux does', async () => {
    const a = await call(v, 'GET', '/v1/auth//login', { rawPath: true });
    expect(a.status).toBe(301);
    expect(a.headers.location).toBe('/v1/auth/login');
    const b = await call(v, 'POST', '/v1/secret/./data/../data/x?version=1', { rawPath: true, body: { data: {} } });
    expect(b.status).toBe(301);
    expect(b.headers.location).toBe('/v1/secret/data/x?version=1');
    expect(b.text).toBe('');
  });

  it('refuses unknown methods (405), bad JSON (400), PATCH without merge-patch (415)', async () => {
    const m = await call(v, 'OPTIONS', 'secret/data/x');
    expect(m.status).toBe(405);
    expect(m.json).toEqual({ errors: [] });
    const j = await call(v, 'POST', 'secret/data/x', { rawBody: '{"data":', headers: { 'Content-Type': 'application/json' } });
    expect(j.status).toBe(400);
    expect(j.json).toEqual({ errors: ['error parsing JSON'] });
    const arr = await call(v, 'POST', 'secret/data/x', { rawBody: '[1,2]' });
    expect(arr.status).toBe(400);
    expect(arr.json).toEqual({ errors: ['error parsing JSON'] });
    const p = await call(v, 'PATCH', 'secret/data/x', { body: { data: { a: 1 } } });
    expect(p.status).toBe(415);
    expect(p.json.errors[0]).toBe('PATCH requires Content-Type of application/merge-patch+json, got "application/json"');
  });

  it('parses form bodies that do not look like JSON, and treats an empty body as no data', async () => {
    const kv1 = v.enableKv('formkv', { version: 1 });
    const f = await call(v, 'POST', 'formkv/app', { rawBody: 'user=app&pass=s3cr3t', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(f.status).toBe(204);
    expect(kv1.get('app')).toEqual({ user: 'app', pass: 's3cr3t' });
    const e = await call(v, 'POST', 'formkv/empty', { rawBody: '', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(e.status).toBe(400);
    expect(e.json).toEqual({ errors: ['missing data fields'] });
  });

  it('treats LIST and GET ?list=true as the same list operation', async () => {
    await call(v, 'POST', 'secret/data/dir/a', { body: { data: { x: 1 } } });
    await call(v, 'POST', 'secret/data/dir/sub/b', { body: { data: { x: 1 } } });
    const a = await call(v, 'LIST', 'secret/metadata/dir');
    const b = await call(v, 'GET', 'secret/metadata/dir?list=true');
    expect(a.status).toBe(200);
    expect(a.json.data).toEqual({ keys: ['a', 'sub/'] });
    expect(b.json.data).toEqual(a.json.data);
    expect(v.requests.all({ path: 'secret/metadata/dir/' }).map((r) => r.operation)).toEqual(['list', 'list']);
  });

  it('can demand X-Vault-Request like an Agent listener (412)', async () => {
    const agentLike = await start({ requireRequestHeader: true });
    try {
      const r = await call(agentLike, 'GET', 'auth/token/lookup-self');
      expect(r.status).toBe(412);
      expect(r.json).toEqual({ errors: ['missing "X-Vault-Request" header'] });
      const ok = await call(agentLike, 'GET', 'auth/token/lookup-self', { headers: { 'X-Vault-Request': 'true' } });
      expect(ok.status).toBe(200);
    } finally {
      await agentLike.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('sys/health, seal and standby', () => {
  it('reports an active node with the documented body; HEAD has none', async () => {
    const v = await start();
    try {
      const r = await call(v, 'GET', 'sys/health', { token: null });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ initialized: true, sealed: false, standby: false, performance_standby: false, replication_performance_mode: 'disabled', replication_dr_mode: 'disabled', version: '1.17.6' });
      expect(r.json.server_time_utc).toBe(Math.floor(v.clock.now() / 1000));
      expect(typeof r.json.cluster_name).toBe('string');
      expect(typeof r.json.cluster_id).toBe('string');
      const h = await call(v, 'HEAD', 'sys/health', { token: null });
      expect(h.status).toBe(200);
      expect(h.text).toBe('');
      const bad = await call(v, 'GET', 'sys/health?standbyok=maybe');
      expect(bad.status).toBe(400);
      expect(bad.json).toEqual({ errors: [] });
      expect((await call(v, 'GET', 'sys/health?activecode=x')).status).toBe(400);
      expect((await call(v, 'GET', 'sys/health?activecode=204')).status).toBe(204);
    } finally {
      await v.close();
    }
  });

  it('sealed: health 503 without cluster fields, every other request 503 "Vault is sealed", then unseal', async () => {
    const v = await start();
    try {
      v.enableKubernetesAuth();
      v.seal();
      const h = await call(v, 'GET', 'sys/health', { token: null });
      expect(h.status).toBe(503);
      expect(h.json).toMatchObject({ initialized: true, sealed: true, standby: true, replication_performance_mode: 'unknown', replication_dr_mode: 'unknown' });
      expect(h.json).not.toHaveProperty('cluster_name');
      expect(h.json).not.toHaveProperty('cluster_id');
      expect((await call(v, 'GET', 'sys/health?sealedcode=200')).status).toBe(200);
      for (const [method, path] of [
        ['GET', 'secret/data/x'],
        ['GET', 'auth/token/lookup-self'],
        ['POST', 'auth/kubernetes/login'],
      ] as const) {
        const r = await call(v, method, path, { body: method === 'POST' ? { role: 'r', jwt: 'j' } : undefined });
        expect(r.status, path).toBe(503);
        expect(r.json).toEqual({ errors: ['Vault is sealed'] });
      }
      const s = await call(v, 'GET', 'sys/seal-status', { token: null });
      expect(s.status).toBe(200);
      expect(s.json).toMatchObject({ type: 'shamir', initialized: true, sealed: true, t: 1, n: 1, progress: 0 });
      const wrong = await call(v, 'PUT', 'sys/unseal', { token: null, body: { key: 'nope' } });
      expect(wrong.status).toBe(400);
      const u = await call(v, 'PUT', 'sys/unseal', { token: null, body: { key: v.unsealKey } });
      expect(u.status).toBe(200);
      expect(u.json.sealed).toBe(false);
      expect((await call(v, 'GET', 'auth/token/lookup-self')).status).toBe(200);
      // sys/seal needs sudo: a default-policy token is refused, root seals.
      const weak = v.createToken({ ttl: 600 });
      const refused = await call(v, 'PUT', 'sys/seal', { token: weak.id });
      expect(refused.status).toBe(403);
      expect(refused.json).toEqual({ errors: [PERMISSION_DENIED] });
      expect((await call(v, 'PUT', 'sys/seal')).status).toBe(204);
      expect(v.sealed).toBe(true);
      v.unseal();
      expect((await call(v, 'GET', 'sys/health')).status).toBe(200);
    } finally {
      await v.close();
    }
  });

  it('follows the health table for standby, performance standby, DR secondary and uninitialised', async () => {
    const v = await start();
    try {
      v.setMode('standby');
      expect((await call(v, 'GET', 'sys/health')).status).toBe(429);
      expect((await call(v, 'GET', 'sys/health?standbyok=true')).status).toBe(200);
      expect((await call(v, 'GET', 'sys/health?standbycode=299')).status).toBe(299);
      const r = await call(v, 'GET', 'secret/data/x');
      expect(r.status).toBe(503);
      expect(r.json).toEqual({ errors: ['no active Vault instance found'] });
      v.setMode('performance-standby');
      expect((await call(v, 'GET', 'sys/health')).status).toBe(473);
      expect((await call(v, 'GET', 'sys/health?perfstandbyok=true')).status).toBe(200);
      v.setMode('dr-secondary');
      expect((await call(v, 'GET', 'sys/health')).status).toBe(472);
      v.setMode('ha-unhealthy');
      expect((await call(v, 'GET', 'sys/health')).status).toBe(474);
      expect((await call(v, 'GET', 'sys/health?haunhealthycode=200')).status).toBe(200);
      v.setMode('removed');
      const rm = await call(v, 'GET', 'sys/health');
      expect(rm.status).toBe(530);
      expect(rm.json.removed_from_cluster).toBe(true);
      v.setMode('uninitialized');
      const u = await call(v, 'GET', 'sys/health');
      expect(u.status).toBe(501);
      expect(u.json.initialized).toBe(false);
      v.setMode('active');
      v.seal();
      // Order: sealed wins over standby.
      v.setMode('standby');
      expect((await call(v, 'GET', 'sys/health')).status).toBe(503);
    } finally {
      await v.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('tokens and ACL policies', () => {
  let v: VaultServer;
  beforeAll(async () => {
    v = await start();
    v.setPolicy(
      'app',
      `
      # KV v2 reads under app/, except one denied key
      path "secret/data/app/*" { capabilities = ["read"] }
      path "secret/data/app/forbidden" { capabilities = ["deny"] }
      path "secret/metadata/app/" { capabilities = ["list"] }
      path "secret/data/+/shared" { capabilities = ["read"] }
      path "secret/data/new-only/*" { capabilities = ["create"] }
      `,
    );
    v.kv2().put('app/db', { password: 'canary-app' });
    v.kv2().put('app/forbidden', { password: 'nope' });
    v.kv2().put('team/shared', { x: 1 });
    v.kv2().put('team/private', { x: 1 });
    v.kv2().put('new-only/exists', { x: 1 });
  });
  afterAll(async () => {
    await v.close();
  });

  it('root token: lookup-self shows no expiry and root policy; renew-self is refused', async () => {
    const r = await call(v, 'GET', 'auth/token/lookup-self');
    expect(r.status).toBe(200);
    expect(r.json.mount_type).toBe('token');
    expect(r.json.data).toMatchObject({ id: v.rootToken, ttl: 0, expire_time: null, policies: ['root'], display_name: 'root', path: 'auth/token/root', renewable: false, orphan: true, type: 'service' });
    const n = await call(v, 'POST', 'auth/token/renew-self');
    expect(n.status).toBe(400);
    expect(n.json).toEqual({ errors: ['lease is not renewable'] });
  });

  it('no token, a bad token, Bearer, and X-Vault-Token winning over Bearer', async () => {
    const none = await call(v, 'GET', 'secret/data/app/db', { token: null });
    expect(none.status).toBe(403);
    expect(none.json).toEqual({ errors: ['permission denied'] });
    const bad = await call(v, 'GET', 'secret/data/app/db', { token: 'hvs.not-a-token' });
    expect(bad.status).toBe(403);
    expect(bad.json).toEqual({ errors: [INVALID_TOKEN] });
    const bearer = await call(v, 'GET', 'secret/data/app/db', { token: null, headers: { Authorization: `Bearer ${v.rootToken}` } });
    expect(bearer.status).toBe(200);
    const both = await call(v, 'GET', 'secret/data/app/db', { token: 'hvs.not-a-token', headers: { Authorization: `Bearer ${v.rootToken}` } });
    expect(both.status).toBe(403);
  });

  it('enforces globs, + segments, deny, exact list paths; 403 is the multierror text', async () => {
    const t = v.createToken({ policies: ['app'], ttl: 3600 });
    const get = (p: string): Promise<CallResult> => call(v, 'GET', p, { token: t.id });
    expect((await get('secret/data/app/db')).json.data.data).toEqual({ password: 'canary-app' });
    const denied = await get('secret/data/app/forbidden');
    expect(denied.status).toBe(403);
    expect(denied.json).toEqual({ errors: [PERMISSION_DENIED] });
    expect((await get('secret/data/team/shared')).status).toBe(200);
    expect((await get('secret/data/team/private')).status).toBe(403);
    expect((await get('secret/data/a/b/shared')).status).toBe(403); // + is one segment
    expect((await call(v, 'LIST', 'secret/metadata/app', { token: t.id })).json.data.keys).toEqual(['db', 'forbidden']);
    expect((await get('secret/metadata/app/db')).status).toBe(403);
    // read grants no write
    expect((await call(v, 'POST', 'secret/data/app/db', { token: t.id, body: { data: {} } })).status).toBe(403);
    // Priority between non-exact rules: with the first wildcard at the same place, a + rule beats a glob.
    v.setPolicy('prio', { 'secret/data/prio/*': ['read'], 'secret/data/prio/+/locked': ['deny'] });
    v.kv2().put('prio/x/locked', { a: 1 });
    v.kv2().put('prio/x/open', { a: 1 });
    const prio = v.createToken({ policies: ['prio'], ttl: 3600 });
    expect((await call(v, 'GET', 'secret/data/prio/x/open', { token: prio.id })).status).toBe(200);
    expect((await call(v, 'GET', 'secret/data/prio/x/locked', { token: prio.id })).status).toBe(403);
    // Rules for the same path merge across policies, and deny wins over any grant.
    v.setPolicy('app-deny', '{"path": {"secret/data/app/*": {"capabilities": ["deny"]}}}');
    const both = v.createToken({ policies: ['app', 'app-deny'], ttl: 3600 });
    expect((await call(v, 'GET', 'secret/data/app/db', { token: both.id })).status).toBe(403);
    v.setPolicy('app-write', { 'secret/data/app/*': ['update'] });
    const merged = v.createToken({ policies: ['app', 'app-write'], ttl: 3600 });
    expect((await call(v, 'GET', 'secret/data/app/db', { token: merged.id })).status).toBe(200);
    expect((await call(v, 'POST', 'secret/data/app/db', { token: merged.id, body: { data: { password: 'canary-app' } } })).status).toBe(200);
  });

  it('decides create versus update by existence, as Vault does for KV', async () => {
    const t = v.createToken({ policies: ['app'], ttl: 3600 });
    const fresh = await call(v, 'POST', 'secret/data/new-only/fresh', { token: t.id, body: { data: { a: 1 } } });
    expect(fresh.status).toBe(200);
    const again = await call(v, 'POST', 'secret/data/new-only/fresh', { token: t.id, body: { data: { a: 2 } } });
    expect(again.status).toBe(403);
    expect(v.requests.all({ path: 'secret/data/new-only/fresh' }).map((r) => r.operation)).toEqual(['create', 'update']);
  });

  it('hides a missing mount behind 403 unless the token may go there (root: 404 no handler)', async () => {
    const t = v.createToken({ policies: ['app'], ttl: 3600 });
    const weak = await call(v, 'GET', 'nomount/thing', { token: t.id });
    expect(weak.status).toBe(403);
    expect(weak.json).toEqual({ errors: [PERMISSION_DENIED] });
    const root = await call(v, 'GET', 'nomount/thing');
    expect(root.status).toBe(404);
    expect(root.json).toEqual({ errors: ['no handler for route "nomount/thing". route entry not found.'] });
    const path = await call(v, 'GET', 'auth/token/no-such-endpoint');
    expect(path.status).toBe(404);
    expect(path.json).toEqual({ errors: [multierror(['unsupported path'])] });
    const op = await call(v, 'DELETE', 'auth/token/lookup-self');
    expect(op.status).toBe(405);
    expect(op.json).toEqual({ errors: [multierror(['unsupported operation'])] });
  });

  it('writes and reads policies through sys/policies/acl, and enforces what was written', async () => {
    const hcl = 'path "secret/data/written/*" {\n  capabilities = ["read", "create", "update"]\n}\n';
    expect((await call(v, 'PUT', 'sys/policies/acl/written', { body: { policy: hcl } })).status).toBe(204);
    const r = await call(v, 'GET', 'sys/policies/acl/written');
    expect(r.json.data).toEqual({ name: 'written', policy: hcl });
    const bad = await call(v, 'PUT', 'sys/policies/acl/broken', { body: { policy: 'path "x" { capabilities = ["fly"] }' } });
    expect(bad.status).toBe(400);
    const t = v.createToken({ policies: ['written'], ttl: 3600 });
    expect((await call(v, 'POST', 'secret/data/written/x', { token: t.id, body: { data: { a: 1 } } })).status).toBe(200);
    expect((await call(v, 'GET', 'secret/data/app/db', { token: t.id })).status).toBe(403);
    const caps = await call(v, 'POST', 'sys/capabilities-self', { token: t.id, body: { paths: ['secret/data/written/x'] } });
    expect(caps.json.data.capabilities).toEqual(['create', 'read', 'update']);
  });

  it('creates tokens over HTTP, renews from now within the max TTL (with Vault\'s warning), and expires them on the clock', async () => {
    const c = await call(v, 'POST', 'auth/token/create', { body: { policies: ['app'], ttl: '30m', explicit_max_ttl: '1h', display_name: 'ci' } });
    expect(c.status).toBe(200);
    expect(c.json.data).toBeNull();
    expect(Object.keys(c.json.auth)).toEqual(AUTH_KEYS);
    expect(c.json.auth).toMatchObject({ policies: ['app', 'default'], token_policies: ['app', 'default'], lease_duration: 1800, renewable: true, token_type: 'service', orphan: false });
    const tok: string = c.json.auth.client_token;
    expect(tok).toMatch(/^hvs\./);

    const look = await call(v, 'GET', 'auth/token/lookup-self', { token: tok });
    expect(look.json.data).toMatchObject({ display_name: 'token-ci', ttl: 1800, creation_ttl: 1800, explicit_max_ttl: 3600, path: 'auth/token/create', policies: ['app', 'default'] });

    await v.advance(25 * 60 * 1000);
    const r1 = await call(v, 'PUT', 'auth/token/renew-self', { token: tok, body: { increment: '10m' } });
    expect(r1.status).toBe(200);
    expect(r1.json).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, data: null, warnings: null });
    expect(r1.json.auth.client_token).toBe(tok);
    expect(r1.json.auth.lease_duration).toBe(600);
    const r2 = await call(v, 'PUT', 'auth/token/renew-self', { token: tok, body: { increment: '2h' } });
    expect(r2.json.auth.lease_duration).toBe(35 * 60);
    expect(r2.json.warnings).toEqual(['TTL of "2h" exceeded the effective max_ttl of "35m"; TTL value is capped accordingly']);
    const after = await call(v, 'GET', 'auth/token/lookup-self', { token: tok });
    expect(after.json.data.last_renewal_time).toBe(Math.floor(v.clock.now() / 1000));

    await v.advance(35 * 60 * 1000 - 1000);
    expect((await call(v, 'GET', 'auth/token/lookup-self', { token: tok })).status).toBe(200);
    await v.advance(1000);
    const gone = await call(v, 'GET', 'auth/token/lookup-self', { token: tok });
    expect(gone.status).toBe(403);
    expect(gone.json).toEqual({ errors: [INVALID_TOKEN] });
  });

  it('uses the pre-1.17 invalid-token text when configured', async () => {
    const legacy = await start({ invalidTokenError: 'legacy' });
    try {
      const r = await call(legacy, 'GET', 'auth/token/lookup-self', { token: 'hvs.gone' });
      expect(r.status).toBe(403);
      expect(r.json).toEqual({ errors: ['permission denied'] });
    } finally {
      await legacy.close();
    }
  });

  it('revoke-self ends the token and its children', async () => {
    v.setPolicy('tokens', { 'auth/token/create': ['update'] });
    const parent = v.createToken({ policies: ['app', 'tokens'], ttl: 3600 });
    const denied = await call(v, 'POST', 'auth/token/create', { token: v.createToken({ policies: ['app'], ttl: 60 }).id, body: {} });
    expect(denied.status).toBe(403);
    const child = await call(v, 'POST', 'auth/token/create', { token: parent.id, body: { policies: ['app'] } });
    expect(child.status).toBe(200);
    const sub = await call(v, 'POST', 'auth/token/create', { token: parent.id, body: { policies: ['written'] } });
    expect(sub.status).toBe(400);
    expect(sub.json).toEqual({ errors: ['child policies must be subset of parent'] });
    expect((await call(v, 'POST', 'auth/token/revoke-self', { token: parent.id })).status).toBe(204);
    expect((await call(v, 'GET', 'auth/token/lookup-self', { token: parent.id })).status).toBe(403);
    expect((await call(v, 'GET', 'auth/token/lookup-self', { token: child.json.auth.client_token })).status).toBe(403);
  });
});

// ------------------------------------------------------------------------------------------------

describe('kubernetes auth', () => {
  let v: VaultServer;
  beforeAll(async () => {
    v = await start();
    const k8s = v.enableKubernetesAuth();
    k8s.setRole('payments-keyless', {
      bound_service_account_names: ['keyless', 'keyless-*'],
      bound_service_account_namespaces: 'payments',
      token_policies: ['payments'],
      token_ttl: '1h',
      token_max_ttl: '2h',
    });
    k8s.setRole('aud', { bound_service_account_names: '*', bound_service_account_namespaces: ['payments'], audience: 'vault' });
  });
  afterAll(async () => {
    await v.close();
  });

  it('logs a service account in with the documented auth block', async () => {
    const jwt = v.root.kubernetes().mintJwt({ namespace: 'payments', serviceAccount: 'keyless', podName: 'keyless-0' });
    const r = await call(v, 'POST', 'auth/kubernetes/login', { token: null, body: { role: 'payments-keyless', jwt } });
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(ENVELOPE_KEYS);
    expect(r.json).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, data: null, warnings: null, mount_type: 'kubernetes' });
    expect(Object.keys(r.json.auth)).toEqual(AUTH_KEYS);
    const uid = v.root.kubernetes().issuer.uidOf('payments', 'keyless');
    expect(r.json.auth).toMatchObject({
      policies: ['default', 'payments'],
      token_policies: ['default', 'payments'],
      metadata: { role: 'payments-keyless', service_account_name: 'keyless', service_account_namespace: 'payments', service_account_secret_name: '', service_account_uid: uid },
      lease_duration: 3600,
      renewable: true,
      token_type: 'service',
      orphan: true,
      mfa_requirement: null,
      num_uses: 0,
    });
    expect(Object.keys(r.json.auth.metadata)).toEqual(['role', 'service_account_name', 'service_account_namespace', 'service_account_secret_name', 'service_account_uid']);
    const look = await call(v, 'GET', 'auth/token/lookup-self', { token: r.json.auth.client_token });
    expect(look.json.data).toMatchObject({ display_name: 'kubernetes-payments-keyless', path: 'auth/kubernetes/login', ttl: 3600, entity_id: r.json.auth.entity_id });
    // Login ignores a token header, even a bad one.
    const withBad = await call(v, 'POST', 'auth/kubernetes/login', { token: 'hvs.garbage', body: { role: 'payments-keyless', jwt } });
    expect(withBad.status).toBe(200);
    // A glob-bound name and an unknown body field (warning).
    const other = v.root.kubernetes().mintJwt({ namespace: 'payments', serviceAccount: 'keyless-canary' });
    const w = await call(v, 'POST', 'auth/kubernetes/login', { token: null, body: { role: 'payments-keyless', jwt: other, extra: 1 } });
    expect(w.status).toBe(200);
    expect(w.json.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [extra]']);
  });

  it('renews the login token within the role max TTL', async () => {
    const jwt = v.root.kubernetes().mintJwt({ namespace: 'payments', serviceAccount: 'keyless' });
    const tok: string = (await call(v, 'POST', 'auth/kubernetes/login', { token: null, body: { role: 'payments-keyless', jwt } })).json.auth.client_token;
    await v.advance(50 * 60 * 1000);
    const r1 = await call(v, 'POST', 'auth/token/renew-self', { token: tok });
    expect(r1.json.auth.lease_duration).toBe(3600);
    expect(r1.json.warnings).toBeNull();
    await v.advance(50 * 60 * 1000);
    const r2 = await call(v, 'POST', 'auth/token/renew-self', { token: tok });
    expect(r2.json.auth.lease_duration).toBe(20 * 60);
    expect(r2.json.warnings).toEqual(['TTL of "1h" exceeded the effective max_ttl of "20m"; TTL value is capped accordingly']);
    await v.advance(20 * 60 * 1000 - 1000);
    expect((await call(v, 'GET', 'auth/token/lookup-self', { token: tok })).status).toBe(200);
    await v.advance(1000);
    expect((await call(v, 'GET', 'auth/token/lookup-self', { token: tok })).status).toBe(403);
  });

  it('answers each spec\'d login error with its status and text', async () => {
    const k8s = v.root.kubernetes();
    const good = k8s.mintJwt({ namespace: 'payments', serviceAccount: 'keyless' });
    const cases: Array<[unknown, number, string]> = [
      [{ jwt: good }, 400, 'missing role'],
      [{ role: '', jwt: good }, 400, 'missing role'],
      [{ role: 'payments-keyless' }, 400, 'missing jwt'],
      [{ role: 'myapp', jwt: good }, 400, 'invalid role name "myapp"'],
      [{ role: 'payments-keyless', jwt: k8s.mintJwt({ namespace: 'orders', serviceAccount: 'keyless' }) }, 403, 'namespace not authorized'],
      [{ role: 'payments-keyless', jwt: k8s.mintJwt({ namespace: 'payments', serviceAccount: 'web' }) }, 403, 'service account name not authorized'],
      [{ role: 'payments-keyless', jwt: new ServiceAccountIssuer().mint({ namespace: 'payments', serviceAccount: 'keyless' }, v.clock.now()) }, 403, 'permission denied'],
      [{ role: 'payments-keyless', jwt: `${good.slice(0, -4)}AAAA` }, 403, 'permission denied'],
      [{ role: 'payments-keyless', jwt: k8s.mintJwt({ namespace: 'payments', serviceAccount: 'keyless', ttlSeconds: -10 }) }, 403, 'permission denied'],
      [{ role: 'aud', jwt: k8s.mintJwt({ namespace: 'payments', serviceAccount: 'x', audience: 'other' }) }, 403, 'permission denied'],
      [{ role: 'payments-keyless', jwt: 'not-a-jwt' }, 403, 'go-jose/go-jose: compact JWS format must have three parts'],
    ];
    for (const [body, status, message] of cases) {
      const r = await call(v, 'POST', 'auth/kubernetes/login', { token: null, body });
      expect({ body, status: r.status, json: r.json }).toEqual({ body, status, json: { errors: [message] } });
    }
    expect((await call(v, 'POST', 'auth/kubernetes/login', { token: null, body: { role: 'aud', jwt: k8s.mintJwt({ namespace: 'payments', serviceAccount: 'x', audience: 'vault' }) } })).status).toBe(200);
  });

  it('verifies against configured pem_keys (RS256 too), and a missing auth mount is 403, or 404 for root', async () => {
    const rsa = new ServiceAccountIssuer({ alg: 'RS256' });
    const mount = v.enableKubernetesAuth({ path: 'k8s-rsa', issuer: rsa });
    mount.setRole('r', { bound_service_account_names: 'sa', bound_service_account_namespaces: 'ns' });
    const jwt = rsa.mint({ namespace: 'ns', serviceAccount: 'sa' }, v.clock.now());
    expect((await call(v, 'POST', 'auth/k8s-rsa/login', { token: null, body: { role: 'r', jwt } })).status).toBe(200);
    const es = v.root.kubernetes().mintJwt({ namespace: 'ns', serviceAccount: 'sa' });
    expect((await call(v, 'POST', 'auth/k8s-rsa/login', { token: null, body: { role: 'r', jwt: es } })).json).toEqual({ errors: ['permission denied'] });
    const missing = await call(v, 'POST', 'auth/nokube/login', { token: null, body: { role: 'r', jwt } });
    expect(missing.status).toBe(403);
    expect(missing.json).toEqual({ errors: ['permission denied'] });
    const rootMissing = await call(v, 'POST', 'auth/nokube/login', { body: { role: 'r', jwt } });
    expect(rootMissing.status).toBe(404);
    expect(rootMissing.json).toEqual({ errors: ['no handler for route "auth/nokube/login". route entry not found.'] });
  });
});

// ------------------------------------------------------------------------------------------------

describe('approle auth', () => {
  it('logs in with role_id and secret_id; each error has its status and text', async () => {
    const v = await start();
    try {
      const ar = v.enableAppRole();
      ar.setRole('ci', { token_policies: 'ci', token_ttl: '20m', secret_id_num_uses: 2 });
      const roleId = (await call(v, 'GET', 'auth/approle/role/ci/role-id')).json.data.role_id as string;
      expect(roleId).toBe(ar.roleId('ci'));
      const sid = await call(v, 'POST', 'auth/approle/role/ci/secret-id');
      expect(sid.status).toBe(200);
      const secretId = sid.json.data.secret_id as string;
      const r = await call(v, 'POST', 'auth/approle/login', { token: null, body: { role_id: roleId, secret_id: secretId } });
      expect(r.status).toBe(200);
      expect(r.json.mount_type).toBe('approle');
      expect(r.json.auth).toMatchObject({ policies: ['ci', 'default'], metadata: { role_name: 'ci' }, lease_duration: 1200, renewable: true, token_type: 'service', orphan: true });
      expect((await call(v, 'GET', 'auth/token/lookup-self', { token: r.json.auth.client_token })).json.data.display_name).toBe('approle');
      const errs: Array<[unknown, string]> = [
        [{ secret_id: secretId }, 'missing role_id'],
        [{ role_id: 'nope', secret_id: secretId }, 'invalid role or secret ID'],
        [{ role_id: roleId }, 'missing secret_id'],
        [{ role_id: roleId, secret_id: 'nope' }, 'invalid role or secret ID'],
      ];
      for (const [body, msg] of errs) {
        const e = await call(v, 'POST', 'auth/approle/login', { token: null, body });
        expect({ status: e.status, json: e.json }).toEqual({ status: 400, json: { errors: [msg] } });
      }
      // secret_id_num_uses = 2: the second use is the last.
      expect((await call(v, 'POST', 'auth/approle/login', { token: null, body: { role_id: roleId, secret_id: secretId } })).status).toBe(200);
      expect((await call(v, 'POST', 'auth/approle/login', { token: null, body: { role_id: roleId, secret_id: secretId } })).json).toEqual({ errors: ['invalid role or secret ID'] });
    } finally {
      await v.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('KV v2', () => {
  let v: VaultServer;
  beforeAll(async () => {
    v = await start();
  });
  afterAll(async () => {
    await v.close();
  });

  it('writes versions, reads latest or pinned, and reports metadata', async () => {
    const w1 = await call(v, 'POST', 'secret/data/payments/stripe', { body: { data: { api_key: 'canary-v1' } } });
    expect(w1.status).toBe(200);
    expect(Object.keys(w1.json.data)).toEqual(['created_time', 'custom_metadata', 'deletion_time', 'destroyed', 'version']);
    expect(w1.json.data).toMatchObject({ custom_metadata: null, deletion_time: '', destroyed: false, version: 1 });
    expect(w1.json.data.created_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    await v.advance(1000);
    const w2 = await call(v, 'PUT', 'secret/data/payments/stripe', { body: { data: { api_key: 'canary-v2' }, options: { cas: 1 } } });
    expect(w2.json.data.version).toBe(2);
    const latest = await call(v, 'GET', 'secret/data/payments/stripe');
    expect(latest.json.data.data).toEqual({ api_key: 'canary-v2' });
    expect(latest.json.data.metadata.version).toBe(2);
    expect((await call(v, 'GET', 'secret/data/payments/stripe?version=0')).json.data.metadata.version).toBe(2);
    const pinned = await call(v, 'GET', 'secret/data/payments/stripe?version=1');
    expect(pinned.json.data.data).toEqual({ api_key: 'canary-v1' });
    expect((await call(v, 'GET', 'secret/data/payments/stripe?version=7')).json).toEqual({ errors: [] });
    expect((await call(v, 'GET', 'secret/data/payments/none')).json).toEqual({ errors: [] });
    const meta = await call(v, 'GET', 'secret/metadata/payments/stripe');
    expect(meta.json.data).toMatchObject({ cas_required: false, current_version: 2, oldest_version: 1, max_versions: 0, delete_version_after: '0s', custom_metadata: null });
    expect(Object.keys(meta.json.data.versions)).toEqual(['1', '2']);
    expect((await call(v, 'GET', 'secret/metadata/payments/none')).json).toEqual({ errors: [] });
    expect((await call(v, 'LIST', 'secret/metadata/payments')).json.data).toEqual({ keys: ['stripe'] });
    expect((await call(v, 'LIST', 'secret/metadata/nothing-here')).status).toBe(404);
  });

  it('soft-deletes (404 with full envelope, no errors key), undeletes, destroys', async () => {
    await call(v, 'POST', 'secret/data/soft', { body: { data: { p: 'one' } } });
    await call(v, 'POST', 'secret/data/soft', { body: { data: { p: 'two' } } });
    expect((await call(v, 'DELETE', 'secret/data/soft')).status).toBe(204);
    const d = await call(v, 'GET', 'secret/data/soft');
    expect(d.status).toBe(404);
    expect(Object.keys(d.json)).toEqual(ENVELOPE_KEYS);
    expect(d.json).not.toHaveProperty('errors');
    expect(d.json.mount_type).toBe('');
    expect(d.json.data.data).toBeNull();
    expect(d.json.data.metadata).toMatchObject({ version: 2, destroyed: false });
    expect(d.json.data.metadata.deletion_time).not.toBe('');
    expect((await call(v, 'GET', 'secret/data/soft?version=1')).json.data.data).toEqual({ p: 'one' });
    expect((await call(v, 'POST', 'secret/undelete/soft', { body: { versions: [2] } })).status).toBe(204);
    expect((await call(v, 'GET', 'secret/data/soft')).json.data.data).toEqual({ p: 'two' });
    expect((await call(v, 'POST', 'secret/delete/soft', { body: { versions: [1] } })).status).toBe(204);
    expect((await call(v, 'GET', 'secret/data/soft?version=1')).status).toBe(404);
    expect((await call(v, 'PUT', 'secret/destroy/soft', { body: { versions: [2] } })).status).toBe(204);
    const gone = await call(v, 'GET', 'secret/data/soft');
    expect(gone.status).toBe(404);
    expect(gone.json.data.metadata.destroyed).toBe(true);
    expect((await call(v, 'POST', 'secret/undelete/soft', { body: { versions: [2] } })).status).toBe(204);
    expect((await call(v, 'GET', 'secret/data/soft')).status).toBe(404);
    const nover = await call(v, 'POST', 'secret/delete/soft', { body: {} });
    expect(nover.json).toEqual({ errors: ['no version number provided'] });
    expect((await call(v, 'DELETE', 'secret/metadata/soft')).status).toBe(204);
    expect((await call(v, 'GET', 'secret/metadata/soft')).status).toBe(404);
  });

  it('check-and-set and write errors', async () => {
    const e = (r: CallResult): unknown => ({ status: r.status, json: r.json });
    expect(e(await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 1 }, data: { a: 1 } } }))).toEqual({ status: 400, json: { errors: ['check-and-set parameter did not match the current version'] } });
    expect((await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 0 }, data: { a: 1 } } })).status).toBe(200);
    expect(e(await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 0 }, data: { a: 2 } } }))).toEqual({ status: 400, json: { errors: ['check-and-set parameter did not match the current version'] } });
    expect(e(await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 'x' }, data: { a: 2 } } }))).toEqual({ status: 400, json: { errors: ['error parsing check-and-set parameter'] } });
    expect(e(await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 1 } } }))).toEqual({ status: 400, json: { errors: ['no data provided'] } });
    expect((await call(v, 'POST', 'secret/metadata/cas', { body: { cas_required: true } })).status).toBe(204);
    expect(e(await call(v, 'POST', 'secret/data/cas', { body: { data: { a: 3 } } }))).toEqual({ status: 400, json: { errors: ['check-and-set parameter required for this call'] } });
    expect((await call(v, 'POST', 'secret/data/cas', { body: { options: { cas: 1 }, data: { a: 3 } } })).json.data.version).toBe(2);
    const warn = await call(v, 'POST', 'secret/data/warn', { body: { data: { a: 1 }, bogus: true } });
    expect(warn.json.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [bogus]']);
  });

  it('a v1-style path on a v2 mount is a 404 envelope with Vault\'s warning', async () => {
    const r = await call(v, 'GET', 'secret/payments/stripe');
    expect(r.status).toBe(404);
    expect(r.json).not.toHaveProperty('errors');
    expect(r.json.data).toBeNull();
    expect(r.json.warnings).toEqual(["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."]);
  });

  it('prunes past max_versions and merges PATCHes', async () => {
    await call(v, 'POST', 'secret/metadata/pruned', { body: { max_versions: 2 } });
    for (const n of [1, 2, 3]) await call(v, 'POST', 'secret/data/pruned', { body: { data: { n } } });
    expect((await call(v, 'GET', 'secret/data/pruned?version=1')).json).toEqual({ errors: [] });
    expect((await call(v, 'GET', 'secret/data/pruned?version=2')).json.data.data).toEqual({ n: 2 });
    expect((await call(v, 'GET', 'secret/metadata/pruned')).json.data.oldest_version).toBe(2);
    const p = await call(v, 'PATCH', 'secret/data/pruned', { body: { data: { extra: 'x', n: null } }, headers: { 'Content-Type': 'application/merge-patch+json' } });
    expect(p.status).toBe(200);
    expect(p.json.data.version).toBe(4);
    expect((await call(v, 'GET', 'secret/data/pruned')).json.data.data).toEqual({ extra: 'x' });
    const missing = await call(v, 'PATCH', 'secret/data/not-there', { body: { data: { a: 1 } }, headers: { 'Content-Type': 'application/merge-patch+json' } });
    expect(missing.status).toBe(404);
  });
});

describe('KV v1', () => {
  it('reads with the mount TTL or the secret\'s ttl, lists, writes 204, 404 when missing', async () => {
    const v = await start();
    try {
      v.enableKv('kv', { version: 1 });
      expect((await call(v, 'POST', 'kv/orders/db', { body: { username: 'orders', password: 'canary-kv1' } })).status).toBe(204);
      const r = await call(v, 'GET', 'kv/orders/db');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ lease_id: '', renewable: false, lease_duration: 2764800, data: { password: 'canary-kv1', username: 'orders' }, mount_type: 'kv' });
      await call(v, 'PUT', 'kv/orders/short', { body: { token: 't', ttl: '1h' } });
      expect((await call(v, 'GET', 'kv/orders/short')).json.lease_duration).toBe(3600);
      expect((await call(v, 'LIST', 'kv/orders')).json.data).toEqual({ keys: ['db', 'short'] });
      expect((await call(v, 'GET', 'kv/orders/none')).json).toEqual({ errors: [] });
      expect((await call(v, 'DELETE', 'kv/orders/db')).status).toBe(204);
      expect((await call(v, 'GET', 'kv/orders/db')).status).toBe(404);
    } finally {
      await v.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

async function pgLogin(user: string, password: string): Promise<string> {
  const c = new pg.Client({ host: pgInfo.host, port: pgInfo.port, user, password, database: 'keyless_test' });
  await c.connect();
  try {
    return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
  } finally {
    await c.end();
  }
}

function roleExists(name: string): boolean {
  return adminSql(pgInfo, `SELECT count(*) FROM pg_roles WHERE rolname = '${name.replace(/'/g, "''")}'`).trim() === '1';
}

function validUntil(name: string): number {
  const s = adminSql(pgInfo, `SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = '${name.replace(/'/g, "''")}'`).trim();
  return Number(s) * 1000;
}

const CONNECTION = {
  plugin_name: 'postgresql-database-plugin',
  connection_url: `postgresql://{{username}}:{{password}}@${pgInfo.host}:${pgInfo.port}/keyless_test?sslmode=disable`,
  username: pgInfo.admin.user,
  password: pgInfo.admin.password,
};
const CREATE = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT CONNECT ON DATABASE keyless_test TO "{{name}}";`];

describe('database secrets engine and leases (real PostgreSQL)', () => {
  let v: VaultServer;
  const issued: string[] = [];
  beforeAll(async () => {
    v = await start();
    const db = v.enableDatabase();
    await db.configure('pg', { ...CONNECTION, allowed_roles: ['readonly', 'short', 'owner'] });
    db.setRole('readonly', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '24h' });
    db.setRole('short', { db_name: 'pg', creation_statements: CREATE, default_ttl: 60, max_ttl: 120 });
    db.setRole('owner', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h' });
    db.setRole('not-allowed', { db_name: 'pg', creation_statements: CREATE });
    v.setPolicy('db', { 'database/creds/*': ['read'] });
  });
  afterAll(async () => {
    await v.close();
    for (const u of issued) if (roleExists(u)) adminSql(pgInfo, `DROP OWNED BY "${u}"; DROP ROLE "${u}";`, 'keyless_test');
  });

  async function creds(role: string, token?: string): Promise<CallResult> {
    const r = await call(v, 'GET', `database/creds/${role}`, token ? { token } : {});
    if (r.status === 200) issued.push(r.json.data.username);
    return r;
  }

  it('issues a real PostgreSQL role with VALID UNTIL, in Vault\'s username, password and lease formats', async () => {
    const r = await creds('readonly');
    expect(r.status).toBe(200);
    expect(Object.keys(r.json)).toEqual(ENVELOPE_KEYS);
    expect(r.json).toMatchObject({ renewable: true, lease_duration: 3600, mount_type: 'database' });
    expect(r.json.lease_id).toMatch(/^database\/creds\/readonly\/[A-Za-z0-9]{24}$/);
    const { username, password } = r.json.data as { username: string; password: string };
    expect(Object.keys(r.json.data)).toEqual(['password', 'username']);
    expect(username).toMatch(new RegExp(`^v-root-readonly-[A-Za-z0-9]{20}-${Math.floor(v.clock.now() / 1000)}$`));
    expect(password).toMatch(/^[A-Za-z0-9-]{20}$/);
    expect(password).toMatch(/[a-z]/);
    expect(password).toMatch(/[A-Z]/);
    expect(password).toMatch(/[0-9]/);
    expect(password).toContain('-');
    expect(roleExists(username)).toBe(true);
    expect(validUntil(username)).toBe(Math.floor(v.clock.now() / 1000) * 1000 + 3605 * 1000);
    expect(await pgLogin(username, password)).toBe(username);
    await expect(pgLogin(username, 'wrong-password')).rejects.toThrow(/password authentication failed/);
  });

  it('renews from now (moving VALID UNTIL), caps at max TTL with the warning, and drops the role when the lease expires', async () => {
    const r = await creds('short');
    const { username, password } = r.json.data as { username: string; password: string };
    const leaseId: string = r.json.lease_id;
    expect(r.json.lease_duration).toBe(60);
    await v.advance(50_000);
    const r1 = await call(v, 'PUT', 'sys/leases/renew', { body: { lease_id: leaseId, increment: 60 } });
    expect(r1.status).toBe(200);
    expect(Object.keys(r1.json)).toEqual(ENVELOPE_KEYS);
    expect(r1.json).toMatchObject({ lease_id: leaseId, renewable: true, lease_duration: 60, data: null, warnings: null, auth: null });
    expect(validUntil(username)).toBe(Math.floor(v.clock.now() / 1000) * 1000 + 65_000);
    const look = await call(v, 'PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } });
    expect(look.json.data).toMatchObject({ id: leaseId, renewable: true, ttl: 60 });
    expect(look.json.data.last_renewal).not.toBeNull();
    expect(Object.keys(look.json.data)).toEqual(['expire_time', 'id', 'issue_time', 'last_renewal', 'renewable', 'ttl']);
    await v.advance(50_000);
    const r2 = await call(v, 'POST', `sys/leases/renew/${leaseId}`, { body: { increment: '1m' } });
    expect(r2.json.lease_duration).toBe(20);
    expect(r2.json.warnings).toEqual(['TTL of "1m" exceeded the effective max_ttl of "20s"; TTL value is capped accordingly']);
    expect(await pgLogin(username, password)).toBe(username);
    await v.advance(19_000);
    expect(roleExists(username)).toBe(true);
    await v.advance(1_000);
    expect(roleExists(username)).toBe(false);
    await expect(pgLogin(username, password)).rejects.toThrow(/password authentication failed/);
    const after = await call(v, 'PUT', 'sys/leases/renew', { body: { lease_id: leaseId } });
    expect(after.status).toBe(400);
    expect(after.json).toEqual({ errors: ['lease not found'] });
    expect((await call(v, 'PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).json).toEqual({ errors: ['invalid lease'] });
  });

  it('revocation drops the role after reassigning what it owned; unknown leases revoke with 204', async () => {
    const r = await creds('owner');
    const { username, password } = r.json.data as { username: string; password: string };
    const table = `owned_${username.slice(-10).toLowerCase().replace(/[^a-z0-9]/g, '')}`;
    const c = new pg.Client({ host: pgInfo.host, port: pgInfo.port, user: username, password, database: 'keyless_test' });
    await c.connect();
    await c.query(`CREATE TABLE ${table} (x int)`);
    const rev = await call(v, 'PUT', 'sys/leases/revoke', { body: { lease_id: r.json.lease_id } });
    expect(rev.status).toBe(204);
    expect(rev.text).toBe('');
    expect(roleExists(username)).toBe(false);
    // As with a real Vault, a session opened before revocation is not terminated.
    expect((await c.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
    await c.end();
    await expect(pgLogin(username, password)).rejects.toThrow(/password authentication failed/);
    expect(adminSql(pgInfo, `SELECT tableowner FROM pg_tables WHERE tablename = '${table}'`, 'keyless_test').trim()).toBe('postgres');
    adminSql(pgInfo, `DROP TABLE ${table}`, 'keyless_test');
    expect((await call(v, 'PUT', 'sys/leases/revoke', { body: { lease_id: r.json.lease_id } })).status).toBe(204);
    const async = await creds('owner');
    const a = await call(v, 'PUT', 'sys/leases/revoke', { body: { lease_id: async.json.lease_id, sync: false } });
    expect(a.status).toBe(202);
    await v.settle();
    expect(roleExists(async.json.data.username)).toBe(false);
  });

  it('revoking the token that read the credentials revokes their lease and drops the role', async () => {
    const t = v.createToken({ policies: ['db'], ttl: 3600 });
    const r = await creds('readonly', t.id);
    expect(r.json.data.username).toMatch(/^v-token-readonly-/);
    expect(roleExists(r.json.data.username)).toBe(true);
    expect((await call(v, 'POST', 'auth/token/revoke-self', { token: t.id })).status).toBe(204);
    expect(roleExists(r.json.data.username)).toBe(false);
    expect(v.leases().some((l) => l.id === r.json.lease_id)).toBe(false);
  });

  it('token expiry on the clock revokes the token\'s leases too', async () => {
    const t = v.createToken({ policies: ['db'], ttl: 300 });
    const r = await creds('readonly', t.id);
    await v.advance(300_000);
    expect(roleExists(r.json.data.username)).toBe(false);
  });

  it('answers the spec\'d errors: unknown role 400, disallowed role 500, lease_id missing, revoke not in default policy', async () => {
    const unknown = await call(v, 'GET', 'database/creds/nope');
    expect({ s: unknown.status, j: unknown.json }).toEqual({ s: 400, j: { errors: ['unknown role: nope'] } });
    const na = await call(v, 'GET', 'database/creds/not-allowed');
    expect({ s: na.status, j: na.json }).toEqual({ s: 500, j: { errors: [multierror(['"not-allowed" is not an allowed role'])] } });
    expect((await call(v, 'PUT', 'sys/leases/renew', { body: {} })).json).toEqual({ errors: ['lease_id must be specified'] });
    const t = v.createToken({ policies: ['db'], ttl: 3600 });
    const r = await creds('readonly', t.id);
    expect((await call(v, 'PUT', 'sys/leases/renew', { token: t.id, body: { lease_id: r.json.lease_id } })).status).toBe(200);
    expect((await call(v, 'PUT', 'sys/leases/lookup', { token: t.id, body: { lease_id: r.json.lease_id } })).status).toBe(200);
    const rv = await call(v, 'PUT', 'sys/leases/revoke', { token: t.id, body: { lease_id: r.json.lease_id } });
    expect(rv.status).toBe(403);
    expect(rv.json).toEqual({ errors: [PERMISSION_DENIED] });
    expect((await call(v, 'PUT', 'sys/leases/renew', { body: { lease_id: 'auth/kubernetes/login/abc' } })).json).toEqual({ errors: ['tokens cannot be renewed through this endpoint'] });
  });

  it('static roles: rotated on creation, on their period, and on rotate-role', async () => {
    const user = `vt_static_${Math.floor(Math.random() * 1e9)}`;
    adminSql(pgInfo, `CREATE ROLE ${user} LOGIN PASSWORD 'initial-password';`);
    issued.push(user);
    const db = v.root.database();
    expect((await call(v, 'POST', 'database/static-roles/app-static', { body: { db_name: 'pg', username: user, rotation_period: '1h' } })).status).toBe(204);
    await expect(pgLogin(user, 'initial-password')).rejects.toThrow(/password authentication failed/);
    const s1 = await call(v, 'GET', 'database/static-creds/app-static');
    expect(s1.status).toBe(200);
    expect(s1.json).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, mount_type: 'database' });
    expect(s1.json.data).toMatchObject({ username: user, rotation_period: 3600, ttl: 3600 });
    expect(Object.keys(s1.json.data)).toEqual(['last_vault_rotation', 'password', 'rotation_period', 'ttl', 'username']);
    expect(await pgLogin(user, s1.json.data.password)).toBe(user);
    await v.advance(600_000);
    expect((await call(v, 'GET', 'database/static-creds/app-static')).json.data.ttl).toBe(3000);
    await v.advance(3_000_000);
    const s2 = await call(v, 'GET', 'database/static-creds/app-static');
    expect(s2.json.data.password).not.toBe(s1.json.data.password);
    expect(s2.json.data.ttl).toBe(3600);
    await expect(pgLogin(user, s1.json.data.password)).rejects.toThrow(/password authentication failed/);
    expect(await pgLogin(user, s2.json.data.password)).toBe(user);
    expect((await call(v, 'POST', 'database/rotate-role/app-static')).status).toBe(204);
    const s3 = await call(v, 'GET', 'database/static-creds/app-static');
    expect(s3.json.data.password).not.toBe(s2.json.data.password);
    expect(await pgLogin(user, s3.json.data.password)).toBe(user);
    expect((await call(v, 'GET', 'database/static-creds/nope')).json).toEqual({ errors: ['unknown role: nope'] });
    void db;
  });

  it('is configurable over HTTP as with a real Vault; a connection that cannot log in is refused', async () => {
    const bad = await call(v, 'POST', 'database/config/badpg', { body: { ...CONNECTION, password: 'wrong', allowed_roles: '*' } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0]).toMatch(/^error creating database object: error verifying connection: .*password authentication failed/);
    expect((await call(v, 'POST', 'database/config/pg2', { body: { ...CONNECTION, allowed_roles: 'http-*' } })).status).toBe(204);
    const cfg = await call(v, 'GET', 'database/config/pg2');
    expect(cfg.json.data).toMatchObject({ allowed_roles: ['http-*'], plugin_name: 'postgresql-database-plugin', connection_details: { username: 'postgres' } });
    expect(cfg.text).not.toContain(pgInfo.admin.password);
    expect((await call(v, 'POST', 'database/roles/http-ro', { body: { db_name: 'pg2', creation_statements: CREATE.join(' '), default_ttl: '10m' } })).status).toBe(204);
    const r = await creds('http-ro');
    expect(r.status).toBe(200);
    expect(r.json.lease_duration).toBe(600);
    expect(await pgLogin(r.json.data.username, r.json.data.password)).toBe(r.json.data.username);
    const badSql = await call(v, 'POST', 'database/roles/http-bad', { body: { db_name: 'pg2', creation_statements: 'CREATE ROLLE "{{name}}";' } });
    expect(badSql.status).toBe(204);
    const fail = await call(v, 'GET', 'database/creds/http-bad');
    expect(fail.status).toBe(500);
    expect(fail.json.errors[0]).toMatch(/^1 error occurred:\n\t\* failed to execute query: syntax error/);
  });
});

// ------------------------------------------------------------------------------------------------

describe('namespaces', () => {
  it('routes X-Vault-Namespace (or a path prefix) into the namespace; tokens stay in theirs', async () => {
    const v = await start();
    try {
      const team = v.namespace('team-a');
      team.enableKv('secret', { version: 2 }).put('app', { k: 'in-team-a' });
      v.kv2().put('app', { k: 'in-root' });
      team.setPolicy('reader', { 'secret/data/*': ['read'] });
      expect((await call(v, 'GET', 'secret/data/app', { namespace: 'team-a' })).json.data.data).toEqual({ k: 'in-team-a' });
      expect((await call(v, 'GET', 'team-a/secret/data/app')).json.data.data).toEqual({ k: 'in-team-a' });
      expect((await call(v, 'GET', 'secret/data/app')).json.data.data).toEqual({ k: 'in-root' });
      expect((await call(v, 'GET', 'secret/data/app', { namespace: '/team-a/' })).json.data.data).toEqual({ k: 'in-team-a' });
      const t = team.createToken({ policies: ['reader'], ttl: 3600 });
      expect(t.id).toMatch(new RegExp(`\\.${team.id}$`));
      expect((await call(v, 'GET', 'secret/data/app', { token: t.id, namespace: 'team-a' })).status).toBe(200);
      const inRoot = await call(v, 'GET', 'secret/data/app', { token: t.id });
      expect(inRoot.status).toBe(403);
      expect(inRoot.json).toEqual({ errors: [INVALID_TOKEN] });
      // A root-namespace policy reaches into the child by prefix.
      v.setPolicy('cross', { 'team-a/secret/data/*': ['read'] });
      const cross = v.createToken({ policies: ['cross'], ttl: 3600 });
      expect((await call(v, 'GET', 'secret/data/app', { token: cross.id, namespace: 'team-a' })).status).toBe(200);
      expect((await call(v, 'GET', 'secret/data/app', { token: cross.id })).status).toBe(403);
      const look = await call(v, 'GET', 'auth/token/lookup-self', { token: t.id, namespace: 'team-a' });
      expect(look.json.data.namespace_path).toBe('team-a/');
      const ns = await call(v, 'POST', 'sys/namespaces/team-b');
      expect(ns.json.data.path).toBe('team-b/');
      expect((await call(v, 'LIST', 'sys/namespaces')).json.data.keys).toEqual(['team-a/', 'team-b/']);
      expect(v.requests.count({ namespace: 'team-a/', path: 'secret/data/app' })).toBe(5);
    } finally {
      await v.close();
    }
  });

  it('puts the namespace id on lease ids; Vault CE mode ignores the header', async () => {
    const v = await start();
    try {
      const team = v.namespace('team-db');
      const db = team.enableDatabase();
      await db.configure('pg', { ...CONNECTION, allowed_roles: '*' });
      db.setRole('ro', { db_name: 'pg', creation_statements: CREATE, default_ttl: 60 });
      const r = await call(v, 'GET', 'database/creds/ro', { namespace: 'team-db' });
      expect(r.status).toBe(200);
      expect(r.json.lease_id).toMatch(new RegExp(`^database/creds/ro/[A-Za-z0-9]{24}\\.${team.id}$`));
      expect((await call(v, 'PUT', 'sys/leases/lookup', { body: { lease_id: r.json.lease_id } })).json).toEqual({ errors: ['invalid lease'] });
      expect((await call(v, 'PUT', 'sys/leases/revoke', { namespace: 'team-db', body: { lease_id: r.json.lease_id } })).status).toBe(204);
      expect(roleExists(r.json.data.username)).toBe(false);
    } finally {
      await v.close();
    }
    const ce = await start({ namespaces: false });
    try {
      ce.namespace('team-a').enableKv('secret', { version: 2 }).put('app', { k: 'child' });
      ce.kv2().put('app', { k: 'root' });
      expect((await call(ce, 'GET', 'secret/data/app', { namespace: 'team-a' })).json.data.data).toEqual({ k: 'root' });
    } finally {
      await ce.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('request log, interceptors and outages', () => {
  it('counts requests by path, operation, status and namespace', async () => {
    const v = await start();
    try {
      v.kv2().put('counted', { a: 1 });
      for (let i = 0; i < 3; i++) await call(v, 'GET', 'secret/data/counted');
      await call(v, 'GET', 'secret/data/other');
      await call(v, 'POST', 'secret/data/counted', { body: { data: { a: 2 } } });
      expect(v.requests.reads('secret/data/counted')).toBe(3);
      expect(v.requests.count({ path: 'secret/data/counted' })).toBe(4);
      expect(v.requests.count({ path: /^secret\/data\//, status: 404 })).toBe(1);
      expect(v.requests.count({ operation: 'update' })).toBe(1);
      const rec = v.requests.all({ path: 'secret/data/counted' })[0]!;
      expect(rec).toMatchObject({ method: 'GET', operation: 'read', namespace: '', status: 200, tokenAccessor: v.core.rootToken.accessor });
      v.requests.reset();
      expect(v.requests.count()).toBe(0);
    } finally {
      await v.close();
    }
  });

  it('interceptors can hold a response, answer instead of the server, or cut the connection', async () => {
    const v = await start();
    try {
      v.kv2().put('held', { a: 1 });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let seen = 0;
      const off = v.intercept(async (req) => {
        if (req.path === 'secret/data/held') {
          seen++;
          await gate;
        }
      });
      const pending = Promise.all([call(v, 'GET', 'secret/data/held'), call(v, 'GET', 'secret/data/held')]);
      await expect.poll(() => seen).toBe(2);
      release();
      expect((await pending).map((r) => r.status)).toEqual([200, 200]);
      off();
      const off2 = v.intercept((req) => (req.path.startsWith('secret/') ? { status: 500, body: { errors: [multierror(['boom'])] } } : undefined));
      const e = await call(v, 'GET', 'secret/data/held');
      expect(e.status).toBe(500);
      expect(e.json.errors[0]).toBe(multierror(['boom']));
      off2();
      const off3 = v.intercept(() => ({ drop: true }));
      await expect(call(v, 'GET', 'secret/data/held')).rejects.toThrow();
      off3();
      expect((await call(v, 'GET', 'secret/data/held')).status).toBe(200);
    } finally {
      await v.close();
    }
  });

  it('stop() makes the server unreachable; start() brings it back on the same port with its state', async () => {
    const v = await start();
    try {
      v.kv2().put('persist', { a: 'kept' });
      const port = v.port;
      await v.stop();
      await expect(call(v, 'GET', 'secret/data/persist')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      await v.start();
      expect(v.port).toBe(port);
      const r = await call(v, 'GET', 'secret/data/persist');
      expect(r.status).toBe(200);
      expect(r.json.data.data).toEqual({ a: 'kept' });
    } finally {
      await v.close();
    }
  });

  it('with the system clock, expiry happens on real timers', async () => {
    const { systemClock } = await import('../support/vault/index.ts');
    const v = await start({ clock: systemClock });
    try {
      const t = v.createToken({ ttl: 1 });
      expect((await call(v, 'GET', 'auth/token/lookup-self', { token: t.id })).status).toBe(200);
      await expect.poll(() => v.core.tokens.all().some((x) => x.id === t.id), { timeout: 10_000, interval: 100 }).toBe(false);
      expect((await call(v, 'GET', 'auth/token/lookup-self', { token: t.id })).status).toBe(403);
    } finally {
      await v.close();
    }
  });

  it('a caller-owned ManualClock drives expiry too', async () => {
    const clock = new ManualClock();
    const v = await start({ clock });
    try {
      const t = v.createToken({ ttl: 10 });
      clock.advance(10_000);
      await v.settle();
      expect(v.core.tokens.all().some((x) => x.id === t.id)).toBe(false);
    } finally {
      await v.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('node-vault (a real client) against the server', () => {
  let v: VaultServer;
  beforeAll(async () => {
    v = await start();
    v.setPolicy('payments', { 'secret/data/payments/*': ['read'], 'secret/metadata/payments/': ['list'], 'database/creds/readonly': ['read'] });
    const k8s = v.enableKubernetesAuth();
    k8s.setRole('payments-keyless', { bound_service_account_names: 'keyless', bound_service_account_namespaces: 'payments', token_policies: 'payments', token_ttl: '1h' });
    v.kv2().put('payments/stripe', { api_key: 'canary-node-vault' });
    const db = v.enableDatabase();
    await db.configure('pg', { ...CONNECTION, allowed_roles: 'readonly' });
    db.setRole('readonly', { db_name: 'pg', creation_statements: CREATE, default_ttl: '1h', max_ttl: '2h' });
  });
  afterAll(async () => {
    await v.close();
  });

  function client(token?: string): nodeVault.client {
    return nodeVault({ endpoint: v.address, ...(token ? { token } : {}), requestOptions: { ca } });
  }

  it('read/write/list with explicit paths, KV v2 unwrapped by hand', async () => {
    const c = client(v.rootToken);
    const w = await c.write('secret/data/payments/new', { data: { k: 'v' } });
    expect(w.data.version).toBe(1);
    const r = await c.read('secret/data/payments/stripe');
    expect(r.data.data).toEqual({ api_key: 'canary-node-vault' });
    const l = await c.list('secret/metadata/payments/');
    expect(l.data.keys).toEqual(['new', 'stripe']);
    expect(v.requests.count({ method: 'LIST', path: 'secret/metadata/payments/' })).toBe(1);
    expect(await c.delete('secret/data/payments/new')).toBe('');
  });

  it('logs in through request() at an explicit mount, reads with the login token, renews and looks up', async () => {
    const jwt = v.root.kubernetes().mintJwt({ namespace: 'payments', serviceAccount: 'keyless' });
    const c = client();
    const login = await c.request({ path: '/auth/kubernetes/login', method: 'POST', json: { role: 'payments-keyless', jwt } });
    expect(login.auth.policies).toEqual(['default', 'payments']);
    const app = client(login.auth.client_token);
    expect((await app.read('secret/data/payments/stripe')).data.data.api_key).toBe('canary-node-vault');
    const self = await app.tokenLookupSelf();
    expect(self.data.ttl).toBe(3600);
    await v.advance(600_000);
    const renewed = await app.tokenRenewSelf();
    expect(renewed.auth.client_token).toBe(login.auth.client_token);
    expect(renewed.auth.lease_duration).toBe(3600);
    // kubernetesLogin with mount_point (bug #271 avoided) overwrites the client's token.
    const k = client();
    await k.kubernetesLogin({ role: 'payments-keyless', jwt, mount_point: 'kubernetes' });
    expect(k.token).toMatch(/^hvs\./);
  });

  it('dynamic database credentials, renewal and lookup through write()', async () => {
    const c = client(v.rootToken);
    const creds = await c.read('database/creds/readonly');
    expect(await pgLogin(creds.data.username, creds.data.password)).toBe(creds.data.username);
    const renewed = await c.write('sys/leases/renew', { lease_id: creds.lease_id, increment: 1800 });
    expect(renewed.lease_duration).toBe(1800);
    const look = await c.write('sys/leases/lookup', { lease_id: creds.lease_id });
    expect(look.data.ttl).toBe(1800);
    expect(await c.write('sys/leases/revoke', { lease_id: creds.lease_id })).toBe('');
    expect(roleExists(creds.data.username)).toBe(false);
  });

  it('errors arrive as node-vault reports them: message = errors[0] or "Status N", statusCode on response', async () => {
    const weak = client(v.createToken({ ttl: 600 }).id);
    await expect(weak.read('secret/data/payments/stripe')).rejects.toMatchObject({ message: PERMISSION_DENIED, response: { statusCode: 403 } });
    const root = client(v.rootToken);
    const missing = await root.read('secret/data/payments/none').catch((e: unknown) => e as { message: string; response: { statusCode: number; body: J } });
    expect(missing).toMatchObject({ message: 'Status 404', response: { statusCode: 404, body: { errors: [] } } });
    await root.write('secret/data/payments/deleted', { data: { a: 1 } });
    await root.delete('secret/data/payments/deleted');
    const soft = await root.read('secret/data/payments/deleted').catch((e: unknown) => e as { message: string; response: { statusCode: number; body: J } });
    expect(soft.message).toBe('Status 404');
    expect(soft.response.body.data.metadata.deletion_time).not.toBe('');
    await expect(root.read('database/creds/nope')).rejects.toMatchObject({ message: 'unknown role: nope', response: { statusCode: 400 } });
    v.seal();
    try {
      await expect(root.read('secret/data/payments/stripe')).rejects.toMatchObject({ message: 'Vault is sealed', response: { statusCode: 503 } });
      const h = await root.health();
      expect(h.sealed).toBe(true);
    } finally {
      v.unseal();
    }
    await v.stop();
    try {
      await expect(root.read('secret/data/payments/stripe')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await v.start();
    }
    expect((await root.read('secret/data/payments/stripe')).data.data.api_key).toBe('canary-node-vault');
  });
});

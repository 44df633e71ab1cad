// Vault as the credential store, end to end: Keyless (a child process) logs in to the
// Vault-compatible server with Kubernetes auth, AppRole or a token, reads KV v1/v2 and database
// credentials that the server really creates in the suite's PostgreSQL, renews leases, survives
// a Vault outage within maxStale, and reports denials, sealing and missing paths clearly.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { adminSql } from '../support/pg-cluster.ts';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { client, connectError, pgTarget, targets } from '../support/pg-fixtures.ts';
import { startVaultServer, systemClock, type VaultServer } from '../support/vault/index.ts';

const pgInfo = inject('pg');
const pki = inject('pki');
const dir = mkdtempSync(join(tmpdir(), 'keyless-vault-'));
let vault: VaultServer;
let db: ReturnType<VaultServer['enableDatabase']>;
let jwtFile: string;
const canaryKv = `canary-kv-${Date.now().toString(36)}`;

function storeConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'vault',
    address: vault.address,
    tls: { ca: pki.caFile },
    auth: { method: 'kubernetes', role: 'keyless', tokenFile: jwtFile },
    ...extra,
  };
}

async function whoami(port: number): Promise<string> {
  const c = client(port);
  await c.connect();
  try {
    return (await c.query('SELECT current_user AS u')).rows[0].u as string;
  } finally {
    await c.end();
  }
}

function dynamicRoles(): string[] {
  return adminSql(pgInfo, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'v-%' ORDER BY 1").split('\n').filter(Boolean);
}

beforeAll(async () => {
  vault = await startVaultServer({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, clock: systemClock });
  vault.setPolicy(
    'keyless',
    `path "secret/data/pg/*" { capabilities = ["read"] }
     path "kv1/pg/*" { capabilities = ["read"] }
     path "database/creds/orders-rw" { capabilities = ["read"] }
     path "database/creds/short" { capabilities = ["read"] }
     path "database/static-creds/app" { capabilities = ["read"] }
     path "sys/leases/revoke" { capabilities = ["update"] }`,
  );
  const k8s = vault.enableKubernetesAuth();
  k8s.setRole('keyless', { bound_service_account_names: 'keyless', bound_service_account_namespaces: 'payments', token_policies: ['keyless'], token_ttl: '1h', token_max_ttl: '4h' });
  k8s.setRole('short-token', { bound_service_account_names: 'keyless', bound_service_account_namespaces: 'payments', token_policies: ['keyless'], token_ttl: '3s', token_max_ttl: '5s' });
  jwtFile = join(dir, 'token');
  writeFileSync(jwtFile, k8s.mintJwt({ namespace: 'payments', serviceAccount: 'keyless' }));
  vault.kv2('secret').put('pg/scram', { username: pgInfo.roles.scram.user, password: pgInfo.roles.scram.password });
  vault.kv2('secret').put('pg/rotate', { username: pgInfo.roles.rotate.user, password: pgInfo.roles.rotate.password, note: canaryKv });
  vault.kv2('secret').put('other/denied', { username: 'x', password: canaryKv });
  vault.enableKv('kv1', { version: 1 }).put('pg/md5', { user: pgInfo.roles.md5.user, pass: pgInfo.roles.md5.password });
  db = vault.enableDatabase();
  await db.configure('pg', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@127.0.0.1:${pgInfo.port}/keyless_test?sslmode=disable`,
    username: pgInfo.admin.user,
    password: pgInfo.admin.password,
    allowed_roles: ['orders-rw', 'short', 'app'],
  });
  const grants = [`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`, `GRANT CONNECT ON DATABASE keyless_test TO "{{name}}";`];
  db.setRole('orders-rw', { db_name: 'pg', default_ttl: '1h', max_ttl: '24h', creation_statements: grants });
  // Leases short enough to watch renewal and the max TTL in a test: renew at ~2/3 of 3 s, max 7 s.
  db.setRole('short', { db_name: 'pg', default_ttl: '3s', max_ttl: '7s', creation_statements: grants });
});

afterAll(async () => {
  await vault?.close();
});

describe('dynamic database credentials', () => {
  let keyless: KeylessProcess;
  let port: number;

  beforeAll(async () => {
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'database/creds/orders-rw' } });
    port = t.port;
    keyless = await startKeyless({ stores: { vault: storeConfig({ revokeOnShutdown: true }) }, targets: targets({ orders: t }) });
  });

  afterAll(async () => {
    await keyless?.stop();
  });

  test('100 concurrent first connections cause exactly one Vault read, and the role is the one Vault issued', async () => {
    vault.requests.reset();
    const users = await Promise.all(Array.from({ length: 100 }, () => whoami(port)));
    expect(vault.requests.reads('database/creds/orders-rw')).toBe(1);
    expect(new Set(users).size).toBe(1);
    const user = users[0]!;
    expect(user).toMatch(/^v-kubernet-orders-r-[A-Za-z0-9]{20}-\d+$/);
    expect(dynamicRoles()).toContain(user);
    const lease = vault.leases().find((l) => l.path === 'database/creds/orders-rw');
    expect(lease).toBeDefined();
    const line = await keyless.waitForLog((l) => l.msg === 'vault lease issued');
    expect(line.lease).toBe(lease!.id);
  });

  test('revoke on shutdown drops the role', async () => {
    const user = await whoami(port);
    expect(dynamicRoles()).toContain(user);
    expect(await keyless.stop()).toBe(0);
    await vault.settle();
    expect(dynamicRoles()).not.toContain(user);
    expect(keyless.logs().some((l) => l.msg === 'lease revoked')).toBe(true);
  });
});

describe('leases: renewed while in use, replaced at the max TTL', () => {
  test('an open connection keeps working while new connections get freshly issued credentials', async () => {
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'database/creds/short' } });
    const keyless = await startKeyless({ stores: { vault: storeConfig() }, targets: targets({ short: t }) });
    try {
      const held = client(t.port);
      held.on('error', () => undefined); // if an assertion fails, stop() ends it with 57P01
      await held.connect();
      const first = (await held.query('SELECT current_user AS u')).rows[0].u as string;
      await keyless.waitForLog((l) => l.msg === 'lease renewed');
      await keyless.waitForLog((l) => l.msg === 'lease near its max TTL; new connections will get new credentials', 15_000);
      await keyless.waitForLog((l) => l.msg === 'vault lease issued' && l.lease !== keyless.logs().find((x) => x.msg === 'vault lease issued')?.lease, 15_000);
      const second = await whoami(t.port);
      expect(second).not.toBe(first);
      expect(second).toMatch(/^v-kubernet-short-/);
      // The connection opened with the first credentials carries on.
      expect((await held.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
      await held.end();
      const m = (await keyless.admin('/metrics')).body;
      expect(m).toMatch(/keyless_lease_renewals_total\{store="vault",result="ok"\} [1-9]/);
      expect(m).toMatch(/keyless_lease_renewals_total\{store="vault",result="max_ttl"\} [1-9]/);
    } finally {
      await keyless.stop();
    }
  });
});

describe('static database credentials and namespaces', () => {
  test('static-creds: the role Vault rotates, read as it is now', async () => {
    adminSql(pgInfo, "DROP ROLE IF EXISTS kl_static; CREATE ROLE kl_static LOGIN PASSWORD 'canary-static-initial'");
    await db.setStaticRole('app', { db_name: 'pg', username: 'kl_static', rotation_period: '1h' }); // rotates at once
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'database/static-creds/app' } });
    const keyless = await startKeyless({ stores: { vault: storeConfig() }, targets: targets({ t }) });
    try {
      expect(await whoami(t.port)).toBe('kl_static');
      await keyless.waitForLog((l) => l.msg === 'credential fetched' && String(l.version).startsWith('static:'));
    } finally {
      await keyless.stop();
    }
  });

  test('a Vault namespace (X-Vault-Namespace)', async () => {
    const ns = vault.namespace('team-a');
    ns.setPolicy('reader', 'path "secret/data/pg/*" { capabilities = ["read"] }');
    ns.enableKv('secret', { version: 2 });
    ns.kv2('secret').put('pg/scram', { username: pgInfo.roles.scram.user, password: pgInfo.roles.scram.password });
    const token = ns.createToken({ policies: ['reader'], ttl: 600 });
    writeFileSync(join(dir, 'ns-token'), token.id);
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/scram' } });
    const keyless = await startKeyless({ stores: { vault: storeConfig({ namespace: 'team-a', auth: { method: 'token', tokenFile: join(dir, 'ns-token') } }) }, targets: targets({ t }) });
    try {
      vault.requests.reset();
      expect(await whoami(t.port)).toBe(pgInfo.roles.scram.user);
      expect(vault.requests.count({ namespace: 'team-a/', path: 'secret/data/pg/scram', status: 200 })).toBe(1);
    } finally {
      await keyless.stop();
    }
  });
});

describe('KV', () => {
  test('KV v2 rotation: the next connection works after one transparent retry', async () => {
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/rotate' } });
    const keyless = await startKeyless({ stores: { vault: storeConfig() }, targets: targets({ rotate: t }) });
    try {
      expect(await whoami(t.port)).toBe(pgInfo.roles.rotate.user);
      const next = `canary-vault-rotate-${Date.now().toString(36)}`;
      adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD '${next}'`);
      vault.kv2('secret').put('pg/rotate', { username: pgInfo.roles.rotate.user, password: next });
      expect(await whoami(t.port)).toBe(pgInfo.roles.rotate.user);
      await keyless.waitForLog((l) => l.msg === 'credential fetched' && l.version === 'kv2:2' && l.previous === 'kv2:1');
      expect((await keyless.admin('/metrics')).body).toMatch(/keyless_upstream_auth_failures_total\{target="rotate",reason="rejected_retrying"\} 1\n/);
      // Put the cluster's password back for other tests.
      adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD '${pgInfo.roles.rotate.password}'`);
    } finally {
      await keyless.stop();
    }
  });

  test('KV v1 with field mapping, and a pinned KV v2 version', async () => {
    vault.kv2('secret').put('pg/scram', { username: 'nobody', password: 'wrong' }); // version 2: not pinned
    const v1 = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'kv1/pg/md5', fields: { username: 'user', password: 'pass' } } });
    const pinned = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/scram', version: 1 } });
    const keyless = await startKeyless({ stores: { vault: storeConfig() }, targets: targets({ v1, pinned }) });
    try {
      expect(await whoami(v1.port)).toBe(pgInfo.roles.md5.user);
      expect(await whoami(pinned.port)).toBe(pgInfo.roles.scram.user);
    } finally {
      await keyless.stop();
    }
  });
});

describe('Vault failures', () => {
  let keyless: KeylessProcess;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    const t = {
      denied: await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/other/denied' } }),
      missing: await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/missing' } }),
      sealed: await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'kv1/pg/md5', fields: { username: 'user', password: 'pass' } } }),
      stale: await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/scram', version: 1 } }),
    };
    for (const [k, v] of Object.entries(t)) ports[k] = v.port;
    keyless = await startKeyless({
      stores: { vault: storeConfig({ refreshInterval: '1s', maxStale: '3s', timeout: '2s' }) },
      targets: targets(t),
    });
  });

  afterAll(async () => {
    await keyless?.stop();
  });

  test('policy denial: the app is told, the log names the store, path and Vault’s error', async () => {
    const err = await connectError(ports.denied!);
    expect({ code: err.code, message: err.message }).toEqual({ code: '08001', message: 'keyless: target denied: credential store denied access' });
    const line = await keyless.waitForLog((l) => l.msg === 'credential fetch failed' && l.path === 'secret/data/other/denied');
    expect(line).toMatchObject({ store: 'vault', code: 'KL_ERR_STORE_DENIED' });
    expect(String(line.err)).toMatch(/403 1 error occurred: \* permission denied/);
  });

  test('unknown path', async () => {
    const err = await connectError(ports.missing!);
    expect(err.message).toBe('keyless: target missing: credential not found in store');
  });

  test('sealed Vault', async () => {
    vault.seal();
    try {
      const err = await connectError(ports.sealed!);
      expect(err.message).toBe('keyless: target sealed: credential store unavailable');
      const line = await keyless.waitForLog((l) => l.msg === 'credential fetch failed' && l.path === 'kv1/pg/md5');
      expect(String(line.err)).toMatch(/503 Vault is sealed/);
    } finally {
      vault.unseal();
    }
    expect(await whoami(ports.sealed!)).toBe(pgInfo.roles.md5.user);
  });

  test('Vault down for less than maxStale: connections still work; longer: a clear error', async () => {
    expect(await whoami(ports.stale!)).toBe(pgInfo.roles.scram.user); // cached, expires after refreshInterval
    await vault.stop();
    try {
      // Connect until the cached credential has expired and is served stale (within maxStale):
      // every one of these connections must work.
      const deadline0 = Date.now() + 10_000;
      while (!keyless.logs().some((l) => l.msg === 'store unavailable: serving the cached credential')) {
        expect(await whoami(ports.stale!)).toBe(pgInfo.roles.scram.user);
        if (Date.now() > deadline0) throw new Error('never served stale');
      }
      const down = await keyless.waitForLog((l) => l.msg === 'credential fetch failed' && l.path === 'secret/data/pg/scram');
      expect(String(down.err)).toMatch(/unreachable: ECONNREFUSED/);
      expect(await whoami(ports.stale!)).toBe(pgInfo.roles.scram.user);
      await keyless.waitForLog((l) => l.msg === 'store unavailable: serving the cached credential');
      const ready = await keyless.admin('/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toMatch(/^ready, degraded:\n- store vault: .*unreachable/);
      expect((await keyless.admin('/metrics')).body).toMatch(/keyless_store_up\{store="vault"\} 0/);
      // Past maxStale: a clear error, not a hang.
      const deadline = Date.now() + 20_000;
      let err: (Error & { code?: string }) | undefined;
      while (!err && Date.now() < deadline) {
        err = await connectError(ports.stale!).catch(() => undefined);
      }
      expect(err?.message).toBe('keyless: target stale: credential store unavailable');
    } finally {
      await vault.start();
    }
    expect(await whoami(ports.stale!)).toBe(pgInfo.roles.scram.user);
    expect((await keyless.admin('/readyz')).body).toBe('ready\n');
  });
});

describe('Vault auth', () => {
  test('token expiry: Keyless logs in again', async () => {
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/scram', version: 1 } });
    const keyless = await startKeyless({
      stores: { vault: storeConfig({ auth: { method: 'kubernetes', role: 'short-token', tokenFile: jwtFile }, refreshInterval: '1s' }) },
      targets: targets({ t }),
    });
    try {
      expect(await whoami(t.port)).toBe(pgInfo.roles.scram.user);
      await keyless.waitForLog((l, i) => l.msg === 'vault login ok' && keyless.logs().findIndex((x) => x.msg === 'vault login ok') < i, 15_000);
      expect(await whoami(t.port)).toBe(pgInfo.roles.scram.user);
      expect((await keyless.admin('/metrics')).body).toMatch(/keyless_vault_token_renewals_total\{store="vault",result="(ok|max_ttl)"\} [1-9]/);
    } finally {
      await keyless.stop();
    }
  });

  test('a token Vault no longer knows ("invalid token"): Keyless logs in again and carries on', async () => {
    const t = await pgTarget(pgInfo, 'unused', { credential: { store: 'vault', path: 'secret/data/pg/scram', version: 1 } });
    const keyless = await startKeyless({ stores: { vault: storeConfig({ refreshInterval: '500ms' }) }, targets: targets({ t }) });
    try {
      expect(await whoami(t.port)).toBe(pgInfo.roles.scram.user);
      // Revoke Keyless's token behind its back (an operator, or Vault losing it).
      const used = vault.requests.all({ path: 'secret/data/pg/scram', status: 200 }).at(-1)!.tokenAccessor!;
      await vault.core.tokens.revoke(vault.core.tokens.byAccessor(used)!);
      // The next read is refused with "invalid token"; Keyless logs in again once and succeeds.
      await keyless.waitForLog((l) => l.msg === 'vault token rejected; logging in again', 15_000).catch(async () => {
        await whoami(t.port);
        return keyless.waitForLog((l) => l.msg === 'vault token rejected; logging in again');
      });
      expect(await whoami(t.port)).toBe(pgInfo.roles.scram.user);
      expect((await keyless.admin('/metrics')).body).toMatch(/keyless_vault_logins_total\{store="vault",result="ok"\} 2/);
    } finally {
      await keyless.stop();
    }
  });

  test('AppRole and token auth', async () => {
    const approle = vault.enableAppRole();
    approle.setRole('keyless', { token_policies: 'keyless' });
    writeFileSync(join(dir, 'role-id'), approle.roleId('keyless'));
    writeFileSync(join(dir, 'secret-id'), `${approle.generateSecretId('keyless').secret_id}\n`);
    const token = vault.createToken({ policies: ['keyless'], ttl: 600 });
    writeFileSync(join(dir, 'vault-token'), token.id);
    const a = await pgTarget(pgInfo, 'unused', { credential: { store: 'approle', path: 'secret/data/pg/scram', version: 1 } });
    const b = await pgTarget(pgInfo, 'unused', { credential: { store: 'token', path: 'secret/data/pg/scram', version: 1 } });
    const keyless = await startKeyless({
      stores: {
        approle: storeConfig({ auth: { method: 'approle', roleIdFile: join(dir, 'role-id'), secretIdFile: join(dir, 'secret-id') } }),
        token: storeConfig({ auth: { method: 'token', tokenFile: join(dir, 'vault-token') } }),
      },
      targets: targets({ a, b }),
    });
    try {
      expect(await whoami(a.port)).toBe(pgInfo.roles.scram.user);
      expect(await whoami(b.port)).toBe(pgInfo.roles.scram.user);
      const m = (await keyless.admin('/metrics')).body;
      expect(m).toMatch(/keyless_vault_logins_total\{store="approle",result="ok"\} 1/);
      // Nothing secret in what Keyless wrote or exports.
      for (const text of [keyless.output(), m]) {
        expect(text).not.toContain(token.id);
        expect(text).not.toContain(canaryKv);
        expect(text).not.toMatch(/canary-/);
        expect(text).not.toContain(pgInfo.roles.scram.password);
      }
    } finally {
      await keyless.stop();
    }
  });
});

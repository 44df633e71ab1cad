// Each upstream auth method and TLS mode Keyless speaks, against the real MariaDB (native,
// ed25519, REQUIRE SSL) and the suite's caching_sha2_password server (fast path, full
// authentication over TLS, and over RSA with a pinned or fetched key). The client always
// connects with no real password.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ed25519PublicKey } from '../../src/protocols/mysql/auth/ed25519.ts';
import { startKeyless, writeCredential, type KeylessProcess } from '../support/keyless.ts';
import { startCachingSha2Server, type CachingSha2Server } from '../support/mysql/caching-sha2-server.ts';
import { mariadbSql } from '../support/mysql/mariadb.ts';
import { connect, connectError, mysqlStoreFor, mysqlTarget, targets } from '../support/mysql/mariadb-fixtures.ts';

const db = inject('mariadb');
const pki = inject('pki');

let keyless: KeylessProcess;
let sha2: CachingSha2Server;
const ports: Record<string, number> = {};
const SHA2_PASSWORD = `canary-sha2-${Math.random().toString(36).slice(2)}`;
const SHA2_TLS_ONLY_PASSWORD = `canary-sha2tls-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  const fx = mysqlStoreFor(db);
  sha2 = await startCachingSha2Server({
    users: { kl_sha2: SHA2_PASSWORD, kl_sha2_tls: { password: SHA2_TLS_ONLY_PASSWORD, requireTls: true } },
    tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },
  });
  writeCredential(fx.storeDir, 'sha2', { username: 'kl_sha2', password: SHA2_PASSWORD });
  writeCredential(fx.storeDir, 'sha2tls', { username: 'kl_sha2_tls', password: SHA2_TLS_ONLY_PASSWORD });
  const pinned = join(fx.storeDir, 'sha2-public-key.pem');
  writeFileSync(pinned, sha2.publicKeyPem);

  const tls = (mode: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ tls: { mode, ...extra } });
  const sha2Upstream = (extra: Record<string, unknown>): Record<string, unknown> => ({ upstream: { host: sha2.host, port: sha2.port, database: undefined, ...extra } });
  const defs = {
    native: await mysqlTarget(db, 'native'),
    ed25519: await mysqlTarget(db, 'ed25519'),
    tlsDisable: await mysqlTarget(db, 'native', { upstream: tls('disable') }),
    tlsRequire: await mysqlTarget(db, 'native', { upstream: tls('require') }),
    tlsVerifyCa: await mysqlTarget(db, 'native', { upstream: tls('verify-ca', { ca: pki.caFile }) }),
    tlsVerifyCaWrongName: await mysqlTarget(db, 'native', { upstream: tls('verify-ca', { ca: pki.caFile, servername: 'wrong.keyless.test' }) }),
    tlsVerifyCaOtherCa: await mysqlTarget(db, 'native', { upstream: tls('verify-ca', { ca: pki.otherCaFile }) }),
    tlsVerifyFull: await mysqlTarget(db, 'native', { upstream: tls('verify-full', { ca: pki.caFile }) }),
    tlsVerifyFullByName: await mysqlTarget(db, 'native', { upstream: { host: 'localhost', ...tls('verify-full', { ca: pki.caFile }) } }),
    tlsVerifyFullWrongName: await mysqlTarget(db, 'native', { upstream: tls('verify-full', { ca: pki.caFile, servername: 'wrong.keyless.test' }) }),
    tlsDefault: await mysqlTarget(db, 'native', { upstream: { tls: undefined } }),
    sslOnlyPlain: await mysqlTarget(db, 'ssl', { upstream: tls('disable') }),
    sslOnlyTls: await mysqlTarget(db, 'ssl', { upstream: tls('verify-full', { ca: pki.caFile }) }),
    ed25519Tls: await mysqlTarget(db, 'ed25519', { upstream: tls('verify-full', { ca: pki.caFile }) }),
    sha2Plain: await mysqlTarget(db, 'sha2', sha2Upstream({ tls: { mode: 'disable' } })),
    sha2Tls: await mysqlTarget(db, 'sha2', sha2Upstream({ tls: { mode: 'verify-full', ca: pki.caFile } })),
    sha2Pinned: await mysqlTarget(db, 'sha2', sha2Upstream({ tls: { mode: 'disable' }, serverPublicKey: pinned })),
    sha2Fetch: await mysqlTarget(db, 'sha2', sha2Upstream({ tls: { mode: 'disable' }, fetchServerPublicKey: true })),
    sha2TlsOnlyPlain: await mysqlTarget(db, 'sha2tls', sha2Upstream({ tls: { mode: 'disable' }, fetchServerPublicKey: true })),
    sha2TlsOnlyTls: await mysqlTarget(db, 'sha2tls', sha2Upstream({ tls: { mode: 'require' } })),
  };
  for (const [k, v] of Object.entries(defs)) ports[k] = v.port;
  keyless = await startKeyless({ stores: fx.stores, targets: targets(defs) });
});

afterAll(async () => {
  await keyless?.stop();
  await sha2?.close();
});

/** `null`: no schema (the caching_sha2 test server has none). */
async function session(port: number, database: string | null = 'keyless_test'): Promise<{ user: string; cipher: string; id: number; threadId: number }> {
  const c = await connect(port, { database: database ?? undefined });
  try {
    const [[r]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id');
    // The caching_sha2 test server (no schema) answers only a few SELECTs.
    const [[s]] = database === null ? [[{ Value: 'n/a' }]] : await c.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    return { user: r!.u as string, id: r!.id as number, threadId: c.threadId!, cipher: (s?.Value as string) ?? '' };
  } finally {
    await c.end();
  }
}

describe('MariaDB auth methods', () => {
  test('mysql_native_password', async () => {
    const s = await session(ports.native!);
    expect(s.user).toBe(`${db.users.native.user}@%`);
    expect(s.id).toBe(s.threadId);
  });

  test('ed25519 (client_ed25519 after an AuthSwitchRequest), over plaintext and TLS', async () => {
    expect((await session(ports.ed25519!)).user).toBe(`${db.users.ed25519.user}@%`);
    const t = await session(ports.ed25519Tls!);
    expect(t.user).toBe(`${db.users.ed25519.user}@%`);
    expect(t.cipher).not.toBe('');
  });

  test("Keyless derives MariaDB's stored ed25519 public key from the password", () => {
    const stored = mariadbSql(db, `SELECT authentication_string FROM mysql.user WHERE user = '${db.users.ed25519.user}'`).trim();
    expect(ed25519PublicKey(Buffer.from(db.users.ed25519.password)).toString('base64').replace(/=+$/, '')).toBe(stored);
  });

  test('an account that REQUIRE SSL works over TLS and is refused over plaintext', async () => {
    const ok = await session(ports.sslOnlyTls!);
    expect(ok.user).toBe(`${db.users.ssl.user}@%`);
    expect(ok.cipher).not.toBe('');
    const e = await connectError(ports.sslOnlyPlain!);
    expect(e).toMatchObject({ errno: 1045, sqlState: '28000' });
    expect(e.message).toBe('keyless: target sslOnlyPlain: upstream refused the stored credential');
  });
});

describe('upstream TLS modes', () => {
  test('disable: plaintext upstream', async () => {
    expect((await session(ports.tlsDisable!)).cipher).toBe('');
  });

  test('require: encrypted, not verified', async () => {
    expect((await session(ports.tlsRequire!)).cipher).not.toBe('');
  });

  test('verify-ca: the chain is checked, not the name', async () => {
    expect((await session(ports.tlsVerifyCa!)).cipher).not.toBe('');
    expect((await session(ports.tlsVerifyCaWrongName!)).cipher).not.toBe('');
    const e = await connectError(ports.tlsVerifyCaOtherCa!);
    expect(e).toMatchObject({ errno: 1429, message: 'keyless: target tlsVerifyCaOtherCa: upstream TLS verification failed' });
  });

  test('verify-full: the chain and the name (an IP against IP SANs, a name by SNI)', async () => {
    expect((await session(ports.tlsVerifyFull!)).cipher).not.toBe('');
    expect((await session(ports.tlsVerifyFullByName!)).cipher).not.toBe('');
  });

  test('verify-full rejects a certificate for another name', async () => {
    const e = await connectError(ports.tlsVerifyFullWrongName!);
    expect(e).toMatchObject({ errno: 1429, message: 'keyless: target tlsVerifyFullWrongName: upstream TLS verification failed' });
    const log = await keyless.waitForLog((l) => l.target === 'tlsVerifyFullWrongName' && l.code === 'KL_ERR_UPSTREAM_TLS');
    expect(String(log.err)).toMatch(/wrong\.keyless\.test/);
  });

  test('the default is verify-full against the system roots, which do not know the test CA', async () => {
    const e = await connectError(ports.tlsDefault!);
    expect(e).toMatchObject({ errno: 1429 });
  });
});

describe('caching_sha2_password (the suite’s MySQL-protocol server)', () => {
  test('fast path: the server has the account cached', async () => {
    sha2.seedAuthCache('kl_sha2');
    sha2.resetAuthStats();
    const s = await session(ports.sha2Plain!, null);
    expect(s.user).toBe('kl_sha2@%');
    expect(s.id).toBe(s.threadId);
    expect(sha2.authStats('kl_sha2')).toMatchObject({ fast: 1, full: 0 });
  });

  test('full authentication over TLS sends the password inside TLS', async () => {
    sha2.flushAuthCache();
    sha2.resetAuthStats();
    expect((await session(ports.sha2Tls!, null)).user).toBe('kl_sha2@%');
    expect(sha2.authStats('kl_sha2')).toMatchObject({ fullTls: 1, fullRsa: 0, publicKeyRequests: 0 });
  });

  test('full authentication without TLS, RSA with the pinned public key', async () => {
    sha2.flushAuthCache();
    sha2.resetAuthStats();
    expect((await session(ports.sha2Pinned!, null)).user).toBe('kl_sha2@%');
    expect(sha2.authStats('kl_sha2')).toMatchObject({ fullRsa: 1, publicKeyRequests: 0 });
  });

  test('full authentication without TLS, RSA with the key fetched from the server (when allowed)', async () => {
    sha2.flushAuthCache();
    sha2.resetAuthStats();
    expect((await session(ports.sha2Fetch!, null)).user).toBe('kl_sha2@%');
    expect(sha2.authStats('kl_sha2')).toMatchObject({ fullRsa: 1, publicKeyRequests: 1 });
  });

  test('without TLS, a pinned key or permission to fetch one, full authentication is refused', async () => {
    sha2.flushAuthCache();
    const e = await connectError(ports.sha2Plain!, { database: undefined });
    expect(e).toMatchObject({ errno: 1251, message: 'keyless: target sha2Plain: upstream asked for an authentication method Keyless does not support' });
    const log = await keyless.waitForLog((l) => l.target === 'sha2Plain' && l.code === 'KL_ERR_UPSTREAM_AUTH_METHOD');
    expect(String(log.err)).toMatch(/serverPublicKey/);
  });

  test('an account that requires TLS: refused over RSA, accepted over TLS', async () => {
    sha2.flushAuthCache();
    expect(await connectError(ports.sha2TlsOnlyPlain!, { database: undefined })).toMatchObject({ errno: 1045 });
    expect((await session(ports.sha2TlsOnlyTls!, null)).user).toBe('kl_sha2_tls@%');
  });

  test('COM_CHANGE_USER re-authenticates the same session with caching_sha2_password', async () => {
    sha2.flushAuthCache();
    const c = await connect(ports.sha2Tls!, { database: undefined });
    const id = c.threadId;
    sha2.resetAuthStats();
    await c.changeUser({ user: 'ignored', password: 'ignored' });
    const [[r]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id');
    expect(r).toEqual({ u: 'kl_sha2@%', id });
    // The first login filled the server's cache: the change of user takes the fast path.
    expect(sha2.authStats('kl_sha2')).toMatchObject({ fast: 1, full: 0 });
    await c.end();
  });

  test('the client is told caching_sha2_password and let in by "fast auth success"', async () => {
    sha2.seedAuthCache('kl_sha2');
    const c = await connect(ports.sha2Plain!, { database: undefined, password: 'anything at all' });
    const info = sha2.connections().at(-1)!;
    expect(info.clientPlugin).toBe('caching_sha2_password');
    expect(c.threadId).toBe(info.id);
    await c.end();
  });
});

afterAll(() => {
  // No password of these accounts in anything Keyless wrote.
  const out = keyless?.output() ?? '';
  for (const pw of [SHA2_PASSWORD, SHA2_TLS_ONLY_PASSWORD, ...Object.values(db.users).map((u) => u.password)]) expect(out).not.toContain(pw);
});

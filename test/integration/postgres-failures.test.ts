// Bad input, broken upstreams, refused clients, rotation — each a clear error for that client
// and nothing else disturbed — and the canary check: no test secret in logs, metrics or
// anything a client received.
import { renameSync, symlinkSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { adminSql } from '../support/pg-cluster.ts';
import { startKeyless, writeCredential, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { client, connectError, fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';
import { SSL_REQUEST, errorFields, exchange, requestPacket, startupPacket } from '../support/pg-raw.ts';

const pgInfo = inject('pg');
const pki = inject('pki');

let keyless: KeylessProcess;
let storeDir: string;
let unwatchedDir: string;
const ports: Record<string, number> = {};
/** Everything any client was told, for the canary check. */
const clientSaw: string[] = [];
let bystander: pg.Client;

beforeAll(async () => {
  const fx = fileStoreFor(pgInfo, pki);
  storeDir = fx.storeDir;
  const unwatched = fileStoreFor(pgInfo, pki);
  unwatchedDir = unwatched.storeDir;
  const t = {
    main: await pgTarget(pgInfo, 'scram', { timeouts: { handshake: '400ms' } }),
    down: await pgTarget(pgInfo, 'scram', { upstream: { port: await freePort() } }),
    missing: await pgTarget(pgInfo, 'no-such-credential'),
    denied: await pgTarget(pgInfo, 'scram', { allow: [{ cidr: '10.0.0.0/8' }, { cidr: 'fd00::/8' }] }),
    limited: await pgTarget(pgInfo, 'scram', { maxConnections: 1 }),
    rotate: await pgTarget(pgInfo, 'rotate', { credential: { store: 'unwatched', path: 'rotate' } }),
    'rotate-watched': await pgTarget(pgInfo, 'rotate'),
    k8s: await pgTarget(pgInfo, 'k8s-scram'),
  };
  // A Kubernetes Secret volume: field symlinks through ..data → a timestamped directory.
  kubeSecret(storeDir, 'k8s-scram', 'ts1', { username: pgInfo.roles.scram.user, password: pgInfo.roles.scram.password });
  for (const [k, v] of Object.entries(t)) ports[k] = v.port;
  keyless = await startKeyless({
    stores: { ...fx.stores, unwatched: { kind: 'file', dir: unwatchedDir, watch: false } },
    targets: targets(t),
  });
  bystander = client(ports.main!);
  await bystander.connect();
});

afterAll(async () => {
  await bystander?.end().catch(() => undefined);
  await keyless?.stop();
});

/** Kubernetes' atomic writer: write a new dir, point ..data_tmp at it, rename over ..data. */
function kubeSecret(dir: string, path: string, stamp: string, fields: Record<string, string>): void {
  const root = join(dir, path);
  mkdirSync(join(root, `..${stamp}`), { recursive: true });
  for (const [k, v] of Object.entries(fields)) writeFileSync(join(root, `..${stamp}`, k), v);
  symlinkSync(`..${stamp}`, join(root, '..data_tmp'));
  renameSync(join(root, '..data_tmp'), join(root, '..data'));
  for (const k of Object.keys(fields)) {
    try {
      symlinkSync(join('..data', k), join(root, k));
    } catch {
      // already linked through ..data
    }
  }
}

async function expectBystanderFine(): Promise<void> {
  expect((await bystander.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
}

async function failWith(port: number, code: string, message: string): Promise<void> {
  const err = await connectError(port);
  clientSaw.push(err.message);
  expect({ code: err.code, message: err.message }).toEqual({ code, message });
}

describe('bad input from a client costs that client its connection and nothing else', () => {
  test('garbage bytes', async () => {
    const { reply, closedByServer } = await exchange(ports.main!, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    clientSaw.push(reply.toString('utf8'));
    expect(closedByServer).toBe(true);
    // "GET " read as a length is ~1.2 GB: refused as too large before anything is buffered.
    expect(errorFields(reply)).toMatchObject({ S: 'FATAL', C: '08P01', M: 'keyless: packet too large' });
    await expectBystanderFine();
  });

  test('an oversized startup packet is refused before its body arrives', async () => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(1_000_000, 0);
    head.writeUInt32BE(196608, 4);
    const { reply, closedByServer } = await exchange(ports.main!, [head]);
    expect(closedByServer).toBe(true);
    expect(errorFields(reply)).toMatchObject({ C: '08P01', M: 'keyless: packet too large' });
    await expectBystanderFine();
  });

  test('a startup packet with a bad length field', async () => {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(3, 0);
    const { reply } = await exchange(ports.main!, [b]);
    expect(errorFields(reply)).toMatchObject({ C: '08P01', M: 'keyless: protocol violation' });
  });

  test('malformed startup parameters', async () => {
    const p = startupPacket(3, 0, { user: 'app' });
    p[p.length - 2] = 0x41; // the user value's terminator is gone
    const { reply } = await exchange(ports.main!, [p]);
    expect(errorFields(reply)).toMatchObject({ C: '08P01', M: 'keyless: protocol violation' });
    await expectBystanderFine();
  });

  test('protocol 2.0 is refused as unsupported', async () => {
    const { reply } = await exchange(ports.main!, [startupPacket(2, 0, { user: 'app' })]);
    expect(errorFields(reply)).toMatchObject({ C: '0A000', M: 'keyless: unsupported request (frontend protocol 2.0; Keyless speaks 3.0)' });
  });

  test('a truncated startup packet, then the client goes away', async () => {
    const p = startupPacket(3, 0, { user: 'app', database: 'keyless_test' });
    const { closedByServer } = await exchange(ports.main!, [p.subarray(0, 12)], { endAfterWrite: true });
    expect(closedByServer).toBe(true);
    await keyless.waitForLog((l) => l.msg === 'connection failed' && /mid-packet/.test(String(l.err)));
    await expectBystanderFine();
  });

  test('a truncated startup packet and silence: handshake timeout', async () => {
    const p = startupPacket(3, 0, { user: 'app', database: 'keyless_test' });
    const { reply, closedByServer } = await exchange(ports.main!, [p.subarray(0, 12)]);
    expect(closedByServer).toBe(true);
    expect(errorFields(reply)).toMatchObject({ C: '08P01', M: 'keyless: handshake timed out' });
  });

  test('a client that sends nothing gets a handshake timeout', async () => {
    const { reply, closedByServer } = await exchange(ports.main!, []);
    expect(closedByServer).toBe(true);
    expect(errorFields(reply)).toMatchObject({ C: '08P01', M: 'keyless: handshake timed out' });
    await expectBystanderFine();
  });

  test('data after SSLRequest before the TLS handshake is refused (no plaintext injection)', async () => {
    const { reply } = await exchange(ports.main!, [Buffer.concat([SSL_REQUEST, startupPacket(3, 0, { user: 'app' })])], { done: (b) => b.length > 1 });
    // No certificate on this listener: 'N', then the startup is read as normal.
    expect(reply[0]).toBe(0x4e);
  });

  test('a CancelRequest with an unknown key is dropped quietly', async () => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(16, 0);
    b.writeUInt32BE(80877102, 4);
    b.writeUInt32BE(12345, 8);
    b.writeUInt32BE(67890, 12);
    const { reply, closedByServer } = await exchange(ports.main!, [b]);
    expect(reply.length).toBe(0);
    expect(closedByServer).toBe(true);
  });

  test('too many SSL/GSSENC requests', async () => {
    const gss = requestPacket(80877104);
    const { reply } = await exchange(ports.main!, [gss, gss, gss]);
    expect(reply.subarray(0, 2).toString('latin1')).toBe('NN');
    expect(errorFields(reply.subarray(2))).toMatchObject({ C: '08P01' });
  });
});

describe('failures reach the client as clear errors', () => {
  test('upstream down', async () => {
    await failWith(ports.down!, '08001', 'keyless: target down: upstream unreachable');
    await keyless.waitForLog((l) => l.msg === 'connection failed' && l.target === 'down' && /ECONNREFUSED/.test(String(l.err)));
  });

  test('no such credential in the store', async () => {
    await failWith(ports.missing!, '08001', 'keyless: target missing: credential not found in store');
  });

  test('a client outside the allow rules', async () => {
    await failWith(ports.denied!, '28000', 'keyless: target denied: client not allowed for this target');
  });

  test('over the connection limit', async () => {
    const first = client(ports.limited!);
    await first.connect();
    await failWith(ports.limited!, '53300', 'keyless: target limited: too many connections');
    await first.end();
    // The slot frees when Keyless sees the close; wait for that rather than racing it.
    const deadline = Date.now() + 10_000;
    while (!/keyless_connections_active\{target="limited"\} 0\n/.test((await keyless.admin('/metrics')).body)) {
      if (Date.now() > deadline) throw new Error('connection slot never freed');
      await new Promise((r) => setTimeout(r, 20));
    }
    const again = client(ports.limited!);
    await again.connect();
    await again.end();
  });
});

describe('rotation', () => {
  test('password changed in the database and the store: the next connection works after one retry', async () => {
    const c0 = client(ports.rotate!);
    await c0.connect(); // caches the current credential
    await c0.end();
    const next = `canary-rotate1-${Date.now().toString(36)}`;
    adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD '${next}'`);
    writeCredential(unwatchedDir, 'rotate', { password: next });
    const c1 = client(ports.rotate!);
    await c1.connect();
    expect((await c1.query('SELECT current_user AS u')).rows[0].u).toBe(pgInfo.roles.rotate.user);
    await c1.end();
    const m = (await keyless.admin('/metrics')).body;
    expect(m).toMatch(/keyless_upstream_auth_failures_total\{target="rotate",reason="rejected_retrying"\} 1\n/);
    expect(m).not.toMatch(/keyless_upstream_auth_failures_total\{target="rotate",reason="rejected"\}/);
    // Upstream rejected only the old version; the new one was fetched once.
    expect(keyless.logs().filter((l) => l.msg === 'credential invalidated' && l.path === 'rotate')).toHaveLength(1);
  });

  test('password changed only in the database: one refetch, then a clear error', async () => {
    adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD 'canary-rotate2-${Date.now().toString(36)}'`);
    await failWith(ports.rotate!, '28P01', 'keyless: target rotate: upstream refused the stored credential');
    const m = (await keyless.admin('/metrics')).body;
    expect(m).toMatch(/keyless_upstream_auth_failures_total\{target="rotate",reason="rejected"\} 1\n/);
  });

  test('a watched store picks up the change without any failed login', async () => {
    const first = `canary-rotate3-${Date.now().toString(36)}`;
    adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD '${first}'`);
    writeCredential(storeDir, 'rotate', { password: first });
    const c0 = client(ports['rotate-watched']!);
    await c0.connect(); // first fetch: caches `first` and starts watching
    await c0.end();
    const next = `canary-rotate4-${Date.now().toString(36)}`;
    adminSql(pgInfo, `ALTER ROLE ${pgInfo.roles.rotate.user} PASSWORD '${next}'`);
    const seen = keyless.logs().length;
    writeCredential(storeDir, 'rotate', { password: next });
    await keyless.waitForLog((l, i) => i >= seen && l.msg === 'credential changed in store' && l.path === 'rotate');
    const c1 = client(ports['rotate-watched']!);
    await c1.connect();
    await c1.end();
    expect((await keyless.admin('/metrics')).body).not.toMatch(/upstream_auth_failures_total\{target="rotate-watched"/);
  });

  test('a Kubernetes Secret volume update (..data symlink swap) is picked up', async () => {
    const c0 = client(ports.k8s!);
    await c0.connect();
    expect((await c0.query('SELECT current_user AS u')).rows[0].u).toBe(pgInfo.roles.scram.user);
    await c0.end();
    const seen = keyless.logs().length;
    kubeSecret(storeDir, 'k8s-scram', 'ts2', { username: pgInfo.roles.md5.user, password: pgInfo.roles.md5.password });
    rmSync(join(storeDir, 'k8s-scram', '..ts1'), { recursive: true });
    await keyless.waitForLog((l, i) => i >= seen && l.msg === 'credential changed in store' && l.path === 'k8s-scram');
    const c1 = client(ports.k8s!);
    await c1.connect();
    expect((await c1.query('SELECT current_user AS u')).rows[0].u).toBe(pgInfo.roles.md5.user);
    await c1.end();
  });
});


describe('secrets never leak', () => {
  test('no canary value in logs, metrics or anything a client received', async () => {
    const metrics = (await keyless.admin('/metrics')).body;
    const haystacks = { logs: keyless.output(), metrics, client: clientSaw.join('\n') };
    const canaries = [...keyless.output().matchAll(/canary-[A-Za-z0-9_-]+/g)].map((m) => m[0]);
    expect(canaries).toEqual([]);
    for (const [where, text] of Object.entries(haystacks)) {
      for (const role of Object.values(pgInfo.roles)) {
        if ('password' in role && role.password) expect(text.includes(role.password), `${where} contains a password`).toBe(false);
      }
      expect(text.includes(pgInfo.admin.password), `${where} contains the admin password`).toBe(false);
      expect(/canary-/.test(text), `${where} contains a canary`).toBe(false);
      expect(/BEGIN (EC )?PRIVATE KEY/.test(text), `${where} contains a private key`).toBe(false);
    }
    // The logs did record the work: this check is not vacuous.
    expect(keyless.logs().filter((l) => l.msg === 'credential fetched').length).toBeGreaterThan(3);
  });
});

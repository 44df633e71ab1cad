// Everything that goes wrong, and what the client is told: bad input (garbage, oversized and
// truncated packets, a silent client), upstream down, refused clients, missing and rejected
// credentials, upstream's own login errors, rotation (a retry after "access denied", on login and
// on COM_CHANGE_USER), idle timeout, and canary passwords never in logs, metrics or replies.
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, writeCredential, type KeylessProcess } from '../support/keyless.ts';
import { mariadbSql } from '../support/mysql/mariadb.ts';
import { connect, connectError, mariadbCli, mysqlStoreFor, mysqlTarget, targets, type MysqlError } from '../support/mysql/mariadb-fixtures.ts';
import { freePort } from '../support/net.ts';
import { handshakeResponse, packet, sslRequest } from '../unit/protocols/mysql/builders.ts';

const db = inject('mariadb');

let keyless: KeylessProcess;
let storeDir: string;
const ports: Record<string, number> = {};
/** Every canary a test put in the store or in MariaDB. */
const canaries = new Set(Object.values(db.users).map((u) => u.password));
/** Everything a client was told, to search for canaries at the end. */
const told: string[] = [];

function canary(tag: string): string {
  const c = `canary-${tag}-${randomBytes(9).toString('base64url')}`;
  canaries.add(c);
  return c;
}

beforeAll(async () => {
  const fx = mysqlStoreFor(db);
  storeDir = fx.storeDir;
  writeCredential(storeDir, 'wrong', { username: db.users.native.user, password: canary('wrong') });
  const stores = { ...fx.stores, static: { kind: 'file', dir: storeDir, watch: false } };
  const defs = {
    main: await mysqlTarget(db, 'native'),
    quick: await mysqlTarget(db, 'native', { timeouts: { handshake: '1s' } }),
    down: await mysqlTarget({ host: '127.0.0.1', port: await freePort() }, 'native'),
    denied: await mysqlTarget(db, 'native', { allow: [{ cidr: '10.0.0.0/8' }] }),
    missing: await mysqlTarget(db, 'no-such-credential'),
    limited: await mysqlTarget(db, 'limited', { upstream: { database: 'keyless_other' } }),
    wrong: await mysqlTarget(db, 'wrong', { credential: { store: 'static', path: 'wrong' } }),
    rotate: await mysqlTarget(db, 'rotate', { credential: { store: 'static', path: 'rotate' } }),
    single: await mysqlTarget(db, 'native', { maxConnections: 1 }),
    idle: await mysqlTarget(db, 'native', { timeouts: { idle: '1s' } }),
  };
  for (const [k, v] of Object.entries(defs)) ports[k] = v.port;
  keyless = await startKeyless({ stores, targets: targets(defs) });
});

afterAll(async () => {
  await keyless?.stop();
});

/** A raw client: read server packets as they come, write bytes, see the close. */
async function rawClient(port: number): Promise<{ sock: Socket; next(): Promise<{ seq: number; payload: Buffer } | 'closed'> }> {
  const sock = tcpConnect({ host: '127.0.0.1', port });
  let buf = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  sock.on('close', () => {
    closed = true;
    wake?.();
  });
  sock.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  return {
    sock,
    async next() {
      for (;;) {
        if (buf.length >= 4) {
          const len = buf.readUIntLE(0, 3);
          if (buf.length >= 4 + len) {
            const p = { seq: buf[3]!, payload: buf.subarray(4, 4 + len) };
            buf = buf.subarray(4 + len);
            return p;
          }
        }
        if (closed) return 'closed';
        await new Promise<void>((r) => (wake = r));
      }
    },
  };
}

function errOf(p: { seq: number; payload: Buffer } | 'closed'): { code: number; message: string } {
  if (p === 'closed') throw new Error('closed without an ERR');
  expect(p.payload[0]).toBe(0xff);
  const message = p.payload.subarray(p.payload[3] === 0x23 ? 9 : 3).toString('utf8');
  told.push(message);
  return { code: p.payload.readUInt16LE(1), message };
}

async function stillServes(): Promise<void> {
  const c = await connect(ports.main!);
  const [[r]] = await c.query<RowDataPacket[]>('SELECT 1 AS ok');
  expect(r).toEqual({ ok: 1 });
  await c.end();
}

function record(e: MysqlError): MysqlError {
  told.push(e.message, e.sqlMessage ?? '');
  return e;
}

describe('bad input costs that client its connection and nothing else', () => {
  test('garbage instead of a handshake response (an HTTP request)', async () => {
    const c = await rawClient(ports.main!);
    expect((await c.next()) !== 'closed').toBe(true); // the greeting
    c.sock.write('GET / HTTP/1.1\r\nHost: keyless\r\n\r\n');
    const e = errOf(await c.next());
    expect(e.code).toBe(1153); // 'GET' read as a 5 MB length: refused before buffering it
    expect(e.message).toBe('keyless: target main: packet too large');
    expect(await c.next()).toBe('closed');
    await stillServes();
  });

  test('a packet out of sequence, and a malformed handshake response', async () => {
    const a = await rawClient(ports.main!);
    await a.next();
    a.sock.write(packet(7, handshakeResponse()));
    expect(errOf(await a.next())).toEqual({ code: 1043, message: 'keyless: target main: protocol violation' });
    expect(await a.next()).toBe('closed');

    const b = await rawClient(ports.main!);
    await b.next();
    b.sock.write(packet(1, randomBytes(40)));
    const e = errOf(await b.next());
    expect(e.code).toBe(1043);
    expect(await b.next()).toBe('closed');
    await stillServes();
  });

  test('an oversized packet is refused from its header', async () => {
    const c = await rawClient(ports.main!);
    await c.next();
    c.sock.write(Buffer.from([0xff, 0xff, 0xff, 1])); // 16 MB announced, nothing sent
    expect(errOf(await c.next()).code).toBe(1153);
    expect(await c.next()).toBe('closed');
    await stillServes();
  });

  test('a truncated packet, then the client goes away', async () => {
    const c = await rawClient(ports.main!);
    await c.next();
    const full = packet(1, handshakeResponse({ database: 'keyless_test' }));
    c.sock.end(full.subarray(0, 20));
    await keyless.waitForLog((l) => l.msg === 'connection failed' && /mid-packet/.test(String(l.err)));
    await stillServes();
  });

  test('a silent client gets the handshake timeout', async () => {
    const c = await rawClient(ports.quick!);
    await c.next();
    expect(errOf(await c.next())).toEqual({ code: 1159, message: 'keyless: target quick: handshake timed out' });
    expect(await c.next()).toBe('closed');
  });

  test('an SSLRequest to a listener without a certificate', async () => {
    const c = await rawClient(ports.main!);
    await c.next();
    c.sock.write(packet(1, sslRequest()));
    expect(errOf(await c.next()).code).toBe(1043);
    expect(await c.next()).toBe('closed');
  });
});

describe('failures reach the client as ERR packets', () => {
  test('upstream down: an ERR in place of the greeting (mysql2 and the CLI)', async () => {
    const e = record(await connectError(ports.down!));
    expect(e).toMatchObject({ errno: 1429, message: 'keyless: target down: upstream unreachable' });
    const cli = await mariadbCli(ports.down!, ['-e', 'SELECT 1']);
    told.push(cli.stderr);
    expect(cli.code).not.toBe(0);
    // This Connector/C reports errors before TLS (which it tries by default) inside its own 2002.
    expect(cli.stderr).toMatch(/1429 - keyless: target down: upstream unreachable|ERROR 1429 .*keyless: target down: upstream unreachable/);
  });

  test('a client outside the allow rules: 1130 before any upstream work', async () => {
    const e = record(await connectError(ports.denied!));
    expect(e).toMatchObject({ errno: 1130, message: 'keyless: target denied: client not allowed for this target' });
  });

  test('a credential missing from the store', async () => {
    const e = record(await connectError(ports.missing!));
    expect(e).toMatchObject({ errno: 1105, sqlState: '08001', message: 'keyless: target missing: credential not found in store' });
  });

  test("upstream's own login error passes with its number, without the user name", async () => {
    const e = record(await connectError(ports.limited!));
    expect(e.errno).toBe(1044);
    expect(e.sqlState).toBe('42000');
    expect(e.message).toMatch(/^keyless: target limited: upstream: Access denied for user '\[redacted\]'@'%' to database 'keyless_other'$/);
  });

  test('a stored password upstream rejects: one refetch, then 1045', async () => {
    const e = record(await connectError(ports.wrong!));
    expect(e).toMatchObject({ errno: 1045, sqlState: '28000', message: 'keyless: target wrong: upstream refused the stored credential' });
    await keyless.waitForLog((l) => l.target === 'wrong' && l.msg === 'upstream rejected the credential; refetching once');
    const metrics = (await keyless.admin('/metrics')).body;
    expect(metrics).toMatch(/keyless_upstream_auth_failures_total\{target="wrong",reason="rejected_retrying"\} 1/);
    expect(metrics).toMatch(/keyless_upstream_auth_failures_total\{target="wrong",reason="rejected"\} 1/);
  });

  test('over the connection limit: 1040', async () => {
    const first = await connect(ports.single!);
    const e = record(await connectError(ports.single!));
    expect(e).toMatchObject({ errno: 1040, message: 'keyless: target single: too many connections' });
    await first.end();
  });

  test('the idle timeout tells the client why', async () => {
    const c = await connect(ports.idle!);
    const err = await new Promise<MysqlError>((resolve) => c.on('error', resolve));
    record(err);
    expect(err.message).toBe('keyless: target idle: connection closed after the idle timeout');
  });
});

describe('rotation', () => {
  test('password changed upstream and in the store: the next connection works after one retry', async () => {
    const before = await connect(ports.rotate!);
    await before.query('SELECT 1');
    const next = canary('rotate1');
    mariadbSql(db, `ALTER USER ${db.users.rotate.user}@'%' IDENTIFIED BY '${next}';`);
    writeCredential(storeDir, 'rotate', { password: next });
    const seen = keyless.logs().length;
    const c = await connect(ports.rotate!);
    const [[r]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u');
    expect(r!.u).toBe(`${db.users.rotate.user}@%`);
    await keyless.waitForLog((l, i) => i >= seen && l.target === 'rotate' && l.msg === 'upstream rejected the credential; refetching once');
    // The open session is not disturbed.
    await before.query('SELECT 1');
    await before.end();
    await c.end();
    // And the one after that needs no retry.
    const seen2 = keyless.logs().length;
    const d = await connect(ports.rotate!);
    await d.end();
    await keyless.waitForLog((l, i) => i >= seen2 && l.target === 'rotate' && l.msg === 'relaying');
    expect(keyless.logs().slice(seen2).filter((l) => l.msg === 'upstream rejected the credential; refetching once')).toEqual([]);
  });

  test('COM_CHANGE_USER after a rotation retries on the same upstream session: the id stays', async () => {
    const c = await connect(ports.rotate!);
    const id = c.threadId;
    const next = canary('rotate2');
    mariadbSql(db, `ALTER USER ${db.users.rotate.user}@'%' IDENTIFIED BY '${next}';`);
    writeCredential(storeDir, 'rotate', { password: next });
    const seen = keyless.logs().length;
    await c.changeUser({ database: 'keyless_test' });
    const [[r]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id');
    expect(r).toEqual({ u: `${db.users.rotate.user}@%`, id });
    await keyless.waitForLog((l, i) => i >= seen && l.msg === 'upstream rejected the credential on COM_CHANGE_USER; refetching once');
    await c.end();
  });
});

describe('canaries', () => {
  test('no password in logs, metrics, or anything a client was told', async () => {
    const metrics = (await keyless.admin('/metrics')).body;
    const logs = keyless.output();
    expect(logs.length).toBeGreaterThan(0);
    expect(told.length).toBeGreaterThan(5);
    for (const c of canaries) {
      expect(logs).not.toContain(c);
      expect(metrics).not.toContain(c);
      for (const t of told) expect(t).not.toContain(c);
    }
  });
});

// What an application does through Keyless with real clients (mysql2 and the mariadb CLI) against
// the suite's MariaDB: queries, prepared statements, multi-statements, pools, LOAD DATA LOCAL
// INFILE, a 64 MB BLOB both ways with Keyless's memory bounded, KILL QUERY from a second
// connection and from the CLI's Ctrl-C, COM_CHANGE_USER and COM_RESET_CONNECTION, 200 concurrent
// connections, routing by schema, client-side TLS.
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { Duplex, Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { connect, connectError, mariadbCli, mysqlStoreFor, mysqlTarget, targets, waitForStatement } from '../support/mysql/mariadb-fixtures.ts';
import { handshakeResponse, packet, sslRequest } from '../unit/protocols/mysql/builders.ts';

const db = inject('mariadb');
const pki = inject('pki');
const ca = readFileSync(pki.caFile, 'utf8');

let keyless: KeylessProcess;
let port: number;
let sharedPort: number;
let tlsPort: number;

beforeAll(async () => {
  const fx = mysqlStoreFor(db);
  const main = await mysqlTarget(db, 'native', { upstream: { database: undefined } });
  const orders = await mysqlTarget(db, 'native', { route: { database: 'orders' } });
  const billing = await mysqlTarget(db, 'ed25519', { route: { database: 'billing' }, upstream: { database: 'keyless_other' } });
  billing.listen = orders.listen;
  const tls = await mysqlTarget(db, 'native', { tls: { cert: pki.server.certFile, key: pki.server.keyFile } });
  port = main.port;
  sharedPort = orders.port;
  tlsPort = tls.port;
  keyless = await startKeyless({ stores: fx.stores, targets: targets({ main, orders, billing, tls }) });
});

afterAll(async () => {
  await keyless?.stop();
});

async function rows<T = Record<string, unknown>>(c: Connection, sql: string, values?: unknown[]): Promise<T[]> {
  const [r] = await c.query<RowDataPacket[]>(sql, values);
  return r as T[];
}

describe('with mysql2', () => {
  test('queries, prepared statements, transactions, errors; the session is upstream’s', async () => {
    const c = await connect(port);
    expect(await rows(c, 'SELECT 1 + 1 AS two')).toEqual([{ two: 2 }]);
    const [who] = await rows<{ u: string; id: number; v: string; d: string }>(c, 'SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id, VERSION() AS v, DATABASE() AS d');
    expect(who!.u).toBe(`${db.users.native.user}@%`);
    expect(who!.id).toBe(c.threadId);
    expect(who!.v).toBe(db.version);
    expect(who!.d).toBe('keyless_test');
    await c.query('CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
    for (let i = 0; i < 5; i++) await c.execute('INSERT INTO t VALUES (?, ?)', [i, `v${i}`]);
    const [counted] = await c.execute<RowDataPacket[]>('SELECT COUNT(*) AS n FROM t WHERE id >= ?', [2]);
    expect(counted[0]!.n).toBe(3);
    await c.beginTransaction();
    await c.execute('INSERT INTO t VALUES (100, ?)', ['in-tx']);
    await c.rollback();
    expect(await rows(c, 'SELECT COUNT(*) AS n FROM t WHERE id = 100')).toEqual([{ n: 0 }]);
    await c.beginTransaction();
    await c.execute('INSERT INTO t VALUES (101, ?)', ['committed']);
    await c.commit();
    expect(await rows(c, 'SELECT v FROM t WHERE id = 101')).toEqual([{ v: 'committed' }]);
    await expect(c.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ errno: 1146, sqlState: '42S02' });
    expect(await rows(c, 'SELECT 42 AS still_fine')).toEqual([{ still_fine: 42 }]);
    // A statement prepared once and executed many times, then unprepared.
    const stmt = await c.prepare('SELECT ? * 2 AS doubled');
    for (let i = 0; i < 3; i++) expect((await stmt.execute([i]))[0]).toEqual([{ doubled: i * 2 }]);
    await stmt.close();
    await c.end();
  });

  test('multi-statements and multiple result sets', async () => {
    const c = await connect(port, { multipleStatements: true });
    const [results] = await c.query<RowDataPacket[][]>('SELECT 1 AS a; SELECT 2 AS b; SET @x = 3; SELECT @x AS x');
    expect(results[0]).toEqual([{ a: 1 }]);
    expect(results[1]).toEqual([{ b: 2 }]);
    expect(results[3]).toEqual([{ x: 3 }]);
    await c.end();
  });

  test('a pool of connections', async () => {
    const pool = mysql.createPool({ host: '127.0.0.1', port, user: 'pooled', database: 'keyless_test', connectionLimit: 8 });
    const ids = await Promise.all(Array.from({ length: 40 }, async (_, i) => (await pool.query<RowDataPacket[]>('SELECT ? AS i, CONNECTION_ID() AS id', [i]))[0][0]!));
    expect(ids.map((r) => r.i)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(new Set(ids.map((r) => r.id)).size).toBeLessThanOrEqual(8);
    await pool.end();
  });

  test('LOAD DATA LOCAL INFILE, with file packets whose sequence ids wrap and that start with 0x11', async () => {
    const c = await connect(port, {
      infileStreamFactory: () => {
        let i = 0;
        // One packet per chunk: 600 packets, so the sequence id passes 0 twice. Each starts with
        // 0x11, the COM_CHANGE_USER byte, which Keyless must not take for a command.
        return new Readable({
          read() {
            this.push(i < 600 ? Buffer.concat([Buffer.from([0x11]), Buffer.from(`row-${i}\t${i}\n`)]) : null);
            i++;
          },
        });
      },
    });
    await c.query('CREATE TEMPORARY TABLE loaded (tag VARBINARY(32), n INT)');
    const [res] = await c.query({ sql: "LOAD DATA LOCAL INFILE 'ignored.tsv' INTO TABLE loaded" });
    expect((res as { affectedRows: number }).affectedRows).toBe(600);
    expect(await rows(c, 'SELECT COUNT(*) AS n, SUM(n) AS s, MIN(HEX(LEFT(tag, 1))) AS first FROM loaded')).toEqual([{ n: 600, s: '179700', first: '11' }]);
    expect(await rows(c, 'SELECT 1 AS after_upload')).toEqual([{ after_upload: 1 }]);
    await c.end();
  });

  test('a 64 MB BLOB round trip (multi-packet both ways) with Keyless memory bounded', async () => {
    const c = await connect(port);
    await c.query('CREATE TEMPORARY TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)');
    const blob = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < blob.length; i += 4096) blob.writeUInt32LE(i, i);
    const digest = createHash('sha256').update(blob).digest('hex');
    const round = async (id: number): Promise<void> => {
      await c.execute('INSERT INTO blobs VALUES (?, ?)', [id, blob]);
      expect(await rows(c, 'SELECT LENGTH(b) AS n, SHA2(b, 256) AS h FROM blobs WHERE id = ?', [id])).toEqual([{ n: blob.length, h: digest }]);
      const [back] = await c.query<RowDataPacket[]>('SELECT b FROM blobs WHERE id = ?', [id]);
      expect((back[0]!.b as Buffer).equals(blob)).toBe(true);
    };
    const before = keyless.memory();
    await round(1);
    const first = keyless.memory();
    await round(2);
    const second = keyless.memory();
    // Each round relays 128 MB. V8 lets up to 64 MB of released socket buffers pile up before it
    // collects them, which is the first round's growth; a relay that also held a whole payload
    // would add its 64 MB on top. A second round must add ~nothing.
    expect(first.peak - before.rss).toBeLessThan(96 * 1024 * 1024);
    expect(second.peak - first.peak).toBeLessThan(24 * 1024 * 1024);
    await c.end();
  });

  test('KILL QUERY from a second connection stops the right query: the client’s id is its upstream session', async () => {
    const c1 = await connect(port);
    const c2 = await connect(port);
    const sleeping = c1.query<RowDataPacket[]>('SELECT SLEEP(30) AS slept').then(
      ([r]) => ({ value: r[0]!.slept as number }),
      (err: { errno?: number }) => ({ errno: err.errno }),
    );
    const serverId = await waitForStatement(db, 'SELECT SLEEP(30)%');
    expect(serverId).toBe(c1.threadId);
    await c2.query(`KILL QUERY ${c1.threadId}`);
    const outcome: { value?: number; errno?: number } = await sleeping;
    // MariaDB reports the interruption as error 1317 (MySQL returns 1 from SLEEP instead).
    expect(outcome.errno === 1317 || outcome.value === 1).toBe(true);
    expect(await rows(c1, 'SELECT 1 AS alive')).toEqual([{ alive: 1 }]);
    await c1.end();
    await c2.end();
  });

  test('COM_CHANGE_USER re-authenticates the same upstream session with the stored credential', async () => {
    const c = await connect(port);
    await c.query("SET @marker = 'before'");
    const id = c.threadId;
    await c.changeUser({ user: 'someone-else', password: 'whatever', database: 'keyless_other' });
    const [r] = await rows<{ u: string; id: number; d: string; m: string | null }>(c, 'SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id, DATABASE() AS d, @marker AS m');
    expect(r).toEqual({ u: `${db.users.native.user}@%`, id, d: 'keyless_other', m: null });
    expect(await rows(c, 'SELECT 2 AS after')).toEqual([{ after: 2 }]);
    await c.end();
    await keyless.waitForLog((l) => l.msg === 'COM_CHANGE_USER re-authenticated upstream');
  });

  test('COM_RESET_CONNECTION passes through', async () => {
    const c = await connect(port);
    await c.query("SET @marker = 'set'");
    await (c as unknown as { reset(): Promise<void> }).reset();
    expect(await rows(c, 'SELECT @marker AS m, CONNECTION_ID() AS id')).toEqual([{ m: null, id: c.threadId }]);
    await c.end();
  });

  test('200 concurrent connections, each with its own upstream session id', async () => {
    const conns = await Promise.all(Array.from({ length: 200 }, () => connect(port)));
    const seen = await Promise.all(
      conns.map(async (c) => {
        const [r] = await rows<{ id: number }>(c, 'SELECT CONNECTION_ID() AS id');
        return { told: c.threadId, actual: r!.id };
      }),
    );
    for (const s of seen) expect(s.actual).toBe(s.told);
    expect(new Set(seen.map((s) => s.actual)).size).toBe(200);
    await Promise.all(conns.map((c) => c.end()));
  });
});

describe('routing by schema on a shared listener', () => {
  test('each schema reaches its own target, credential and upstream database', async () => {
    const o = await connect(sharedPort, { database: 'orders' });
    expect(await rows(o, 'SELECT CURRENT_USER() AS u, DATABASE() AS d')).toEqual([{ u: `${db.users.native.user}@%`, d: 'keyless_test' }]);
    const b = await connect(sharedPort, { database: 'billing' });
    expect(await rows(b, 'SELECT CURRENT_USER() AS u, DATABASE() AS d')).toEqual([{ u: `${db.users.ed25519.user}@%`, d: 'keyless_other' }]);
    const [idRow] = await rows<{ id: number }>(b, 'SELECT CONNECTION_ID() AS id');
    expect(idRow!.id).toBe(b.threadId);
    await o.end();
    await b.end();
  });

  test('an unknown schema, or none, is a clear ERR', async () => {
    const e = await connectError(sharedPort, { database: 'nope' });
    expect(e).toMatchObject({ errno: 1049, sqlState: '42000', sqlMessage: 'keyless: no such database "nope"' });
    const none = await connectError(sharedPort, { database: undefined });
    expect(none).toMatchObject({ errno: 1049 });
  });

  test('COM_CHANGE_USER to a schema of another target is refused, and the connection goes on', async () => {
    const o = await connect(sharedPort, { database: 'orders' });
    await expect(o.changeUser({ database: 'billing' })).rejects.toMatchObject({ errno: 1049 });
    await o.end().catch(() => undefined);
  });
});

describe('client-side TLS', () => {
  test('mysql2 over TLS to Keyless when the listener has a certificate', async () => {
    const c = await connect(tlsPort, { ssl: { ca } });
    expect((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted).toBe(true);
    expect(await rows(c, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    await c.end();
    // The same listener still takes plaintext clients.
    const p = await connect(tlsPort);
    expect(await rows(p, 'SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    await p.end();
  });

  test('an SSLRequest and the TLS ClientHello in one segment (clients do not wait in between)', async () => {
    const sock = netConnect({ host: '127.0.0.1', port: tlsPort });
    await once(sock, 'connect');
    const [greetingChunk] = (await once(sock, 'data')) as [Buffer];
    expect(greetingChunk[4]).toBe(10); // Handshake v10
    // TLS over a bridge: its first write (the ClientHello) goes out glued to the SSLRequest.
    let first = true;
    const bridge = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        sock.write(first ? Buffer.concat([packet(1, sslRequest()), chunk]) : chunk, cb);
        first = false;
      },
    });
    sock.on('data', (d: Buffer) => bridge.push(d));
    const tlsSock = tlsConnect({ socket: bridge, ca, servername: 'localhost' });
    await once(tlsSock, 'secureConnect');
    tlsSock.write(packet(2, handshakeResponse({ database: 'keyless_test' })));
    const [reply] = (await once(tlsSock, 'data')) as [Buffer];
    expect(reply[3]).toBe(3);
    expect(reply[4]).toBe(0x00); // OK
    tlsSock.destroy();
    sock.destroy();
  });

  test('a listener without a certificate does not offer TLS', async () => {
    const e = await connectError(port, { ssl: { ca } });
    expect(e.code).toBe('HANDSHAKE_NO_SSL_SUPPORT');
  });

  test('the mariadb CLI over TLS, verifying Keyless’s certificate', async () => {
    const r = await mariadbCli(tlsPort, ['--ssl', `--ssl-ca=${pki.caFile}`, '--ssl-verify-server-cert', '-e', "SELECT 'tls-ok'"]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('tls-ok');
  });
});

describe('with the mariadb CLI', () => {
  test('queries, with no password', async () => {
    const r = await mariadbCli(port, ['keyless_test', '-e', 'SELECT CURRENT_USER(), DATABASE(); SELECT 6 * 7']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([`${db.users.native.user}@%\tkeyless_test`, '42']);
  });

  test('Ctrl-C kills the running query through Keyless (KILL QUERY on a second connection)', async () => {
    let child: ChildProcess | undefined;
    const running = mariadbCli(port, ['keyless_test', '-e', 'SELECT SLEEP(30)'], { onSpawn: (c) => (child = c) });
    const serverId = await waitForStatement(db, 'SELECT SLEEP(30)');
    child!.kill('SIGINT');
    const r = await running;
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/Query execution was interrupted/);
    expect(out).toMatch(/Ctrl-C -- query killed/);
    // The CLI's KILL QUERY named a session that exists: the one running its query.
    expect(out).not.toMatch(/Unknown thread id/);
    expect(serverId).toBeGreaterThan(0);
  });
});

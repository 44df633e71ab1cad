// What an application does through Keyless with real clients (pg and psql): simple and extended
// protocol, prepared statements, transactions, LISTEN/NOTIFY, COPY both ways at 100 MB with
// Keyless's memory bounded, cancel, 200 concurrent connections, routing, client-side TLS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { client, connectError, fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';
import { GSSENC_REQUEST, exchange, startupPacket } from '../support/pg-raw.ts';

const pgInfo = inject('pg');
const pki = inject('pki');

let keyless: KeylessProcess;
let port: number;
let sharedPort: number;
let tlsPort: number;

beforeAll(async () => {
  const fx = fileStoreFor(pgInfo, pki);
  const main = await pgTarget(pgInfo, 'scram', { upstream: { database: undefined } });
  const shared = await pgTarget(pgInfo, 'scram', { route: { database: 'orders' } });
  const shared2 = await pgTarget(pgInfo, 'md5', { route: { database: 'billing' }, upstream: { database: 'keyless_other' } });
  shared2.listen = shared.listen;
  const tls = await pgTarget(pgInfo, 'scram', { tls: { cert: pki.server.certFile, key: pki.server.keyFile } });
  port = main.port;
  sharedPort = shared.port;
  tlsPort = tls.port;
  keyless = await startKeyless({ stores: fx.stores, targets: targets({ main, orders: shared, billing: shared2, tls }) });
});

afterAll(async () => {
  await keyless?.stop();
});

function psql(p: number, args: string[], opts: { db?: string; input?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(p), '-U', 'app', '-d', opts.db ?? 'keyless_test', ...args], {
      env: { ...process.env, PGPASSWORD: '', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

describe('with pg', () => {
  test('simple and extended protocol, prepared statements, transactions', async () => {
    const c = client(port);
    await c.connect();
    expect((await c.query('SELECT 1 + 1 AS two')).rows).toEqual([{ two: 2 }]);
    await c.query('CREATE TEMP TABLE t (id int PRIMARY KEY, v text)');
    const insert = { name: 'ins', text: 'INSERT INTO t VALUES ($1, $2)' };
    for (let i = 0; i < 5; i++) await c.query({ ...insert, values: [i, `v${i}`] });
    expect((await c.query({ text: 'SELECT count(*)::int AS n FROM t WHERE id >= $1', values: [2] })).rows[0].n).toBe(3);
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (100, $1)', ['in-tx']);
    await c.query('ROLLBACK');
    expect((await c.query('SELECT count(*)::int AS n FROM t WHERE id = 100')).rows[0].n).toBe(0);
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (101, $1)', ['committed']);
    await c.query('COMMIT');
    expect((await c.query('SELECT v FROM t WHERE id = 101')).rows[0].v).toBe('committed');
    await expect(c.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
    expect((await c.query('SELECT 42 AS still_fine')).rows[0].still_fine).toBe(42);
    await c.end();
  });

  test('startup parameters pass through (application_name, options, DateStyle)', async () => {
    const c = client(port, { application_name: 'keyless-test-app', options: '-c search_path=pg_catalog -c DateStyle=German' });
    await c.connect();
    const r = await c.query('SELECT current_setting($1) AS app, current_setting($2) AS sp, current_setting($3) AS ds', ['application_name', 'search_path', 'DateStyle']);
    expect(r.rows[0]).toEqual({ app: 'keyless-test-app', sp: 'pg_catalog', ds: 'German, DMY' });
    await c.end();
  });

  test('the database comes from the client when the target names none', async () => {
    const c = client(port, { database: 'keyless_other' });
    await c.connect();
    expect((await c.query('SELECT current_database() AS d')).rows[0].d).toBe('keyless_other');
    await c.end();
  });

  test('LISTEN/NOTIFY across two connections', async () => {
    const listener = client(port);
    const notifier = client(port);
    await listener.connect();
    await notifier.connect();
    await listener.query('LISTEN keyless_chan');
    const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
    await notifier.query("NOTIFY keyless_chan, 'hello'");
    expect(await got).toMatchObject({ channel: 'keyless_chan', payload: 'hello' });
    await listener.end();
    await notifier.end();
  });

  test('COPY FROM STDIN and TO STDOUT of 100 MB, with Keyless memory bounded', async () => {
    const c = client(port);
    await c.connect();
    await c.query('CREATE TEMP TABLE big (id int, payload text)');
    const row = 'x'.repeat(1000);
    const rows = 105_000; // ~105 MB of COPY text each way
    const round = async (): Promise<void> => {
      await c.query('TRUNCATE big');
      let i = 0;
      const source = new Readable({
        read() {
          let chunk = '';
          for (let n = 0; n < 64 && i < rows; n++, i++) chunk += `${i}\t${row}\n`;
          this.push(chunk.length > 0 ? chunk : null);
        },
      });
      await pipeline(source, c.query(copyFrom('COPY big FROM STDIN')));
      expect((await c.query('SELECT count(*)::int AS n, sum(length(payload))::bigint AS bytes FROM big')).rows[0]).toEqual({ n: rows, bytes: String(rows * 1000) });
      let received = 0;
      await pipeline(
        c.query(copyTo('COPY big TO STDOUT')),
        new Writable({
          write(chunk: Buffer, _enc, cb) {
            received += chunk.length;
            cb();
          },
        }),
      );
      expect(received).toBeGreaterThan(100 * 1024 * 1024);
    };
    const before = keyless.memory();
    await round();
    const first = keyless.memory();
    await round();
    const second = keyless.memory();
    // Each round relays over 200 MB. A relay that buffered would grow by that much; garbage not
    // yet collected accounts for the first round's growth, and a second round must add ~nothing.
    expect(first.peak - before.rss).toBeLessThan(100 * 1024 * 1024);
    expect(second.peak - first.peak).toBeLessThan(32 * 1024 * 1024);
    await c.end();
  });

  test('cancel: pg_sleep is cancelled through Keyless with Keyless’s own cancel key', async () => {
    const c = client(port);
    await c.connect();
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    // The client holds Keyless's key, not upstream's.
    expect((c as unknown as { processID: number }).processID).not.toBe(pid);
    const sleeping = c.query('SELECT pg_sleep(30)');
    // Wait until upstream shows the query running, then cancel the way pg does.
    const watcher = client(port);
    await watcher.connect();
    for (;;) {
      const r = await watcher.query("SELECT state FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%'", [pid]);
      if (r.rows[0]?.state === 'active') break;
    }
    const started = Date.now();
    // pg's own cancel path: a second connection sending CancelRequest with the key it was given.
    const canceller = client(port);
    (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
    await expect(sleeping).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(25_000);
    expect((await c.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    await c.end();
    await watcher.end();
  });

  test('200 concurrent connections', async () => {
    const clients = Array.from({ length: 200 }, () => client(port));
    await Promise.all(clients.map((c) => c.connect()));
    const pids = await Promise.all(clients.map(async (c) => (await c.query('SELECT pg_backend_pid() AS pid, current_user AS u')).rows[0] as { pid: number; u: string }));
    expect(new Set(pids.map((p) => p.pid)).size).toBe(200);
    expect(pids.every((p) => p.u === 'kl_scram')).toBe(true);
    await Promise.all(clients.map((c) => c.end()));
  });
});

describe('with psql', () => {
  test('queries, prepared statements and a transaction', async () => {
    const r = await psql(port, ['-At'], {
      input: "BEGIN;\nCREATE TEMP TABLE p (v int);\nPREPARE ins(int) AS INSERT INTO p VALUES ($1);\nEXECUTE ins(7);\nEXECUTE ins(8);\nSELECT sum(v) FROM p;\nCOMMIT;\nSELECT current_user;\n",
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(expect.arrayContaining(['15', 'kl_scram']));
    expect(r.code).toBe(0);
  });

  test('COPY FROM STDIN and TO STDOUT', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `${i}\tline-${i}`).join('\n');
    const r = await psql(port, ['-At', '-c', 'CREATE TABLE IF NOT EXISTS psql_copy (id int, v text); TRUNCATE psql_copy;', '-c', 'COPY psql_copy FROM STDIN', '-c', 'SELECT count(*) FROM psql_copy'], { input: `${lines}\n\\.\n` });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('20000');
    const out = await psql(port, ['-At', '-c', 'COPY (SELECT * FROM psql_copy ORDER BY id) TO STDOUT']);
    expect(out.stdout.split('\n').length).toBe(20_001);
    expect(out.stdout.startsWith('0\tline-0\n1\tline-1\n')).toBe(true);
    await psql(port, ['-c', 'DROP TABLE psql_copy']);
  });

  test("Ctrl-C (SIGINT) cancels a running pg_sleep", async () => {
    const child = spawn('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'app', '-d', 'keyless_test', '-c', 'SELECT pg_sleep(30)'], {
      env: { ...process.env, PGPASSWORD: '', PGSSLMODE: 'disable' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const watcher = client(port);
    await watcher.connect();
    for (;;) {
      const r = await watcher.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'");
      if (r.rows[0].n > 0) break;
    }
    await watcher.end();
    child.kill('SIGINT');
    expect(await closed).not.toBe(0);
    expect(stderr).toMatch(/canceling statement due to user request/);
  });

  test('the client is told about an unknown database on a shared listener', async () => {
    const r = await psql(sharedPort, ['-c', 'SELECT 1'], { db: 'nope' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FATAL: {2}keyless: no such database "nope"/);
  });
});

describe('routing', () => {
  test('one listener serves several targets chosen by database name', async () => {
    const a = client(sharedPort, { database: 'orders' });
    const b = client(sharedPort, { database: 'billing' });
    await a.connect();
    await b.connect();
    expect((await a.query('SELECT current_user AS u, current_database() AS d')).rows[0]).toEqual({ u: 'kl_scram', d: 'keyless_test' });
    expect((await b.query('SELECT current_user AS u, current_database() AS d')).rows[0]).toEqual({ u: 'kl_md5', d: 'keyless_other' });
    await a.end();
    await b.end();
  });

  test('unknown database: 3D000 with a clear message', async () => {
    const err = await connectError(sharedPort, { database: 'nope' });
    expect(err.code).toBe('3D000');
    expect(err.message).toBe('keyless: no such database "nope"');
  });
});

describe('client-facing TLS', () => {
  test('SSLRequest is answered with TLS when the listener has a certificate', async () => {
    const c = client(tlsPort, { ssl: { ca: readFileSync(pki.caFile, 'utf8'), servername: 'localhost' } });
    await c.connect();
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe('kl_scram');
    await c.end();
  });

  test('SSLRequest is answered N without a certificate, and pg with ssl required fails cleanly', async () => {
    const err = await connectError(port, { ssl: { rejectUnauthorized: false } });
    expect(err.message).toMatch(/does not support SSL/);
  });

  test('GSSENCRequest is answered N and the client continues with its startup', async () => {
    const r = await psql(port, ['-At', '-c', 'SELECT 7'], {});
    expect(r.stdout.trim()).toBe('7');
    const { reply } = await exchange(port, [GSSENC_REQUEST], { done: (b) => b.length > 0 });
    expect(reply.toString('latin1')).toBe('N');
  });

  test('a protocol 3.2 startup gets NegotiateProtocolVersion(3.0) and then logs in', async () => {
    const { reply } = await exchange(port, [startupPacket(3, 2, { user: 'app', database: 'keyless_test', '_pq_.keyless_test': 'on' })], {
      done: (buf) => buf.includes(Buffer.from('Z\0\0\0\x05I', 'latin1')),
    });
    expect(reply[0]).toBe(0x76); // 'v'
    const minor = reply.readUInt32BE(5);
    expect(minor).toBe(0);
    expect(reply.includes(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]))).toBe(true); // AuthenticationOk
  });
});


// Shared pieces of the MySQL integration tests: a file store with one credential per account of
// the suite's MariaDB, target configs pointing at it, clients through Keyless, the mariadb CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { writeCredential } from '../keyless.ts';
import { freePort } from '../net.ts';
import { mariadbSql, type MariaDbInfo } from './mariadb.ts';

export interface MysqlFixture {
  storeDir: string;
  stores: Record<string, unknown>;
}

/** A file store holding a credential per account, named after the account's key. */
export function mysqlStoreFor(db: MariaDbInfo, opts: { watch?: boolean } = {}): MysqlFixture {
  const storeDir = mkdtempSync(join(tmpdir(), 'keyless-mysql-store-'));
  for (const [key, u] of Object.entries(db.users)) writeCredential(storeDir, key, { username: u.user, password: `${u.password}\n` });
  return { storeDir, stores: { files: { kind: 'file', dir: storeDir, watch: opts.watch ?? true } } };
}

export async function mysqlTarget(
  db: Pick<MariaDbInfo, 'host' | 'port'>,
  credential: string,
  extra: { upstream?: Record<string, unknown>; [k: string]: unknown } = {},
): Promise<Record<string, unknown> & { port: number; listen: string }> {
  const port = await freePort();
  const { upstream, ...rest } = extra;
  return {
    port,
    protocol: 'mysql',
    listen: `127.0.0.1:${port}`,
    upstream: { host: db.host, port: db.port, database: 'keyless_test', tls: { mode: 'disable' }, ...upstream },
    credential: { store: 'files', path: credential },
    ...rest,
  };
}

/** Strip the test-only `port` before writing the config. */
export function targets(ts: Record<string, Record<string, unknown> & { port: number }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(ts).map(([k, { port: _p, ...t }]) => [k, t]));
}

/** A mysql2 connection through Keyless: any user name, and a password Keyless ignores. */
export function connect(port: number, opts: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'not-the-password', database: 'keyless_test', connectTimeout: 20_000, ...opts });
}

export interface MysqlError extends Error {
  errno?: number;
  sqlState?: string;
  code?: string;
  sqlMessage?: string;
}

export async function connectError(port: number, opts: mysql.ConnectionOptions = {}): Promise<MysqlError> {
  let c: mysql.Connection | undefined;
  try {
    c = await connect(port, opts);
  } catch (err) {
    return err as MysqlError;
  } finally {
    await c?.end().catch(() => undefined);
  }
  throw new Error('connected, but an error was expected');
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The mariadb CLI through Keyless (no password, no defaults files). */
export function mariadbCli(port: number, args: string[], opts: { input?: string; onSpawn?(child: ChildProcess): void } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('mariadb', ['--no-defaults', '-h', '127.0.0.1', '-P', String(port), '-u', 'app', '--connect-timeout=20', '-N', '-B', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    opts.onSpawn?.(child);
    child.stdin.end(opts.input ?? '');
  });
}

/** Poll the server's process list until a statement shows up; returns its connection id. */
export async function waitForStatement(db: MariaDbInfo, like: string, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = mariadbSql(db, `SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '${like.replace(/'/g, "''")}' AND ID <> CONNECTION_ID();`).trim();
    if (out) return Number(out.split('\n')[0]);
    if (Date.now() > deadline) throw new Error(`no statement like ${like} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

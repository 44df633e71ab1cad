// A PostgreSQL cluster of the suite's own (own data directory and port, run as the `postgres`
// user when we are root) that demands passwords: one role per auth method, TLS from the test CA.
import { installServerTls } from './tls.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export interface PgRole {
  user: string;
  password: string;
}

export interface PgClusterInfo {
  host: string;
  port: number;
  dataDir: string;
  socketDir: string;
  /** Superuser over the socket (trust) and over TCP with a password (for the Vault database engine). */
  admin: PgRole;
  /** Roles by auth method the cluster demands of them (pg_hba). */
  roles: {
    scram: PgRole;
    md5: PgRole;
    password: PgRole;
    trust: PgRole;
    /** `hostssl … cert`: logs in with a client certificate whose CN is the user. */
    cert: { user: string };
    /** `hostssl` only, scram. */
    sslOnly: PgRole;
    /** A role for rotation tests: its password is changed by tests. */
    rotate: PgRole;
  };
}

const PG_ROOT = '/usr/lib/postgresql';

export function pgBinDir(): string {
  const versions = existsSync(PG_ROOT) ? readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${PG_ROOT}: install postgresql`);
  return join(PG_ROOT, versions[0]!, 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Run a PostgreSQL binary as the postgres user (PostgreSQL refuses to run as root). */
function pgExec(bin: string, args: string[], opts: { input?: string } = {}): string {
  const cmd = join(pgBinDir(), bin);
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { input: opts.input, encoding: 'utf8', cwd: tmpdir() });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function canary(tag: string): string {
  return `canary-${tag}-${randomBytes(9).toString('base64url')}`;
}

export async function startPgCluster(pki: { caFile: string; server: { certFile: string; keyFile: string } }): Promise<PgClusterInfo & { stop(): void }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyless-pg-'));
  const owner = asRoot ? Number(execFileSync('id', ['-u', 'postgres']).toString().trim()) : userInfo().uid;
  const group = asRoot ? Number(execFileSync('id', ['-g', 'postgres']).toString().trim()) : userInfo().gid;
  chownSync(dataDir, owner, group);
  chmodSync(dataDir, 0o700);
  const port = await freePort();
  const roles = {
    scram: { user: 'kl_scram', password: canary('scram') },
    md5: { user: 'kl_md5', password: canary('md5') },
    password: { user: 'kl_clear', password: canary('clear') },
    trust: { user: 'kl_trust', password: '' },
    cert: { user: 'kl_cert' },
    sslOnly: { user: 'kl_ssl_only', password: canary('sslonly') },
    rotate: { user: 'kl_rotate', password: canary('rotate0') },
  };
  const admin = { user: 'postgres', password: canary('admin') };

  pgExec('initdb', ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=reject', '--no-sync', '-E', 'UTF8', '--locale=C']);
  installServerTls(pki, dataDir, owner, group);
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    [
      `port = ${port}`,
      `listen_addresses = '127.0.0.1,::1'`,
      `unix_socket_directories = '${dataDir}'`,
      'max_connections = 500',
      'shared_buffers = 64MB',
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'ssl = on',
      `ssl_cert_file = 'server.crt'`,
      `ssl_key_file = 'server.key'`,
      `ssl_ca_file = 'ca.crt'`,
      `password_encryption = 'scram-sha-256'`,
      `log_min_messages = warning`,
      '',
    ].join('\n'),
  );
  const hba: string[] = ['local all all trust'];
  for (const net of ['127.0.0.1/32', '::1/128']) {
    hba.push(
      `hostssl all ${roles.cert.user} ${net} cert`,
      `hostssl all ${roles.sslOnly.user} ${net} scram-sha-256`,
      `hostnossl all ${roles.sslOnly.user} ${net} reject`,
      `host all ${roles.md5.user} ${net} md5`,
      `host all ${roles.password.user} ${net} password`,
      `host all ${roles.trust.user} ${net} trust`,
      `host all all ${net} scram-sha-256`,
    );
  }
  writeFileSync(join(dataDir, 'pg_hba.conf'), `${hba.join('\n')}\n`);
  pgExec('pg_ctl', ['-D', dataDir, '-l', join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);

  const q = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  const sql = [
    `ALTER ROLE postgres PASSWORD ${q(admin.password)};`,
    `CREATE ROLE ${roles.scram.user} LOGIN PASSWORD ${q(roles.scram.password)};`,
    `CREATE ROLE ${roles.password.user} LOGIN PASSWORD ${q(roles.password.password)};`,
    `CREATE ROLE ${roles.trust.user} LOGIN;`,
    `CREATE ROLE ${roles.cert.user} LOGIN;`,
    `CREATE ROLE ${roles.sslOnly.user} LOGIN PASSWORD ${q(roles.sslOnly.password)};`,
    `CREATE ROLE ${roles.rotate.user} LOGIN PASSWORD ${q(roles.rotate.password)};`,
    `SET password_encryption = 'md5';`,
    `CREATE ROLE ${roles.md5.user} LOGIN PASSWORD ${q(roles.md5.password)};`,
    `RESET password_encryption;`,
    `CREATE DATABASE keyless_test;`,
    `CREATE DATABASE keyless_other;`,
    `GRANT ALL ON DATABASE keyless_test TO PUBLIC;`,
    `\\c keyless_test`,
    `GRANT ALL ON SCHEMA public TO PUBLIC;`,
  ].join('\n');
  pgExec('psql', ['-h', dataDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-q'], { input: sql });

  return {
    host: '127.0.0.1',
    port,
    dataDir,
    socketDir: dataDir,
    admin,
    roles,
    stop(): void {
      try {
        pgExec('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
}

/** Run SQL as the superuser over the cluster's socket. */
export function adminSql(pg: Pick<PgClusterInfo, 'socketDir' | 'port'>, sql: string, db = 'postgres'): string {
  return pgExec('psql', ['-h', pg.socketDir, '-p', String(pg.port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-qAt'], { input: sql });
}

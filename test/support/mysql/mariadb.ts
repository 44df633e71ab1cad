// A MariaDB server of the suite's own (own data directory, port and socket under /tmp, run as the
// `mysql` user when we are root) with TLS from the test CA and one account per auth method Keyless
// speaks to MariaDB: mysql_native_password, ed25519, one that REQUIRE SSL, and one for rotation.
// Every password is a unique canary string. Admin SQL goes over the socket (unix_socket auth).
import { installServerTls } from '../tls.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForAccept } from '../net.ts';

export interface MariaDbUser {
  user: string;
  password: string;
}

export interface MariaDbInfo {
  host: string;
  port: number;
  socket: string;
  dataDir: string;
  /** OS user the admin CLI connects as over the socket (unix_socket auth). */
  adminUser: string;
  version: string;
  users: {
    /** IDENTIFIED VIA mysql_native_password. */
    native: MariaDbUser;
    /** IDENTIFIED VIA ed25519 (MariaDB's client_ed25519). */
    ed25519: MariaDbUser;
    /** mysql_native_password, REQUIRE SSL. */
    ssl: MariaDbUser;
    /** For rotation tests: its password is changed by tests. */
    rotate: MariaDbUser;
    /** Granted keyless_test only (keyless_other is denied with 1044). */
    limited: MariaDbUser;
  };
}

const asRoot = process.getuid?.() === 0;

function canary(tag: string): string {
  return `canary-${tag}-${randomBytes(9).toString('base64url')}`;
}

function binary(name: string, dirs = ['/usr/sbin', '/usr/bin']): string {
  for (const d of dirs) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} not found in ${dirs.join(', ')}: install mariadb-server and mariadb-client`);
}

/** Run SQL as the admin over the server's socket; returns tab-separated rows. */
export function mariadbSql(db: Pick<MariaDbInfo, 'socket' | 'adminUser'>, sql: string, database = ''): string {
  const args = ['--no-defaults', '-S', db.socket, '-u', db.adminUser, '-N', '-B'];
  if (database) args.push(database);
  const r = spawnSync(binary('mariadb', ['/usr/bin']), args, { input: sql, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mariadb failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export async function startMariaDb(pki: { caFile: string; server: { certFile: string; keyFile: string } }): Promise<MariaDbInfo & { stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyless-mariadb-'));
  try {
    return await start(dataDir, pki);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function start(dataDir: string, pki: { caFile: string; server: { certFile: string; keyFile: string } }): Promise<MariaDbInfo & { stop(): Promise<void> }> {
  const osUser = asRoot ? 'mysql' : userInfo().username;
  const [uid, gid] = asRoot ? idsOf('mysql') : [userInfo().uid, userInfo().gid];
  chownSync(dataDir, uid, gid);
  chmodSync(dataDir, 0o750);
  // A private tmpdir: mariadbd deletes other servers' `#sql*` files from a shared one at startup,
  // which breaks a concurrent mariadb-install-db (two suites on one machine).
  const tmp = join(dataDir, 'tmp');
  mkdirSync(tmp);
  chownSync(tmp, uid, gid);
  installServerTls(pki, dataDir, uid, gid);
  // Asynchronous, so a caller can start other servers meanwhile.
  await run(binary('mariadb-install-db', ['/usr/bin', '/usr/sbin']), [
    '--no-defaults',
    `--datadir=${join(dataDir, 'data')}`,
    `--tmpdir=${tmp}`,
    `--user=${osUser}`,
    '--auth-root-authentication-method=socket',
    '--skip-test-db',
    '--skip-name-resolve',
  ]);

  const socket = join(dataDir, 'mysqld.sock');
  const errorLog = join(dataDir, 'error.log');
  const adminUser = asRoot ? 'root' : userInfo().username;
  // A free port may be taken before mariadbd binds it: then it exits, and we try another.
  let server: Launched | undefined;
  let port = 0;
  for (let attempt = 1; !server; attempt++) {
    port = await freePort();
    const s = launch(dataDir, tmp, osUser, port, socket, errorLog);
    try {
      await s.ready(adminUser);
      server = s;
    } catch (err) {
      await s.stop();
      if (attempt >= 3 || !/Address already in use|Bind on TCP\/IP port/.test(s.log())) throw err;
      rmSync(errorLog, { force: true });
    }
  }
  const running = server;
  const stop = async (): Promise<void> => {
    await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    return configure();
  } catch (err) {
    await stop();
    throw err;
  }

  function configure(): MariaDbInfo & { stop(): Promise<void> } {
    const users = {
      native: { user: 'kl_native', password: canary('native') },
      ed25519: { user: 'kl_ed25519', password: canary('ed25519') },
      ssl: { user: 'kl_ssl', password: canary('ssl') },
      rotate: { user: 'kl_rotate', password: canary('rotate0') },
      limited: { user: 'kl_limited', password: canary('limited') },
    };
    const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
    mariadbSql(
      { socket, adminUser },
      [
        'CREATE DATABASE keyless_test;',
        'CREATE DATABASE keyless_other;',
        `CREATE USER ${users.native.user}@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(${q(users.native.password)});`,
        `CREATE USER ${users.ed25519.user}@'%' IDENTIFIED VIA ed25519 USING PASSWORD(${q(users.ed25519.password)});`,
        `CREATE USER ${users.ssl.user}@'%' IDENTIFIED BY ${q(users.ssl.password)} REQUIRE SSL;`,
        `CREATE USER ${users.rotate.user}@'%' IDENTIFIED BY ${q(users.rotate.password)};`,
        `CREATE USER ${users.limited.user}@'%' IDENTIFIED BY ${q(users.limited.password)};`,
        ...['native', 'ed25519', 'ssl', 'rotate'].flatMap((k) => {
          const u = users[k as keyof typeof users].user;
          return [`GRANT ALL ON keyless_test.* TO ${u}@'%';`, `GRANT ALL ON keyless_other.* TO ${u}@'%';`, `GRANT FILE ON *.* TO ${u}@'%';`];
        }),
        `GRANT ALL ON keyless_test.* TO ${users.limited.user}@'%';`,
        // SELECT on the process list of everyone, for tests that watch queries run.
        `GRANT PROCESS ON *.* TO ${users.native.user}@'%';`,
      ].join('\n'),
    );
    const version = mariadbSql({ socket, adminUser }, 'SELECT VERSION();').trim();

    return {
      host: '127.0.0.1',
      port,
      socket,
      dataDir,
      adminUser,
      version,
      users,
      stop,
    };
  }
}

interface Launched {
  log(): string;
  /** Resolves once the server answers a query over its socket; rejects if it exits first. */
  ready(adminUser: string): Promise<void>;
  stop(): Promise<void>;
}

function launch(dataDir: string, tmp: string, osUser: string, port: number, socket: string, errorLog: string): Launched {
  const child: ChildProcess = spawn(
    binary('mariadbd'),
    [
      '--no-defaults',
      `--user=${osUser}`,
      `--datadir=${join(dataDir, 'data')}`,
      `--tmpdir=${tmp}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${socket}`,
      `--pid-file=${join(dataDir, 'mysqld.pid')}`,
      `--log-error=${errorLog}`,
      '--skip-name-resolve',
      `--ssl-cert=${join(dataDir, 'server.crt')}`,
      `--ssl-key=${join(dataDir, 'server.key')}`,
      `--ssl-ca=${join(dataDir, 'ca.crt')}`,
      '--plugin-load-add=auth_ed25519',
      '--max-allowed-packet=256M',
      '--max-connections=600',
      '--local-infile=1',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      '--performance-schema=OFF',
      '--innodb-buffer-pool-size=64M',
      '--innodb-log-file-size=32M',
      '--innodb-flush-log-at-trx-commit=0',
      '--skip-innodb-doublewrite',
      '--skip-log-bin',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: tmpdir() },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = (): string => `${stderr}${existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''}`;
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    log,
    async ready(adminUser) {
      await Promise.race([
        waitForAccept(port, '127.0.0.1', 60_000),
        exited.then(() => {
          throw new Error(`mariadbd exited during startup:\n${log()}`);
        }),
      ]);
      // TCP accepts before the socket file and the grant tables are ready (and a port someone
      // else holds accepts too): wait for a query over our own socket.
      for (let i = 0; ; i++) {
        if (gone()) throw new Error(`mariadbd exited during startup:\n${log()}`);
        const r = spawnSync(binary('mariadb', ['/usr/bin']), ['--no-defaults', '-S', socket, '-u', adminUser, '-N', '-B', '-e', 'SELECT 1'], { encoding: 'utf8' });
        if (r.status === 0) return;
        if (i > 400) throw new Error(`mariadbd does not answer on ${socket}: ${r.stderr}\n${log()}`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
    },
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

function run(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${file} failed (${code}): ${out}`))));
  });
}

function idsOf(user: string): [number, number] {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error(`no OS user ${user}: install mariadb-server`);
  return [Number(uid.stdout.trim()), Number(gid.stdout.trim())];
}

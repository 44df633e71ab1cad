// Shared pieces of the PostgreSQL integration tests: a file store with one credential per test
// role, and target configs pointing at the suite's cluster.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { PgClusterInfo } from './pg-cluster.ts';
import { writeCredential } from './keyless.ts';
import type { PkiInfo } from './global-setup.ts';
import { freePort } from './net.ts';

export interface Fixture {
  storeDir: string;
  stores: Record<string, unknown>;
}

/** A file store holding a credential for each role of the cluster, named after the role's key. */
export function fileStoreFor(pgInfo: PgClusterInfo, pki: PkiInfo): Fixture {
  const storeDir = mkdtempSync(join(tmpdir(), 'keyless-store-'));
  const r = pgInfo.roles;
  writeCredential(storeDir, 'scram', { username: r.scram.user, password: `${r.scram.password}\n` });
  writeCredential(storeDir, 'md5', { username: r.md5.user, password: r.md5.password });
  writeCredential(storeDir, 'password', { username: r.password.user, password: r.password.password });
  writeCredential(storeDir, 'trust', { username: r.trust.user });
  writeCredential(storeDir, 'sslonly', { username: r.sslOnly.user, password: r.sslOnly.password });
  writeCredential(storeDir, 'rotate', { username: r.rotate.user, password: r.rotate.password });
  const cc = pki.clients[r.cert.user]!;
  writeCredential(storeDir, 'cert', { username: r.cert.user, tls_cert: cc.cert, tls_key: cc.key });
  return { storeDir, stores: { files: { kind: 'file', dir: storeDir } } };
}

export async function pgTarget(
  pgInfo: PgClusterInfo,
  credential: string,
  extra: { upstream?: Record<string, unknown>; tls?: Record<string, unknown>; [k: string]: unknown } = {},
): Promise<Record<string, unknown> & { port: number }> {
  const port = await freePort();
  const { upstream, ...rest } = extra;
  return {
    port,
    protocol: 'postgres',
    listen: `127.0.0.1:${port}`,
    upstream: { host: pgInfo.host, port: pgInfo.port, database: 'keyless_test', tls: { mode: 'disable' }, ...upstream },
    credential: { store: 'files', path: credential },
    ...rest,
  };
}

/** Strip the test-only `port` before writing the config. */
export function targets(ts: Record<string, Record<string, unknown> & { port: number }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(ts).map(([k, { port: _p, ...t }]) => [k, t]));
}

/** A pg client through Keyless: no password, any user name. */
export function client(port: number, opts: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: 'app', database: 'keyless_test', ...opts });
}

export async function connectError(port: number, opts: Partial<pg.ClientConfig> = {}): Promise<Error & { code?: string }> {
  const c = client(port, opts);
  try {
    await c.connect();
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await c.end().catch(() => undefined);
  }
  throw new Error('connected, but an error was expected');
}

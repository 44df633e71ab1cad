// The default config's MariaDB target works as is against this machine's MariaDB (127.0.0.1:3306,
// root with an empty password over TCP): the quick start in docs/mysql.md. Only the listen port
// is moved to a free one, so a running `npm start` does not collide with the test.
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { parse } from 'yaml';
import { afterAll, describe, expect, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { connect } from '../support/mysql/mariadb-fixtures.ts';
import { freePort } from '../support/net.ts';

const CONFIG_DIR = resolve(import.meta.dirname, '../../config');

function accepts(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

const machineMariaDb = await accepts(3306);

let keyless: KeylessProcess | undefined;
afterAll(async () => {
  await keyless?.stop();
});

describe.skipIf(!machineMariaDb)('default config: local-mariadb (needs the machine’s MariaDB on 127.0.0.1:3306)', () => {
  test('a client with no password reaches the machine’s MariaDB', async () => {
    const cfg = parse(readFileSync(join(CONFIG_DIR, 'keyless.yaml'), 'utf8')) as {
      stores: Record<string, { dir?: string }>;
      targets: Record<string, { listen: string; credential: { store: string } }>;
    };
    const target = cfg.targets['local-mariadb'];
    expect(target, 'config/keyless.yaml has a local-mariadb target').toBeDefined();
    expect(target!.listen).toBe('127.0.0.1:6033');
    const port = await freePort();
    const store = cfg.stores[target!.credential.store]!;
    keyless = await startKeyless({
      stores: { [target!.credential.store]: { ...store, dir: resolve(CONFIG_DIR, store.dir!) } },
      targets: { 'local-mariadb': { ...target, listen: `127.0.0.1:${port}` } },
    });
    const c = await connect(port, { user: 'app', password: undefined, database: undefined });
    const [[r]] = await c.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u, CONNECTION_ID() AS id');
    expect(String(r!.u)).toMatch(/^root@/);
    expect(r!.id).toBe(c.threadId);
    await c.end();
  });
});

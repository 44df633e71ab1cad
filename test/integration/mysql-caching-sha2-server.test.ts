// Proves the caching_sha2_password test server (test/support/mysql/caching-sha2-server.ts) right
// by connecting real clients to it — mysql2 and the mariadb CLI (libmariadb's own
// caching_sha2_password plugin) — and, for what those cannot express, a bare wire-level client.
// Keyless's MySQL back end is tested against this server elsewhere; if the server were wrong,
// those tests would prove nothing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { authPlugins } from 'mysql2';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startCachingSha2Server, generateRsaKeyPair, MYSQL_NATIVE_PASSWORD, type CachingSha2Server, type RsaKeyPair } from '../support/mysql/caching-sha2-server.ts';
import { Cap, Com, PayloadWriter, Sha2 } from '../support/mysql/caching-sha2-protocol.ts';
import { changeUser, handshakeResponse41, sha2Scramble, WireClient, WIRE_CLIENT_FLAGS } from '../support/mysql/caching-sha2-wire-client.ts';

const execFileAsync = promisify(execFile);
const pki = inject('pki');
const ca = readFileSync(pki.caFile, 'utf8');

const canaries: string[] = [];
function canary(tag: string): string {
  const c = `canary-${tag}-${randomBytes(9).toString('base64url')}`;
  canaries.push(c);
  return c;
}

const pw = {
  fullTls: canary('full-tls'),
  fullRsa: canary('full-rsa'),
  pinned: canary('pinned'),
  fast: canary('fast'),
  seeded: canary('seeded'),
  flush: canary('flush'),
  wrong: canary('wrong'),
  tlsOnly: canary('tls-only'),
  rotateOld: canary('rotate-old'),
  rotateNew: canary('rotate-new'),
  query: canary('query'),
  change: canary('change'),
  cli: canary('cli'),
  wire: canary('wire'),
  wireCached: canary('wire-cached'),
  wirePlain: canary('wire-plain'),
  keyProbe: canary('key-probe'),
};

let keys: RsaKeyPair;
let server: CachingSha2Server;

beforeAll(async () => {
  keys = await generateRsaKeyPair();
  server = await startCachingSha2Server({
    rsaKeyPair: keys,
    tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },
    users: {
      full_tls: pw.fullTls,
      full_rsa: pw.fullRsa,
      pinned: pw.pinned,
      fast: pw.fast,
      seeded: { password: pw.seeded, cached: true },
      wrong_pw: pw.wrong,
      tls_only: { password: pw.tlsOnly, requireTls: true },
      rotate: pw.rotateOld,
      query: pw.query,
      change: pw.change,
      wire: pw.wire,
      wire_cached: { password: pw.wireCached, cached: true },
      wire_plain: pw.wirePlain,
      key_probe: pw.keyProbe,
      nopass: '',
    },
  });
});

afterAll(async () => {
  await server?.close();
});

type Options = mysql.ConnectionOptions;

function options(s: CachingSha2Server, user: string, password: string, extra: Options = {}): Options {
  return { host: '127.0.0.1', port: s.port, user, password, ...extra };
}

const viaTls: Options = { ssl: { ca: ca } };

/** Connect, run `fn`, always close. */
async function withConnection<T>(opts: Options, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection(opts);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

async function currentUser(c: mysql.Connection): Promise<string> {
  const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
  return String(rows[0]?.u);
}

function accessDenied(user: string, usingPassword: 'YES' | 'NO'): object {
  return { errno: 1045, code: 'ER_ACCESS_DENIED_ERROR', sqlState: '28000', message: `Access denied for user '${user}'@'127.0.0.1' (using password: ${usingPassword})` };
}

describe('mysql2 against the caching_sha2_password server', () => {
  it('full authentication over TLS: cleartext password inside TLS, then the account is cached', async () => {
    expect(server.isCached('full_tls')).toBe(false);
    const id = await withConnection(options(server, 'full_tls', pw.fullTls, viaTls), async (c) => {
      expect(await currentUser(c)).toBe('full_tls@%');
      return c.threadId;
    });
    expect(server.connection(id)).toMatchObject({ tls: true, authPath: 'full-tls', clientPlugin: 'caching_sha2_password', switchedPlugin: false, publicKeyRequested: false });
    expect(server.authStats('full_tls')).toMatchObject({ full: 1, fullTls: 1, fullRsa: 0, fast: 0, publicKeyRequests: 0, denied: 0 });
    expect(server.isCached('full_tls')).toBe(true);
  });

  it('full authentication over plaintext: mysql2 requests the RSA public key and sends RSA-OAEP(password XOR nonce)', async () => {
    const id = await withConnection(options(server, 'full_rsa', pw.fullRsa), async (c) => {
      expect(await currentUser(c)).toBe('full_rsa@%');
      return c.threadId;
    });
    expect(server.connection(id)).toMatchObject({ tls: false, authPath: 'full-rsa', publicKeyRequested: true, switchedPlugin: false });
    expect(server.authStats('full_rsa')).toMatchObject({ full: 1, fullRsa: 1, fullTls: 0, publicKeyRequests: 1 });
    expect(server.isCached('full_rsa')).toBe(true);
  });

  it('the public key handed out on request is the one the server exposes for pinning', async () => {
    const received: Buffer[] = [];
    // A caching_sha2_password entry in authPlugins makes mysql2 answer the handshake with
    // mysql_native_password, so this also goes through the AuthSwitchRequest.
    await withConnection(
      options(server, 'key_probe', pw.keyProbe, { authPlugins: { caching_sha2_password: authPlugins.caching_sha2_password({ onServerPublicKey: (k) => received.push(k) }) } }),
      async (c) => expect(await currentUser(c)).toBe('key_probe@%'),
    );
    expect(received.map((k) => k.toString('latin1'))).toEqual([server.publicKeyPem]);
    expect(server.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  });

  it('full authentication over plaintext with the key pinned: no key request', async () => {
    const id = await withConnection(
      options(server, 'pinned', pw.pinned, { authPlugins: { caching_sha2_password: authPlugins.caching_sha2_password({ serverPublicKey: server.publicKeyPem }) } }),
      async (c) => {
        expect(await currentUser(c)).toBe('pinned@%');
        return c.threadId;
      },
    );
    expect(server.connection(id)).toMatchObject({ authPath: 'full-rsa', publicKeyRequested: false, clientPlugin: MYSQL_NATIVE_PASSWORD, switchedPlugin: true });
    expect(server.authStats('pinned')).toMatchObject({ full: 1, fullRsa: 1, publicKeyRequests: 0, switched: 1 });
  });

  it('after one full authentication the next connections take the fast path, over plaintext and over TLS', async () => {
    await withConnection(options(server, 'fast', pw.fast, viaTls), async (c) => expect(await currentUser(c)).toBe('fast@%'));
    const plain = await withConnection(options(server, 'fast', pw.fast), async (c) => {
      expect(await currentUser(c)).toBe('fast@%');
      return c.threadId;
    });
    const overTls = await withConnection(options(server, 'fast', pw.fast, viaTls), async (c) => c.threadId);
    expect(server.connection(plain)).toMatchObject({ authPath: 'fast', tls: false, publicKeyRequested: false });
    expect(server.connection(overTls)).toMatchObject({ authPath: 'fast', tls: true });
    expect(server.authStats('fast')).toMatchObject({ full: 1, fast: 2, publicKeyRequests: 0 });
  });

  it('a pre-seeded account is fast on its first connection', async () => {
    await withConnection(options(server, 'seeded', pw.seeded), async (c) => expect(await currentUser(c)).toBe('seeded@%'));
    expect(server.authStats('seeded')).toMatchObject({ fast: 1, full: 0 });
  });

  it('flushing the auth cache forces full authentication again', async () => {
    // Its own server: a flush empties the cache for every account.
    await using s = await startCachingSha2Server({ rsaKeyPair: keys, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, users: { flush: pw.flush } });
    await withConnection(options(s, 'flush', pw.flush, viaTls), async () => {});
    await withConnection(options(s, 'flush', pw.flush, viaTls), async () => {});
    expect(s.authStats('flush')).toMatchObject({ full: 1, fast: 1 });
    s.flushAuthCache();
    expect(s.isCached('flush')).toBe(false);
    await withConnection(options(s, 'flush', pw.flush, viaTls), async () => {});
    expect(s.authStats('flush')).toMatchObject({ full: 2, fast: 1 });
  });

  it('a wrong password is refused with 1045 (28000) whether or not the account is cached, over either transport', async () => {
    const wrong = canary('not-the-password');
    await expect(mysql.createConnection(options(server, 'wrong_pw', wrong))).rejects.toMatchObject(accessDenied('wrong_pw', 'YES'));
    await expect(mysql.createConnection(options(server, 'wrong_pw', wrong, viaTls))).rejects.toMatchObject(accessDenied('wrong_pw', 'YES'));
    expect(server.isCached('wrong_pw')).toBe(false);
    await withConnection(options(server, 'wrong_pw', pw.wrong), async () => {});
    expect(server.isCached('wrong_pw')).toBe(true);
    // Cached now: the wrong scramble misses the fast path, full authentication refuses it.
    await expect(mysql.createConnection(options(server, 'wrong_pw', wrong))).rejects.toMatchObject(accessDenied('wrong_pw', 'YES'));
    expect(server.authStats('wrong_pw')).toMatchObject({ denied: 3, full: 1, fast: 0 });
    expect(server.isCached('wrong_pw')).toBe(true);
  });

  it('an unknown user and an empty password are refused with 1045', async () => {
    await expect(mysql.createConnection(options(server, 'nobody', canary('nobody')))).rejects.toMatchObject(accessDenied('nobody', 'YES'));
    await expect(mysql.createConnection(options(server, 'wrong_pw', ''))).rejects.toMatchObject(accessDenied('wrong_pw', 'NO'));
    // An account whose password is empty gets in with none.
    await withConnection(options(server, 'nopass', ''), async (c) => expect(await currentUser(c)).toBe('nopass@%'));
  });

  it('a TLS-required account is refused over plaintext and accepted over TLS', async () => {
    await expect(mysql.createConnection(options(server, 'tls_only', pw.tlsOnly))).rejects.toMatchObject(accessDenied('tls_only', 'YES'));
    await withConnection(options(server, 'tls_only', pw.tlsOnly, viaTls), async (c) => expect(await currentUser(c)).toBe('tls_only@%'));
    // Cached or not, plaintext stays refused.
    expect(server.isCached('tls_only')).toBe(true);
    await expect(mysql.createConnection(options(server, 'tls_only', pw.tlsOnly))).rejects.toMatchObject(accessDenied('tls_only', 'YES'));
  });

  it('rotation: after a password change the old password fails (even though it was cached) and the new one works', async () => {
    await withConnection(options(server, 'rotate', pw.rotateOld), async () => {});
    await withConnection(options(server, 'rotate', pw.rotateOld), async () => {});
    expect(server.authStats('rotate')).toMatchObject({ full: 1, fast: 1 });
    server.setPassword('rotate', pw.rotateNew);
    expect(server.isCached('rotate')).toBe(false);
    await expect(mysql.createConnection(options(server, 'rotate', pw.rotateOld))).rejects.toMatchObject(accessDenied('rotate', 'YES'));
    await expect(mysql.createConnection(options(server, 'rotate', pw.rotateOld, viaTls))).rejects.toMatchObject(accessDenied('rotate', 'YES'));
    await withConnection(options(server, 'rotate', pw.rotateNew), async (c) => expect(await currentUser(c)).toBe('rotate@%'));
    await withConnection(options(server, 'rotate', pw.rotateNew, viaTls), async () => {});
    expect(server.authStats('rotate')).toMatchObject({ full: 2, fast: 2, denied: 2 });
  });

  it('queries return the current user, the connection id the client was given, the database and literals', async () => {
    await withConnection(options(server, 'query', pw.query, { database: 'shop' }), async (c) => {
      const [rows, fields] = await c.query<mysql.RowDataPacket[]>("SELECT 1, CURRENT_USER(), CONNECTION_ID() AS id, DATABASE() AS db, USER() AS who, 'x' AS s");
      expect(fields.map((f) => f.name)).toEqual(['1', 'CURRENT_USER()', 'id', 'db', 'who', 's']);
      expect(rows).toEqual([{ '1': 1, 'CURRENT_USER()': 'query@%', id: c.threadId, db: 'shop', who: 'query@127.0.0.1', s: 'x' }]);
      const info = server.connection(c.threadId);
      expect(info).toMatchObject({ id: c.threadId, user: 'query', database: 'shop', state: 'ready' });
      expect(info?.attributes).toHaveProperty('_client_name');
      const [v] = await c.query<mysql.RowDataPacket[]>('SELECT @@version AS v, VERSION() AS v2');
      expect(v).toEqual([{ v: '8.0.36-keyless-test', v2: '8.0.36-keyless-test' }]);
    });
  });

  it('connection ids are distinct per connection and match the server side', async () => {
    const a = await mysql.createConnection(options(server, 'query', pw.query));
    const b = await mysql.createConnection(options(server, 'query', pw.query));
    try {
      expect(a.threadId).not.toBe(b.threadId);
      for (const c of [a, b]) {
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
        expect(rows[0]?.id).toBe(c.threadId);
        expect(server.connection(c.threadId)?.state).toBe('ready');
      }
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('COM_PING, COM_RESET_CONNECTION and COM_QUIT; an unsupported query is an ERR and the session goes on', async () => {
    const c = await mysql.createConnection(options(server, 'query', pw.query));
    const id = c.threadId;
    await c.ping();
    await c.reset();
    await expect(c.query('SHOW TABLES')).rejects.toMatchObject({ errno: 1235, sqlState: '42000' });
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT 2 AS two');
    expect(rows).toEqual([{ two: 2 }]);
    await c.end(); // COM_QUIT
    await server.waitForClose(id);
    expect(server.connection(id)?.commands).toEqual([Com.PING, Com.RESET_CONNECTION, Com.QUERY, Com.QUERY, Com.QUIT]);
  });

  it('COM_CHANGE_USER re-authenticates on the same connection and keeps its id; a wrong password ends it with 1045', async () => {
    const c = await mysql.createConnection(options(server, 'query', pw.query));
    const id = c.threadId;
    await c.changeUser({ user: 'change', password: pw.change });
    expect(await currentUser(c)).toBe('change@%');
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
    expect(rows[0]?.id).toBe(id);
    expect(server.connection(id)).toMatchObject({ user: 'change', switchedPlugin: true, state: 'ready' });
    await expect(c.changeUser({ user: 'change', password: canary('change-wrong') })).rejects.toMatchObject(accessDenied('change', 'YES'));
    await server.waitForClose(id);
    c.destroy();
  });

  it('a server that advertises mysql_native_password switches mysql2 to caching_sha2_password', async () => {
    const native = await startCachingSha2Server({
      rsaKeyPair: keys,
      handshakePlugin: MYSQL_NATIVE_PASSWORD,
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },
      users: { sw: pw.fullRsa },
    });
    try {
      const plain = await withConnection(options(native, 'sw', pw.fullRsa), async (c) => {
        expect(await currentUser(c)).toBe('sw@%');
        return c.threadId;
      });
      expect(native.connection(plain)).toMatchObject({ clientPlugin: MYSQL_NATIVE_PASSWORD, switchedPlugin: true, authPath: 'full-rsa', publicKeyRequested: true });
      const fast = await withConnection(options(native, 'sw', pw.fullRsa, viaTls), async (c) => c.threadId);
      expect(native.connection(fast)).toMatchObject({ switchedPlugin: true, authPath: 'fast', tls: true });
      await expect(mysql.createConnection(options(native, 'sw', canary('sw-wrong')))).rejects.toMatchObject(accessDenied('sw', 'YES'));
      native.flushAuthCache();
      const full = await withConnection(options(native, 'sw', pw.fullRsa, viaTls), async (c) => c.threadId);
      expect(native.connection(full)).toMatchObject({ switchedPlugin: true, authPath: 'full-tls' });
      expect(native.authStats('sw')).toMatchObject({ switched: 4, full: 2, fast: 1, denied: 1 });
    } finally {
      await native.close();
    }
  });

  it('a database outside the configured list is refused with 1049', async () => {
    const s = await startCachingSha2Server({ rsaKeyPair: keys, users: { u: pw.query }, databases: ['shop'] });
    try {
      await withConnection(options(s, 'u', pw.query, { database: 'shop' }), async (c) => {
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
        expect(rows).toEqual([{ db: 'shop' }]);
      });
      await expect(mysql.createConnection(options(s, 'u', pw.query, { database: 'nope' }))).rejects.toMatchObject({ errno: 1049, sqlState: '42000', message: "Unknown database 'nope'" });
    } finally {
      await s.close();
    }
  });

  it('nothing the server exposes holds a password', () => {
    const users = [...new Set(server.connections().map((c) => c.user ?? ''))];
    const exposed = JSON.stringify({ connections: server.connections(), stats: users.map((u) => server.authStats(u)), key: server.publicKeyPem });
    for (const c of canaries) expect(exposed).not.toContain(c);
  });
});

describe('the mariadb CLI (libmariadb caching_sha2_password) against the server', () => {
  async function cli(s: CachingSha2Server, password: string, args: string[]): Promise<{ user: string; connectionId: number }> {
    const { stdout } = await execFileAsync(
      'mariadb',
      ['--no-defaults', '--protocol=TCP', '-h', '127.0.0.1', '-P', String(s.port), '-u', 'cli', '--batch', '--skip-column-names', ...args, '-e', 'SELECT CURRENT_USER(), CONNECTION_ID()'],
      { env: { ...process.env, MYSQL_PWD: password }, timeout: 30_000 },
    );
    const [user, id] = stdout.trim().split('\t');
    return { user: user ?? '', connectionId: Number(id) };
  }

  it('authenticates in full over TLS, in full over plaintext with the fetched RSA key, then fast; a wrong password gets 1045', async () => {
    // Its own server: the test flushes the cache.
    await using s = await startCachingSha2Server({ rsaKeyPair: keys, tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, users: { cli: pw.cli } });
    const overTls = await cli(s, pw.cli, ['--ssl', `--ssl-ca=${pki.caFile}`]);
    expect(overTls.user).toBe('cli@%');
    expect(s.connection(overTls.connectionId)).toMatchObject({ tls: true, authPath: 'full-tls', clientPlugin: 'caching_sha2_password' });
    s.flushAuthCache();
    const rsa = await cli(s, pw.cli, ['--ssl=0']);
    expect(s.connection(rsa.connectionId)).toMatchObject({ tls: false, authPath: 'full-rsa', publicKeyRequested: true });
    const fast = await cli(s, pw.cli, ['--ssl=0']);
    expect(s.connection(fast.connectionId)).toMatchObject({ tls: false, authPath: 'fast' });
    expect(s.authStats('cli')).toMatchObject({ fullTls: 1, fullRsa: 1, fast: 1, denied: 0 });
    const wrong = canary('cli-wrong');
    const refused = await cli(s, wrong, ['--ssl=0']).then(
      () => null,
      (e: { code?: number; stderr?: string }) => e,
    );
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toContain("ERROR 1045 (28000): Access denied for user 'cli'@'127.0.0.1' (using password: YES)");
    expect(refused?.stderr).not.toContain(wrong);
  });
});

describe('wire level', () => {
  async function wire(s: CachingSha2Server = server): Promise<WireClient> {
    return WireClient.connect(s.port);
  }

  /** Full authentication over TLS as `wire`, ready for commands. */
  async function loggedIn(flags: number): Promise<WireClient> {
    const c = await wire();
    await c.startTls(ca, { flags });
    c.send(handshakeResponse41({ flags: flags | Cap.SSL, user: 'wire', authResponse: sha2Scramble(pw.wire, c.handshake.nonce) }));
    let r = await c.reply(true);
    if (r.kind === 'auth-more-data' && r.data.readUInt8(0) === Sha2.PERFORM_FULL_AUTHENTICATION) {
      c.send(Buffer.from(`${pw.wire}\0`));
      r = await c.reply(true);
    } else if (r.kind === 'auth-more-data') {
      r = await c.reply(true);
    }
    expect(r.kind).toBe('ok');
    return c;
  }

  it('Handshake v10 has the documented layout, a 20-byte nonce and the advertised capabilities', async () => {
    const c = await wire();
    try {
      const h = c.handshake;
      expect(h.protocolVersion).toBe(10);
      expect(h.serverVersion).toBe('8.0.36-keyless-test');
      expect(h.nonce).toHaveLength(20);
      expect(h.nonce.includes(0)).toBe(false);
      expect(h.authPluginDataLength).toBe(21);
      expect(h.authPluginName).toBe('caching_sha2_password');
      expect(h.charset).toBe(255);
      for (const flag of [Cap.PLUGIN_AUTH, Cap.SECURE_CONNECTION, Cap.PROTOCOL_41, Cap.DEPRECATE_EOF, Cap.CONNECT_WITH_DB, Cap.CONNECT_ATTRS, Cap.SSL, Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA]) {
        expect(h.capabilities & flag).toBe(flag);
      }
      expect(server.connection(h.connectionId)?.state).toBe('handshake');
      const other = await wire();
      expect(other.handshake.nonce.equals(h.nonce)).toBe(false);
      other.destroy();
    } finally {
      c.destroy();
    }
    const plain = await startCachingSha2Server({ rsaKeyPair: keys, users: {}, withoutCapabilities: Cap.DEPRECATE_EOF });
    try {
      const p = await wire(plain);
      expect(p.handshake.capabilities & Cap.SSL).toBe(0);
      expect(p.handshake.capabilities & Cap.DEPRECATE_EOF).toBe(0);
      expect(p.handshake.capabilities & Cap.PLUGIN_AUTH).toBe(Cap.PLUGIN_AUTH);
      // An SSLRequest to a server that offered no TLS is a bad handshake.
      p.send(new PayloadWriter().int4(WIRE_CLIENT_FLAGS | Cap.SSL).int4(0).int1(255).zeros(23).toBuffer());
      expect(await p.reply()).toMatchObject({ kind: 'err', code: 1043, sqlState: '08S01' });
      await p.closed();
    } finally {
      await plain.close();
    }
  });

  it('TLS works when the SSLRequest and the ClientHello arrive together', async () => {
    const c = await wire();
    try {
      await c.startTls(ca, { coalesce: true });
      c.send(handshakeResponse41({ flags: WIRE_CLIENT_FLAGS | Cap.SSL, user: 'wire', authResponse: sha2Scramble(pw.wire, c.handshake.nonce) }));
      const r = await c.reply(true);
      expect(r.kind).toBe('auth-more-data');
      expect(server.connection(c.handshake.connectionId)?.tls).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it('text resultsets end with OK(0xfe) under DEPRECATE_EOF and with EOF packets without it', async () => {
    for (const deprecateEof of [true, false]) {
      const c = await loggedIn(deprecateEof ? WIRE_CLIENT_FLAGS | Cap.DEPRECATE_EOF : WIRE_CLIENT_FLAGS);
      try {
        c.command(Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from('SELECT 7 AS n')]));
        const count = deprecateEof ? 4 : 5;
        const payloads: Buffer[] = [];
        for (let i = 0; i < count; i++) payloads.push((await c.read()).payload);
        expect(payloads[0]).toEqual(Buffer.from([1])); // column count
        expect(payloads[1]!.subarray(0, 4)).toEqual(Buffer.from([3, 0x64, 0x65, 0x66])); // column definition: catalog "def"
        if (deprecateEof) {
          expect(payloads[2]).toEqual(Buffer.from([1, 0x37])); // row: "7"
          const end = payloads[3]!; // OK with the 0xfe header: 0xfe, 0, 0, status, warnings
          expect([...end]).toEqual([0xfe, 0, 0, 0x02, 0, 0, 0]);
        } else {
          expect([...payloads[2]!]).toEqual([0xfe, 0, 0, 0x02, 0]); // EOF after the column definitions
          expect(payloads[3]).toEqual(Buffer.from([1, 0x37]));
          expect([...payloads[4]!]).toEqual([0xfe, 0, 0, 0x02, 0]);
        }
        // Nothing else was sent: the next reply is the ping's.
        c.command(Buffer.from([Com.PING]));
        expect(await c.reply()).toMatchObject({ kind: 'ok' });
      } finally {
        c.destroy();
      }
    }
  });

  it('COM_INIT_DB switches the database; an unknown command is ERR 1047 and the session goes on', async () => {
    const c = await loggedIn(WIRE_CLIENT_FLAGS);
    try {
      c.command(Buffer.concat([Buffer.from([Com.INIT_DB]), Buffer.from('ledger')]));
      expect(await c.reply()).toMatchObject({ kind: 'ok' });
      expect(server.connection(c.handshake.connectionId)?.database).toBe('ledger');
      c.command(Buffer.from([0x09])); // COM_STATISTICS: not implemented here
      expect(await c.reply()).toMatchObject({ kind: 'err', code: 1047, sqlState: '08S01' });
      c.command(Buffer.from([Com.PING]));
      expect(await c.reply()).toMatchObject({ kind: 'ok' });
    } finally {
      c.destroy();
    }
  });

  it('a cached account with a wrong scramble is sent to full authentication (0x04), not refused outright', async () => {
    expect(server.isCached('wire_cached')).toBe(true);
    const c = await wire();
    try {
      c.send(handshakeResponse41({ user: 'wire_cached', authResponse: sha2Scramble(canary('wire-cached-wrong'), c.handshake.nonce) }));
      const r = await c.reply(true);
      expect(r).toMatchObject({ kind: 'auth-more-data' });
      expect(r.kind === 'auth-more-data' && [...r.data]).toEqual([Sha2.PERFORM_FULL_AUTHENTICATION]);
    } finally {
      c.destroy();
    }
    // And the right scramble gets 0x03 then OK.
    const ok = await wire();
    try {
      ok.send(handshakeResponse41({ user: 'wire_cached', authResponse: sha2Scramble(pw.wireCached, ok.handshake.nonce) }));
      const r = await ok.reply(true);
      expect(r.kind === 'auth-more-data' && [...r.data]).toEqual([Sha2.FAST_AUTH_SUCCESS]);
      expect(await ok.reply(true)).toMatchObject({ kind: 'ok' });
    } finally {
      ok.destroy();
    }
  });

  it('a cleartext password over a plaintext connection is refused', async () => {
    const c = await wire();
    try {
      expect(server.isCached('wire_plain')).toBe(false);
      c.send(handshakeResponse41({ user: 'wire_plain', authResponse: sha2Scramble(pw.wirePlain, c.handshake.nonce) }));
      const r = await c.reply(true);
      expect(r.kind === 'auth-more-data' && [...r.data]).toEqual([Sha2.PERFORM_FULL_AUTHENTICATION]);
      c.send(Buffer.from(`${pw.wirePlain}\0`));
      expect(await c.reply(true)).toMatchObject({ kind: 'err', code: 1045, sqlState: '28000' });
      await c.closed();
    } finally {
      c.destroy();
    }
  });

  it('AuthSwitchRequest: the handshake nonce again when the client chose another plugin; a fresh one when the handshake advertised mysql_native_password', async () => {
    const c = await wire();
    try {
      c.send(handshakeResponse41({ user: 'wire_cached', authResponse: randomBytes(20), plugin: MYSQL_NATIVE_PASSWORD }));
      const r = await c.reply(true);
      expect(r).toMatchObject({ kind: 'auth-switch', plugin: 'caching_sha2_password' });
      expect(r.kind === 'auth-switch' && r.data).toEqual(Buffer.concat([c.handshake.nonce, Buffer.from([0])]));
      c.send(sha2Scramble(pw.wireCached, c.handshake.nonce));
      const fast = await c.reply(true);
      expect(fast.kind === 'auth-more-data' && [...fast.data]).toEqual([Sha2.FAST_AUTH_SUCCESS]);
      expect(await c.reply(true)).toMatchObject({ kind: 'ok' });
    } finally {
      c.destroy();
    }
    await using native = await startCachingSha2Server({ rsaKeyPair: keys, handshakePlugin: MYSQL_NATIVE_PASSWORD, users: { n: { password: pw.wireCached, cached: true } } });
    for (const answerWithFreshNonce of [true, false]) {
      const n = await wire(native);
      try {
        expect(n.handshake.authPluginName).toBe(MYSQL_NATIVE_PASSWORD);
        n.send(handshakeResponse41({ user: 'n', authResponse: randomBytes(20), plugin: MYSQL_NATIVE_PASSWORD }));
        const r = await n.reply(true);
        expect(r).toMatchObject({ kind: 'auth-switch', plugin: 'caching_sha2_password' });
        const fresh = r.kind === 'auth-switch' ? r.data.subarray(0, 20) : Buffer.alloc(0);
        expect(r.kind === 'auth-switch' && r.data.length).toBe(21);
        expect(fresh.equals(n.handshake.nonce)).toBe(false);
        // Only the switch's nonce counts: a scramble over the handshake's misses the fast path.
        n.send(sha2Scramble(pw.wireCached, answerWithFreshNonce ? fresh : n.handshake.nonce));
        const verdict = await n.reply(true);
        expect(verdict.kind === 'auth-more-data' && [...verdict.data]).toEqual([answerWithFreshNonce ? Sha2.FAST_AUTH_SUCCESS : Sha2.PERFORM_FULL_AUTHENTICATION]);
      } finally {
        n.destroy();
      }
    }
  });

  it('COM_CHANGE_USER is answered with an AuthSwitchRequest carrying a fresh nonce', async () => {
    const c = await loggedIn(WIRE_CLIENT_FLAGS);
    try {
      const id = c.handshake.connectionId;
      c.command(changeUser({ user: 'wire_cached', authResponse: sha2Scramble(pw.wireCached, c.handshake.nonce), database: 'ledger' }));
      const r = await c.reply(true);
      expect(r).toMatchObject({ kind: 'auth-switch', plugin: 'caching_sha2_password' });
      const fresh = r.kind === 'auth-switch' ? r.data.subarray(0, 20) : Buffer.alloc(0);
      expect(fresh.equals(c.handshake.nonce)).toBe(false);
      c.send(sha2Scramble(pw.wireCached, fresh));
      const fast = await c.reply(true);
      expect(fast.kind === 'auth-more-data' && [...fast.data]).toEqual([Sha2.FAST_AUTH_SUCCESS]);
      expect(await c.reply(true)).toMatchObject({ kind: 'ok' });
      expect(server.connection(id)).toMatchObject({ user: 'wire_cached', database: 'ledger', state: 'ready', attributes: { _client_name: 'wire' } });
    } finally {
      c.destroy();
    }
  });

  it('a packet with the wrong sequence id is refused with 1156', async () => {
    const c = await wire();
    try {
      c.send(handshakeResponse41({ user: 'wire', authResponse: sha2Scramble(pw.wire, c.handshake.nonce) }), 5);
      expect(await c.reply()).toMatchObject({ kind: 'err', code: 1156, sqlState: '08S01' });
      await c.closed();
    } finally {
      c.destroy();
    }
  });

  it('a truncated handshake response is a bad handshake (1043)', async () => {
    const c = await wire();
    try {
      c.send(Buffer.from([0x00, 0x02, 0x00, 0x00, 0x00])); // PROTOCOL_41 flags, then nothing
      expect(await c.reply()).toMatchObject({ kind: 'err', code: 1043, sqlState: '08S01' });
      await c.closed();
    } finally {
      c.destroy();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { ERROR_CODES, KeylessError, type ErrorCode } from '../../../../src/errors.ts';
import { Cap, Plugin, RELAYED_CAPS } from '../../../../src/protocols/mysql/constants.ts';
import { MYSQL_ERROR, UpstreamServerError, toErrPacket } from '../../../../src/protocols/mysql/errors.ts';
import { clientGreeting, clientWelcome, newScramble } from '../../../../src/protocols/mysql/frontend.ts';
import {
  WireError,
  decodeAuthSwitch,
  decodeChangeUser,
  decodeErr,
  decodeGreeting,
  decodeHandshakeResponse,
  encodeChangeUser,
  encodeErr,
  encodeGreeting,
  encodeHandshakeResponse,
  encodeSslRequest,
  isSslRequest,
} from '../../../../src/protocols/mysql/wire.ts';
import { CAP, MODERN_CLIENT, authSwitch, comChangeUser, errPacket, greeting, handshakeResponse, sslRequest } from './builders.ts';

describe('Handshake v10', () => {
  it('decodes a MySQL 8 greeting', () => {
    const scramble = Buffer.from('ABCDEFGHIJKLMNOPQRST');
    const g = decodeGreeting(greeting({ version: '8.0.36', connectionId: 77, scramble, plugin: 'caching_sha2_password', charset: 255, status: 2 }));
    expect(g).toMatchObject({ serverVersion: '8.0.36', connectionId: 77, charset: 255, status: 2, authPlugin: 'caching_sha2_password', mariadbCapabilities: 0 });
    expect(g.scramble).toEqual(scramble);
    expect(g.capabilities).toBe((MODERN_CLIENT | CAP.SSL) >>> 0);
  });

  it('reads MariaDB extended capabilities when CLIENT_MYSQL is clear', () => {
    const caps = (MODERN_CLIENT | CAP.SSL) & ~CAP.LONG_PASSWORD;
    const g = decodeGreeting(greeting({ version: '5.5.5-10.11.19-MariaDB', capabilities: caps, mariadbCapabilities: 0x1d }));
    expect(g.mariadbCapabilities).toBe(0x1d);
    expect(g.serverVersion).toBe('5.5.5-10.11.19-MariaDB');
  });

  it('round-trips through encodeGreeting, including a plugin name without its NUL', () => {
    const g = decodeGreeting(greeting({ connectionId: 0xfffffffe, capabilities: (MODERN_CLIENT | CAP.SSL) & ~CAP.LONG_PASSWORD, mariadbCapabilities: 4 }));
    expect(decodeGreeting(encodeGreeting(g))).toEqual(g);
    const noNul = greeting({ plugin: 'mysql_native_password' }).subarray(0, -1);
    expect(decodeGreeting(noNul).authPlugin).toBe('mysql_native_password');
  });

  it('rejects other protocol versions and truncation', () => {
    const g = greeting();
    g[0] = 9;
    expect(() => decodeGreeting(g)).toThrow(WireError);
    expect(() => decodeGreeting(greeting().subarray(0, 12))).toThrow(WireError);
  });
});

describe('Keyless greeting to the client', () => {
  const up = decodeGreeting(greeting({ version: '5.5.5-10.11.19-MariaDB', connectionId: 4242, capabilities: (0xffffffff & ~CAP.LONG_PASSWORD) >>> 0, mariadbCapabilities: 0xff, plugin: 'client_ed25519' }));

  it('carries upstream version, id, charset and status, but its own nonce', () => {
    const g = clientGreeting(up, false);
    expect(g).toMatchObject({ serverVersion: up.serverVersion, connectionId: 4242, charset: up.charset, status: up.status });
    expect(g.scramble).not.toEqual(up.scramble);
    expect(g.scramble.length).toBe(20);
    expect(g.scramble.includes(0)).toBe(false);
  });

  it('offers only what both upstream and Keyless handle: no compression, SSL only with a certificate', () => {
    const plain = clientGreeting(up, false);
    expect(plain.capabilities & Cap.COMPRESS).toBe(0);
    expect(plain.capabilities & Cap.ZSTD_COMPRESSION).toBe(0);
    expect(plain.capabilities & Cap.SSL).toBe(0);
    expect(plain.capabilities & Cap.MULTI_FACTOR_AUTHENTICATION).toBe(0);
    expect(plain.capabilities & Cap.CAN_HANDLE_EXPIRED_PASSWORDS).toBe(0);
    expect((plain.capabilities & RELAYED_CAPS) >>> 0).toBe((up.capabilities & RELAYED_CAPS) >>> 0);
    expect(plain.mariadbCapabilities).toBe(0x3f);
    expect(clientGreeting(up, true).capabilities & Cap.SSL).toBe(Cap.SSL);
    // A relayed flag upstream lacks is not offered.
    const noEof = { ...up, capabilities: (up.capabilities & ~Cap.DEPRECATE_EOF) >>> 0 };
    expect(clientGreeting(noEof, false).capabilities & Cap.DEPRECATE_EOF).toBe(0);
  });

  it('names native or caching_sha2 as the plugin to start with', () => {
    expect(clientGreeting(up, false).authPlugin).toBe(Plugin.NATIVE);
    expect(clientGreeting({ ...up, authPlugin: Plugin.CACHING_SHA2 }, false).authPlugin).toBe(Plugin.CACHING_SHA2);
  });

  it('lets a caching_sha2 client in with "fast auth success" before the OK', () => {
    const ok = Buffer.from([0, 0, 0, 2, 0, 0, 0]);
    const sha2 = decodeHandshakeResponse(handshakeResponse({ plugin: 'caching_sha2_password', auth: Buffer.alloc(32, 1) }));
    expect(clientWelcome({ response: sha2, seq: 2 }, ok)).toEqual(Buffer.concat([Buffer.from([2, 0, 0, 2, 1, 3]), Buffer.from([7, 0, 0, 3]), ok]));
    const native = decodeHandshakeResponse(handshakeResponse());
    expect(clientWelcome({ response: native, seq: 2 }, ok)).toEqual(Buffer.concat([Buffer.from([7, 0, 0, 2]), ok]));
  });

  it('makes printable nonces', () => {
    for (let i = 0; i < 50; i++) for (const b of newScramble()) expect(b >= 33 && b < 127).toBe(true);
  });
});

describe('HandshakeResponse41 and SSLRequest', () => {
  it('decodes every optional field', () => {
    const r = decodeHandshakeResponse(handshakeResponse({ user: 'who', database: 'billing', plugin: 'caching_sha2_password', auth: Buffer.alloc(300, 5), attributes: { a: '1', program_name: 'mysql' } }));
    expect(r).toMatchObject({ user: 'who', database: 'billing', authPlugin: 'caching_sha2_password', charset: 45 });
    expect(r.authResponse.length).toBe(300);
    expect(r.attributes!.includes(Buffer.from('program_name'))).toBe(true);
  });

  it('decodes a 1-byte auth length without LENENC, and stops at missing optional fields', () => {
    const caps = CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.CONNECT_WITH_DB | CAP.PLUGIN_AUTH;
    const full = handshakeResponse({ capabilities: caps, user: 'u', database: 'd' });
    expect(decodeHandshakeResponse(full)).toMatchObject({ user: 'u', database: 'd', authPlugin: 'mysql_native_password', attributes: undefined });
    const stopped = handshakeResponse({ capabilities: caps & ~CAP.CONNECT_WITH_DB & ~CAP.PLUGIN_AUTH, user: 'u' });
    expect(decodeHandshakeResponse(Buffer.concat([stopped]))).toMatchObject({ database: undefined, authPlugin: undefined });
  });

  it('reads MariaDB extended capabilities only with CLIENT_MYSQL clear', () => {
    expect(decodeHandshakeResponse(handshakeResponse({ capabilities: MODERN_CLIENT & ~CAP.LONG_PASSWORD, mariadbCapabilities: 8 })).mariadbCapabilities).toBe(8);
    expect(decodeHandshakeResponse(handshakeResponse({ capabilities: MODERN_CLIENT, mariadbCapabilities: 8 })).mariadbCapabilities).toBe(0);
  });

  it('refuses pre-4.1 clients and truncated packets', () => {
    expect(() => decodeHandshakeResponse(handshakeResponse({ capabilities: CAP.SECURE_CONNECTION }))).toThrow(/4\.1/);
    const good = handshakeResponse({ user: 'someone' });
    for (const cut of [10, 32, 36]) expect(() => decodeHandshakeResponse(good.subarray(0, cut))).toThrow(WireError);
  });

  it('round-trips what Keyless sends upstream', () => {
    const r = decodeHandshakeResponse(handshakeResponse({ user: 'svc', database: 'db', attributes: { k: 'v' }, capabilities: MODERN_CLIENT & ~CAP.LONG_PASSWORD, mariadbCapabilities: 4 }));
    expect(decodeHandshakeResponse(encodeHandshakeResponse(r))).toEqual(r);
  });

  it('tells an SSLRequest from a response', () => {
    expect(isSslRequest(sslRequest())).toBe(true);
    expect(isSslRequest(handshakeResponse())).toBe(false);
    expect(isSslRequest(sslRequest().subarray(0, 31))).toBe(false);
    const mine = encodeSslRequest({ capabilities: MODERN_CLIENT, maxPacketSize: 1 << 24, charset: 33, mariadbCapabilities: 0 });
    expect(isSslRequest(mine)).toBe(true);
    expect(mine[8]).toBe(33);
  });
});

describe('ERR, AuthSwitchRequest, COM_CHANGE_USER', () => {
  it('decodes ERR with and without SQLSTATE', () => {
    expect(decodeErr(errPacket(1045, '28000', "Access denied for user 'x'"))).toEqual({ code: 1045, sqlState: '28000', message: "Access denied for user 'x'" });
    expect(decodeErr(Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from('Too many connections')]))).toEqual({ code: 1040, sqlState: '', message: 'Too many connections' });
    expect(decodeErr(encodeErr({ code: 1049, sqlState: '42000', message: 'x' }, true))).toEqual({ code: 1049, sqlState: '42000', message: 'x' });
    expect(encodeErr({ code: 1049, sqlState: '42000', message: 'x' }, false)).toEqual(Buffer.from([0xff, 0x19, 0x04, 0x78]));
  });

  it('decodes AuthSwitchRequest, keeping the data as sent', () => {
    const nonce = Buffer.alloc(32, 3);
    expect(decodeAuthSwitch(authSwitch('client_ed25519', nonce))).toEqual({ plugin: 'client_ed25519', data: nonce });
    expect(() => decodeAuthSwitch(Buffer.from([0xfe]))).toThrow(/old-style/);
  });

  it('round-trips COM_CHANGE_USER', () => {
    const caps = MODERN_CLIENT;
    const cu = decodeChangeUser(comChangeUser({ user: 'x', database: 'billing', charset: 224, plugin: 'caching_sha2_password' }), caps & ~CAP.CONNECT_ATTRS);
    expect(cu).toMatchObject({ user: 'x', database: 'billing', charset: 224, authPlugin: 'caching_sha2_password' });
    expect(decodeChangeUser(encodeChangeUser(cu, caps & ~CAP.CONNECT_ATTRS), caps & ~CAP.CONNECT_ATTRS)).toEqual(cu);
    const short = Buffer.concat([Buffer.from([0x11]), Buffer.from('u\0'), Buffer.from([0]), Buffer.from('db\0')]);
    expect(decodeChangeUser(short, caps)).toMatchObject({ user: 'u', database: 'db', charset: undefined, authPlugin: undefined });
  });
});

describe('ERR packets Keyless sends', () => {
  it('maps every Keyless error code to a MySQL error number and SQLSTATE', () => {
    const missing = (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => !MYSQL_ERROR[c]);
    expect(missing, 'add these codes to MYSQL_ERROR in src/protocols/mysql/errors.ts').toEqual([]);
  });

  it('says keyless, the target and the safe text, never the internal message', () => {
    const e = new KeylessError('KL_ERR_UPSTREAM_AUTH', 'upstream rejected the credential: 1045 internal detail canary-xyz');
    const err = decodeErr(toErrPacket(e, 'billing-db', true));
    expect(err).toEqual({ code: 1045, sqlState: '28000', message: 'keyless: target billing-db: upstream refused the stored credential' });
    const unknown = decodeErr(toErrPacket(new KeylessError('KL_ERR_UNKNOWN_TARGET', 'x', { clientDetail: '"nope"' }), undefined, true));
    expect(unknown).toEqual({ code: 1049, sqlState: '42000', message: 'keyless: no such database "nope"' });
  });

  it("passes upstream's own error on with its number and SQLSTATE", () => {
    const e = new UpstreamServerError('internal', { code: 1044, sqlState: '42000', message: "Access denied for user '[redacted]'@'%' to database 'x'" });
    expect(decodeErr(toErrPacket(e, 't', true))).toEqual({ code: 1044, sqlState: '42000', message: "keyless: target t: upstream: Access denied for user '[redacted]'@'%' to database 'x'" });
  });
});

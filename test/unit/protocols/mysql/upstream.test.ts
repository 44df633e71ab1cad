// The upstream login loop against a scripted server (net server on port 0, packets from the
// builders): what Keyless sends, and how it reads each reply.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../../../src/credentials/secret.ts';
import type { Credential } from '../../../../src/credentials/types.ts';
import { KeylessError } from '../../../../src/errors.ts';
import { nativeScramble } from '../../../../src/protocols/mysql/auth/native.ts';
import { UpstreamServerError } from '../../../../src/protocols/mysql/errors.ts';
import { PacketReader } from '../../../../src/protocols/mysql/packet.ts';
import { changeUser, greet, login, type UpstreamEndpoint } from '../../../../src/protocols/mysql/upstream.ts';
import { decodeChangeUser, decodeHandshakeResponse } from '../../../../src/protocols/mysql/wire.ts';
import { CAP, MODERN_CLIENT, authMoreData, authSwitch, errPacket, greeting, okPacket, packet } from './builders.ts';

const never = new AbortController().signal;
const SCRAMBLE = Buffer.from('ABCDEFGHIJKLMNOPQRST');

function cred(password: string | undefined, username = 'svc_user'): Credential {
  const fields = new Map([['username', new Secret(username)]]);
  if (password !== undefined) fields.set('password', new Secret(password));
  return { ref: { store: 's', path: 'p' }, fields, version: '1', renewable: false, fetchedAt: Date.now() };
}

type Script = (sock: Socket, read: () => Promise<{ seq: number; payload: Buffer }>) => Promise<void>;

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

async function scripted(script: Script): Promise<{ ep: UpstreamEndpoint; done: Promise<void> }> {
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  server = createServer((sock) => {
    const r = new PacketReader(sock, 'client');
    script(sock, () => r.read(1 << 20, never)).then(resolveDone, rejectDone);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { ep: { target: 't', host: '127.0.0.1', port, tls: { mode: 'disable' }, serverPublicKey: undefined, fetchServerPublicKey: false }, done };
}

const params = { capabilities: MODERN_CLIENT, mariadbCapabilities: 0, maxPacketSize: 1 << 24, charset: 45, database: 'billing', attributes: undefined };

async function codeOf(p: Promise<unknown>): Promise<KeylessError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(KeylessError);
    return err as KeylessError;
  }
  throw new Error('expected a rejection');
}

describe('upstream login', () => {
  it("answers the greeting's plugin, follows an AuthSwitchRequest, and returns upstream's OK", async () => {
    const { ep, done } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting({ scramble: SCRAMBLE, plugin: 'mysql_native_password', connectionId: 9 })));
      const r = await read();
      expect(r.seq).toBe(1);
      const resp = decodeHandshakeResponse(r.payload);
      expect(resp).toMatchObject({ user: 'svc_user', database: 'billing', authPlugin: 'mysql_native_password' });
      expect(resp.authResponse).toEqual(nativeScramble(Buffer.from('pw'), SCRAMBLE));
      const other = Buffer.from('ZYXWVUTSRQPONMLKJIHG');
      sock.write(packet(2, authSwitch('mysql_native_password', Buffer.concat([other, Buffer.from([0])]))));
      const r2 = await read();
      expect(r2.seq).toBe(3);
      expect(r2.payload).toEqual(nativeScramble(Buffer.from('pw'), other));
      sock.write(packet(4, okPacket(0x4002)));
    });
    const g = await greet(ep, never);
    expect(g.greeting.connectionId).toBe(9);
    const s = await login(g, ep, params, cred('pw'), never);
    expect(s.ok).toEqual(okPacket(0x4002));
    expect(s.capabilities & CAP.CONNECT_WITH_DB).toBe(CAP.CONNECT_WITH_DB);
    expect(s.capabilities & CAP.SSL).toBe(0);
    await done;
    s.socket.destroy();
  });

  it('caching_sha2 without TLS and without a key refuses full authentication', async () => {
    const { ep } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting({ plugin: 'caching_sha2_password' })));
      await read();
      sock.write(packet(2, authMoreData(Buffer.from([0x04]))));
      await read().catch(() => undefined);
    });
    const e = await codeOf(login(await greet(ep, never), ep, params, cred('pw'), never));
    expect(e.code).toBe('KL_ERR_UPSTREAM_AUTH_METHOD');
  });

  it('refuses mysql_clear_password without TLS, and plugins it does not speak', async () => {
    for (const plugin of ['mysql_clear_password', 'dialog', 'sha256_password']) {
      const { ep } = await scripted(async (sock, read) => {
        sock.write(packet(0, greeting()));
        await read();
        sock.write(packet(2, authSwitch(plugin, Buffer.alloc(0))));
        await read().catch(() => undefined);
      });
      const e = await codeOf(login(await greet(ep, never), ep, params, cred('pw'), never));
      expect(e.code).toBe('KL_ERR_UPSTREAM_AUTH_METHOD');
      server?.close();
    }
  });

  it('access denied is a credential rejection; scrubbed of the user name', async () => {
    const { ep } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting()));
      await read();
      sock.write(packet(2, errPacket(1045, '28000', "Access denied for user 'svc_user'@'10.0.0.1' (using password: YES)")));
      sock.end();
    });
    const e = await codeOf(login(await greet(ep, never), ep, params, cred('pw'), never));
    expect(e.code).toBe('KL_ERR_UPSTREAM_AUTH');
    expect(e.message).not.toContain('svc_user');
  });

  it("other login errors keep upstream's number and scrubbed text", async () => {
    const { ep } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting()));
      await read();
      sock.write(packet(2, errPacket(1044, '42000', "Access denied for user 'svc_user'@'%' to database 'billing'")));
      sock.end();
    });
    const e = await codeOf(login(await greet(ep, never), ep, params, cred('pw'), never));
    expect(e).toBeInstanceOf(UpstreamServerError);
    expect((e as UpstreamServerError).server).toEqual({ code: 1044, sqlState: '42000', message: "Access denied for user '[redacted]'@'%' to database 'billing'" });
  });

  it('an ERR instead of a greeting (too many connections) reaches the caller as upstream error', async () => {
    const { ep } = await scripted(async (sock) => {
      sock.end(packet(0, Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from('Too many connections')])));
    });
    const e = await codeOf(greet(ep, never));
    expect(e).toBeInstanceOf(UpstreamServerError);
    expect((e as UpstreamServerError).server.code).toBe(1040);
  });

  it('rejects multi-factor requests and packets out of order', async () => {
    const { ep } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting()));
      await read();
      sock.write(packet(2, Buffer.concat([Buffer.from([0x02]), Buffer.from('authentication_fido_client\0')])));
      await read().catch(() => undefined);
    });
    expect((await codeOf(login(await greet(ep, never), ep, params, cred('pw'), never))).code).toBe('KL_ERR_UPSTREAM_AUTH_METHOD');
    server?.close();
    const s2 = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting()));
      await read();
      sock.write(packet(5, okPacket()));
    });
    expect((await codeOf(login(await greet(s2.ep, never), s2.ep, params, cred('pw'), never))).code).toBe('KL_ERR_UPSTREAM_PROTOCOL');
  });

  it('wants TLS when the mode says so and upstream does not offer it', async () => {
    const { ep } = await scripted(async (sock) => {
      sock.write(packet(0, greeting({ capabilities: MODERN_CLIENT })));
    });
    const e = await codeOf(greet({ ...ep, tls: { mode: 'require' } }, never));
    expect(e.code).toBe('KL_ERR_UPSTREAM_TLS');
  });

  it('COM_CHANGE_USER re-authenticates with the greeting nonce and answers an auth switch', async () => {
    const { ep, done } = await scripted(async (sock, read) => {
      sock.write(packet(0, greeting({ scramble: SCRAMBLE })));
      await read();
      sock.write(packet(2, okPacket()));
      const cu = await read();
      expect(cu.seq).toBe(0);
      const decoded = decodeChangeUser(cu.payload, MODERN_CLIENT);
      expect(decoded).toMatchObject({ user: 'svc_user', database: 'other', charset: 33 });
      expect(decoded.authResponse).toEqual(nativeScramble(Buffer.from('pw2'), SCRAMBLE));
      sock.write(packet(1, authSwitch('mysql_native_password', Buffer.concat([SCRAMBLE, Buffer.from([0])]))));
      const again = await read();
      expect(again.seq).toBe(2);
      sock.write(packet(3, okPacket(0x0002)));
    });
    const s = await login(await greet(ep, never), ep, params, cred('pw'), never);
    const ok = await changeUser(s, ep, { database: 'other', charset: 33, attributes: undefined }, cred('pw2'), never);
    expect(ok).toEqual(okPacket(0x0002));
    await done;
    s.socket.destroy();
  });
});

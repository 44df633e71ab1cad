// SIGTERM with HTTP clients: an idle keep-alive connection is closed at once (it must not hold the
// drain until its deadline), a request in flight finishes with `Connection: close`, and the
// process exits 0 without reaching the drain deadline.
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { startKeyless } from '../support/keyless.ts';
import { httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';
import { freePort } from '../support/net.ts';

const pki = inject('pki');
let up: HttpsUpstream;

beforeAll(async () => {
  up = await startHttpsUpstream(pki);
});

afterAll(async () => {
  await up?.close();
});

function get(port: number, path: string, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('idle keep-alive connections close at once, in-flight requests finish, exit 0 before the deadline', async () => {
  const port = await freePort();
  const store = httpStore({ api: { token: `canary-drain-${Date.now().toString(36)}` } });
  const keyless = await startKeyless({
    stores: store.stores,
    drainTimeout: '20s',
    targets: {
      api: { protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { url: up.url, tls: { ca: pki.caFile } }, credential: { store: 'files', path: 'api' }, inject: { kind: 'bearer' } },
    },
  });
  try {
    const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    const busyAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(port, '/warm', idleAgent)).status).toBe(200);
    const idleSocketClosed = new Promise<void>((resolve) => {
      const sockets = Object.values(idleAgent.freeSockets).flat();
      expect(sockets).toHaveLength(1);
      sockets[0]!.once('close', () => resolve());
    });
    // A request the upstream holds until we let it go.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const atUpstream = new Promise<void>((r) => (arrived = r));
    up.routes.set('/slow', async (_req, res) => {
      arrived();
      await held;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('finished');
    });
    const inFlight = get(port, '/slow', busyAgent);
    await atUpstream;
    keyless.child.kill('SIGTERM');
    await keyless.waitForLog((l) => l.msg === 'draining');
    await idleSocketClosed;
    release();
    expect(await inFlight).toEqual({ status: 200, connection: 'close', body: 'finished' });
    expect(await keyless.exited).toBe(0);
    expect(keyless.logs().some((l) => l.msg === 'drain deadline passed, closing connections')).toBe(false);
    idleAgent.destroy();
    busyAgent.destroy();
  } finally {
    await keyless.stop();
  }
});

// WebSocket through Keyless: the handshake reaches the upstream (HTTPS, test CA) with the
// credential injected, the 101 comes back, and frames echo both ways over the spliced sockets.
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';

const pki = inject('pki');
const TOKEN = `KLCANARYws${randomBytes(6).toString('hex')}`;

let keyless: KeylessProcess;
let up: HttpsUpstream;
let wss: WebSocketServer;
let port: number;
const handshakes: { authorization?: string; protocol?: string }[] = [];

beforeAll(async () => {
  up = await startHttpsUpstream(pki);
  wss = new WebSocketServer({
    server: up.server,
    verifyClient: (info: { req: { headers: Record<string, string | string[] | undefined> } }) => {
      handshakes.push({ authorization: info.req.headers.authorization as string | undefined, protocol: info.req.headers['sec-websocket-protocol'] as string | undefined });
      return info.req.headers.authorization === `Bearer ${TOKEN}`;
    },
  });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  port = await freePort();
  keyless = await startKeyless({
    stores: httpStore({ ws: { token: TOKEN } }).stores,
    targets: { ws: { protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { url: up.url, tls: { ca: pki.caFile } }, credential: { store: 'files', path: 'ws' }, inject: { kind: 'bearer' } } },
  });
});

afterAll(async () => {
  await keyless?.stop();
  wss?.close();
  await up?.close();
});

test('WebSocket echo with the credential on the handshake', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket`, ['chat.v1'], { headers: { authorization: 'Bearer app-own' } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  expect(ws.protocol).toBe('chat.v1');
  const replies: string[] = [];
  const got = new Promise<void>((resolve) =>
    ws.on('message', (d) => {
      replies.push(d.toString());
      if (replies.length === 3) resolve();
    }),
  );
  ws.send('one');
  ws.send('two');
  ws.send('x'.repeat(200_000));
  await got;
  expect(replies.slice(0, 2)).toEqual(['one', 'two']);
  expect(replies[2]).toHaveLength(200_000);
  expect(handshakes.at(-1)).toEqual({ authorization: `Bearer ${TOKEN}`, protocol: 'chat.v1' });
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  const logs = keyless.output();
  expect(logs.includes(TOKEN)).toBe(false);
  expect((await keyless.admin('/metrics')).body.includes(TOKEN)).toBe(false);
});

test('an upstream refusing the handshake → the client gets a 502 problem, not a socket', async () => {
  wss.options.verifyClient = () => false;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket`);
  const status = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => resolve(101));
    ws.once('error', () => resolve(-1));
  });
  expect(status).toBe(502);
});

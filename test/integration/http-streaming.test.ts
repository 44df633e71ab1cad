// 1 GB up and 1 GB down through Keyless with its memory bounded: bodies stream with
// backpressure, never buffered. The data is generated on the fly (no files), and Keyless's peak
// resident set (VmHWM of the child) must stay far below the size of either body.
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { startKeyless, type KeylessProcess } from '../support/keyless.ts';
import { freePort } from '../support/net.ts';
import { httpStore, startHttpsUpstream, type HttpsUpstream } from '../support/http-upstream.ts';

const pki = inject('pki');
const GB = 1024 ** 3;
const CHUNK = Buffer.alloc(256 * 1024, 0x61);
/** Far below 1 GB, well above Keyless's resting footprint (about 100 MB under Node 24). */
const PEAK_LIMIT = 300 * 1024 * 1024;

let keyless: KeylessProcess;
let up: HttpsUpstream;
let port: number;

function generate(total: number): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, CHUNK.length);
      left -= n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

beforeAll(async () => {
  up = await startHttpsUpstream(pki);
  up.routes.set('/upload', async (req, res) => {
    let n = 0;
    for await (const c of req) n += (c as Buffer).length;
    res.end(String(n));
  });
  up.routes.set('/download', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(GB) });
    generate(GB).pipe(res);
  });
  const store = httpStore({ api: { token: 'stream-token-value' } });
  port = await freePort();
  keyless = await startKeyless({
    log: { level: 'info' },
    stores: store.stores,
    targets: {
      bulk: { protocol: 'http', listen: `127.0.0.1:${port}`, upstream: { url: up.url, tls: { ca: pki.caFile } }, credential: { store: 'files', path: 'api' }, inject: { kind: 'bearer' } },
    },
  });
});

afterAll(async () => {
  await keyless?.stop();
  await up?.close();
});

test('1 GB upload streams through with bounded memory', async () => {
  const r = await request(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: generate(GB), headers: { 'content-type': 'application/octet-stream' } });
  expect(r.statusCode).toBe(200);
  expect(await r.body.text()).toBe(String(GB));
  expect(up.seen.at(-1)?.headers.authorization).toBe('Bearer stream-token-value');
  expect(up.seen.at(-1)?.headers['transfer-encoding']).toBe('chunked');
  expect(keyless.memory().peak).toBeLessThan(PEAK_LIMIT);
});

test('1 GB download streams through with bounded memory', async () => {
  const r = await request(`http://127.0.0.1:${port}/download`);
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-length']).toBe(String(GB));
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  expect(n).toBe(GB);
  expect(keyless.memory().peak).toBeLessThan(PEAK_LIMIT);
});

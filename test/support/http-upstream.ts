// A real HTTPS upstream for the HTTP integration tests, in the test process: signed by the test
// CA, recording each request's method, URL and headers so tests can check what Keyless sent,
// answering through a per-path handler the test supplies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCredential } from './keyless.ts';
import type { PkiInfo } from './global-setup.ts';

export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  httpVersion: string;
}

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface HttpsUpstream {
  port: number;
  url: string;
  server: Server;
  seen: Seen[];
  /** Handlers by path (without query); unmatched paths answer 200 `{"ok":true}`. */
  routes: Map<string, Route>;
  close(): Promise<void>;
}

export async function startHttpsUpstream(pki: PkiInfo, opts: { cert?: { cert: string; key: string } } = {}): Promise<HttpsUpstream> {
  const seen: Seen[] = [];
  const routes = new Map<string, Route>();
  const sockets = new Set<Socket>();
  const server = createServer({ cert: opts.cert?.cert ?? pki.server.cert, key: opts.cert?.key ?? pki.server.key, keepAliveTimeout: 30_000 }, (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion });
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes.get(path);
    if (route) {
      void Promise.resolve(route(req, res)).catch((err: unknown) => {
        res.destroy(err as Error);
      });
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `https://localhost:${port}`,
    server,
    seen,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A file store directory with the given credentials (path → fields). */
export function httpStore(creds: Record<string, Record<string, string>>): { dir: string; stores: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), 'keyless-http-store-'));
  for (const [path, fields] of Object.entries(creds)) writeCredential(dir, path, fields);
  return { dir, stores: { files: { kind: 'file', dir } } };
}

export function readCa(pki: PkiInfo): string {
  return readFileSync(pki.caFile, 'utf8');
}

/** Read a request body to a string. */
export async function bodyOf(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

// The two ways of forwarding the issue asks to compare, each reduced to the same job Keyless's
// forwarding path does: take a plaintext request, set Authorization, send it to the HTTPS upstream
// over a keep-alive pool, stream the answer back.
//   node bench/http/forwarders.ts <http-proxy|undici> <listen-port> <upstream-port> <ca-file> <token>
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import httpProxy from 'http-proxy';
import { Agent } from 'undici';

const [kind, listen, upstreamPort, caFile, token] = process.argv.slice(2);
if (!kind || !listen || !upstreamPort || !caFile || !token) throw new Error('usage: forwarders.ts <http-proxy|undici> <port> <upstream-port> <ca> <token>');
const ca = readFileSync(caFile);
const target = `https://localhost:${upstreamPort}`;
const auth = `Bearer ${token}`;
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

if (kind === 'http-proxy') {
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 256, ca });
  const proxy = httpProxy.createProxyServer({ target, agent, changeOrigin: true, secure: true });
  proxy.on('proxyReq', (proxyReq) => proxyReq.setHeader('authorization', auth));
  proxy.on('error', (_err, _req, res) => {
    if ('writeHead' in res) {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    } else res.destroy();
  });
  createServer((req, res) => proxy.web(req, res)).listen(Number(listen), '127.0.0.1', () => console.log(`http-proxy on ${listen}`));
} else if (kind === 'undici') {
  const agent = new Agent({ connect: { ca }, keepAliveTimeout: 30_000, connections: null });
  createServer((req, res) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers as IncomingHttpHeaders)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
    headers.host = `localhost:${upstreamPort}`;
    headers.authorization = auth;
    agent
      .stream({ origin: target, path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }, ({ statusCode, headers: h }) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k)) out[k] = v;
        res.writeHead(statusCode, out);
        return res;
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  }).listen(Number(listen), '127.0.0.1', () => console.log(`undici on ${listen}`));
} else {
  throw new Error(`unknown forwarder ${kind}`);
}

// Exit normally on Ctrl-C so `node --cpu-prof` writes its profile.
process.on('SIGINT', () => process.exit(0));

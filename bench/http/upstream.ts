// The benchmark's HTTPS upstream: keep-alive, a small JSON answer, and a check that the request
// carries the expected bearer token (401 otherwise), so a proxy that fails to inject shows up as
// non-2xx responses in wrk's output.   node bench/http/upstream.ts <pki-dir> <port> <token>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [dir, port, token] = process.argv.slice(2);
if (!dir || !port || !token) throw new Error('usage: upstream.ts <pki-dir> <port> <token>');
const body = JSON.stringify({ id: 'ch_1', amount: 1000, currency: 'eur', status: 'succeeded', padding: 'x'.repeat(100) });
const expected = `Bearer ${token}`;
const server = createServer({ cert: readFileSync(`${dir}/server.crt`), key: readFileSync(`${dir}/server.key`), keepAliveTimeout: 60_000 }, (req, res) => {
  const ok = req.headers.authorization === expected;
  req.resume();
  res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': ok ? Buffer.byteLength(body) : 0 });
  res.end(ok ? body : undefined);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), '127.0.0.1', () => console.log(`upstream listening on ${port}`));

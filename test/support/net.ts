import { connect, createServer } from 'node:net';

/** Ports this process has handed out: the kernel may offer a just-released port again. */
const handedOut = new Set<number>();

/** A port that was free a moment ago (bind to 0, read it, release it), never the same one twice. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await probePort(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

function probePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolve once something accepts TCP connections on host:port (retrying on refusal). */
export async function waitForAccept(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepted on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 25));
  }
}

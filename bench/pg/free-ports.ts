// Print N distinct TCP ports on 127.0.0.1 that were free a moment ago, one a line. All N are held
// open together before any is released, so they differ from each other.
//   node bench/pg/free-ports.ts 4
import { createServer, type Server } from 'node:net';

const n = Number(process.argv[2] ?? '1');
if (!Number.isInteger(n) || n < 1 || n > 32) {
  process.stderr.write('usage: free-ports.ts N (1..32)\n');
  process.exit(2);
}

function listen(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      if (typeof a === 'object' && a) resolve({ server, port: a.port });
      else reject(new Error('no port'));
    });
  });
}

const held = await Promise.all(Array.from({ length: n }, () => listen()));
await Promise.all(held.map(({ server }) => new Promise<void>((r) => server.close(() => r()))));
process.stdout.write(`${held.map(({ port }) => port).join('\n')}\n`);

// Connect-per-query load for bench/mysql: C workers, each in a loop until the time is up: open a
// new mysql2 connection, run `SELECT 1`, check the answer, close it (COM_QUIT). Prints one line:
//   connections=N seconds=S rate=R errors=E p50_ms=… p95_ms=…
// where rate = connections completed per second of wall time. Exits 1 on any error.
//   node bench/mysql/connect-loop.ts --port 3306 --user u --database sbtest --seconds 5 --concurrency 8
// The password, if any, comes from BENCH_MYSQL_PASSWORD (never argv, so `ps` does not show it);
// without it the client sends no password (the Keyless path).
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    user: { type: 'string', default: 'bench' },
    database: { type: 'string', default: 'sbtest' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
  },
});
const port = Number(values.port);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(port) || port < 1 || !(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: connect-loop.ts --port P [--host H] [--user U] [--database D] [--seconds S] [--concurrency C]\n');
  process.exit(2);
}
const password = process.env.BENCH_MYSQL_PASSWORD;
delete process.env.BENCH_MYSQL_PASSWORD;

let connections = 0;
let errors = 0;
let firstError: string | undefined;
const latencies: number[] = [];

async function once(): Promise<void> {
  const t0 = performance.now();
  const conn = await mysql.createConnection({
    host: values.host,
    port,
    user: values.user,
    ...(password ? { password } : {}),
    database: values.database,
    connectTimeout: 10_000,
  });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT 1 AS one');
    if (rows[0]?.one !== 1) throw new Error(`unexpected answer to SELECT 1: ${JSON.stringify(rows)}`);
  } finally {
    await conn.end();
  }
  latencies.push(performance.now() - t0);
}

const start = performance.now();
const deadline = start + seconds * 1000;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (performance.now() < deadline) {
      try {
        await once();
        connections++;
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        // A broken path should not spin: back off a little.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }),
);
const elapsed = (performance.now() - start) / 1000;

latencies.sort((a, b) => a - b);
const pct = (p: number): string => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(2) : 'n/a');
process.stdout.write(
  `connections=${connections} seconds=${elapsed.toFixed(3)} rate=${(connections / elapsed).toFixed(2)} errors=${errors} p50_ms=${pct(50)} p95_ms=${pct(95)}\n`,
);
if (errors > 0) process.stderr.write(`connect-loop: ${errors} errors; first: ${firstError}\n`);
process.exit(errors > 0 || connections === 0 ? 1 : 0);

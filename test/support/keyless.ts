// Runs Keyless as a real child process (`node src/main.ts run --config FILE`) on a config the
// test writes, waits for /readyz, and captures its JSON log lines for assertions.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './net.ts';

const ROOT = resolve(import.meta.dirname, '../..');

export interface KeylessProcess {
  pid: number;
  adminPort: number;
  configFile: string;
  dir: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Wait until a log line matches (lines are written asynchronously), and return it. */
  waitForLog(pred: (line: Record<string, unknown>, index: number) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** GET a path on the admin server. */
  admin(path: string): Promise<{ status: number; body: string }>;
  /** Resident set size now and its peak (VmHWM), in bytes, from /proc. */
  memory(): { rss: number; peak: number };
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process exits. */
  exited: Promise<number | null>;
  child: ChildProcess;
}

/**
 * Start Keyless on `config` (an object written as YAML; `admin.listen` is filled in with a free
 * port when absent). Relative paths in the config resolve against `dir`.
 */
export async function startKeyless(config: Record<string, unknown>, opts: { env?: NodeJS.ProcessEnv; dir?: string; waitReady?: boolean } = {}): Promise<KeylessProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'keyless-run-'));
  const adminPort = await freePort();
  const cfg = { admin: { listen: `127.0.0.1:${adminPort}` }, log: { level: 'debug' }, ...config };
  const configFile = join(dir, 'keyless.yaml');
  writeFileSync(configFile, stringify(cfg));
  const child = spawn(process.execPath, [join(ROOT, 'src/main.ts'), 'run', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const admin = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((res, rej) => {
      const req = request({ host: '127.0.0.1', port: adminPort, path, method: 'GET' }, (r) => {
        let body = '';
        r.setEncoding('utf8').on('data', (d: string) => (body += d));
        r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', rej);
      req.end();
    });
  const proc: KeylessProcess = {
    pid: child.pid!,
    adminPort,
    configFile,
    dir,
    child,
    exited,
    output: () => out,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { unparsed: l };
          }
        }),
    admin,
    async waitForLog(pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = proc.logs().find(pred);
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
  if (opts.waitReady === false) return proc;
  // Wait for readiness: poll /readyz until 200, failing fast if the process exits.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`keyless exited with ${child.exitCode}:\n${out}`);
    const r = await admin('/readyz').catch(() => undefined);
    if (r?.status === 200) return proc;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`keyless not ready within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Write (or overwrite in place) a credential in a file-store directory: one file per field. */
export function writeCredential(storeDir: string, path: string, fields: Record<string, string>): void {
  const d = join(storeDir, path);
  mkdirSync(d, { recursive: true });
  for (const [k, v] of Object.entries(fields)) writeFileSync(join(d, k), v);
}

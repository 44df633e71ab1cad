// `keyless check FILE`: reach every store and every upstream the way a connection would —
// fetching the real credential and authenticating with it, never printing it — and print a table
// of what works and what does not, and why. Exit 1 if anything failed.
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.ts';
import type { Config, TargetConfig } from '../config/schema.ts';
import { CredentialCache } from '../credentials/cache.ts';
import { mapFields } from '../credentials/fields.ts';
import { createStores } from '../credentials/registry.ts';
import { KeylessError } from '../errors.ts';
import { createLogger } from '../observability/logger.ts';
import { Metrics } from '../observability/metrics.ts';
import { createHandler } from '../protocols/index.ts';
import type { ProtocolHandler } from '../protocols/types.ts';

export interface CheckIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

interface Row {
  cells: string[];
  ok: boolean;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const STEP_TIMEOUT_MS = 30_000;

export async function check(file: string, io: CheckIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  let cfg: Config;
  try {
    cfg = await loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err.write(`${file}: invalid\n${err.problems.map((p) => `  ${formatProblem(p)}\n`).join('')}`);
      return 1;
    }
    throw err;
  }
  // Quiet: the table is the output. Failures are in it, with their reasons.
  const log = createLogger({ level: 'silent' });
  const metrics = new Metrics({ defaultMetrics: false });
  const stores = createStores(cfg.stores, log, metrics);
  const cache = new CredentialCache(stores, log, metrics);
  const handlers = new Map<TargetConfig['protocol'], ProtocolHandler>();
  const progress = new Progress(io.err, Object.keys(cfg.stores).length + Object.keys(cfg.targets).length);

  const storeRows: Row[] = [];
  for (const [name, store] of stores) {
    progress.step(`store ${name}`);
    try {
      const detail = store.ping ? await withTimeout(store.ping()) : 'nothing to reach';
      storeRows.push({ ok: true, cells: [name, store.kind, `ok: ${detail}`] });
    } catch (err) {
      storeRows.push({ ok: false, cells: [name, store.kind, `FAIL: ${why(err)}`] });
    }
  }

  const targetRows: Row[] = [];
  for (const [name, t] of Object.entries(cfg.targets)) {
    progress.step(`target ${name}`);
    const ref = t.credential;
    const cells = [name, t.protocol, `${ref.store}:${ref.path}${ref.version ? `@${ref.version}` : ''}`, upstreamOf(t)];
    let cred;
    try {
      cred = mapFields(await withTimeout(cache.get(ref)), ref.fields);
    } catch (err) {
      targetRows.push({ ok: false, cells: [...cells, `FAIL: credential: ${why(err)}`] });
      continue;
    }
    let handler = handlers.get(t.protocol);
    if (!handler) {
      handler = createHandler(t.protocol, log);
      handlers.set(t.protocol, handler);
    }
    if (!handler.check) {
      targetRows.push({ ok: true, cells: [...cells, `ok: credential version ${cred.version}; ${t.protocol} upstreams are not probed`] });
      continue;
    }
    try {
      const detail = await handler.check({ name, config: t }, cred, AbortSignal.timeout(STEP_TIMEOUT_MS));
      targetRows.push({ ok: true, cells: [...cells, `ok: ${detail}`] });
    } catch (err) {
      targetRows.push({ ok: false, cells: [...cells, `FAIL: ${why(err)}`] });
    }
  }
  progress.done();
  cache.close();
  await Promise.all([...stores.values()].map((s) => s.close()));
  await Promise.all([...handlers.values()].map((h) => h.close?.()));

  io.out.write(table(['STORE', 'KIND', 'RESULT'], storeRows));
  io.out.write('\n');
  io.out.write(table(['TARGET', 'PROTOCOL', 'CREDENTIAL', 'UPSTREAM', 'RESULT'], targetRows));
  const failed = [...storeRows, ...targetRows].filter((r) => !r.ok).length;
  io.out.write(`\n${failed === 0 ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`}\n`);
  return failed === 0 ? 0 : 1;
}

function upstreamOf(t: TargetConfig): string {
  const u = t.upstream as { host?: string; port?: number; url?: string; tls?: { mode?: string } };
  if (u.url) return u.url;
  return `${u.host}:${u.port}${u.tls?.mode ? ` (${u.tls.mode})` : ''}`;
}

/** The operator's view of a failure: the class and the internal message (no secret in either). */
function why(err: unknown): string {
  if (err instanceof KeylessError) return `${err.clientMessage} — ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function table(head: string[], rows: Row[]): string {
  const all = [head, ...rows.map((r) => r.cells)];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${all.map(line).join('\n')}\n`;
}

/** A spinner on a terminal; one line per step otherwise (CI logs). */
class Progress {
  readonly #err: CheckIo['err'];
  readonly #total: number;
  #n = 0;
  #label = '';
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(err: CheckIo['err'], total: number) {
    this.#err = err;
    this.#total = total;
    if (err.isTTY) {
      this.#timer = setInterval(() => this.#draw(), 80);
      this.#timer.unref();
    }
  }

  step(label: string): void {
    this.#n++;
    this.#label = label;
    if (this.#err.isTTY) this.#draw();
    else this.#err.write(`checking [${this.#n}/${this.#total}] ${label}\n`);
  }

  #draw(): void {
    this.#frame = (this.#frame + 1) % SPINNER.length;
    this.#err.write(`\r\x1b[2K${SPINNER[this.#frame]} checking [${this.#n}/${this.#total}] ${this.#label}`);
  }

  done(): void {
    clearInterval(this.#timer);
    if (this.#err.isTTY) this.#err.write('\r\x1b[2K');
  }
}

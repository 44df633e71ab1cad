// Turn bench/pg's raw results (TSV: mode target rep tps transactions proxy_user_ms proxy_sys_ms)
// into a markdown
// table of medians and ratios.
//   node bench/pg/report.ts bench/out/pg-results.tsv
// Other benches import readRows/renderReport/median with their own targets and modes (bench/mysql).
import { readFileSync } from 'node:fs';

export interface Row {
  mode: string;
  target: string;
  rep: number;
  /** Rate of the mode's unit (transactions or connections per second); 0 for a failed run. */
  tps: number;
  /** Units done in the run (transactions or connections), for the proxy's CPU per unit. */
  txns: number;
  userMs: number;
  sysMs: number;
  /** Any further columns, as read (bench/mysql puts QPS in the 8th). */
  extra: string[];
}

export interface ReportSpec {
  /** The first is the baseline with no proxy (no CPU column). */
  targets: readonly string[];
  /** [mode id, label]; the ratio table uses the label up to " (". */
  modes: readonly (readonly [string, string])[];
  /** [name, numerator target, denominator target]. */
  ratios: readonly (readonly [string, string, string])[];
  /** The rate's name in the headers ("TPS"). */
  rate: string;
  /** The unit in "proxy CPU µs/…" ("txn"). */
  unit: string;
}

export const PG_SPEC: ReportSpec = {
  targets: ['direct', 'keyless', 'pgbouncer'],
  modes: [
    ['steady', 'pgbench -S (steady state)'],
    ['connect', 'pgbench -S -C (new connection per transaction)'],
  ],
  ratios: [
    ['Keyless / direct', 'keyless', 'direct'],
    ['Keyless / PgBouncer', 'keyless', 'pgbouncer'],
    ['PgBouncer / direct', 'pgbouncer', 'direct'],
  ],
  rate: 'TPS',
  unit: 'txn',
};

export function readRows(file: string): Row[] {
  const rows: Row[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [mode, target, rep, tps, txns, userMs, sysMs, ...extra] = line.split('\t');
    if (!mode || !target) continue;
    rows.push({ mode, target, rep: Number(rep), tps: Number(tps), txns: Number(txns), userMs: Number(userMs), sysMs: Number(sysMs), extra });
  }
  return rows;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

export function renderReport(rows: Row[], spec: ReportSpec = PG_SPEC): string {
  const out: string[] = [];
  const { rate, unit } = spec;
  out.push(
    `| mode | target | median ${rate} | min–max ${rate} | runs | proxy CPU µs/${unit}: user + sys = total (medians) |`,
    '|---|---|---:|---:|---:|---:|',
  );
  for (const [mode, label] of spec.modes) {
    for (const t of spec.targets) {
      const rs = rows.filter((r) => r.mode === mode && r.target === t);
      const ok = rs.filter((r) => Number.isFinite(r.tps) && r.tps > 0);
      const tps = ok.map((r) => r.tps);
      const perTxn = (f: (r: Row) => number): string => fmt(median(ok.map((r) => (r.txns > 0 ? (1000 * f(r)) / r.txns : Number.NaN))), 1);
      const cpu = t === spec.targets[0] ? 'n/a' : `${perTxn((r) => r.userMs)} + ${perTxn((r) => r.sysMs)} = ${perTxn((r) => r.userMs + r.sysMs)}`;
      const range = tps.length ? `${fmt(Math.min(...tps))}–${fmt(Math.max(...tps))}` : 'n/a';
      const failed = rs.length - ok.length;
      out.push(`| ${label} | ${t} | ${fmt(median(tps))} | ${range} | ${ok.length}${failed ? ` (+${failed} failed)` : ''} | ${cpu} |`);
    }
  }

  out.push('', '| ratio | mode | ratio of medians | median of per-round ratios |', '|---|---|---:|---:|');
  for (const [mode, label] of spec.modes) {
    for (const [name, a, b] of spec.ratios) {
      const ra = rows.filter((r) => r.mode === mode && r.target === a && r.tps > 0);
      const rb = rows.filter((r) => r.mode === mode && r.target === b && r.tps > 0);
      const ofMedians = median(ra.map((r) => r.tps)) / median(rb.map((r) => r.tps));
      const paired: number[] = [];
      for (const x of ra) {
        const y = rb.find((r) => r.rep === x.rep);
        if (y) paired.push(x.tps / y.tps);
      }
      out.push(`| ${name} | ${label.split(' (')[0]} | ${fmt(ofMedians, 3)} | ${fmt(median(paired), 3)} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: report.ts RESULTS.tsv\n');
    process.exit(2);
  }
  process.stdout.write(renderReport(readRows(file)));
}

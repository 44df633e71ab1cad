// Turn bench/mysql's raw results into markdown tables of medians and ratios, with bench/pg's
// report (same TSV layout: mode target rep rate units proxy_user_ms proxy_sys_ms, plus qps).
//   node bench/mysql/report.ts bench/out/mysql-results.tsv
// "steady" rows: rate = sysbench TPS, units = transactions, qps = sysbench QPS.
// "connect" rows: rate = connections/s, units = connections (one SELECT 1 each).
import { fmt, median, readRows, renderReport, type ReportSpec } from '../pg/report.ts';

export const MYSQL_SPEC: ReportSpec = {
  targets: ['direct', 'keyless', 'haproxy'],
  modes: [
    ['steady', 'sysbench oltp_read_only (steady state; rate = TPS, unit = transaction)'],
    ['connect', 'connect-per-query (rate = connections/s, unit = connection)'],
  ],
  ratios: [
    ['Keyless / direct', 'keyless', 'direct'],
    ['Keyless / HAProxy', 'keyless', 'haproxy'],
    ['HAProxy / direct', 'haproxy', 'direct'],
  ],
  rate: 'rate',
  unit: 'unit',
};

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: report.ts RESULTS.tsv\n');
  process.exit(2);
}
const rows = readRows(file);
const out: string[] = [renderReport(rows, MYSQL_SPEC)];

// QPS is TPS × the queries per transaction (16 for oltp_read_only's defaults), so its ratios are
// the TPS ratios; shown because sysbench users quote it.
out.push('| sysbench oltp_read_only | median QPS | min–max QPS |', '|---|---:|---:|');
for (const t of MYSQL_SPEC.targets) {
  const qps = rows.filter((r) => r.mode === 'steady' && r.target === t && r.tps > 0).map((r) => Number(r.extra[0]));
  const ok = qps.filter((x) => Number.isFinite(x) && x > 0);
  out.push(`| ${t} | ${fmt(median(ok))} | ${ok.length ? `${fmt(Math.min(...ok))}–${fmt(Math.max(...ok))}` : 'n/a'} |`);
}
process.stdout.write(`${out.join('\n')}\n`);

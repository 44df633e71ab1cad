// Medians per contender from bench/http/run.sh's TSV, with ratios to HAProxy and to direct.
//   node bench/http/report.ts <results.tsv> <machine-line>
import { readFileSync } from 'node:fs';

const [file, machine] = process.argv.slice(2);
if (!file) throw new Error('usage: report.ts <results.tsv> [machine line]');
const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const names = [...new Set(rows.map((r) => r[1]!))];
const stats = new Map(names.map((n) => {
  const mine = rows.filter((r) => r[1] === n);
  return [n, { rps: median(mine.map((r) => Number(r[2]))), p99: median(mine.map((r) => Number(r[3]))), runs: mine.map((r) => Math.round(Number(r[2]))) }];
}));
const ha = stats.get('haproxy');
const direct = stats.get('direct');
const lines = [
  `| contender | requests/s (median) | p99 ms (median) | vs HAProxy rps | vs direct rps | runs (rps) |`,
  `| --- | ---: | ---: | ---: | ---: | --- |`,
];
for (const [n, s] of stats) {
  lines.push(`| ${n} | ${Math.round(s.rps)} | ${s.p99.toFixed(2)} | ${ha ? (s.rps / ha.rps).toFixed(2) : '-'} | ${direct ? (s.rps / direct.rps).toFixed(2) : '-'} | ${s.runs.join(', ')} |`);
}
// Load from other processes moves whole rounds; the ratio within a round is the steadier figure.
const rounds = [...new Set(rows.map((r) => r[0]!))];
const perRound = (a: string, b: string): string =>
  rounds
    .map((r) => {
      const x = rows.find((row) => row[0] === r && row[1] === a);
      const y = rows.find((row) => row[0] === r && row[1] === b);
      return x && y ? (Number(x[2]) / Number(y[2])).toFixed(2) : '-';
    })
    .join(', ');
lines.push('', `per-round rps ratios: keyless/haproxy ${perRound('keyless', 'haproxy')}; undici/http-proxy ${perRound('undici', 'http-proxy')}; keyless/direct ${perRound('keyless', 'direct')}`);
console.log([`${machine ?? ''}`, '', ...lines].join('\n'));

// Summarise a V8 .cpuprofile (from `node --cpu-prof`): where the process spent its time.
//   node bench/pg/profile-summary.ts FILE.cpuprofile [--top N] [--root DIR] [--window FROM_MS:TO_MS]
// --window keeps only samples taken FROM_MS..TO_MS after the profile started (e.g. to leave out
// start-up, warm-up and shutdown).
// Prints markdown: time by category, top functions by self time, top files by self time, Keyless
// (src/) functions by inclusive time, and self time charged to the innermost Keyless frame on the
// stack (so time in Node's net/stream internals is attributed to the Keyless code that caused it).
// Percentages are of the busy (non-idle) time unless said otherwise.
import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

function usage(): never {
  process.stderr.write('usage: profile-summary.ts FILE.cpuprofile [--top N] [--root DIR] [--window FROM_MS:TO_MS]\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let file: string | undefined;
let top = 15;
let root = process.cwd();
let windowMs: [number, number] = [0, Number.POSITIVE_INFINITY];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--top') top = Number(args[++i] ?? usage());
  else if (a === '--root') root = resolve(args[++i] ?? usage());
  else if (a === '--window') {
    const m = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)?$/.exec(args[++i] ?? usage());
    if (!m) usage();
    windowMs = [Number(m[1]), m[2] === undefined ? Number.POSITIVE_INFINITY : Number(m[2])];
  }
  else if (a.startsWith('-')) usage();
  else file = a;
}
if (!file || !Number.isInteger(top) || top < 1) usage();

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const samples = profile.samples ?? [];
const deltas = profile.timeDeltas ?? [];
if (samples.length === 0) {
  process.stdout.write('(profile has no samples)\n');
  process.exit(0);
}

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

const rootPrefix = root.endsWith(sep) ? root : root + sep;

/** A short, stable name for a script URL. */
function shortUrl(url: string): string {
  if (url === '') return '';
  let p = url;
  if (url.startsWith('file://')) {
    try {
      p = fileURLToPath(url);
    } catch {
      return url;
    }
  }
  const nm = p.lastIndexOf(`${sep}node_modules${sep}`);
  if (nm >= 0) return p.slice(nm + 1);
  if (p.startsWith(rootPrefix)) return p.slice(rootPrefix.length);
  return p;
}

const SPECIAL = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

function category(cf: CallFrame): string {
  if (SPECIAL.has(cf.functionName) && cf.url === '') return cf.functionName;
  const u = shortUrl(cf.url);
  if (u === '') return 'native / V8 builtins';
  if (u.startsWith('node:')) return 'Node.js internals (node:*)';
  if (u.startsWith('node_modules')) return 'dependencies (node_modules)';
  if (u.startsWith(`src${sep}`)) return 'Keyless (src/)';
  return 'other';
}

function fnKey(cf: CallFrame): string {
  const u = shortUrl(cf.url);
  const name = cf.functionName || '(anonymous)';
  return u === '' ? name : `${name} ${u}:${cf.lineNumber + 1}`;
}

function isKeyless(cf: CallFrame): boolean {
  return shortUrl(cf.url).startsWith(`src${sep}`);
}

// Self time per sample: the gap to the next sample (the last one gets the mean interval).
// Sample i was taken at startTime + timeDeltas[0..i].
const mean = (profile.endTime - profile.startTime) / samples.length;
const fromUs = windowMs[0] * 1000;
const toUs = windowMs[1] * 1000;
let at = 0;
let total = 0;
let kept = 0;
const selfByFn = new Map<string, number>();
const selfByFile = new Map<string, number>();
const byCategory = new Map<string, number>();
const inclusiveKeyless = new Map<string, number>();
const chargedToKeyless = new Map<string, number>();
let idle = 0;
let busy = 0;

const add = (m: Map<string, number>, k: string, v: number): void => {
  m.set(k, (m.get(k) ?? 0) + v);
};

for (let i = 0; i < samples.length; i++) {
  at += deltas[i] ?? 0;
  if (at < fromUs || at > toUs) continue;
  const node = byId.get(samples[i]!);
  if (!node) continue;
  const dt = deltas[i + 1] ?? mean;
  total += dt;
  kept++;
  const cf = node.callFrame;
  add(byCategory, category(cf), dt);
  if (cf.functionName === '(idle)' && cf.url === '') {
    idle += dt;
    continue;
  }
  busy += dt;
  add(selfByFn, fnKey(cf), dt);
  add(selfByFile, shortUrl(cf.url) || (SPECIAL.has(cf.functionName) ? cf.functionName : '(native / V8 builtins)'), dt);
  // Walk the stack once: inclusive time for each distinct Keyless function, and the innermost one.
  const seen = new Set<string>();
  let innermost: string | undefined;
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const f = byId.get(id)!.callFrame;
    if (!isKeyless(f)) continue;
    const k = fnKey(f);
    innermost ??= k;
    if (!seen.has(k)) {
      seen.add(k);
      add(inclusiveKeyless, k, dt);
    }
  }
  add(chargedToKeyless, innermost ?? '(no Keyless frame: event loop, net/stream internals, GC)', dt);
}

const ms = (us: number): string => (us / 1000).toFixed(0);
const pct = (us: number, of: number): string => (of > 0 ? ((100 * us) / of).toFixed(1) : '0.0');
const sorted = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]);
const cell = (s: string): string => `\`${s.replace(/\|/g, '\\|')}\``;

const out: string[] = [];
out.push(
  `Profile: ${kept} samples over ${(total / 1e6).toFixed(1)} s${Number.isFinite(toUs) || fromUs > 0 ? ` (window ${windowMs[0]}–${Number.isFinite(toUs) ? windowMs[1] : 'end'} ms after the profile started)` : ''}; busy (non-idle) ${ms(busy)} ms = ${pct(busy, total)}% of wall time, idle ${ms(idle)} ms.`,
  '',
  '**By category** (% of busy time)',
  '',
  '| category | ms | % busy |',
  '|---|---:|---:|',
);
for (const [k, v] of sorted(byCategory)) if (k !== '(idle)') out.push(`| ${k} | ${ms(v)} | ${pct(v, busy)} |`);

out.push('', `**Top ${top} functions by self time**`, '', '| function | self ms | % busy |', '|---|---:|---:|');
for (const [k, v] of sorted(selfByFn).slice(0, top)) out.push(`| ${cell(k)} | ${ms(v)} | ${pct(v, busy)} |`);

out.push('', `**Top ${top} files by self time**`, '', '| file | self ms | % busy |', '|---|---:|---:|');
for (const [k, v] of sorted(selfByFile).slice(0, top)) out.push(`| ${cell(k)} | ${ms(v)} | ${pct(v, busy)} |`);

out.push('', `**Top ${top} Keyless functions by inclusive time** (self + everything they call)`, '', '| function | incl. ms | % busy |', '|---|---:|---:|');
for (const [k, v] of sorted(inclusiveKeyless).slice(0, top)) out.push(`| ${cell(k)} | ${ms(v)} | ${pct(v, busy)} |`);

out.push('', `**Self time charged to the innermost Keyless frame on the stack** (top ${top})`, '', '| innermost Keyless function | ms | % busy |', '|---|---:|---:|');
for (const [k, v] of sorted(chargedToKeyless).slice(0, top)) out.push(`| ${cell(k)} | ${ms(v)} | ${pct(v, busy)} |`);

process.stdout.write(`${out.join('\n')}\n`);

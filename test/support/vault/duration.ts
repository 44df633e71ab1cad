// Durations as Vault parses and prints them (Go's time.Duration, parseutil.ParseDurationSecond).

/** A TTL in a request or a config: whole seconds (number or digit string) or a Go duration string
 * ("90s", "1h30m", "2d"). */
export type DurationInput = number | string;

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Parse to whole seconds (truncating), or throw an Error with Go's message shape. */
export function parseDuration(input: unknown): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new Error(`invalid duration ${String(input)}`);
    return Math.trunc(input);
  }
  if (typeof input !== 'string') throw new Error(`could not parse duration from input`);
  const s = input.trim();
  if (s === '') return 0;
  if (/^-?\d+$/.test(s)) return Number(s);
  const days = /^(\d+)d$/.exec(s);
  if (days) return Number(days[1]) * 86400;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let sign = 1;
  let rest = s;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  re.lastIndex = 0;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    total += Number(m[1]) * (UNIT_SECONDS[m[2]!] ?? 0);
    consumed = re.lastIndex;
  }
  if (consumed !== rest.length || consumed === 0) throw new Error(`time: invalid duration "${input}"`);
  return Math.trunc(sign * total);
}

/** Go's Duration.String() for whole seconds: "0s", "45s", "25m10s", "1h0m0s". */
export function goDuration(seconds: number): string {
  const s = Math.trunc(seconds);
  if (s === 0) return '0s';
  const neg = s < 0;
  let a = Math.abs(s);
  const h = Math.floor(a / 3600);
  a -= h * 3600;
  const m = Math.floor(a / 60);
  const sec = a - m * 60;
  let out: string;
  if (h > 0) out = `${h}h${m}m${sec}s`;
  else if (m > 0) out = `${m}m${sec}s`;
  else out = `${sec}s`;
  return neg ? `-${out}` : out;
}

/** The shortened form Vault puts in TTL warnings: "2h" for 2h0m0s, "1m" for 1m0s, "25m10s". */
export function humanDuration(seconds: number): string {
  let s = goDuration(seconds);
  if (s.endsWith('m0s')) s = s.slice(0, -2);
  const idx = s.indexOf('h0m');
  if (idx > 0) s = s.slice(0, idx + 1) + s.slice(idx + 3);
  return s;
}

/** RFC 3339 with Go's RFC3339Nano trimming (no trailing zeros in the fraction). */
export function rfc3339Nano(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2025-01-03T23:37:19.654Z
  return iso.replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : 'Z'));
}

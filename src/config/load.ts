import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { KeylessError } from '../errors.ts';
import { configSchema, type Config } from './schema.ts';

export interface ConfigProblem {
  path: string;
  message: string;
  line?: number;
}

export class ConfigError extends KeylessError {
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super('KL_ERR_CONFIG', `${file}: ${problems.map(formatProblem).join('; ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? '' : ` (line ${p.line})`;
  return p.path === '' ? `${p.message}${where}` : `${p.path}: ${p.message}${where}`;
}

export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseConfig(text, file);
}

/** Parse and validate config text; relative file paths resolve against the file's directory. */
export function parseConfig(text: string, file = '<config>'): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}`, line: lines.linePos(e.pos[0]).line })),
    );
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((i) => toProblem(i, doc, lines)));
  }
  return resolvePaths(result.data, dirname(resolve(file)));
}

function toProblem(issue: z.core.$ZodIssue, doc: Document, lines: LineCounter): ConfigProblem {
  let path = issue.path.map(String);
  let message = issue.message;
  if (issue.code === 'invalid_value') message = `expected one of ${issue.values.map(String).join('|')}`;
  else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) message = 'required';
  else if (issue.code === 'invalid_type') message = `expected ${issue.expected}`;
  else if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0] ?? ''];
    message = `unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}`;
    return { path: path.join('.'), message, line: lineOf(doc, [...issue.path, issue.keys[0] ?? ''], lines, true) };
  } else if (issue.code === 'invalid_key') {
    // A record key (a target or store name) that fails its pattern: say why, not "Invalid key".
    message = issue.issues[0]?.message ?? message;
    return { path: path.join('.'), message, line: lineOf(doc, issue.path, lines, true) };
  }
  return { path: path.join('.'), message, line: lineOf(doc, issue.path, lines) };
}

/** The line of the deepest node that exists on the path (with `key`, of the last key itself). */
function lineOf(doc: Document, path: readonly PropertyKey[], lines: LineCounter, key = false): number | undefined {
  if (key && path.length > 0) {
    const parent = doc.getIn(path.slice(0, -1) as unknown[], true) as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] } | undefined;
    const pair = parent?.items?.find((i) => i.key?.value === path.at(-1));
    if (pair?.key?.range) return lines.linePos(pair.key.range[0]).line;
  }
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

function resolvePaths(cfg: Config, base: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  for (const s of Object.values(cfg.stores)) {
    if (s.kind === 'file') s.dir = abs(s.dir);
    if (s.kind === 'vault') {
      if (s.tls?.ca) s.tls.ca = abs(s.tls.ca);
      if (s.auth.method === 'kubernetes') s.auth.tokenFile = abs(s.auth.tokenFile);
      if (s.auth.method === 'approle') {
        s.auth.roleIdFile = abs(s.auth.roleIdFile);
        s.auth.secretIdFile = abs(s.auth.secretIdFile);
      }
      if (s.auth.method === 'token' && s.auth.tokenFile) s.auth.tokenFile = abs(s.auth.tokenFile);
    }
  }
  for (const t of Object.values(cfg.targets)) {
    if (t.tls) t.tls = { cert: abs(t.tls.cert), key: abs(t.tls.key) };
    if (t.upstream.tls.ca) t.upstream.tls.ca = abs(t.upstream.tls.ca);
    if (t.protocol === 'mysql' && t.upstream.serverPublicKey) t.upstream.serverPublicKey = abs(t.upstream.serverPublicKey);
  }
  return cfg;
}

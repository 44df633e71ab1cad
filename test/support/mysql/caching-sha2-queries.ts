// The few queries the caching_sha2_password test server answers: `SELECT <items> [LIMIT n]`
// where each item is an integer or 'string' literal, CURRENT_USER(), USER(), CONNECTION_ID(),
// DATABASE(), VERSION(), @@version or @@version_comment, optionally aliased. Anything else is an
// error, so a test that relies on more fails loudly instead of getting a made-up answer.
import { Charset, ColumnFlag, ColumnType, type ColumnDefinition } from './caching-sha2-protocol.ts';

export interface QueryContext {
  /** Account name the session authenticated as. */
  user: string;
  /** Client address as the server sees it (USER() is user@host). */
  host: string;
  connectionId: number;
  database: string | undefined;
  serverVersion: string;
  versionComment: string;
}

export type QueryResult =
  | { kind: 'resultset'; columns: ColumnDefinition[]; rows: Array<Array<string | null>> }
  | { kind: 'error'; code: number; sqlState: string; message: string };

interface Value {
  column: Omit<ColumnDefinition, 'name'>;
  value: string | null;
}

function integer(text: string, unsigned = false): Value {
  const flags = ColumnFlag.NOT_NULL | ColumnFlag.BINARY | ColumnFlag.NUM | (unsigned ? ColumnFlag.UNSIGNED : 0);
  return { column: { charset: Charset.BINARY, length: unsigned ? 21 : Math.max(1, text.length), type: ColumnType.LONGLONG, flags, decimals: 0 }, value: text };
}

function string(value: string | null): Value {
  const length = Math.max(1, value?.length ?? 0) * 4; // utf8mb4: 4 bytes per character
  return { column: { charset: Charset.UTF8MB4_0900_AI_CI, length, type: ColumnType.VAR_STRING, flags: value === null ? 0 : ColumnFlag.NOT_NULL, decimals: 31 }, value };
}

const FUNCTIONS: Record<string, (ctx: QueryContext) => Value> = {
  current_user: (ctx) => string(`${ctx.user}@%`),
  user: (ctx) => string(`${ctx.user}@${ctx.host}`),
  session_user: (ctx) => string(`${ctx.user}@${ctx.host}`),
  system_user: (ctx) => string(`${ctx.user}@${ctx.host}`),
  connection_id: (ctx) => integer(String(ctx.connectionId), true),
  database: (ctx) => string(ctx.database ?? null),
  schema: (ctx) => string(ctx.database ?? null),
  version: (ctx) => string(ctx.serverVersion),
};

const SYSTEM_VARIABLES: Record<string, (ctx: QueryContext) => Value> = {
  version: (ctx) => string(ctx.serverVersion),
  version_comment: (ctx) => string(ctx.versionComment),
};

/** Parses one select-list expression at the start of `text`; returns its value and length. */
function expression(text: string, ctx: QueryContext): { value: Value; length: number } | null {
  let m = /^-?\d+/.exec(text);
  if (m) return { value: integer(m[0]), length: m[0].length };
  m = /^'((?:[^'\\]|\\.|'')*)'/.exec(text);
  if (m) return { value: string((m[1] ?? '').replace(/''/g, "'").replace(/\\(.)/g, '$1')), length: m[0].length };
  m = /^([a-z_]+)\s*\(\s*\)/i.exec(text);
  if (m) {
    const fn = FUNCTIONS[(m[1] ?? '').toLowerCase()];
    return fn ? { value: fn(ctx), length: m[0].length } : null;
  }
  m = /^current_user\b/i.exec(text);
  if (m) return { value: FUNCTIONS.current_user!(ctx), length: m[0].length };
  m = /^@@(?:session\.|global\.)?([a-z_]+)/i.exec(text);
  if (m) {
    const v = SYSTEM_VARIABLES[(m[1] ?? '').toLowerCase()];
    return v ? { value: v(ctx), length: m[0].length } : null;
  }
  return null;
}

/** Splits a select list on top-level commas (outside quotes and parentheses). */
function splitItems(list: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      items.push(list.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(list.slice(start).trim());
  return items;
}

function unquoteAlias(alias: string): string {
  const q = alias[0];
  return (q === '`' || q === "'" || q === '"') && alias.endsWith(q) ? alias.slice(1, -1) : alias;
}

function unsupported(sql: string): QueryResult {
  const shown = sql.length > 80 ? `${sql.slice(0, 80)}…` : sql;
  return { kind: 'error', code: 1235, sqlState: '42000', message: `This version of MySQL doesn't yet support '${shown}' (keyless caching_sha2 test server)` };
}

export function evaluateQuery(sql: string, ctx: QueryContext): QueryResult {
  const text = sql.trim().replace(/[\s;]+$/, '');
  const select = /^select\s+([\s\S]+?)(?:\s+limit\s+\d+)?$/i.exec(text);
  if (!select) return unsupported(text);
  const columns: ColumnDefinition[] = [];
  const row: Array<string | null> = [];
  for (const item of splitItems(select[1] ?? '')) {
    const expr = expression(item, ctx);
    if (!expr) return unsupported(text);
    const rest = item.slice(expr.length).trim();
    let name = item.slice(0, expr.length);
    if (rest !== '') {
      const alias = /^(?:as\s+)?(`[^`]+`|'[^']*'|"[^"]*"|[a-z_][a-z0-9_]*)$/i.exec(rest);
      if (!alias) return unsupported(text);
      name = unquoteAlias(alias[1] ?? '');
    } else if (name.startsWith("'")) {
      name = expr.value.value ?? 'NULL'; // a string literal's column is named by its value
    }
    columns.push({ ...expr.value.column, name });
    row.push(expr.value.value);
  }
  return { kind: 'resultset', columns, rows: [row] };
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, KeylessError, asKeylessError, type ErrorCode } from '../../src/errors.ts';
import { sqlstateOf } from '../../src/protocols/postgres/errors.ts';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

/** The rows of the table in docs/errors.md: code, client text, SQLSTATE, when. */
function documented(): Map<string, { client: string; sqlstate: string; when: string }> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, { client: string; sqlstate: string; when: string }>();
  for (const line of text.split('\n')) {
    const m = /^\|\s*`(KL_ERR_[A-Z_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$/.exec(line);
    if (!m) continue;
    expect(rows.has(m[1]!), `${m[1]} documented twice`).toBe(false);
    rows.set(m[1]!, { client: m[2]!.trim(), sqlstate: m[3]!.trim(), when: m[4]!.trim() });
  }
  return rows;
}

describe('ERROR_CODES registry', () => {
  it('codes are KL_ERR_ names with a non-empty client text', () => {
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) {
      expect(code).toMatch(/^KL_ERR_[A-Z_]+$/);
      expect(ERROR_CODES[code].client.length).toBeGreaterThan(0);
    }
  });

  it('every code is documented in docs/errors.md with its client text, SQLSTATE and when it happens', () => {
    const docs = documented();
    for (const code of codes) {
      const row = docs.get(code);
      expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
      expect(row!.client, code).toBe(ERROR_CODES[code].client);
      expect(row!.sqlstate, code).toBe(sqlstateOf(code));
      expect(row!.when.length, code).toBeGreaterThan(20);
    }
  });

  it('docs/errors.md documents no code that does not exist', () => {
    for (const code of documented().keys()) expect(codes, code).toContain(code);
  });
});

describe('KeylessError', () => {
  it('carries code, message, name and cause', () => {
    const cause = new Error('ECONNREFUSED');
    const e = new KeylessError('KL_ERR_UPSTREAM_UNREACHABLE', 'cannot connect to upstream db:5432', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('KL_ERR_UPSTREAM_UNREACHABLE');
    expect(e.name).toBe('KeylessError');
    expect(e.message).toBe('cannot connect to upstream db:5432');
    expect(e.cause).toBe(cause);
    expect(e.upstream).toBeUndefined();
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new KeylessError('KL_ERR_PROTOCOL', 'x')).toBe(false);
  });

  it('clientMessage is the registry text, never the internal message', () => {
    for (const code of codes) {
      const e = new KeylessError(code, `internal detail for ${code} with host db.internal and path secret/data/x`);
      expect(e.clientMessage).toBe(ERROR_CODES[code].client);
    }
  });

  it('clientMessage appends the safe client detail', () => {
    const e = new KeylessError('KL_ERR_UNKNOWN_TARGET', 'no target routes database "shop"', { clientDetail: '"shop"' });
    expect(e.clientMessage).toBe('no such database "shop"');
  });

  it('keeps the upstream code and message', () => {
    const e = new KeylessError('KL_ERR_UPSTREAM_ERROR', 'x', { upstream: { code: '53300', message: 'too many' } });
    expect(e.upstream).toEqual({ code: '53300', message: 'too many' });
  });
});

describe('asKeylessError', () => {
  it('returns a KeylessError as it is', () => {
    const e = new KeylessError('KL_ERR_PROTOCOL', 'x');
    expect(asKeylessError(e, 'KL_ERR_STORE_UNAVAILABLE', 'y')).toBe(e);
  });

  it('wraps anything else with the fallback code, the message and the cause', () => {
    for (const thrown of [new Error('boom'), 'a string', 42, undefined]) {
      const e = asKeylessError(thrown, 'KL_ERR_STORE_UNAVAILABLE', 'store vault failed');
      expect(e.code).toBe('KL_ERR_STORE_UNAVAILABLE');
      expect(e.message).toBe('store vault failed');
      if (thrown !== undefined) expect(e.cause).toBe(thrown);
    }
  });
});

import type { DatabaseError } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, KeylessError, type ErrorCode } from '../../../../src/errors.ts';
import { sqlstateOf, toErrorResponse } from '../../../../src/protocols/postgres/errors.ts';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

/** Decode the ErrorResponse with pg-protocol, as a client would. */
function asClientSees(bytes: Buffer): DatabaseError {
  const out: BackendMessage[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  expect(out).toHaveLength(1);
  expect(out[0]!.name).toBe('error');
  return out[0] as DatabaseError;
}

const CANARY = 'CANARY-internal-9f3b2c';

describe('sqlstateOf', () => {
  it.each(codes)('%s maps to a 5-character SQLSTATE', (code) => {
    expect(sqlstateOf(code)).toMatch(/^[0-9A-Z]{5}$/);
  });

  it('maps the codes a client acts on to the standard classes', () => {
    expect(sqlstateOf('KL_ERR_POLICY_DENIED')).toBe('28000');
    expect(sqlstateOf('KL_ERR_UPSTREAM_AUTH')).toBe('28P01');
    expect(sqlstateOf('KL_ERR_UNKNOWN_TARGET')).toBe('3D000');
    expect(sqlstateOf('KL_ERR_PROTOCOL')).toBe('08P01');
    expect(sqlstateOf('KL_ERR_TOO_MANY_CONNECTIONS')).toBe('53300');
    expect(sqlstateOf('KL_ERR_SHUTTING_DOWN')).toBe('57P01');
  });
});

describe('toErrorResponse', () => {
  it.each(codes)('%s: FATAL, its SQLSTATE, "keyless: target X: " and only the client text', (code) => {
    const err = new KeylessError(code, `internal: ${CANARY} at db.internal:5432`, { cause: new Error(CANARY) });
    const bytes = toErrorResponse(err, 'orders-db');
    const e = asClientSees(bytes);
    expect(e.severity).toBe('FATAL');
    expect(e.code).toBe(sqlstateOf(code));
    expect(e.message).toBe(`keyless: target orders-db: ${ERROR_CODES[code].client}`);
    expect(bytes.toString('latin1')).not.toContain(CANARY);
  });

  it('without a target the prefix is "keyless: "', () => {
    const e = asClientSees(toErrorResponse(new KeylessError('KL_ERR_PROTOCOL', CANARY), undefined));
    expect(e.message).toBe('keyless: protocol violation');
  });

  it('includes the client detail, which is what the client itself sent', () => {
    const err = new KeylessError('KL_ERR_UNKNOWN_TARGET', `no target routes database "shop" (${CANARY})`, { clientDetail: '"shop"' });
    const e = asClientSees(toErrorResponse(err, undefined));
    expect(e.code).toBe('3D000');
    expect(e.message).toBe('keyless: no such database "shop"');
  });

  it('passes an upstream login error through with its SQLSTATE and text', () => {
    const err = new KeylessError('KL_ERR_UPSTREAM_ERROR', 'upstream refused the login', {
      upstream: { code: '53300', message: 'sorry, too many clients already' },
    });
    const e = asClientSees(toErrorResponse(err, 'orders-db'));
    expect(e.code).toBe('53300');
    expect(e.message).toBe('keyless: target orders-db: upstream: sorry, too many clients already');
  });

  it('an upstream error without a SQLSTATE uses the Keyless mapping and text', () => {
    const err = new KeylessError('KL_ERR_UPSTREAM_ERROR', 'x', { upstream: { message: 'odd' } });
    const e = asClientSees(toErrorResponse(err, 'orders-db'));
    expect(e.code).toBe(sqlstateOf('KL_ERR_UPSTREAM_ERROR'));
    expect(e.message).toBe('keyless: target orders-db: upstream error');
  });

  it('an upstream auth rejection keeps upstream\'s SQLSTATE class (28000: no pg_hba entry) but not its text', () => {
    const err = new KeylessError('KL_ERR_UPSTREAM_AUTH', `no pg_hba.conf entry for user "${CANARY}"`, { upstream: { code: '28000' } });
    const bytes = toErrorResponse(err, 'orders-db');
    const e = asClientSees(bytes);
    expect(e.code).toBe('28000');
    expect(e.message).toBe('keyless: target orders-db: upstream refused the stored credential');
    expect(bytes.toString('latin1')).not.toContain(CANARY);
  });

  it('an upstream auth rejection keeps only Keyless\'s own text, never the upstream\'s', () => {
    const err = new KeylessError('KL_ERR_UPSTREAM_AUTH', `upstream rejected: password authentication failed for user "${CANARY}"`, {
      upstream: { code: '28P01', message: `password authentication failed for user "${CANARY}"` },
    });
    const bytes = toErrorResponse(err, 'orders-db');
    const e = asClientSees(bytes);
    expect(e.code).toBe('28P01');
    expect(e.message).toBe('keyless: target orders-db: upstream refused the stored credential');
    expect(bytes.toString('latin1')).not.toContain(CANARY);
  });
});

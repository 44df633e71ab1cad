import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/credentials/secret.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const CANARY = 'CANARY-log-4d8e21';

/** A logger writing to memory; returns it with the lines written so far. */
function capture(level = 'trace'): { log: ReturnType<typeof createLogger>; lines: string[]; parsed(): Record<string, unknown>[] } {
  const lines: string[] = [];
  const log = createLogger({ destination: { write: (l: string) => void lines.push(l) }, level });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function assertNoCanary(lines: readonly string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const l of lines) expect(l).not.toContain(CANARY);
}

// Field names the logger promises to censor wherever they appear.
const SENSITIVE = ['password', 'token', 'secret', 'secret_id', 'api_key', 'authorization', 'fields', 'key', 'tls_key', 'client_secret'];

describe('createLogger', () => {
  it('writes one JSON line per call with level label, time, service and msg', () => {
    const { log, parsed } = capture('info');
    log.info({ target: 'orders-db' }, 'hello');
    log.debug('not at info');
    const [line] = parsed();
    expect(parsed()).toHaveLength(1);
    expect(line).toMatchObject({ level: 'info', service: 'keyless', target: 'orders-db', msg: 'hello' });
    expect(typeof line!.time).toBe('string');
  });

  it.each(SENSITIVE)('censors a top-level "%s" field', (field) => {
    const { log, lines, parsed } = capture();
    log.info({ [field]: CANARY, target: 'orders-db' }, 'x');
    assertNoCanary(lines);
    expect(parsed()[0]![field]).toBe('[redacted]');
    expect(parsed()[0]!.target).toBe('orders-db');
  });

  it.each(SENSITIVE)('censors a "%s" field one level down', (field) => {
    const { log, lines, parsed } = capture();
    log.warn({ upstream: { [field]: CANARY, host: 'db.internal' } }, 'x');
    assertNoCanary(lines);
    expect(parsed()[0]!.upstream).toEqual({ [field]: '[redacted]', host: 'db.internal' });
  });

  it('censors request authorization headers', () => {
    const { log, lines } = capture();
    log.info({ headers: { authorization: `Bearer ${CANARY}` } });
    log.info({ req: { headers: { authorization: `Bearer ${CANARY}`, host: 'api' } } });
    assertNoCanary(lines);
  });

  it('censors an Authorization header whatever its case (HTTP field names are case-insensitive)', () => {
    const { log, lines } = capture();
    log.info({ headers: { Authorization: `Bearer ${CANARY}` } });
    assertNoCanary(lines);
  });

  it('censors sensitive fields at any depth ("wherever it appears")', () => {
    const { log, lines } = capture();
    log.info({ conn: { upstream: { auth: { password: CANARY } } } }, 'deep');
    assertNoCanary(lines);
  });

  it('censors credential.fields and fields holding a Map of Secrets', () => {
    const { log, lines, parsed } = capture();
    const fields = new Map([['password', new Secret(CANARY)], ['username', new Secret(`${CANARY}-user`)]]);
    log.info({ credential: { ref: { store: 'vault', path: 'db/creds/orders' }, fields, version: '7' } }, 'fetched');
    log.info({ fields }, 'fetched');
    assertNoCanary(lines);
    expect(parsed()[0]!.credential).toMatchObject({ fields: '[redacted]', version: '7', ref: { store: 'vault', path: 'db/creds/orders' } });
  });

  it('prints Secret values as [redacted] under any field name and in arrays', () => {
    const { log, lines } = capture();
    const s = new Secret(CANARY);
    log.info({ innocuous: s, list: [s, { v: s }], a: { b: { c: { d: s } } } }, 'value %s %o %O %j', s, s, s, s);
    assertNoCanary(lines);
    expect(lines[0]).toContain('[redacted]');
  });

  it('censors sensitive fields on logged errors and their causes', () => {
    const { log, lines } = capture();
    const cause = Object.assign(new Error('inner'), { token: CANARY });
    const err = Object.assign(new Error('outer', { cause }), { password: CANARY, secret: new Secret(CANARY) });
    log.error({ err }, 'failed');
    assertNoCanary(lines);
  });

  it('child loggers keep the redaction', () => {
    const { log, lines } = capture();
    const child = log.child({ conn: 'c1', target: 'orders-db' });
    child.info({ password: CANARY, token: new Secret(CANARY) }, 'x');
    assertNoCanary(lines);
    expect(JSON.parse(lines[0]!)).toMatchObject({ conn: 'c1', password: '[redacted]', token: '[redacted]' });
  });

  it('honours the level', () => {
    const { log, lines } = capture('warn');
    log.info('no');
    log.warn('yes');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'yes' });
  });
});

import { Console } from 'node:console';
import { PassThrough } from 'node:stream';
import { format, inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/credentials/secret.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const CANARY = 'CANARY-secret-7c1e5a';
const s = new Secret(CANARY);

function noCanary(text: string): void {
  expect(text).not.toContain(CANARY);
  expect(text).not.toContain('7c1e5a');
}

describe('Secret', () => {
  it('reveal() gives the value and length its length', () => {
    expect(s.reveal()).toBe(CANARY);
    expect(s.length).toBe(CANARY.length);
  });

  it('String() and toString() print [redacted]', () => {
    expect(String(s)).toBe('[redacted]');
    expect(s.toString()).toBe('[redacted]');
  });

  it('template literals and concatenation print [redacted]', () => {
    expect(`${s}`).toBe('[redacted]');
    expect('x' + s).toBe('x[redacted]');
    expect([s, s].join(',')).toBe('[redacted],[redacted]');
  });

  it('JSON.stringify prints [redacted], alone and nested', () => {
    expect(JSON.stringify(s)).toBe('"[redacted]"');
    const nested = JSON.stringify({ a: { b: [s] }, m: new Map([['password', s]]) });
    noCanary(nested);
    expect(nested).toContain('[redacted]');
  });

  it('util.inspect prints Secret([redacted]), at any depth and with every option', () => {
    expect(inspect(s)).toBe('Secret([redacted])');
    noCanary(inspect({ deep: { deeper: { deepest: s } } }, { depth: Infinity }));
    noCanary(inspect(s, { showHidden: true, depth: Infinity }));
    noCanary(inspect(s, { customInspect: false, showHidden: true }));
    noCanary(inspect(new Map([['k', s]])));
    noCanary(inspect([s], { colors: true }));
  });

  it('util.format with every placeholder prints no value', () => {
    noCanary(format('%s %o %O %j %d %i %f %c', s, s, s, s, s, s, s, s));
    noCanary(format(s, s));
  });

  it('console.log / console.error formatting prints no value', () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const c = new Console({ stdout: out, stderr: out });
    c.log(s);
    c.log('%s', s);
    c.log({ credential: { password: s } });
    c.error('failed with', s);
    c.table([{ password: s }]);
    c.dir(s, { showHidden: true });
    const text = Buffer.concat(chunks).toString('utf8');
    noCanary(text);
    expect(text).toContain('[redacted]');
  });

  it('a pino log line prints no value', () => {
    const lines: string[] = [];
    const log = createLogger({ destination: { write: (l: string) => void lines.push(l) }, level: 'trace' });
    log.info({ s, list: [s], nested: { value: s } }, 'msg %s %o %j', s, s, s);
    log.info(s as unknown as object);
    log.trace('%s', s);
    expect(lines.length).toBe(3);
    noCanary(lines.join(''));
  });

  it('exposes no own enumerable property holding the value', () => {
    expect(Object.keys(s)).toEqual([]);
    expect(Object.getOwnPropertyNames(s)).toEqual([]);
    noCanary(JSON.stringify({ ...s }));
    noCanary(JSON.stringify(Object.assign({}, s)));
    noCanary(inspect(structuredClone(s)));
    expect(String(s.valueOf())).toBe('[redacted]');
  });

  it('an Error carrying a Secret prints no value through inspect or JSON', () => {
    const e = Object.assign(new Error('login failed'), { password: s });
    noCanary(inspect(e));
    noCanary(JSON.stringify({ e, password: s }));
  });
});

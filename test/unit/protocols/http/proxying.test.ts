import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { configSchema, type HttpTargetConfig } from '../../../../src/config/schema.ts';
import { KeylessError } from '../../../../src/errors.ts';
import { HttpStatusError, toProblem } from '../../../../src/protocols/http/errors.ts';
import { endToEndRequestHeaders, endToEndResponseHeaders } from '../../../../src/protocols/http/hop-by-hop.ts';
import { redactHeaders } from '../../../../src/protocols/http/redact.ts';
import { hostMatches, routeRequest } from '../../../../src/protocols/http/routing.ts';
import type { Route, Target } from '../../../../src/protocols/types.ts';

describe('hop-by-hop', () => {
  test('request: standard hop-by-hop, those named in Connection, Host and Expect go', () => {
    const h = endToEndRequestHeaders({
      host: 'keyless',
      connection: 'keep-alive, X-Trace',
      'keep-alive': 'timeout=5',
      'x-trace': '1',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      'proxy-authorization': 'Basic x',
      'proxy-connection': 'keep-alive',
      upgrade: 'h2c',
      expect: '100-continue',
      'content-type': 'text/plain',
      'content-length': '3',
    });
    expect(h).toEqual({ 'content-type': 'text/plain', 'content-length': '3' });
  });
  test('response', () => {
    expect(endToEndResponseHeaders({ connection: 'close, x-a', 'x-a': '1', 'x-b': '2', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'] })).toEqual({ 'x-b': '2', 'set-cookie': ['a=1', 'b=2'] });
  });
});

test('redaction scrubs every occurrence in every header, arrays too; short values are left', () => {
  const h = redactHeaders({ a: 'x sekret123 y sekret123', b: ['sekret123', 'fine'], c: 'abc' }, ['sekret123', 'abc']);
  expect(h).toEqual({ a: 'x [redacted] y [redacted]', b: ['[redacted]', 'fine'], c: 'abc' });
});

test('problem+json: status, code, target, our text only', () => {
  const p = toProblem(new KeylessError('KL_ERR_UPSTREAM_TIMEOUT', 'internal detail https://secret-host'), 'stripe');
  expect(p.status).toBe(504);
  expect(p.headers['content-type']).toBe('application/problem+json');
  const body = JSON.parse(p.body);
  expect(body).toEqual({ type: 'urn:keyless:error:KL_ERR_UPSTREAM_TIMEOUT', title: 'upstream timed out', status: 504, detail: 'keyless: target stripe: upstream timed out', code: 'KL_ERR_UPSTREAM_TIMEOUT', target: 'stripe' });
  expect(toProblem(new KeylessError('KL_ERR_STORE_UNAVAILABLE', 'x'), 't').status).toBe(503);
  expect(toProblem(new KeylessError('KL_ERR_UPSTREAM_UNREACHABLE', 'x'), 't').status).toBe(502);
  expect(toProblem(new HttpStatusError(421, 'KL_ERR_UNKNOWN_TARGET', 'x'), 't').status).toBe(421);
});

describe('routing', () => {
  test('host entries: exact, with port, wildcard', () => {
    expect(hostMatches('api.example.com', 'api.example.com', 443)).toBe(true);
    expect(hostMatches('api.example.com:8443', 'api.example.com', 443)).toBe(false);
    expect(hostMatches('api.example.com:8443', 'api.example.com', 8443)).toBe(true);
    expect(hostMatches('*.example.com', 'a.b.example.com', 80)).toBe(true);
    expect(hostMatches('*.example.com', 'example.com', 80)).toBe(false);
    expect(hostMatches('*.example.com', 'evilexample.com', 80)).toBe(false);
  });

  const base = { stores: { f: { kind: 'file', dir: '/tmp' } } };
  function routeOf(targets: Record<string, unknown>): Route {
    const cfg = configSchema.parse({ ...base, targets });
    const ts: Target[] = Object.entries(cfg.targets).map(([name, config]) => ({ name, config }));
    return { listen: 'l', handshakeMs: 1, tls: undefined, targets: ts, resolve: () => ts[0] };
  }
  const req = (url: string, host?: string): IncomingMessage => ({ url, headers: host ? { host } : {} }) as IncomingMessage;
  const common = { protocol: 'http', listen: '127.0.0.1:1', credential: { store: 'f', path: 'p' }, inject: { kind: 'bearer' } };

  test('reverse: base path prepended, origin and Host from the URL', () => {
    const r = routeOf({ a: { ...common, upstream: { url: 'https://api.example.com:8443/v1/' } } });
    expect(routeRequest(r, req('/charges?x=1', 'keyless'))).toMatchObject({ origin: 'https://api.example.com:8443', path: '/v1/charges?x=1', host: 'api.example.com:8443' });
    expect(routeRequest(r, req('/a..b/.c?x=/../'))).toMatchObject({ path: '/v1/a..b/.c?x=/../' });
    for (const p of ['/../admin', '/a/./b', '/%2e%2E/x', '/a/%2e']) expect(() => routeRequest(r, req(p))).toThrow(expect.objectContaining({ code: 'KL_ERR_PROTOCOL' }));
  });

  test('forward: absolute-form picks the target; port 80 becomes HTTPS 443; unknown host refused', () => {
    const r = routeOf({
      a: { ...common, mode: 'forward', hosts: ['api.a.com'] },
      b: { ...common, mode: 'forward', hosts: ['*.b.com', 'localhost:9443'] },
    });
    expect(routeRequest(r, req('http://api.a.com/x?y'))).toMatchObject({ target: { name: 'a' }, origin: 'https://api.a.com', path: '/x?y', host: 'api.a.com' });
    expect(routeRequest(r, req('http://s3.b.com:8080/k'))).toMatchObject({ target: { name: 'b' }, origin: 'https://s3.b.com:8080' });
    expect(routeRequest(r, req('/origin-form', 'localhost:9443'))).toMatchObject({ target: { name: 'b' }, origin: 'https://localhost:9443' });
    expect(() => routeRequest(r, req('http://other.com/'))).toThrow(expect.objectContaining({ code: 'KL_ERR_UNKNOWN_TARGET' }));
    expect(() => routeRequest(r, req('/no-host'))).toThrow(expect.objectContaining({ code: 'KL_ERR_PROTOCOL' }));
  });
});

describe('config', () => {
  const base = { stores: { f: { kind: 'file', dir: '/tmp' } } };
  const common = { protocol: 'http', listen: '127.0.0.1:1', credential: { store: 'f', path: 'p' }, inject: { kind: 'bearer' } };
  const issues = (targets: Record<string, unknown>): string[] => {
    const r = configSchema.safeParse({ ...base, targets });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  test('defaults', () => {
    const t = configSchema.parse({ ...base, targets: { a: { ...common, upstream: { url: 'https://x' } } } }).targets.a as HttpTargetConfig;
    expect(t.mode).toBe('reverse');
    expect(t.upstream.tls).toEqual({ mode: 'verify-full' });
    expect(t.inject).toEqual({ kind: 'bearer', token: '{{ token }}' });
    expect(t.timeouts).toEqual({ connect: 10_000, handshake: 15_000, idle: 60_000, response: 60_000, body: 300_000 });
  });

  test('errors name the field', () => {
    expect(issues({ a: { ...common } })).toEqual(['targets.a.upstream.url: required in reverse mode']);
    expect(issues({ a: { ...common, mode: 'forward' } })).toEqual(['targets.a.hosts: required in forward mode: the request hosts this target owns']);
    expect(issues({ a: { ...common, upstream: { url: 'http://x' } } })).toEqual(['targets.a.upstream.url: expected https:// (plain http:// needs upstream.tls.mode: disable)']);
    expect(issues({ a: { ...common, upstream: { url: 'https://x' }, inject: { kind: 'nope' } } })[0]).toContain('expected kind: bearer | basic | headers | query | oauth2 | aws-sigv4');
    expect(issues({ a: { ...common, upstream: { url: 'https://x' }, inject: { kind: 'headers', headers: { Host: '{{ a }}' } } } })[0]).toContain('cannot be injected');
    expect(issues({ a: { ...common, upstream: { url: 'https://x' }, inject: { kind: 'bearer', token: '{{ a }' } } })[0]).toContain('{{ field }}');
  });

  test('a shared listener: forward targets with disjoint hosts only', () => {
    expect(issues({ a: { ...common, mode: 'forward', hosts: ['a.com'] }, b: { ...common, mode: 'forward', hosts: ['b.com'] } })).toEqual([]);
    expect(issues({ a: { ...common, mode: 'forward', hosts: ['a.com'] }, b: { ...common, mode: 'forward', hosts: ['A.com'] } })).toEqual(['targets.b.hosts: "a.com" (entry 0) is already owned by "a"']);
    expect(issues({ a: { ...common, upstream: { url: 'https://x' } }, b: { ...common, mode: 'forward', hosts: ['b.com'] } })).toEqual(['targets.a.mode: http targets sharing a listen address must be mode: forward (routed by host)']);
  });
});

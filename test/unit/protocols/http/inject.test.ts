import { describe, expect, test } from 'vitest';
import { Secret } from '../../../../src/credentials/secret.ts';
import type { Credential } from '../../../../src/credentials/types.ts';
import { KeylessError } from '../../../../src/errors.ts';
import { TokenCache, refreshAt } from '../../../../src/protocols/http/inject/oauth2.ts';
import { parseQuery } from '../../../../src/protocols/http/inject/sigv4.ts';
import { basic, bearer, headers, query, setQueryParams } from '../../../../src/protocols/http/inject/static.ts';
import { isValidTemplate, parseTemplate } from '../../../../src/protocols/http/inject/template.ts';
import type { Outgoing } from '../../../../src/protocols/http/inject/types.ts';

function cred(fields: Record<string, string>, version = '1'): Credential {
  return { ref: { store: 's', path: 'p' }, fields: new Map(Object.entries(fields).map(([k, v]) => [k, new Secret(v)])), version, renewable: false, fetchedAt: 0 };
}
const ctx = { target: 't', signal: new AbortController().signal };
function out(h: Outgoing['headers'] = {}, path = '/x'): Outgoing {
  return { method: 'GET', origin: 'https://h', path, headers: h, body: null };
}

describe('templates', () => {
  test('render fields and literal text, collecting the secret values', () => {
    const used: string[] = [];
    expect(parseTemplate('Token {{ api_key }}/{{id}}').render(cred({ api_key: 'k', id: '7' }), 't', used)).toBe('Token k/7');
    expect(used).toEqual(['k', '7']);
  });
  test('a missing field is KL_ERR_CREDENTIAL_INVALID naming the field, not a value', () => {
    const err = (() => {
      try {
        parseTemplate('{{ nope }}').render(cred({ a: 'secret' }), 't', []);
      } catch (e) {
        return e as KeylessError;
      }
    })();
    expect(err?.code).toBe('KL_ERR_CREDENTIAL_INVALID');
    expect(err?.message).toContain('"nope"');
    expect(err?.message).not.toContain('secret');
  });
  test('malformed templates are rejected', () => {
    expect(isValidTemplate('{{ a }}')).toBe(true);
    expect(isValidTemplate('{{ a }')).toBe(false);
    expect(isValidTemplate('x }} y')).toBe(false);
    expect(isValidTemplate('{{ a b }}')).toBe(false);
  });
});

describe('static kinds replace, never merge', () => {
  test('bearer replaces Authorization whatever its case', async () => {
    const o = out({ Authorization: 'Bearer app', 'x-other': '1' });
    const secrets = await bearer('{{ token }}').apply(o, cred({ token: 'tok' }), ctx);
    expect(o.headers).toEqual({ authorization: 'Bearer tok', 'x-other': '1' });
    expect(secrets).toContain('tok');
  });
  test('basic encodes username:password', async () => {
    const o = out();
    await basic('{{ username }}', '{{ password }}').apply(o, cred({ username: 'u', password: 'p:w' }), ctx);
    expect(o.headers.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
  });
  test('headers', async () => {
    const o = out({ 'X-Api-Key': ['a', 'b'] });
    await headers({ 'X-Api-Key': '{{ k }}' }).apply(o, cred({ k: 'v' }), ctx);
    expect(o.headers).toEqual({ 'x-api-key': 'v' });
  });
  test('query: the app’s parameter of that name goes, others stay byte for byte', async () => {
    const o = out({}, '/p?api_key=mine&a=%2F+b&api%5Fkey=enc');
    await query({ api_key: '{{ k }}' }).apply(o, cred({ k: 'v w&' }), ctx);
    expect(o.path).toBe('/p?a=%2F+b&api_key=v%20w%26');
    expect(setQueryParams('/p', [['k', 'v']])).toBe('/p?k=v');
  });
});

describe('oauth2 token cache', () => {
  test('refresh a tenth of the lifetime early, at most a minute', () => {
    expect(refreshAt(0, 100)).toBe(90_000);
    expect(refreshAt(0, 3600)).toBe(3_540_000);
  });
  test('single flight, reuse until refreshAt, new token after, drop only the current one', async () => {
    let now = 0;
    let n = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const cache = new TokenCache(async () => {
      n++;
      await gate;
      return { value: `t${n}`, refreshAt: now + 1000 };
    }, () => now);
    const c = cred({ client_id: 'i' });
    const all = Promise.all([cache.get(c, ctx), cache.get(c, ctx), cache.get(c, ctx)]);
    release();
    expect((await all).map((t) => t.value)).toEqual(['t1', 't1', 't1']);
    expect((await cache.get(c, ctx)).value).toBe('t1');
    now = 1000;
    expect((await cache.get(c, ctx)).value).toBe('t2');
    cache.drop(c, 't1'); // stale value: no effect
    expect((await cache.get(c, ctx)).value).toBe('t2');
    cache.drop(c, 't2');
    expect((await cache.get(c, ctx)).value).toBe('t3');
    // A new credential version gets its own token.
    expect((await cache.get(cred({ client_id: 'i' }, '2'), ctx)).value).toBe('t4');
  });
  test('a failed fetch is not cached', async () => {
    let fail = true;
    const cache = new TokenCache(async () => {
      if (fail) throw new KeylessError('KL_ERR_UPSTREAM_AUTH', 'no');
      return { value: 'ok', refreshAt: Infinity };
    });
    await expect(cache.get(cred({}), ctx)).rejects.toThrow('no');
    fail = false;
    expect((await cache.get(cred({}), ctx)).value).toBe('ok');
  });
});

test('sigv4 query parsing: decoded, repeated names kept', () => {
  expect(parseQuery('a=1&b=x%20y&a=2&c&d=+')).toEqual({ a: ['1', '2'], b: 'x y', c: '', d: ' ' });
});

test('basic with an empty password (key-only schemes)', async () => {
  const o = out();
  await basic('{{ api_key }}', '').apply(o, cred({ api_key: 'sk_test' }), ctx);
  expect(o.headers.authorization).toBe(`Basic ${Buffer.from('sk_test:').toString('base64')}`);
});

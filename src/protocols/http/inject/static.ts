// Injection kinds that place the credential as-is: bearer, basic, header templates, query parameter.
import { deleteHeader } from '../hop-by-hop.ts';
import { parseTemplate, type Template } from './template.ts';
import type { Injector, Outgoing } from './types.ts';

export function bearer(token: string): Injector {
  const t = parseTemplate(token);
  return {
    async apply(out, cred, ctx) {
      const used: string[] = [];
      const value = `Bearer ${t.render(cred, ctx.target, used)}`;
      setHeader(out, 'authorization', value);
      return [value, ...used];
    },
  };
}

export function basic(username: string, password: string): Injector {
  const u = parseTemplate(username);
  const p = parseTemplate(password);
  return {
    async apply(out, cred, ctx) {
      const used: string[] = [];
      const encoded = Buffer.from(`${u.render(cred, ctx.target, used)}:${p.render(cred, ctx.target, used)}`, 'utf8').toString('base64');
      setHeader(out, 'authorization', `Basic ${encoded}`);
      return [encoded, ...used];
    },
  };
}

export function headers(spec: Record<string, string>): Injector {
  const list: [string, Template][] = Object.entries(spec).map(([k, v]) => [k.toLowerCase(), parseTemplate(v)]);
  return {
    async apply(out, cred, ctx) {
      const used: string[] = [];
      for (const [name, t] of list) {
        const value = t.render(cred, ctx.target, used);
        setHeader(out, name, value);
        used.push(value);
      }
      return used;
    },
  };
}

export function query(spec: Record<string, string>): Injector {
  const list: [string, Template][] = Object.entries(spec).map(([k, v]) => [k, parseTemplate(v)]);
  return {
    async apply(out, cred, ctx) {
      const used: string[] = [];
      const set: [string, string][] = [];
      for (const [name, t] of list) {
        const value = t.render(cred, ctx.target, used);
        set.push([name, value]);
        used.push(encodeURIComponent(value));
      }
      out.path = setQueryParams(out.path, set);
      return used;
    },
  };
}

function setHeader(out: Outgoing, name: string, value: string): void {
  deleteHeader(out.headers, name);
  out.headers[name] = value;
}

/**
 * Replace parameters by name in a path's query, leaving every other parameter byte for byte as
 * the app sent it (re-encoding the whole query could break upstreams that sign or compare it).
 */
export function setQueryParams(path: string, params: readonly [string, string][]): string {
  const q = path.indexOf('?');
  const base = q === -1 ? path : path.slice(0, q);
  const names = new Set(params.map(([n]) => n));
  const kept = q === -1 ? [] : path.slice(q + 1).split('&').filter((pair) => pair !== '' && !names.has(decodeName(pair)));
  for (const [n, v] of params) kept.push(`${encodeURIComponent(n)}=${encodeURIComponent(v)}`);
  return `${base}?${kept.join('&')}`;
}

function decodeName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

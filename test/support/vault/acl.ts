// ACL policies as Vault evaluates them: exact paths, `*` globs (prefix match, only at the end) and
// `+` single-segment wildcards, with Vault's priority order when several rules match
// (vault/acl.go CheckAllowedFromNonExactPaths). Policies are written in HCL or JSON, as in Vault.

export const CAPABILITIES = ['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny', 'subscribe'] as const;
export type Capability = (typeof CAPABILITIES)[number];
export type Operation = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list';

export interface PolicyRule {
  path: string;
  capabilities: Capability[];
}

export interface Policy {
  name: string;
  rules: PolicyRule[];
  /** The policy text as written (returned by `sys/policies/acl/<name>`). */
  text: string;
}

/** What tests may pass: HCL or JSON text, or `{ "<path>": ["read", …] }`. */
export type PolicyInput = string | Record<string, readonly Capability[] | { capabilities: readonly Capability[] }>;

export const DEFAULT_POLICY = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/renew" {
    capabilities = ["update"]
}
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}
`;

export class PolicyParseError extends Error {}

// ---------------------------------------------------------------- HCL (the subset policies use)

type Tok = { t: 'str' | 'ident' | 'num'; v: string } | { t: 'punct'; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new PolicyParseError('unterminated comment');
      i = end + 2;
    } else if (c === '"') {
      let v = '';
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === '\\') {
          const n = src[i + 1];
          v += n === 'n' ? '\n' : n === 't' ? '\t' : (n ?? '');
          i += 2;
        } else {
          v += src[i];
          i++;
        }
      }
      if (src[i] !== '"') throw new PolicyParseError('unterminated string');
      i++;
      out.push({ t: 'str', v });
    } else if ('{}[]=,:'.includes(c)) {
      out.push({ t: 'punct', v: c });
      i++;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?[0-9.]+/.exec(src.slice(i))!;
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(src.slice(i))!;
      out.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    } else {
      throw new PolicyParseError(`unexpected character ${JSON.stringify(c)}`);
    }
  }
  return out;
}

type HclValue = string | number | boolean | HclValue[] | { [k: string]: HclValue };

function parseHcl(src: string): Array<{ path: string; body: Record<string, HclValue> }> {
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const expect = (v: string): void => {
    const t = toks[p++];
    if (!t || t.t !== 'punct' || t.v !== v) throw new PolicyParseError(`expected "${v}"`);
  };
  const value = (): HclValue => {
    const t = toks[p++];
    if (!t) throw new PolicyParseError('unexpected end of policy');
    if (t.t === 'str') return t.v;
    if (t.t === 'num') return Number(t.v);
    if (t.t === 'ident') return t.v === 'true' ? true : t.v === 'false' ? false : t.v;
    if (t.v === '[') {
      const arr: HclValue[] = [];
      while (peek()?.v !== ']') {
        arr.push(value());
        if (peek()?.v === ',') p++;
      }
      p++;
      return arr;
    }
    if (t.v === '{') {
      p--;
      return block();
    }
    throw new PolicyParseError(`unexpected "${t.v}"`);
  };
  const block = (): Record<string, HclValue> => {
    expect('{');
    const body: Record<string, HclValue> = {};
    while (peek() && peek()!.v !== '}') {
      const key = toks[p++]!;
      if (key.t === 'punct') throw new PolicyParseError(`unexpected "${key.v}"`);
      if (peek()?.v === '=' || peek()?.v === ':') p++;
      body[key.v] = value();
      if (peek()?.v === ',') p++;
    }
    expect('}');
    return body;
  };
  const blocks: Array<{ path: string; body: Record<string, HclValue> }> = [];
  while (p < toks.length) {
    const kw = toks[p++]!;
    if (kw.t !== 'ident' || kw.v !== 'path') throw new PolicyParseError(`unsupported top-level "${kw.v}": only path blocks`);
    const name = toks[p++];
    if (!name || name.t !== 'str') throw new PolicyParseError('path needs a quoted name');
    blocks.push({ path: name.v, body: block() });
  }
  return blocks;
}

function toCapabilities(v: unknown, path: string): Capability[] {
  if (!Array.isArray(v)) throw new PolicyParseError(`path "${path}": capabilities must be a list`);
  return v.map((c) => {
    if (!(CAPABILITIES as readonly string[]).includes(String(c))) throw new PolicyParseError(`path "${path}": invalid capability "${String(c)}"`);
    return c as Capability;
  });
}

/** Parse a policy given as HCL, JSON, or a path → capabilities object. */
export function parsePolicy(name: string, input: PolicyInput): Policy {
  if (typeof input !== 'string') {
    const rules = Object.entries(input).map(([path, v]) => ({ path, capabilities: toCapabilities(Array.isArray(v) ? v : (v as { capabilities: unknown }).capabilities, path) }));
    const text = rules.map((r) => `path "${r.path}" {\n  capabilities = ${JSON.stringify(r.capabilities)}\n}\n`).join('\n');
    return { name, rules, text };
  }
  const trimmed = input.trim();
  if (trimmed.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(trimmed);
    } catch (e) {
      throw new PolicyParseError(`failed to parse policy: ${(e as Error).message}`);
    }
    const paths = (obj as { path?: Record<string, { capabilities?: unknown }> }).path ?? {};
    return { name, text: input, rules: Object.entries(paths).map(([path, b]) => ({ path, capabilities: toCapabilities(b.capabilities, path) })) };
  }
  return { name, text: input, rules: parseHcl(input).map((b) => ({ path: b.path, capabilities: toCapabilities(b.body.capabilities ?? [], b.path) })) };
}

// ---------------------------------------------------------------- evaluation

interface Candidate {
  pattern: string;
  caps: Set<Capability>;
  firstWildcard: number;
  isPrefix: boolean;
  wildcards: number;
}

function mergeInto(map: Map<string, Set<Capability>>, path: string, caps: readonly Capability[]): void {
  let set = map.get(path);
  if (!set) map.set(path, (set = new Set()));
  for (const c of caps) set.add(c);
}

export class Acl {
  readonly root: boolean;
  readonly #exact = new Map<string, Set<Capability>>();
  readonly #prefix = new Map<string, Set<Capability>>();
  readonly #segment = new Map<string, Set<Capability>>();

  constructor(policies: readonly Policy[], root = false) {
    this.root = root;
    for (const pol of policies) {
      for (const r of pol.rules) {
        if (r.path.includes('+')) mergeInto(this.#segment, r.path, r.capabilities);
        else if (r.path.endsWith('*')) mergeInto(this.#prefix, r.path.slice(0, -1), r.capabilities);
        else mergeInto(this.#exact, r.path, r.capabilities);
      }
    }
  }

  /** The capabilities the policies grant on `path` (request path relative to the token's namespace). */
  capabilities(path: string, op?: Operation): Set<Capability> {
    if (this.root) return new Set(CAPABILITIES.filter((c) => c !== 'deny'));
    const exact = this.#exact.get(path) ?? (op === 'list' && path.endsWith('/') ? this.#exact.get(path.slice(0, -1)) : undefined);
    if (exact) return exact;
    const candidates: Candidate[] = [];
    let bestPrefix: string | undefined;
    for (const prefix of this.#prefix.keys()) {
      if (path.startsWith(prefix) && (bestPrefix === undefined || prefix.length > bestPrefix.length)) bestPrefix = prefix;
    }
    if (bestPrefix !== undefined) {
      candidates.push({ pattern: `${bestPrefix}*`, caps: this.#prefix.get(bestPrefix)!, firstWildcard: bestPrefix.length, isPrefix: true, wildcards: 0 });
    }
    const parts = path.split('/');
    for (const [pattern, caps] of this.#segment) {
      const isPrefix = pattern.endsWith('*');
      const segs = (isPrefix ? pattern.slice(0, -1) : pattern).split('/');
      if (isPrefix ? parts.length < segs.length : parts.length !== segs.length) continue;
      let match = true;
      for (let i = 0; i < segs.length && match; i++) {
        const seg = segs[i]!;
        const part = parts[i]!;
        if (isPrefix && i === segs.length - 1) match = seg === '+' ? true : part.startsWith(seg);
        else match = seg === '+' || seg === part;
      }
      if (!match) continue;
      const plus = pattern.indexOf('+');
      const glob = isPrefix ? pattern.length - 1 : Number.POSITIVE_INFINITY;
      candidates.push({ pattern, caps, firstWildcard: Math.min(plus, glob), isPrefix, wildcards: pattern.split('/').filter((s) => s === '+').length });
    }
    if (candidates.length === 0) return new Set();
    // Highest priority last (Vault's `less`): later first wildcard, not a prefix, fewer +, longer, greater.
    candidates.sort((a, b) => {
      if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard;
      if (a.isPrefix !== b.isPrefix) return a.isPrefix ? -1 : 1;
      if (a.wildcards !== b.wildcards) return b.wildcards - a.wildcards;
      if (a.pattern.length !== b.pattern.length) return a.pattern.length - b.pattern.length;
      return a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0;
    });
    return candidates.at(-1)!.caps;
  }

  allows(path: string, op: Operation): boolean {
    if (this.root) return true;
    const caps = this.capabilities(path, op);
    if (caps.has('deny')) return false;
    return caps.has(op);
  }

  hasSudo(path: string): boolean {
    if (this.root) return true;
    const caps = this.capabilities(path);
    return !caps.has('deny') && caps.has('sudo');
  }
}

/** Vault's policyutil.SanitizePolicies: trim, lower-case, dedupe, add "default", sort. */
export function sanitizePolicies(policies: readonly string[], addDefault: boolean): string[] {
  const set = new Set(policies.map((p) => p.trim().toLowerCase()).filter((p) => p !== ''));
  if (set.has('root')) return ['root'];
  if (addDefault) set.add('default');
  return [...set].sort();
}

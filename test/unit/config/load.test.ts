import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, formatProblem, loadConfigFile, parseConfig, type ConfigProblem } from '../../../src/config/load.ts';
import { KeylessError } from '../../../src/errors.ts';

const FILE = '/etc/keyless/keyless.yaml';

const BASE = `# Keyless, one namespace
admin:
  listen: 127.0.0.1:9091
stores:
  vault:
    kind: file
    dir: ./secrets
targets:
  orders-db:
    protocol: postgres
    listen: 0.0.0.0:5432
    upstream:
      host: orders.db.internal
      database: orders
      tls:
        mode: verify-full
        ca: certs/db-ca.pem
    credential:
      store: vault
      path: orders
    allow:
      - cidr: 10.42.0.0/16
`;

/** BASE with one exact piece of text replaced (the piece must be there). */
function edit(text: string, from: string, to: string): string {
  expect(text, `BASE contains ${JSON.stringify(from)}`).toContain(from);
  return text.replace(from, to);
}

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  expect(i, `${JSON.stringify(needle)} is in the text`).toBeGreaterThanOrEqual(0);
  return i + 1;
}

function configError(text: string, file = FILE): ConfigError {
  try {
    parseConfig(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const err = e as ConfigError;
    // Never a stack trace or a library's raw dump in what the operator reads.
    expect(err.message).not.toMatch(/\n\s+at /);
    expect(err.message).not.toMatch(/ZodError|\[\s*\{/);
    expect(err.code).toBe('KL_ERR_CONFIG');
    expect(err.message.startsWith(`${file}: `)).toBe(true);
    return err;
  }
  throw new Error('expected a ConfigError');
}

/** The single problem reported for `text`. */
function problem(text: string): ConfigProblem {
  const err = configError(text);
  expect(err.problems, err.message).toHaveLength(1);
  return err.problems[0]!;
}

describe('parseConfig: valid files', () => {
  it('parses the base config with defaults filled in', () => {
    const cfg = parseConfig(BASE, FILE);
    expect(cfg.admin.listen).toEqual({ host: '127.0.0.1', port: 9091 });
    expect(cfg.log.level).toBe('info');
    expect(cfg.drainTimeout).toBe(30_000);
    const t = cfg.targets['orders-db']!;
    expect(t.protocol).toBe('postgres');
    expect(t.listen).toEqual({ host: '0.0.0.0', port: 5432 });
    expect(t.upstream).toMatchObject({ host: 'orders.db.internal', port: 5432, database: 'orders', tls: { mode: 'verify-full' } });
    expect(t.timeouts).toEqual({ connect: 10_000, handshake: 15_000, idle: 0 });
    expect(t.allow).toEqual([{ cidr: '10.42.0.0/16' }]);
  });

  it('TLS mode defaults to verify-full', () => {
    const cfg = parseConfig(edit(BASE, '        mode: verify-full\n', ''), FILE);
    expect(cfg.targets['orders-db']!.upstream.tls.mode).toBe('verify-full');
    const noTls = parseConfig(edit(BASE, '      tls:\n        mode: verify-full\n        ca: certs/db-ca.pem\n', ''), FILE);
    expect(noTls.targets['orders-db']!.upstream.tls).toEqual({ mode: 'verify-full' });
  });

  it('reads durations in every unit', () => {
    const cfg = parseConfig(`${BASE}    timeouts: { connect: 2s, handshake: 1500ms, idle: 5m }\ndrainTimeout: 1h\n`, FILE);
    expect(cfg.targets['orders-db']!.timeouts).toEqual({ connect: 2000, handshake: 1500, idle: 300_000 });
    expect(cfg.drainTimeout).toBe(3_600_000);
  });

  it('resolves relative paths against the file\'s directory and keeps absolute ones', () => {
    const text = edit(BASE, '    listen: 0.0.0.0:5432\n', '    listen: 0.0.0.0:5432\n    tls: { cert: tls/server.crt, key: /abs/server.key }\n');
    const cfg = parseConfig(`${text}  other:\n    protocol: postgres\n    listen: 0.0.0.0:6432\n    upstream: { host: h, tls: { ca: /etc/ssl/ca.pem } }\n    credential: { store: abs, path: x }\n`.replace('stores:\n', 'stores:\n  abs: { kind: file, dir: /var/run/secrets/keyless }\n'), FILE);
    expect(cfg.stores.vault).toMatchObject({ kind: 'file', dir: '/etc/keyless/secrets' });
    expect(cfg.stores.abs).toMatchObject({ kind: 'file', dir: '/var/run/secrets/keyless' });
    expect(cfg.targets['orders-db']!.upstream.tls.ca).toBe('/etc/keyless/certs/db-ca.pem');
    expect(cfg.targets['orders-db']!.tls).toEqual({ cert: '/etc/keyless/tls/server.crt', key: '/abs/server.key' });
    expect(cfg.targets.other!.upstream.tls.ca).toBe('/etc/ssl/ca.pem');
  });

  it('loadConfigFile reads the file and resolves paths against its directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyless-config-'));
    try {
      mkdirSync(join(dir, 'conf'));
      const file = join(dir, 'conf', 'keyless.yaml');
      writeFileSync(file, BASE);
      const cfg = await loadConfigFile(file);
      expect(cfg.stores.vault).toMatchObject({ dir: join(dir, 'conf', 'secrets') });
      expect(cfg.targets['orders-db']!.upstream.tls.ca).toBe(join(dir, 'conf', 'certs', 'db-ca.pem'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two targets may share a listen address with distinct route.database and equal tls', () => {
    const text = `stores:
  s: { kind: env }
targets:
  a:
    protocol: postgres
    listen: ":5432"
    route: { database: orders }
    tls: { cert: c.pem, key: k.pem }
    upstream: { host: a.internal }
    credential: { store: s, path: a }
  b:
    protocol: postgres
    listen: 0.0.0.0:5432
    route: { database: billing }
    tls: { key: k.pem, cert: c.pem }
    upstream: { host: b.internal }
    credential: { store: s, path: b }
`;
    const cfg = parseConfig(text, FILE);
    expect(Object.keys(cfg.targets)).toEqual(['a', 'b']);
  });
});

describe('parseConfig: errors name the field path, say why, and give the line', () => {
  it('a bad enum value: the exact operator-facing message', () => {
    const text = edit(BASE, 'mode: verify-full', 'mode: verify-fully');
    const err = configError(text);
    expect(err.message).toBe(`${FILE}: targets.orders-db.upstream.tls.mode: expected one of disable|require|verify-ca|verify-full (line ${lineOf(text, 'verify-fully')})`);
    expect(err.problems).toEqual([{ path: 'targets.orders-db.upstream.tls.mode', message: 'expected one of disable|require|verify-ca|verify-full', line: lineOf(text, 'verify-fully') }]);
  });

  it('formatProblem puts path, message and line together', () => {
    expect(formatProblem({ path: 'a.b', message: 'why', line: 3 })).toBe('a.b: why (line 3)');
    expect(formatProblem({ path: '', message: 'why' })).toBe('why');
  });

  it.each([
    ['at the top level', 'stores:\n', 'colour: blue\nstores:\n', 'colour', 'colour: blue'],
    ['in a target', '    protocol: postgres\n', '    protocol: postgres\n    replicas: 3\n', 'targets.orders-db.replicas', 'replicas: 3'],
    ['in upstream.tls, on the line of the key', '        ca: certs/db-ca.pem\n', '        ca: certs/db-ca.pem\n        insecure: true\n', 'targets.orders-db.upstream.tls.insecure', 'insecure: true'],
    ['in a store', '    dir: ./secrets\n', '    dir: ./secrets\n    password: hunter2\n', 'stores.vault.password', 'password: hunter2'],
    ['in an allow rule', '      - cidr: 10.42.0.0/16\n', '      - cidr: 10.42.0.0/16\n        user: x\n', 'targets.orders-db.allow.0.user', 'user: x'],
  ])('an unknown field %s', (_where, from, to, path, lineText) => {
    const text = edit(BASE, from, to);
    const p = problem(text);
    expect(p.path).toBe(path);
    expect(p.message).toMatch(/^unknown field/);
    expect(p.line).toBe(lineOf(text, lineText));
  });

  it('an unknown field never echoes its value (a pasted secret stays out of the error)', () => {
    const err = configError(edit(BASE, '    dir: ./secrets\n', '    dir: ./secrets\n    password: CANARY-config-value\n'));
    expect(err.message).not.toContain('CANARY-config-value');
  });

  it.each([
    ['upstream.host', '      host: orders.db.internal\n', '', 'targets.orders-db.upstream.host'],
    ['credential.path', '      path: orders\n', '', 'targets.orders-db.credential.path'],
    ['listen', '    listen: 0.0.0.0:5432\n', '', 'targets.orders-db.listen'],
    ['upstream', '    upstream:\n      host: orders.db.internal\n      database: orders\n      tls:\n        mode: verify-full\n        ca: certs/db-ca.pem\n', '', 'targets.orders-db.upstream'],
    ['a store kind', '    kind: file\n', '', 'stores.vault.kind'],
  ])('a missing required field: %s', (_name, from, to, path) => {
    const p = problem(edit(BASE, from, to));
    expect(p.path).toBe(path);
    expect(p.message).toMatch(/required|expected kind/);
    expect(p.line).toBeTypeOf('number');
  });

  it('missing stores and targets in an empty file', () => {
    const err = configError('');
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual(['stores: required', 'targets: required']);
  });

  it.each([['10x'], ['"-5s"'], ['true'], ['.inf'], ['[1]'], ['10 s'], ['1d']])('a bad duration %s says what a duration looks like', (value) => {
    const text = `${BASE}drainTimeout: ${value}\n`;
    const p = problem(text);
    expect(p.path).toBe('drainTimeout');
    expect(p.message).toMatch(/duration/);
    expect(p.line).toBe(lineOf(text, 'drainTimeout'));
  });

  it('a negative duration in milliseconds says it must not be negative', () => {
    const text = `${BASE}drainTimeout: -5\n`;
    expect(problem(text)).toMatchObject({ path: 'drainTimeout', message: expect.stringMatching(/>=\s*0|duration/), line: lineOf(text, 'drainTimeout') });
  });

  it('a bad duration inside a target names the full path', () => {
    const text = `${BASE}    timeouts: { connect: soon }\n`;
    expect(problem(text)).toEqual({ path: 'targets.orders-db.timeouts.connect', message: 'expected a duration like 500ms, 10s, 5m or 1h', line: lineOf(text, 'timeouts') });
  });

  it.each(['nope', '"5432"', 'host:99999', '"::1:5432"', '"host:"', '"[::1]"'])('a bad listen address %s', (value) => {
    const text = edit(BASE, 'listen: 0.0.0.0:5432', `listen: ${value}`);
    expect(problem(text)).toEqual({ path: 'targets.orders-db.listen', message: 'expected host:port, e.g. 0.0.0.0:5432', line: lineOf(text, '    listen: ') });
  });

  it('a bad admin listen address', () => {
    const text = edit(BASE, 'listen: 127.0.0.1:9091', 'listen: everywhere');
    expect(problem(text)).toMatchObject({ path: 'admin.listen', line: lineOf(text, 'everywhere') });
  });

  it.each(['10.42.0.0/33', 'fd00::/129', '10.0.0.256', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/+8', 'everyone', '""'])('a bad CIDR %s', (value) => {
    const text = edit(BASE, 'cidr: 10.42.0.0/16', `cidr: ${value}`);
    expect(problem(text)).toEqual({ path: 'targets.orders-db.allow.0.cidr', message: 'expected an IP address or CIDR, e.g. 10.42.0.0/16', line: lineOf(text, 'cidr:') });
  });

  it('accepts IPv6 CIDRs and single addresses in allow rules', () => {
    const cfg = parseConfig(edit(BASE, '      - cidr: 10.42.0.0/16\n', '      - cidr: 10.42.0.0/16\n      - cidr: fd00::/8\n      - cidr: "::1"\n      - cidr: 192.0.2.1\n'), FILE);
    expect(cfg.targets['orders-db']!.allow).toHaveLength(4);
  });

  it('a credential naming a store that does not exist lists the stores there are', () => {
    const text = edit(BASE, 'store: vault', 'store: vaultt');
    expect(problem(text)).toEqual({
      path: 'targets.orders-db.credential.store',
      message: 'no store named "vaultt" (stores: vault)',
      line: lineOf(text, 'store: vaultt'),
    });
  });

  it('an unknown store kind', () => {
    const text = edit(BASE, 'kind: file', 'kind: vaultish');
    const p = problem(text);
    expect(p).toMatchObject({ path: 'stores.vault.kind', line: lineOf(text, 'vaultish') });
    expect(p.message).toMatch(/^expected kind: file \| env\b/);
  });

  it('an unknown protocol', () => {
    const text = edit(BASE, 'protocol: postgres', 'protocol: oracle');
    const p = problem(text);
    expect(p).toMatchObject({ path: 'targets.orders-db.protocol', line: lineOf(text, 'oracle') });
    expect(p.message).toMatch(/^expected protocol: postgres\b/);
  });

  it('a target name with characters not allowed says which characters are', () => {
    const text = edit(BASE, '  orders-db:', '  "orders db!":');
    const p = problem(text);
    expect(p.path).toBe('targets.orders db!');
    expect(p.message).toMatch(/letters, digits/);
    expect(p.line).toBe(lineOf(text, 'orders db!'));
  });

  it.each([
    ['a string port', '      host: orders.db.internal\n', '      host: orders.db.internal\n      port: "5432"\n', 'targets.orders-db.upstream.port', 'expected number'],
    ['a list host', 'host: orders.db.internal', 'host: [a, b]', 'targets.orders-db.upstream.host', 'expected string'],
    ['a port out of range', '      host: orders.db.internal\n', '      host: orders.db.internal\n      port: 70000\n', 'targets.orders-db.upstream.port', ''],
    ['a fractional maxConnections', '    protocol: postgres\n', '    protocol: postgres\n    maxConnections: 2.5\n', 'targets.orders-db.maxConnections', 'expected int'],
    ['a log level', 'admin:\n', 'log: { level: loud }\nadmin:\n', 'log.level', 'expected one of fatal|error|warn|info|debug|trace'],
  ])('a wrong type or value: %s', (_name, from, to, path, message) => {
    const p = problem(edit(BASE, from, to));
    expect(p.path).toBe(path);
    expect(p.message).toContain(message);
    expect(p.line).toBeTypeOf('number');
  });

  it('reports several problems at once', () => {
    const text = edit(edit(BASE, 'mode: verify-full', 'mode: plain'), 'cidr: 10.42.0.0/16', 'cidr: x');
    const err = configError(text);
    expect(err.problems.map((p) => p.path).sort()).toEqual(['targets.orders-db.allow.0.cidr', 'targets.orders-db.upstream.tls.mode']);
    expect(err.message).toContain('; ');
  });
});

describe('parseConfig: shared listen addresses', () => {
  const target = (name: string, listen: string, extra = ''): string =>
    `  ${name}:\n    protocol: postgres\n    listen: "${listen}"\n${extra}    upstream: { host: ${name}.internal }\n    credential: { store: s, path: ${name} }\n`;
  const head = 'stores:\n  s: { kind: env }\ntargets:\n';

  it('route.database is required on every target sharing an address (:5432 and 0.0.0.0:5432 are one address)', () => {
    const text = head + target('a', ':5432') + target('b', '0.0.0.0:5432', '    route: { database: b }\n');
    const p = problem(text);
    expect(p.path).toBe('targets.a.route');
    expect(p.message).toMatch(/^required/);
    expect(p.message).toContain('route.database');
    expect(p.line).toBe(lineOf(text, '  a:') + 1);
  });

  it('the route.database error names the other target, not the target itself', () => {
    const text = head + target('a', ':5432') + target('b', '0.0.0.0:5432');
    const err = configError(text);
    const forA = err.problems.find((p) => p.path === 'targets.a.route');
    const forB = err.problems.find((p) => p.path === 'targets.b.route');
    expect(forB?.message).toContain('"a"');
    expect(forA?.message).toContain('"b"');
  });

  it('route.database must be unique on the address', () => {
    const text = head + target('a', ':5432', '    route: { database: orders }\n') + target('b', ':5432', '    route: { database: orders }\n');
    const p = problem(text);
    expect(p.path).toBe('targets.b.route.database');
    expect(p.message).toBe('"orders" is already routed to "a"');
    expect(p.line).toBe(lineOf(text, '  b:') + 3);
  });

  it('targets on different addresses need no route', () => {
    expect(() => parseConfig(head + target('a', ':5432') + target('b', ':5433'), FILE)).not.toThrow();
  });

  it('targets sharing an address must have the same listener tls', () => {
    const text = head + target('a', ':5432', '    route: { database: a }\n    tls: { cert: c.pem, key: k.pem }\n') + target('b', ':5432', '    route: { database: b }\n');
    const p = problem(text);
    expect(p.path).toBe('targets.b.tls');
    expect(p.message).toContain('"a"');
  });

  it('targets sharing an address must speak the same protocol', () => {
    const text = head + target('a', ':5432', '    route: { database: a }\n') + target('b', ':5432', '    route: { database: b }\n').replace('protocol: postgres', 'protocol: mysql');
    const err = configError(text);
    const p = err.problems.find((x) => x.path === 'targets.b.protocol');
    expect(p, err.message).toBeDefined();
    expect(p!.message).toContain('"a"');
    expect(p!.line).toBe(lineOf(text, 'protocol: mysql'));
  });
});

describe('parseConfig: YAML problems', () => {
  it('a syntax error gives the YAML reason and its line', () => {
    const text = edit(BASE, '    allow:\n      - cidr: 10.42.0.0/16\n', '    allow: [ { cidr: 10.42.0.0/16 }\n');
    const err = configError(text);
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) {
      expect(p.path).toBe('');
      expect(p.message).toMatch(/^YAML: /);
      expect(p.line).toBeTypeOf('number');
    }
  });

  it('a duplicate key is an error with the line of the duplicate', () => {
    const text = edit(BASE, '    protocol: postgres\n', '    protocol: postgres\n    protocol: postgres\n');
    const p = problem(text);
    expect(p.message).toMatch(/^YAML: .*unique/);
    expect(p.line).toBe(lineOf(text, 'protocol: postgres') + 1);
  });

  it('a duplicate target name is an error', () => {
    const text = `${BASE}  orders-db:\n    protocol: postgres\n`;
    expect(problem(text).message).toMatch(/^YAML: .*unique/);
  });

  it('tab indentation is an error with its line', () => {
    const p = configError('stores:\n\tvault: { kind: env }\ntargets: {}\n').problems[0]!;
    expect(p.message).toMatch(/^YAML: /);
    expect(p.line).toBe(2);
  });

  it.each([['a list', '- a\n- b\n'], ['a scalar', 'keyless\n']])('a document that is %s is not a mapping', (_name, text) => {
    expect(problem(text)).toEqual({ path: '', message: 'expected object', line: 1 });
  });

  it('the first line of a multi-line YAML message only', () => {
    for (const p of configError('stores: {\n  a: [\n').problems) expect(p.message).not.toContain('\n');
  });
});

describe('loadConfigFile', () => {
  it('an unreadable file is a ConfigError naming the file and the errno code', async () => {
    const missing = join(tmpdir(), `keyless-missing-${process.pid}.yaml`);
    const err = await loadConfigFile(missing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(KeylessError);
    expect((err as ConfigError).code).toBe('KL_ERR_CONFIG');
    expect((err as ConfigError).message).toBe(`${missing}: cannot read file: ENOENT`);
  });

  it('a file that is a directory is a ConfigError, not a crash', async () => {
    const err = await loadConfigFile(tmpdir()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('cannot read file: EISDIR');
  });
});

// The operator CLI as a person runs it: `keyless validate`, `keyless check`, usage errors; output
// and exit codes.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, inject, test } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../support/net.ts';
import { fileStoreFor, pgTarget, targets } from '../support/pg-fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const pgInfo = inject('pg');
const pki = inject('pki');
const dir = mkdtempSync(join(tmpdir(), 'keyless-cli-'));

function keyless(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [join(ROOT, 'src/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

function file(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('keyless validate', () => {
  test('a valid file: exit 0', async () => {
    const r = await keyless(['validate', join(ROOT, 'config/keyless.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/config\/keyless.yaml: ok \(\d+ targets?, 1 store\(s\)\)/);
  });

  test('errors name the field, why, and the line; exit 1; no stack trace', async () => {
    const f = file(
      'bad.yaml',
      ['stores:', '  s: { kind: file, dir: /tmp }', 'targets:', '  orders-db:', '    protocol: postgres', '    listen: 0.0.0.0:5432', '    upstream:', '      host: db', '      tls: { mode: verify-everything }', '    credential: { store: s, path: x }', '    colour: blue', ''].join('\n'),
    );
    const r = await keyless(['validate', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('targets.orders-db.upstream.tls.mode: expected one of disable|require|verify-ca|verify-full (line 9)');
    expect(r.stderr).toContain('targets.orders-db.colour: unknown field (line 11)');
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });

  test('usage errors exit 2', async () => {
    expect((await keyless(['validate'])).code).toBe(2);
    const r = await keyless(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe('keyless check', () => {
  test('every store and upstream reached with the real credential: a table, exit 0', async () => {
    const fx = fileStoreFor(pgInfo, pki);
    const f = file(
      'good.yaml',
      stringify({
        stores: fx.stores,
        targets: targets({
          scram: await pgTarget(pgInfo, 'scram'),
          tls: await pgTarget(pgInfo, 'scram', { upstream: { tls: { mode: 'verify-full', ca: pki.caFile } } }),
        }),
      }),
    );
    const r = await keyless(['check', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^STORE +KIND +RESULT\nfiles +file +ok: /);
    expect(r.stdout).toMatch(/\nscram +postgres +files:scram +127\.0\.0\.1:\d+ \(disable\) +ok: logged in as kl_scram to keyless_test \(SCRAM-SHA-256, no TLS\)\n/);
    expect(r.stdout).toMatch(/\ntls +postgres .* ok: logged in as kl_scram to keyless_test \(SCRAM-SHA-256-PLUS, TLS verify-full\)\n/);
    expect(r.stdout).toMatch(/all checks passed\n$/);
    // Progress goes to stderr, one line per step when not on a terminal.
    expect(r.stderr).toMatch(/checking \[1\/3\] store files\nchecking \[2\/3\] target scram\nchecking \[3\/3\] target tls\n/);
    expect(r.stdout + r.stderr).not.toContain(pgInfo.roles.scram.password);
  });

  test('what does not work, and why; exit 1', async () => {
    const fx = fileStoreFor(pgInfo, pki);
    const f = file(
      'failing.yaml',
      stringify({
        stores: { ...fx.stores, gone: { kind: 'file', dir: join(dir, 'no-such-dir') } },
        targets: targets({
          ok: await pgTarget(pgInfo, 'md5'),
          'bad-name': await pgTarget(pgInfo, 'sslonly', { upstream: { tls: { mode: 'verify-full', ca: pki.caFile, servername: 'wrong.keyless.test' } } }),
          down: await pgTarget(pgInfo, 'scram', { upstream: { port: await freePort() } }),
          missing: await pgTarget(pgInfo, 'nope'),
        }),
      }),
    );
    const r = await keyless(['check', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\ngone +file +FAIL: credential store unavailable — store gone: cannot read .*no-such-dir: ENOENT\n/);
    expect(r.stdout).toMatch(/\nok +postgres .* ok: logged in as kl_md5/);
    expect(r.stdout).toMatch(/\nbad-name +postgres .* FAIL: upstream TLS verification failed — .*ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(r.stdout).toMatch(/\ndown +postgres .* FAIL: upstream unreachable — .*ECONNREFUSED/);
    expect(r.stdout).toMatch(/\nmissing +postgres .* FAIL: credential: credential not found in store/);
    expect(r.stdout).toMatch(/4 checks failed\n$/);
    for (const role of [pgInfo.roles.md5, pgInfo.roles.scram, pgInfo.roles.sslOnly]) expect(r.stdout + r.stderr).not.toContain(role.password);
  });
});

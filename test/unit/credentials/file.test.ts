import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../../src/credentials/file.ts';
import type { Credential, CredentialRef } from '../../../src/credentials/types.ts';
import { KeylessError } from '../../../src/errors.ts';
import { createLogger } from '../../../src/observability/logger.ts';

const CANARY = 'CANARY-file-3a6f90';
const MAX_FIELD_BYTES = 64 * 1024;

let root = '';
let lines: string[] = [];
const log = createLogger({ destination: { write: (l: string) => void lines.push(l) }, level: 'debug' });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyless-file-store-'));
  lines = [];
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const ref = (path: string): CredentialRef => ({ store: 'mounted', path });
const store = (watch = true): FileStore => new FileStore('mounted', { dir: root, watch }, log);

/** A plain directory of field files. */
function plainDir(path: string, files: Record<string, string | Buffer>): string {
  const dir = join(root, path);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

function values(c: Credential): Record<string, string> {
  return Object.fromEntries([...c.fields].map(([k, v]) => [k, v.reveal()]));
}

async function rejection(p: Promise<unknown>): Promise<KeylessError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(KeylessError);
  return e as KeylessError;
}

/**
 * A Kubernetes Secret volume as the kubelet's AtomicWriter lays it out: a timestamped directory
 * holding the files, `..data` pointing at it, and one symlink per field through `..data`.
 */
class SecretVolume {
  readonly dir: string;
  #generation = 0;
  #current = '';

  constructor(dir: string, files: Record<string, string>) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
    this.#current = this.#writeTimestamped(files);
    symlinkSync(this.#current, join(dir, '..data'));
    this.#linkFields(Object.keys(files));
  }

  /** AtomicWriter's update: new dir, `..data_tmp` → it, rename over `..data`, drop the old dir. */
  swap(files: Record<string, string>): void {
    const old = this.#current;
    const next = this.#writeTimestamped(files);
    symlinkSync(next, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    this.#linkFields(Object.keys(files));
    rmSync(join(this.dir, old), { recursive: true, force: true });
    this.#current = next;
  }

  #writeTimestamped(files: Record<string, string>): string {
    this.#generation++;
    const name = `..2026_03_14_09_26_5${this.#generation}.${String(this.#generation).padStart(9, '0')}`;
    mkdirSync(join(this.dir, name));
    for (const [field, content] of Object.entries(files)) writeFileSync(join(this.dir, name, field), content);
    return name;
  }

  #linkFields(fields: string[]): void {
    for (const f of fields) {
      try {
        symlinkSync(join('..data', f), join(this.dir, f));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }
}

describe('FileStore: reading fields', () => {
  it('reads one file per field with the trailing newline stripped', async () => {
    plainDir('orders-db', { username: 'orders\n', password: `${CANARY}\r\n`, token: 'no-newline', note: 'two\n\n', spaced: '  padded  ' });
    const c = await store().get(ref('orders-db'));
    expect(values(c)).toEqual({ username: 'orders', password: CANARY, token: 'no-newline', note: 'two\n', spaced: '  padded  ' });
    expect(c.ref).toEqual(ref('orders-db'));
    expect(c.renewable).toBe(false);
    expect(c.expiresAt).toBeUndefined();
  });

  it('ignores dotfiles and sub-directories', async () => {
    const dir = plainDir('orders-db', { password: 'p', '.hidden': 'h', '..data_tmp': 'x' });
    mkdirSync(join(dir, 'nested'));
    writeFileSync(join(dir, 'nested', 'password'), 'nested');
    expect(values(await store().get(ref('orders-db')))).toEqual({ password: 'p' });
  });

  it('reads nested credential paths', async () => {
    plainDir('team/orders-db', { password: 'p' });
    expect(values(await store().get(ref('team/orders-db')))).toEqual({ password: 'p' });
  });

  it('reads UTF-8 values', async () => {
    plainDir('u', { password: 'pässwörd ✓\n' });
    expect(values(await store().get(ref('u')))).toEqual({ password: 'pässwörd ✓' });
  });

  it('accepts a field file of exactly 64 KiB and rejects one byte more', async () => {
    plainDir('ok', { tls_cert: Buffer.alloc(MAX_FIELD_BYTES, 0x41) });
    expect((await store().get(ref('ok'))).fields.get('tls_cert')?.length).toBe(MAX_FIELD_BYTES);
    plainDir('big', { password: Buffer.alloc(MAX_FIELD_BYTES + 1, 0x43) });
    const e = await rejection(store().get(ref('big')));
    expect(e.code).toBe('KL_ERR_CREDENTIAL_INVALID');
    expect(e.message).toContain('big/password');
    expect(e.message).not.toContain('CCCC');
  });

  it('a missing directory is KL_ERR_CREDENTIAL_NOT_FOUND', async () => {
    const e = await rejection(store().get(ref('absent')));
    expect(e.code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
    expect(e.message).toContain('absent');
  });

  it('a missing store directory is KL_ERR_CREDENTIAL_NOT_FOUND', async () => {
    const s = new FileStore('mounted', { dir: join(root, 'no-such-mount'), watch: false }, log);
    expect((await rejection(s.get(ref('x')))).code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
  });

  it('a path that is a file, not a directory, is KL_ERR_CREDENTIAL_NOT_FOUND', async () => {
    writeFileSync(join(root, 'flat'), CANARY);
    const e = await rejection(store().get(ref('flat')));
    expect(e.code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
    expect(e.message).not.toContain(CANARY);
  });

  it('a directory without field files is KL_ERR_CREDENTIAL_NOT_FOUND', async () => {
    plainDir('empty', {});
    plainDir('dots', { '.a': 'x', '..data': 'y' });
    expect((await rejection(store().get(ref('empty')))).code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
    expect((await rejection(store().get(ref('dots')))).code).toBe('KL_ERR_CREDENTIAL_NOT_FOUND');
  });

  it('a field symlink that stays dangling fails instead of retrying forever', async () => {
    const dir = plainDir('dangling', { username: 'u' });
    symlinkSync(join(dir, 'gone'), join(dir, 'password'));
    // Should get() loop, afterEach removing the directory ends it (readdir then fails).
    const e = await rejection(store(false).get(ref('dangling')));
    expect(['KL_ERR_STORE_UNAVAILABLE', 'KL_ERR_CREDENTIAL_INVALID', 'KL_ERR_CREDENTIAL_NOT_FOUND']).toContain(e.code);
  }, 3000);
});

describe('FileStore: paths stay inside the store directory', () => {
  it.each(['../x', '../../etc', 'a/../../x', '..', '.', '', '/etc', '/'])('rejects %j with KL_ERR_CONFIG', async (path) => {
    const e = await rejection(store().get(ref(path)));
    expect(e.code).toBe('KL_ERR_CONFIG');
  });

  it('rejects an absolute path even when it points inside the store directory', async () => {
    plainDir('orders-db', { password: 'p' });
    const e = await rejection(store().get(ref(join(root, 'orders-db'))));
    expect(e.code).toBe('KL_ERR_CONFIG');
  });

  it('a sibling directory whose name starts with the store\'s is outside', async () => {
    const s = new FileStore('mounted', { dir: join(root, 'store'), watch: false }, log);
    plainDir('store-evil', { password: CANARY });
    expect((await rejection(s.get(ref('../store-evil')))).code).toBe('KL_ERR_CONFIG');
  });

  it('allows a path that normalises to one inside', async () => {
    plainDir('b', { password: 'p' });
    expect(values(await store().get(ref('a/../b')))).toEqual({ password: 'p' });
  });

  it('watching a path outside the directory does not throw', () => {
    const unwatch = store().watch(ref('../x'), () => undefined);
    expect(unwatch).toBeTypeOf('function');
    unwatch();
  });
});

describe('FileStore: versions', () => {
  it('is a counter that changes only when the content changes', async () => {
    const dir = plainDir('orders-db', { username: 'u', password: 'one' });
    const s = store(false);
    const v1 = (await s.get(ref('orders-db'))).version;
    expect(v1).toBe('1');
    expect((await s.get(ref('orders-db'))).version).toBe('1');
    writeFileSync(join(dir, 'password'), 'two');
    expect((await s.get(ref('orders-db'))).version).toBe('2');
    expect((await s.get(ref('orders-db'))).version).toBe('2');
    writeFileSync(join(dir, 'password'), 'one');
    expect((await s.get(ref('orders-db'))).version).toBe('3');
  });

  it('changes when a field is added, removed or renamed', async () => {
    const dir = plainDir('orders-db', { password: 'p' });
    const s = store(false);
    expect((await s.get(ref('orders-db'))).version).toBe('1');
    writeFileSync(join(dir, 'username'), 'u');
    expect((await s.get(ref('orders-db'))).version).toBe('2');
    rmSync(join(dir, 'username'));
    expect((await s.get(ref('orders-db'))).version).toBe('3');
    renameSync(join(dir, 'password'), join(dir, 'token'));
    expect((await s.get(ref('orders-db'))).version).toBe('4');
  });

  it('counts each credential path separately', async () => {
    plainDir('a', { password: 'x' });
    const b = plainDir('b', { password: 'x' });
    const s = store(false);
    await s.get(ref('a'));
    await s.get(ref('b'));
    writeFileSync(join(b, 'password'), 'y');
    expect((await s.get(ref('b'))).version).toBe('2');
    expect((await s.get(ref('a'))).version).toBe('1');
  });

  it('never puts the value in the version or in log lines', async () => {
    plainDir('orders-db', { password: CANARY });
    const c = await store(false).get(ref('orders-db'));
    expect(c.version).toMatch(/^\d+$/);
    for (const l of lines) expect(l).not.toContain(CANARY);
  });
});

describe('FileStore: Kubernetes Secret volume', () => {
  it('reads fields through the ..data symlink and ignores the machinery', async () => {
    new SecretVolume(join(root, 'orders-db'), { username: 'orders', password: `${CANARY}-1` });
    const c = await store().get(ref('orders-db'));
    expect(values(c)).toEqual({ username: 'orders', password: `${CANARY}-1` });
    expect(c.version).toBe('1');
  });

  it('after the atomic ..data swap, the next get sees the new values and a new version', async () => {
    const vol = new SecretVolume(join(root, 'orders-db'), { username: 'orders', password: `${CANARY}-1` });
    const s = store(false);
    expect((await s.get(ref('orders-db'))).version).toBe('1');
    vol.swap({ username: 'orders', password: `${CANARY}-2` });
    const c = await s.get(ref('orders-db'));
    expect(values(c)).toEqual({ username: 'orders', password: `${CANARY}-2` });
    expect(c.version).toBe('2');
  });

  it('a swap to identical content keeps the version', async () => {
    const vol = new SecretVolume(join(root, 'orders-db'), { password: 'same' });
    const s = store(false);
    await s.get(ref('orders-db'));
    vol.swap({ password: 'same' });
    expect((await s.get(ref('orders-db'))).version).toBe('1');
  });

  it('a swap that adds a field shows the new field', async () => {
    const vol = new SecretVolume(join(root, 'orders-db'), { password: 'p1' });
    const s = store(false);
    await s.get(ref('orders-db'));
    vol.swap({ password: 'p2', username: 'u' });
    expect(values(await s.get(ref('orders-db')))).toEqual({ password: 'p2', username: 'u' });
  });

  it('the watch callback fires after the swap, and the get that follows sees the new values', async () => {
    const vol = new SecretVolume(join(root, 'orders-db'), { username: 'orders', password: `${CANARY}-1` });
    const s = store(true);
    expect((await s.get(ref('orders-db'))).version).toBe('1');
    let unwatch = (): void => undefined;
    const changed = new Promise<void>((resolve) => {
      unwatch = s.watch(ref('orders-db'), resolve);
    });
    try {
      vol.swap({ username: 'orders', password: `${CANARY}-2` });
      await changed;
      const c = await s.get(ref('orders-db'));
      expect(values(c).password).toBe(`${CANARY}-2`);
      expect(c.version).toBe('2');
    } finally {
      unwatch();
    }
  });

  it('the watch callback fires for a plain file rewrite too', async () => {
    const dir = plainDir('plain', { password: 'p1' });
    const s = store(true);
    let unwatch = (): void => undefined;
    const changed = new Promise<void>((resolve) => {
      unwatch = s.watch(ref('plain'), resolve);
    });
    try {
      writeFileSync(join(dir, 'password'), 'p2');
      await changed;
      expect(values(await s.get(ref('plain')))).toEqual({ password: 'p2' });
    } finally {
      unwatch();
    }
  });

  it('watching a directory that does not exist yet does not throw', () => {
    const unwatch = store(true).watch(ref('later'), () => undefined);
    expect(unwatch).toBeTypeOf('function');
    unwatch();
  });

  it('with watch disabled, watch() returns a no-op unsubscribe', () => {
    plainDir('x', { password: 'p' });
    const unwatch = store(false).watch(ref('x'), () => undefined);
    expect(unwatch).toBeTypeOf('function');
    expect(() => unwatch()).not.toThrow();
  });
});

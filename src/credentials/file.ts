// A directory per credential, a file per field: how a Kubernetes Secret volume or a CSI
// secrets-store mount lays it out. Kubernetes updates a volume by writing a new timestamped
// directory and renaming the `..data` symlink over the old one; field files are symlinks through
// `..data`, so reading them by name always sees one consistent version, and a watch on the
// directory sees the rename.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { KeylessError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { Secret } from './secret.ts';
import type { Credential, CredentialRef, CredentialStore } from './types.ts';

const MAX_FIELD_BYTES = 64 * 1024;
const WATCH_DEBOUNCE_MS = 50;
const MAX_SWAP_RETRIES = 3;

export class FileStore implements CredentialStore {
  readonly kind = 'file';
  readonly name: string;
  readonly #dir: string;
  readonly #watch: boolean;
  readonly #log: Logger;
  /** Per path: digest of the last content read (memory only, never logged) and a version counter. */
  readonly #versions = new Map<string, { digest: string; n: number }>();

  constructor(name: string, opts: { dir: string; watch: boolean }, log: Logger) {
    this.name = name;
    this.#dir = resolve(opts.dir);
    this.#watch = opts.watch;
    this.#log = log;
  }

  #pathOf(ref: CredentialRef): string {
    if (isAbsolute(ref.path)) throw new KeylessError('KL_ERR_CONFIG', `store ${this.name}: path "${ref.path}" must be relative to the store directory`);
    const p = resolve(this.#dir, ref.path);
    const rel = relative(this.#dir, p);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new KeylessError('KL_ERR_CONFIG', `store ${this.name}: path "${ref.path}" leaves the store directory`);
    }
    return p;
  }

  get(ref: CredentialRef): Promise<Credential> {
    return this.#read(ref, 0);
  }

  async #read(ref: CredentialRef, attempt: number): Promise<Credential> {
    const dir = this.#pathOf(ref);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      throw this.#error(ref, err);
    }
    const fields = new Map<string, Secret>();
    const digest = createHash('sha256');
    for (const name of names.sort()) {
      // `..data`, `..2024_…` and other dot entries are the volume's machinery, not fields.
      if (name.startsWith('.')) continue;
      const file = join(dir, name);
      let buf: Buffer;
      try {
        const st = await stat(file);
        if (!st.isFile()) continue;
        if (st.size > MAX_FIELD_BYTES) throw new KeylessError('KL_ERR_CREDENTIAL_INVALID', `store ${this.name}: ${ref.path}/${name} is larger than ${MAX_FIELD_BYTES} bytes`);
        buf = await readFile(file);
      } catch (err) {
        if (err instanceof KeylessError) throw err;
        // A file vanishing mid-read is the symlink swap racing us: read the whole set again.
        // A link that stays dangling is a broken volume, not a race.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          if (attempt < MAX_SWAP_RETRIES) return this.#read(ref, attempt + 1);
          throw new KeylessError('KL_ERR_CREDENTIAL_INVALID', `store ${this.name}: ${ref.path}/${name} is a dangling link`, { cause: err });
        }
        throw this.#error(ref, err);
      }
      digest.update(name).update('\0').update(buf).update('\0');
      fields.set(name, new Secret(stripNewline(buf.toString('utf8'))));
    }
    if (fields.size === 0) {
      throw new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', `store ${this.name}: ${ref.path} has no field files`);
    }
    const d = digest.digest('hex');
    const prev = this.#versions.get(ref.path);
    const n = prev === undefined ? 1 : prev.digest === d ? prev.n : prev.n + 1;
    this.#versions.set(ref.path, { digest: d, n });
    return { ref, fields, version: String(n), renewable: false, fetchedAt: Date.now() };
  }

  async ping(): Promise<string> {
    try {
      const entries = await readdir(this.#dir);
      return `${this.#dir} readable (${entries.filter((e) => !e.startsWith('.')).length} entries)`;
    } catch (err) {
      throw new KeylessError('KL_ERR_STORE_UNAVAILABLE', `store ${this.name}: cannot read ${this.#dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }

  watch(ref: CredentialRef, onChange: () => void): () => void {
    if (!this.#watch) return () => undefined;
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      watcher = watch(this.#pathOf(ref), { persistent: false }, () => {
        clearTimeout(timer);
        timer = setTimeout(onChange, WATCH_DEBOUNCE_MS);
        timer.unref();
      });
      watcher.on('error', (err) => this.#log.warn({ store: this.name, path: ref.path, err: err.message }, 'file store watch failed'));
    } catch (err) {
      // Not there yet: the fetch reports that; the upstream-rejection retry still picks up changes.
      this.#log.debug({ store: this.name, path: ref.path, err: (err as Error).message }, 'file store cannot watch');
    }
    return () => {
      clearTimeout(timer);
      watcher?.close();
    };
  }

  #error(ref: CredentialRef, err: unknown): KeylessError {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', `store ${this.name}: no credential directory ${ref.path}`, { cause: err });
    }
    return new KeylessError('KL_ERR_STORE_UNAVAILABLE', `store ${this.name}: cannot read ${ref.path}: ${code ?? String(err)}`, { cause: err });
  }

  async close(): Promise<void> {}
}

/** `echo secret > file` leaves one newline; it is never part of the value. */
function stripNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}

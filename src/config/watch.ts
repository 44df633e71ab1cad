// Watches the config file for changes, the way Kubernetes updates a mounted ConfigMap: the file is
// a symlink through `..data`, which is swapped by a rename in the directory. So the directory is
// watched, and a change is reported only when the file's content actually changed.
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

const DEBOUNCE_MS = 100;

export function watchConfig(file: string, onChange: () => void, onError: (err: Error) => void): () => void {
  const path = resolve(file);
  let last: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const digest = async (): Promise<string | undefined> => {
    try {
      return createHash('sha256').update(await readFile(path)).digest('hex');
    } catch {
      return undefined; // mid-swap; the next event reads it again
    }
  };
  void digest().then((d) => (last ??= d));
  const check = async (): Promise<void> => {
    const d = await digest();
    if (d === undefined || d === last) return;
    last = d;
    onChange();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void check(), DEBOUNCE_MS);
    });
    watcher.on('error', onError);
  } catch (err) {
    onError(err as Error);
  }
  return () => {
    clearTimeout(timer);
    watcher?.close();
  };
}

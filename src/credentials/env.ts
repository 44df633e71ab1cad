// Credentials from the process environment: for path `ORDERS_DB` the variables
// `<prefix>ORDERS_DB_USERNAME`, `<prefix>ORDERS_DB_PASSWORD`… become fields username, password…
// The environment of a running process does not change, so this store never changes either.
import { KeylessError } from '../errors.ts';
import { Secret } from './secret.ts';
import type { Credential, CredentialRef, CredentialStore } from './types.ts';

export class EnvStore implements CredentialStore {
  readonly kind = 'env';
  readonly name: string;
  readonly #prefix: string;
  readonly #env: NodeJS.ProcessEnv;

  constructor(name: string, opts: { prefix: string }, env: NodeJS.ProcessEnv = process.env) {
    this.name = name;
    this.#prefix = opts.prefix;
    this.#env = env;
  }

  async get(ref: CredentialRef): Promise<Credential> {
    const head = `${this.#prefix}${ref.path.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
    const fields = new Map<string, Secret>();
    for (const [k, v] of Object.entries(this.#env)) {
      if (k.startsWith(head) && k.length > head.length && v !== undefined) fields.set(k.slice(head.length).toLowerCase(), new Secret(v));
    }
    if (fields.size === 0) {
      throw new KeylessError('KL_ERR_CREDENTIAL_NOT_FOUND', `store ${this.name}: no variables ${head}*`);
    }
    return { ref, fields, version: '1', renewable: false, fetchedAt: Date.now() };
  }

  async close(): Promise<void> {}
}

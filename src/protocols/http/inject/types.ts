import type { Readable } from 'node:stream';
import type { Credential } from '../../../credentials/types.ts';
import type { Headers } from '../hop-by-hop.ts';

/** The request as it will leave for the upstream; injectors edit it in place. */
export interface Outgoing {
  method: string;
  /** `https://host:port` */
  origin: string;
  /** Path and query, as sent upstream. */
  path: string;
  headers: Headers;
  /** null: no body. A Buffer is replayable (retry after a 401); a stream is not. */
  body: Readable | Buffer | null;
}

export interface InjectContext {
  readonly target: string;
  readonly signal: AbortSignal;
}

export interface Injector {
  /**
   * Put the credential on `out`, replacing whatever the app sent in the same place. Returns the
   * secret strings placed on the request, so an upstream echoing one back can be redacted.
   */
  apply(out: Outgoing, cred: Credential, ctx: InjectContext): Promise<string[]>;
  /** The upstream answered 401 to a request made with `cred` and `applied` (what apply returned): forget what was derived from it. */
  rejected?(cred: Credential, applied: readonly string[]): void;
  close?(): Promise<void>;
}

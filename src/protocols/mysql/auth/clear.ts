// mysql_clear_password: the password itself, NUL-terminated. Keyless sends it only over TLS.
import { KeylessError } from '../../../errors.ts';
import { Plugin } from '../constants.ts';
import { passwordBytes, type AuthExchange, type AuthOptions } from './types.ts';

export function clearPassword(opts: AuthOptions): AuthExchange {
  return {
    plugin: Plugin.CLEAR,
    start: () => {
      if (!opts.secure) {
        throw new KeylessError('KL_ERR_UPSTREAM_AUTH_METHOD', 'upstream asked for mysql_clear_password on a connection without TLS; Keyless sends a cleartext password only over TLS (set upstream.tls.mode)');
      }
      return Buffer.concat([passwordBytes(opts), Buffer.from([0])]);
    },
    more: () => undefined,
  };
}

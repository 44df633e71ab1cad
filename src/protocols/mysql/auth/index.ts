// The upstream auth plugins Keyless speaks, by the name a server asks for.
import { Plugin } from '../constants.ts';
import { cachingSha2Password } from './caching-sha2.ts';
import { clearPassword } from './clear.ts';
import { clientEd25519 } from './ed25519.ts';
import { nativePassword } from './native.ts';
import type { AuthExchange, AuthOptions } from './types.ts';

export type { AuthExchange, AuthOptions } from './types.ts';

const PLUGINS: Record<string, (opts: AuthOptions) => AuthExchange> = {
  [Plugin.NATIVE]: nativePassword,
  [Plugin.CACHING_SHA2]: cachingSha2Password,
  [Plugin.ED25519]: clientEd25519,
  [Plugin.CLEAR]: clearPassword,
};

export const SUPPORTED_PLUGINS: readonly string[] = Object.keys(PLUGINS);

/** The exchange for a plugin, or undefined when Keyless does not speak it. */
export function createAuth(plugin: string, opts: AuthOptions): AuthExchange | undefined {
  return Object.hasOwn(PLUGINS, plugin) ? PLUGINS[plugin]!(opts) : undefined;
}
